// Command image builds the Ferry container image from a static ferry
// binary, offline and reproducibly: one layer on an empty base, every
// timestamp fixed, so the same binary always gives the same digest. It
// writes an OCI image layout and can push the image to registries.
//
//	go run ./hack/image --binary bin/ferry-static --layout bin/image [--push registry.example/ferry:v1]
//
// Used by `make image`.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user the image runs as: not root, and the uid distroless images use,
// which OpenShift's restricted SCC replaces with one of the namespace's.
const (
	uid     = 65532
	dataDir = "/var/lib/ferry"
)

type options struct {
	binary   string
	layout   string
	tag      string
	version  string
	arch     string
	epoch    int64
	push     []string
	insecure bool
}

func main() {
	var o options
	var push string
	flag.StringVar(&o.binary, "binary", "", "static ferry binary for linux (CGO_ENABLED=0)")
	flag.StringVar(&o.layout, "layout", "bin/image", "OCI image layout directory to write (replaced)")
	flag.StringVar(&o.tag, "tag", "ferry:latest", "name of the image in the layout (org.opencontainers.image.ref.name)")
	flag.StringVar(&o.version, "version", "dev", "version label")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "architecture of --binary")
	flag.StringVar(&push, "push", "", "comma-separated references to push the image to, e.g. registry.example:8443/ferry:v1")
	flag.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP for --push")
	flag.Parse()
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		epoch = "0"
	}
	var err error
	if o.epoch, err = strconv.ParseInt(epoch, 10, 64); err != nil {
		fail(fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", epoch))
	}
	if push != "" {
		o.push = strings.Split(push, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "image:", err)
	os.Exit(1)
}

func run(ctx context.Context, o options) error {
	if o.binary == "" {
		return errors.New("--binary is required: build it with CGO_ENABLED=0 go build -trimpath -o bin/ferry-static ./cmd/ferry")
	}
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return fmt.Errorf("--binary: %w", err)
	}
	if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
		return fmt.Errorf("--binary %s is not a Linux (ELF) executable", o.binary)
	}
	img, err := build(bin, o)
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if err := os.RemoveAll(o.layout); err != nil {
		return err
	}
	p, err := layout.Write(o.layout, empty.Index)
	if err != nil {
		return fmt.Errorf("write %s: %w", o.layout, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": o.tag})); err != nil {
		return fmt.Errorf("write %s: %w", o.layout, err)
	}
	fmt.Printf("%s %s@%s\n", o.layout, o.tag, d)
	for _, s := range o.push {
		var opts []name.Option
		if o.insecure {
			opts = append(opts, name.Insecure)
		}
		ref, err := name.ParseReference(s, opts...)
		if err != nil {
			return fmt.Errorf("--push %q: %w", s, err)
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		fmt.Printf("pushed %s@%s\n", ref, d)
	}
	return nil
}

// build assembles the image: the binary, a passwd entry for its user and
// the data dir it owns, with the configuration a registry container needs.
func build(bin []byte, o options) (v1.Image, error) {
	created := time.Unix(o.epoch, 0).UTC()
	layerTar, err := rootfs(bin, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "hack/image: ferry " + o.version,
			Comment:   "static ferry binary on an empty base",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = o.arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: created}
	owner := strconv.Itoa(uid)
	cf.Config = v1.Config{
		User:       owner + ":" + owner,
		Entrypoint: []string{"/usr/bin/ferry"},
		Cmd:        []string{"serve", "--data-dir", dataDir},
		// The data dir as default for gc and user too, run in the same
		// container or a sibling mounting the same volume.
		Env:          []string{"PATH=/usr/bin", "FERRY_DATA_DIR=" + dataDir},
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{"8443/tcp": {}},
		Volumes:      map[string]struct{}{dataDir: {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "ferry",
			"org.opencontainers.image.description": "Mirror registry and mirroring tool for disconnected OpenShift and Kubernetes clusters",
			"org.opencontainers.image.source":      "https://github.com/ferry-mirror/ferry",
			"org.opencontainers.image.version":     o.version,
			"org.opencontainers.image.licenses":    "Apache-2.0",
		},
		StopSignal: "SIGTERM",
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the image's only layer, written in a fixed order with fixed
// times and owners so that it is byte-for-byte the same for the same
// binary.
func rootfs(bin []byte, mtime time.Time) ([]byte, error) {
	type entry struct {
		name string
		mode int64
		uid  int
		data []byte
		dir  bool
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nferry:x:" + strconv.Itoa(uid) + ":\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nferry:x:" + strconv.Itoa(uid) + ":" + strconv.Itoa(uid) + ":ferry:" + dataDir + ":/sbin/nologin\n")},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/bin/", mode: 0o755, dir: true},
		{name: "usr/bin/ferry", mode: 0o755, data: bin},
		{name: "var/", mode: 0o755, dir: true},
		{name: "var/lib/", mode: 0o755, dir: true},
		{name: "var/lib/ferry/", mode: 0o700, uid: uid, dir: true},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime,
			Typeflag: tar.TypeReg, Size: int64(len(e.data)), Format: tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
