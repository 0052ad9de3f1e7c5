package release

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// DefaultGraphDataURL serves the update-service graph data as a tar.gz,
// as oc-mirror downloads it.
const DefaultGraphDataURL = "https://api.openshift.com/api/upgrades_info/graph-data"

// Graph-data image layout, as oc-mirror's graph image has it: the data
// under graphDataDir, copied at start into the volume the update service
// reads.
const (
	graphDataDir       = "var/lib/cincinnati-graph-data"
	graphDataMountPath = "/var/lib/cincinnati/graph-data"
)

// GraphDataOptions configure DownloadGraphData.
type GraphDataOptions struct {
	URL      string // default DefaultGraphDataURL
	HTTP     *http.Client
	Attempts int           // default 4
	Backoff  time.Duration // default 1s
	Log      *slog.Logger
}

// GraphDataOptionsFromEnv reads GRAPH_DATA_URL_OVERRIDE, Ferry's own
// variable (oc-mirror has none) for a graph-data tarball served elsewhere.
func GraphDataOptionsFromEnv(getenv func(string) string) GraphDataOptions {
	return GraphDataOptions{URL: getenv("GRAPH_DATA_URL_OVERRIDE")}
}

// DownloadGraphData streams the graph-data tarball to dst, through a
// temporary file in the same directory so that dst is either complete
// and a valid tar.gz, or absent.
func DownloadGraphData(ctx context.Context, opts GraphDataOptions, dst string) error {
	if opts.URL == "" {
		opts.URL = DefaultGraphDataURL
	}
	if !isHTTPURL(opts.URL) {
		return fmt.Errorf("graph data URL %q is not an http(s) URL; check GRAPH_DATA_URL_OVERRIDE", opts.URL)
	}
	opts.HTTP, opts.Attempts, opts.Backoff, opts.Log = retryDefaults(opts.HTTP, 10*time.Minute, opts.Attempts, opts.Backoff, opts.Log)
	err := withRetry(ctx, opts.URL, opts.Attempts, opts.Backoff, opts.Log, func() error {
		return downloadOnce(ctx, opts, dst)
	})
	if err != nil && retryable(err) && ctx.Err() == nil {
		return fmt.Errorf("graph data (set GRAPH_DATA_URL_OVERRIDE to a reachable copy): %w", err)
	}
	if err != nil {
		return fmt.Errorf("graph data: %w", err)
	}
	return nil
}

// errBadGraphData marks a download that arrived but is not a tar.gz; it is
// not retried.
var errBadGraphData = errors.New("not a gzip-compressed tar of graph data")

func downloadOnce(ctx context.Context, opts GraphDataOptions, dst string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, opts.URL, nil)
	if err != nil {
		return &permanentError{fmt.Errorf("GET %s: %w", opts.URL, err)}
	}
	resp, err := opts.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &errStatus{url: opts.URL, status: resp.Status, code: resp.StatusCode}
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".graph-data-*")
	if err != nil {
		return &permanentError{err}
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("GET %s: %w", opts.URL, err)
	}
	if err := checkTarGz(tmp.Name()); err != nil {
		return &permanentError{fmt.Errorf("%s: %w: %w", opts.URL, errBadGraphData, err)}
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return &permanentError{err}
	}
	return nil
}

func checkTarGz(p string) error {
	return eachGraphDataEntry(p, func(*tar.Header, io.Reader) error { return nil })
}

// eachGraphDataEntry walks a tar.gz file, refusing entries that could
// escape the graph-data directory once prefixed.
func eachGraphDataEntry(p string, fn func(*tar.Header, io.Reader) error) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !safeEntryName(h.Name) {
			return fmt.Errorf("entry %q leaves the archive's directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
		case tar.TypeLink:
			if !safeEntryName(h.Linkname) {
				return fmt.Errorf("hard link %q points to %q, outside the archive", h.Name, h.Linkname)
			}
		default:
			return fmt.Errorf("entry %q has type %q; graph data holds only files, directories and links", h.Name, h.Typeflag)
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

func safeEntryName(n string) bool {
	if n == "" || path.IsAbs(n) {
		return false
	}
	c := path.Clean(n)
	return c != ".." && !strings.HasPrefix(c, "../")
}

// BuildGraphImage returns base with one more layer holding the graph-data
// tarball's content under /var/lib/cincinnati-graph-data/ (owned by root),
// and a CMD that copies it into the update service's graph-data volume.
// The caller pushes the result to openshift/graph-image.
func BuildGraphImage(base v1.Image, tarballPath string) (v1.Image, error) {
	if err := checkTarGz(tarballPath); err != nil {
		return nil, fmt.Errorf("graph data %s: %w: %w", tarballPath, errBadGraphData, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeGraphLayer(pw, tarballPath)) }()
		return pr, nil
	})
	if err != nil {
		return nil, fmt.Errorf("graph data layer: %w", err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("graph image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("graph image base config: %w", err)
	}
	cfg := cf.Config.DeepCopy()
	cfg.Cmd = []string{"/bin/bash", "-c", fmt.Sprintf("exec cp -rp /%s/* %s", graphDataDir, graphDataMountPath)}
	cfg.Entrypoint = nil
	img, err = mutate.Config(img, *cfg)
	if err != nil {
		return nil, fmt.Errorf("graph image config: %w", err)
	}
	return img, nil
}

// writeGraphLayer writes the uncompressed layer: the directory, then each
// tarball entry under it with root ownership. The same input always gives
// the same bytes, so the layer digest is stable.
func writeGraphLayer(w io.Writer, tarballPath string) error {
	tw := tar.NewWriter(w)
	err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: graphDataDir + "/", Mode: 0o755, Format: tar.FormatPAX})
	if err != nil {
		return err
	}
	err = eachGraphDataEntry(tarballPath, func(h *tar.Header, r io.Reader) error {
		name := path.Clean(h.Name)
		if name == "." {
			return nil
		}
		out := &tar.Header{
			Typeflag: h.Typeflag,
			Name:     graphDataDir + "/" + name,
			Linkname: h.Linkname,
			Size:     h.Size,
			Mode:     h.Mode,
			ModTime:  h.ModTime,
			Format:   tar.FormatPAX,
		}
		if h.Typeflag == tar.TypeDir {
			out.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			out.Linkname = graphDataDir + "/" + path.Clean(h.Linkname)
		}
		if err := tw.WriteHeader(out); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
