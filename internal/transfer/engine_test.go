package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/registry"
	"github.com/ferry-mirror/ferry/internal/store/fs"
	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// startRegistry serves the Ferry registry in-process, over a file blob
// store and SQLite metadata in a temporary folder, and returns its host.
func startRegistry(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Options{Blobs: blobs, Meta: meta, Logger: slog.New(slog.DiscardHandler)}).Handler())
	t.Cleanup(func() {
		srv.Close()
		meta.Close()
	})
	return strings.TrimPrefix(srv.URL, "http://")
}

func client(t *testing.T, host string) *transfer.Client {
	t.Helper()
	r, err := transfer.NewClient(host, transfer.RegistryOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pushImage writes img to host/repo:tag with go-containerregistry, as a
// user's client would, and returns its digest and blobs.
func pushImage(t *testing.T, host, repo, tag string, img v1.Image) (digest.Digest, []digest.Digest) {
	t.Helper()
	ref, err := name.ParseReference(host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	cfg, _ := img.ConfigName()
	blobs := []digest.Digest{digest.Digest(cfg.String())}
	layers, _ := img.Layers()
	for _, l := range layers {
		ld, _ := l.Digest()
		blobs = append(blobs, digest.Digest(ld.String()))
	}
	return digest.Digest(d.String()), blobs
}

func randomImage(t *testing.T, layers int) v1.Image {
	t.Helper()
	img, err := random.Image(2048, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// faultDest is a destination registry that counts calls and fails or
// holds them as a test asks.
type faultDest struct {
	transfer.Dest
	mu    sync.Mutex
	calls map[string]int
	// fail, when set, is asked before each call; a non-nil error is
	// returned instead of making the call.
	fail func(method string, n int) error
	// hold, when set, blocks PutBlob until ctx ends.
	hold bool
}

func newFaultDest(r *transfer.Client) *faultDest {
	return &faultDest{Dest: transfer.RegistryDest{R: r}, calls: map[string]int{}}
}

func (f *faultDest) count(method string) error {
	f.mu.Lock()
	f.calls[method]++
	n := f.calls[method]
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return fail(method, n)
	}
	return nil
}

func (f *faultDest) n(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *faultDest) HasManifest(ctx context.Context, repo, ref string, d digest.Digest) (bool, error) {
	if err := f.count("HasManifest"); err != nil {
		return false, err
	}
	return f.Dest.HasManifest(ctx, repo, ref, d)
}

func (f *faultDest) PutManifest(ctx context.Context, repo, ref string, m transfer.Manifest) (bool, error) {
	if err := f.count("PutManifest"); err != nil {
		return false, err
	}
	return f.Dest.PutManifest(ctx, repo, ref, m)
}

func (f *faultDest) HasBlob(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	if err := f.count("HasBlob"); err != nil {
		return false, err
	}
	return f.Dest.HasBlob(ctx, repo, d)
}

func (f *faultDest) Mount(ctx context.Context, repo, from string, d digest.Digest) (bool, string, error) {
	if err := f.count("Mount"); err != nil {
		return false, "", err
	}
	return f.Dest.Mount(ctx, repo, from, d)
}

func (f *faultDest) PutBlob(ctx context.Context, repo string, d digest.Digest, size int64, r io.Reader, session string) error {
	if err := f.count("PutBlob"); err != nil {
		return err
	}
	if err := f.count("PutBlob " + d.String()); err != nil {
		return err
	}
	if f.hold {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.Dest.PutBlob(ctx, repo, d, size, r, session)
}

// corruptSource flips a byte of the blobs it serves while bad says so.
type corruptSource struct {
	transfer.Source
	bad func(n int) bool
	n   atomic.Int64
}

func (s *corruptSource) Blob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	rc, size, err := s.Source.Blob(ctx, repo, d)
	if err != nil || !s.bad(int(s.n.Add(1))) {
		return rc, size, err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, 0, err
	}
	data[len(data)/2] ^= 0xff
	return io.NopCloser(bytes.NewReader(data)), size, nil
}

type setup struct {
	src, dst string // hosts
	dstReg   *transfer.Client
	img      digest.Digest
	blobs    []digest.Digest
	source   transfer.Source
}

func newSetup(t *testing.T, layers int) setup {
	t.Helper()
	s := setup{src: startRegistry(t), dst: startRegistry(t)}
	s.img, s.blobs = pushImage(t, s.src, "team/app", "v1", randomImage(t, layers))
	s.dstReg = client(t, s.dst)
	s.source = transfer.NewRegistries(transfer.RegistryOptions{Insecure: true})
	return s
}

func (s setup) job(dstRepo string) transfer.Job {
	return transfer.Job{Name: s.src + "/team/app:v1", Items: []transfer.Item{{SrcRepo: s.src + "/team/app", DstRepo: dstRepo, Ref: "v1", Digest: s.img}}}
}

// assertCopied checks, through the destination's API, that repo:v1 is
// the image and holds every blob.
func (s setup) assertCopied(t *testing.T, repo string) {
	t.Helper()
	ctx := context.Background()
	m, err := s.dstReg.GetManifest(ctx, repo, "v1")
	if err != nil {
		t.Fatalf("%s:v1 at the destination: %v", repo, err)
	}
	if m.Digest != s.img {
		t.Errorf("%s:v1 is %s; want %s", repo, m.Digest, s.img)
	}
	for _, b := range s.blobs {
		rc, _, err := s.dstReg.GetBlob(ctx, repo, b)
		if err != nil {
			t.Errorf("blob %s in %s: %v", b, repo, err)
			continue
		}
		got, err := digest.FromReader(rc)
		rc.Close()
		if err != nil || got != b {
			t.Errorf("blob %s in %s reads as %s (%v)", b, repo, got, err)
		}
	}
}

func TestEngineCopiesThenSkips(t *testing.T) {
	s := newSetup(t, 3)
	dst := newFaultDest(s.dstReg)
	e := &transfer.Engine{Src: s.source, Dst: dst, ParallelImages: 2, ParallelLayers: 2}
	res := e.Run(context.Background(), []transfer.Job{s.job("mirror/app")})
	if res[0].Err != nil || !res[0].Copied {
		t.Fatalf("copy: %+v", res[0])
	}
	s.assertCopied(t, "mirror/app")
	if got := e.Stats.BlobsCopied.Load(); got != int64(len(s.blobs)) {
		t.Errorf("%d blobs copied; want %d", got, len(s.blobs))
	}
	// Once there, nothing is sent again: a HEAD on the tag answers it.
	again := newFaultDest(s.dstReg)
	e2 := &transfer.Engine{Src: s.source, Dst: again}
	res = e2.Run(context.Background(), []transfer.Job{s.job("mirror/app")})
	if res[0].Err != nil || res[0].Copied {
		t.Fatalf("second copy: %+v; want nothing copied", res[0])
	}
	if n := again.n("PutBlob") + again.n("PutManifest") + again.n("Mount"); n != 0 {
		t.Errorf("second copy made %d writes: %v", n, again.calls)
	}
}

func TestEngineMountsAcrossRepositories(t *testing.T) {
	s := newSetup(t, 2)
	dst := newFaultDest(s.dstReg)
	e := &transfer.Engine{Src: s.source, Dst: dst, ParallelImages: 1}
	res := e.Run(context.Background(), []transfer.Job{s.job("one/app"), s.job("two/app")})
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	s.assertCopied(t, "one/app")
	s.assertCopied(t, "two/app")
	if n := dst.n("PutBlob"); n != len(s.blobs) {
		t.Errorf("%d uploads; want %d: each blob sent once, then mounted", n, len(s.blobs))
	}
	if got := e.Stats.BlobsMounted.Load(); got != int64(len(s.blobs)) {
		t.Errorf("%d blobs mounted; want %d", got, len(s.blobs))
	}
}

func TestEngineSkipsBlobTheDestinationHas(t *testing.T) {
	s := newSetup(t, 2)
	// The destination already holds the first layer in the target
	// repository, pushed there by someone else.
	layer := s.blobs[1]
	rc, size, err := s.source.Blob(context.Background(), s.src+"/team/app", layer)
	if err != nil {
		t.Fatal(err)
	}
	err = s.dstReg.Upload(context.Background(), "mirror/app", layer, size, rc, "")
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	dst := newFaultDest(s.dstReg)
	e := &transfer.Engine{Src: s.source, Dst: dst}
	if r := e.RunJob(context.Background(), s.job("mirror/app")); r.Err != nil {
		t.Fatal(r.Err)
	}
	s.assertCopied(t, "mirror/app")
	if n := dst.n("PutBlob"); n != len(s.blobs)-1 {
		t.Errorf("%d uploads; want %d: the blob already there is not sent", n, len(s.blobs)-1)
	}
	if got := e.Stats.BlobsSkipped.Load(); got != 1 {
		t.Errorf("%d blobs skipped; want 1", got)
	}
}

func TestEngineRetries(t *testing.T) {
	unavailable := &transfer.HTTPError{Method: http.MethodPut, Status: http.StatusServiceUnavailable}
	t.Run("temporary", func(t *testing.T) {
		s := newSetup(t, 2)
		dst := newFaultDest(s.dstReg)
		// The first upload of each blob and the first manifest push fail.
		dst.fail = func(method string, n int) error {
			if (strings.HasPrefix(method, "PutBlob sha256:") || method == "PutManifest") && n == 1 {
				return unavailable
			}
			return nil
		}
		e := &transfer.Engine{Src: s.source, Dst: dst, Retry: transfer.Retry{Times: 2, Delay: time.Millisecond}}
		if r := e.RunJob(context.Background(), s.job("mirror/app")); r.Err != nil {
			t.Fatalf("copy with retries: %v", r.Err)
		}
		s.assertCopied(t, "mirror/app")
		for _, b := range s.blobs {
			if n := dst.n("PutBlob " + b.String()); n != 2 {
				t.Errorf("blob %s uploaded %d times; want twice", b, n)
			}
		}
		if n := dst.n("PutManifest"); n != 2 {
			t.Errorf("manifest pushed %d times; want twice", n)
		}
	})
	t.Run("exhausted", func(t *testing.T) {
		s := newSetup(t, 1)
		dst := newFaultDest(s.dstReg)
		dst.fail = func(method string, _ int) error {
			if strings.HasPrefix(method, "PutBlob sha256:") {
				return unavailable
			}
			return nil
		}
		e := &transfer.Engine{Src: s.source, Dst: dst, Retry: transfer.Retry{Times: 2, Delay: time.Millisecond}}
		r := e.RunJob(context.Background(), s.job("mirror/app"))
		if r.Err == nil || !strings.Contains(r.Err.Error(), s.src+"/team/app:v1") || !strings.Contains(r.Err.Error(), "503") {
			t.Fatalf("error %v; want a 503 naming the image", r.Err)
		}
		// The first blob to run out of tries stops the others.
		most := 0
		for _, b := range s.blobs {
			most = max(most, dst.n("PutBlob "+b.String()))
		}
		if most != 3 {
			t.Errorf("a blob was tried at most %d times; want 3 (first try and two retries)", most)
		}
		if n := dst.n("PutManifest"); n != 0 {
			t.Errorf("the manifest was pushed %d times without its blobs", n)
		}
	})
	t.Run("permanent", func(t *testing.T) {
		s := newSetup(t, 1)
		dst := newFaultDest(s.dstReg)
		dst.fail = func(method string, _ int) error {
			if strings.HasPrefix(method, "PutBlob sha256:") {
				return &transfer.HTTPError{Method: http.MethodPut, Status: http.StatusForbidden, Code: "DENIED"}
			}
			return nil
		}
		e := &transfer.Engine{Src: s.source, Dst: dst, Retry: transfer.Retry{Times: 5, Delay: time.Millisecond}}
		if r := e.RunJob(context.Background(), s.job("mirror/app")); r.Err == nil || !strings.Contains(r.Err.Error(), "DENIED") {
			t.Fatalf("error %v; want DENIED", r.Err)
		}
		for _, b := range s.blobs {
			if n := dst.n("PutBlob " + b.String()); n > 1 {
				t.Errorf("blob %s uploaded %d times; a 403 must not be retried", b, n)
			}
		}
	})
}

func TestEngineDigestMismatch(t *testing.T) {
	t.Run("once", func(t *testing.T) {
		s := newSetup(t, 1)
		src := &corruptSource{Source: s.source, bad: func(n int) bool { return n == 1 }}
		e := &transfer.Engine{Src: src, Dst: transfer.RegistryDest{R: s.dstReg}, Retry: transfer.Retry{Times: 1, Delay: time.Millisecond}}
		if r := e.RunJob(context.Background(), s.job("mirror/app")); r.Err != nil {
			t.Fatalf("a blob corrupted once was not fetched again: %v", r.Err)
		}
		s.assertCopied(t, "mirror/app")
	})
	t.Run("always", func(t *testing.T) {
		s := newSetup(t, 1)
		src := &corruptSource{Source: s.source, bad: func(int) bool { return true }}
		e := &transfer.Engine{Src: src, Dst: transfer.RegistryDest{R: s.dstReg}, Retry: transfer.Retry{Times: 1, Delay: time.Millisecond}}
		r := e.RunJob(context.Background(), s.job("mirror/app"))
		var de *transfer.DigestError
		if !errors.As(r.Err, &de) {
			t.Fatalf("error %v; want a DigestError", r.Err)
		}
		if _, err := s.dstReg.GetManifest(context.Background(), "mirror/app", "v1"); !transfer.IsNotFound(err) {
			t.Errorf("the image was pushed over a corrupted blob: %v", err)
		}
		for _, b := range s.blobs {
			if has, err := s.dstReg.HasBlob(context.Background(), "mirror/app", b); err != nil || has {
				t.Errorf("blob %s, corrupted on every read, is stored (%v)", b, err)
			}
		}
		if n := src.n.Load(); n < 2 {
			t.Errorf("the corrupted blob was read %d times; want a retry", n)
		}
	})
}

func TestEngineCancel(t *testing.T) {
	s := newSetup(t, 2)
	dst := newFaultDest(s.dstReg)
	dst.hold = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan transfer.Result)
	e := &transfer.Engine{Src: s.source, Dst: dst, ParallelLayers: 4, Retry: transfer.Retry{Times: 5, Delay: time.Millisecond}}
	go func() { done <- e.RunJob(ctx, s.job("mirror/app")) }()
	for dst.n("PutBlob") == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case r := <-done:
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("error %v; want context.Canceled", r.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the copy did not stop when cancelled")
	}
	if n := dst.n("PutManifest"); n != 0 {
		t.Errorf("%d manifests pushed after cancel", n)
	}
	if n := dst.n("PutBlob"); n > len(s.blobs) {
		t.Errorf("%d uploads: a cancelled upload was retried", n)
	}
}

// slowMounts counts mounts per repository and blob, and makes each take a
// while, so that concurrent images overlap while one is under way.
type slowMounts struct {
	transfer.Dest
	mu     sync.Mutex
	mounts map[string]int // "repo@digest"
}

func (m *slowMounts) Mount(ctx context.Context, repo, from string, d digest.Digest) (bool, string, error) {
	m.mu.Lock()
	m.mounts[repo+"@"+d.String()]++
	m.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	return m.Dest.Mount(ctx, repo, from, d)
}

// TestEngineMountsOncePerRepository: two images of one repository need
// the blobs this run put in another one. Each blob is mounted into it
// once: a second, concurrent mount of a blob the repository holds makes
// CNCF distribution rewrite its link file, and a manifest checked at that
// moment fails as DIGEST_INVALID.
func TestEngineMountsOncePerRepository(t *testing.T) {
	s := newSetup(t, 3)
	e := &transfer.Engine{Src: s.source, Dst: transfer.RegistryDest{R: s.dstReg}}
	if res := e.Run(context.Background(), []transfer.Job{s.job("one/app")}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	dst := &slowMounts{Dest: transfer.RegistryDest{R: s.dstReg}, mounts: map[string]int{}}
	e = &transfer.Engine{Src: s.source, Dst: dst, ParallelImages: 2, ParallelLayers: 4}
	for _, b := range s.blobs {
		e.Present(b, "one/app")
	}
	v2 := s.job("two/app")
	v2.Items[0].Ref = "v2"
	for _, r := range e.Run(context.Background(), []transfer.Job{s.job("two/app"), v2}) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	s.assertCopied(t, "two/app")
	for _, b := range s.blobs {
		if n := dst.mounts["two/app@"+b.String()]; n != 1 {
			t.Errorf("blob %s mounted into two/app %d times; want once", b, n)
		}
	}
}
