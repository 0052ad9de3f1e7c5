package helm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// Limits on what one chart may hold. Helm's loader gives every archive,
// and so every subchart .tgz, its own 100 MiB: a chart of nested
// archives (a "subchart bomb") multiplies that. Ferry checks the whole
// tree against one budget before Helm loads it.
const (
	// MaxChartBytes bounds the uncompressed size of a chart and all its
	// subcharts together: charts are YAML, so anything near this is not
	// a chart.
	MaxChartBytes = 64 << 20
	// MaxChartDepth bounds how deep subcharts nest (charts/x/charts/y is
	// 2); real charts stop at 2 or 3.
	MaxChartDepth = 8
)

// Load reads a chart from a folder (honouring its .helmignore, as `helm
// template <folder>` does) or a .tgz file.
func Load(p string) (*chart.Chart, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w (the path must be a chart folder or a .tgz)", p, err)
	}
	if !fi.IsDir() {
		data, err := readFileLimited(p, MaxChartBytes)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", p, err)
		}
		c, err := LoadArchive(data)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", p, err)
		}
		return c, nil
	}
	if err := checkDir(p); err != nil {
		return nil, fmt.Errorf("chart %s: %w", p, err)
	}
	c, err := loader.LoadDir(p)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", p, err)
	}
	return c, nil
}

// LoadArchive reads a chart .tgz, as `helm pull` downloads it.
func LoadArchive(data []byte) (*chart.Chart, error) {
	b := budget{left: MaxChartBytes}
	if err := b.archive(bytes.NewReader(data), 0); err != nil {
		return nil, err
	}
	c, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return c, nil
}

func readFileLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d MiB: not a chart archive", limit>>20)
	}
	return data, nil
}

// budget counts the uncompressed bytes of a chart tree.
type budget struct{ left int64 }

func (b *budget) take(n int64) error {
	if b.left -= n; b.left < 0 {
		return fmt.Errorf("the chart and its subcharts hold more than %d MiB uncompressed: not a chart (or an archive bomb)", MaxChartBytes>>20)
	}
	return nil
}

// archive streams a chart .tgz, counting every file and descending into
// the subchart archives it holds, without keeping anything.
func (b *budget) archive(r io.Reader, depth int) error {
	if depth > MaxChartDepth {
		return fmt.Errorf("subcharts nest more than %d deep: not a chart", MaxChartDepth)
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzipped chart archive: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read chart archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := b.take(h.Size); err != nil {
			return err
		}
		if isSubchartArchive(h.Name) {
			if err := b.archive(io.LimitReader(tr, h.Size), depth+1); err != nil {
				return fmt.Errorf("subchart %s: %w", path.Base(h.Name), err)
			}
		}
	}
}

// checkDir counts a chart folder the same way: files, and the subchart
// archives under its charts/ folders.
func checkDir(root string) error {
	b := budget{left: MaxChartBytes}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if depth := strings.Count(filepath.ToSlash(rel)+"/", "charts/"); depth > MaxChartDepth {
				return fmt.Errorf("subcharts nest more than %d deep: not a chart", MaxChartDepth)
			}
			return nil
		}
		fi, err := os.Stat(p) // Helm's loader follows links
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		if err := b.take(fi.Size()); err != nil {
			return err
		}
		if isSubchartArchive(filepath.ToSlash(rel)) {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			depth := strings.Count(filepath.ToSlash(rel), "charts/")
			if err := b.archive(f, depth); err != nil {
				return fmt.Errorf("subchart %s: %w", rel, err)
			}
		}
		return nil
	})
}

func isSubchartArchive(name string) bool {
	dir, file := path.Split(path.Clean(name))
	return strings.HasSuffix(file, ".tgz") && strings.HasSuffix(dir, "charts/")
}
