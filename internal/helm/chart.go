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
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxChartFiles bounds the uncompressed size of one chart, subcharts
// included: a chart is YAML, so anything near this is not a chart (or is
// a decompression bomb).
const MaxChartFiles = 64 << 20

// Chart is a loaded chart: its metadata, default values, templates and
// subcharts.
type Chart struct {
	Name, Version, AppVersion string
	Type                      string // "application" or "library"
	Values                    map[string]any
	Templates                 []File // under templates/, partials included
	Files                     map[string][]byte
	Subcharts                 []*Chart
	// Conditions maps a dependency name (or alias) to its condition, a
	// values path such as "redis.enabled".
	Conditions map[string]string
}

// File is one file of a chart, by its path inside the chart.
type File struct {
	Name string
	Data []byte
}

type chartYAML struct {
	Name         string `yaml:"name"`
	Version      string `yaml:"version"`
	AppVersion   string `yaml:"appVersion"` // a string field keeps 1.10 as written
	Type         string `yaml:"type"`
	Dependencies []struct {
		Name      string `yaml:"name"`
		Alias     string `yaml:"alias"`
		Condition string `yaml:"condition"`
	} `yaml:"dependencies"`
}

// Load reads a chart from a folder or a .tgz file.
func Load(p string) (*Chart, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w (the path must be a chart folder or a .tgz)", p, err)
	}
	if fi.IsDir() {
		files, err := readDir(p)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", p, err)
		}
		c, err := fromFiles(files)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", p, err)
		}
		return c, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", p, err)
	}
	defer f.Close()
	c, err := LoadArchive(f)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", p, err)
	}
	return c, nil
}

func readDir(root string) (map[string][]byte, error) {
	files := map[string][]byte{}
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil // folders, and links that could point out of the chart
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if total += info.Size(); total > MaxChartFiles {
			return fmt.Errorf("more than %d MiB of files: not a chart folder", MaxChartFiles>>20)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	return files, err
}

// LoadArchive reads a chart .tgz: a gzipped tar whose entries all sit
// under one top folder named for the chart.
func LoadArchive(r io.Reader) (*Chart, error) {
	files, err := readArchive(r)
	if err != nil {
		return nil, err
	}
	return fromFiles(files)
}

func readArchive(r io.Reader) (map[string][]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a gzipped chart archive: %w", err)
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read chart archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		_, rest, ok := strings.Cut(name, "/")
		if !ok || path.IsAbs(name) || strings.HasPrefix(name, "../") {
			continue // not under the chart's folder
		}
		if total += h.Size; total > MaxChartFiles {
			return nil, fmt.Errorf("chart archive holds more than %d MiB: not a chart", MaxChartFiles>>20)
		}
		data, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, fmt.Errorf("read chart archive %s: %w", h.Name, err)
		}
		files[rest] = data
	}
	return files, nil
}

// fromFiles builds a chart from its files, keyed by path inside the chart.
func fromFiles(files map[string][]byte) (*Chart, error) {
	raw, ok := files["Chart.yaml"]
	if !ok {
		return nil, errors.New("no Chart.yaml: not a Helm chart")
	}
	var meta chartYAML
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	if meta.Name == "" {
		return nil, errors.New("Chart.yaml has no name")
	}
	c := &Chart{Name: meta.Name, Version: meta.Version, AppVersion: meta.AppVersion, Type: meta.Type, Values: map[string]any{}, Files: map[string][]byte{}, Conditions: map[string]string{}}
	for _, d := range meta.Dependencies {
		n := d.Name
		if d.Alias != "" {
			n = d.Alias
		}
		if d.Condition != "" {
			c.Conditions[n] = d.Condition
		}
	}
	if v, ok := files["values.yaml"]; ok {
		vals, err := parseValues(v)
		if err != nil {
			return nil, fmt.Errorf("%s values.yaml: %w", c.Name, err)
		}
		c.Values = vals
	}
	subs := map[string]map[string][]byte{}
	for name, data := range files {
		switch {
		case strings.HasPrefix(name, "templates/"):
			c.Templates = append(c.Templates, File{Name: name, Data: data})
		case strings.HasPrefix(name, "charts/"):
			rest := strings.TrimPrefix(name, "charts/")
			if sub, inner, ok := strings.Cut(rest, "/"); ok {
				if subs[sub] == nil {
					subs[sub] = map[string][]byte{}
				}
				subs[sub][inner] = data
			} else if strings.HasSuffix(rest, ".tgz") {
				sc, err := LoadArchive(bytes.NewReader(data))
				if err != nil {
					return nil, fmt.Errorf("%s subchart %s: %w", c.Name, rest, err)
				}
				c.Subcharts = append(c.Subcharts, sc)
			}
		default:
			c.Files[name] = data
		}
	}
	for _, files := range subs {
		sc, err := fromFiles(files)
		if err != nil {
			return nil, fmt.Errorf("%s subchart: %w", c.Name, err)
		}
		c.Subcharts = append(c.Subcharts, sc)
	}
	// Map order is random; rendering and results must not be.
	sort.Slice(c.Templates, func(i, j int) bool { return c.Templates[i].Name < c.Templates[j].Name })
	sort.Slice(c.Subcharts, func(i, j int) bool { return c.Subcharts[i].Name < c.Subcharts[j].Name })
	return c, nil
}

func parseValues(data []byte) (map[string]any, error) {
	var vals map[string]any
	if err := yaml.Unmarshal(data, &vals); err != nil {
		return nil, err
	}
	if vals == nil {
		vals = map[string]any{}
	}
	return vals, nil
}
