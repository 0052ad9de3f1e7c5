package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// LoadFS reads the FBC rooted at fsys: every file at any depth, except those
// an .indexignore file excludes, as opm serve does.
func LoadFS(ctx context.Context, fsys fs.FS) (*Catalog, error) {
	return loadFS(ctx, fsys, limits{})
}

func loadFS(ctx context.Context, fsys fs.FS, lim limits) (*Catalog, error) {
	l := loader{limits: lim}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file; catalog folders hold only files and folders", p)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return l.file(p, info.Size(), f)
	})
	if err != nil {
		l.wait()
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	c, err := l.catalog()
	if err != nil {
		return nil, err
	}
	if len(c.Packages) == 0 {
		return nil, errors.New("no olm.package document in the catalog folder; check that it is the folder holding the file-based catalog")
	}
	return c, nil
}

// loader gathers files in any order (layers are read top-down) and decides
// at the end, once every .indexignore is known, which ones count. Files are
// parsed on up to GOMAXPROCS goroutines while the next one is read; that
// bounds the raw files held at once.
type loader struct {
	limits  limits
	mu      sync.Mutex
	files   []loadedFile
	ignores map[string][]string // folder -> patterns of its .indexignore
	parsers errgroup.Group
	started bool
	spool   *spool // shared by every file's bundles
}

type loadedFile struct {
	path string
	cat  *Catalog
	err  error
}

const indexIgnore = ".indexignore"

// What a catalog may hold. A gzip layer shrinks a run of one byte about a
// thousand times, so a catalog image of a few hundred KiB can unpack to
// gigabytes; the largest real catalog files are tens of MiB.
const (
	MaxFileBytes  = 256 << 20
	MaxTotalBytes = 1 << 30
)

// limits counts the bytes of a catalog's files against MaxFileBytes and
// MaxTotalBytes (or smaller bounds, for tests).
type limits struct {
	file, total int64 // 0: the defaults
	used        int64
}

func (m *limits) take(p string, size int64) error {
	file, total := m.file, m.total
	if file == 0 {
		file = MaxFileBytes
	}
	if total == 0 {
		total = MaxTotalBytes
	}
	if size < 0 || size > file {
		return fmt.Errorf("catalog file %s is %d bytes, more than the %s one catalog file may hold; the catalog image is damaged or not a catalog, check where it comes from", p, size, mib(file))
	}
	if size > total-m.used {
		return fmt.Errorf("catalog files add up to more than %s at %s; the catalog image is damaged or not a catalog, check where it comes from", mib(total), p)
	}
	m.used += size
	return nil
}

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// file takes the size bytes of r, checked against the limits before any
// is read, into one buffer of exactly that size.
func (l *loader) file(p string, size int64, r io.Reader) error {
	if err := l.limits.take(p, size); err != nil {
		return err
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if n, _ := r.Read(make([]byte, 1)); n > 0 {
		return fmt.Errorf("read %s: the file grew past its %d bytes while it was read", p, size)
	}
	if path.Base(p) == indexIgnore {
		if l.ignores == nil {
			l.ignores = map[string][]string{}
		}
		l.ignores[path.Dir(p)] = ignorePatterns(string(data))
		return nil
	}
	if !l.started {
		l.parsers.SetLimit(runtime.GOMAXPROCS(0))
		l.spool = newSpool()
		l.started = true
	}
	l.parsers.Go(func() error {
		c := &Catalog{spool: l.spool}
		// A parse error is kept, not returned: an .indexignore read later
		// may exclude the file (a README next to the catalog, say).
		err := c.ParseFile(p, data)
		l.mu.Lock()
		l.files = append(l.files, loadedFile{path: p, cat: c, err: err})
		l.mu.Unlock()
		return nil
	})
	return nil
}

// wait lets the parsers finish; call it before returning on any path.
func (l *loader) wait() { _ = l.parsers.Wait() }

func (l *loader) catalog() (*Catalog, error) {
	l.wait()
	sort.Slice(l.files, func(i, j int) bool { return l.files[i].path < l.files[j].path })
	out := &Catalog{}
	for _, f := range l.files {
		if l.ignored(f.path) {
			continue
		}
		if f.err != nil {
			return nil, f.err
		}
		out.Packages = append(out.Packages, f.cat.Packages...)
		out.Channels = append(out.Channels, f.cat.Channels...)
		out.Bundles = append(out.Bundles, f.cat.Bundles...)
		out.Deprecations = append(out.Deprecations, f.cat.Deprecations...)
		out.Others = append(out.Others, f.cat.Others...)
	}
	return out, nil
}

// ignorePatterns reads an .indexignore: one pattern a line, # comments.
func ignorePatterns(s string) []string {
	var pats []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pats = append(pats, line)
	}
	return pats
}

// ignored applies the .indexignore files of p's folder and its parents. The
// patterns are the common subset of gitignore: a pattern with no slash
// matches a file or folder name at any depth, one with a slash is anchored
// at the .indexignore's folder, a trailing slash matches folders only, and
// path.Match wildcards apply within one path element. Negation ("!") is not
// supported; such lines are skipped.
func (l *loader) ignored(p string) bool {
	for dir, pats := range l.ignores {
		rel := p
		if dir != "." {
			var ok bool
			if rel, ok = strings.CutPrefix(p, dir+"/"); !ok {
				continue
			}
		}
		elems := strings.Split(rel, "/")
		for _, pat := range pats {
			if matchIgnore(pat, elems) {
				return true
			}
		}
	}
	return false
}

func matchIgnore(pat string, elems []string) bool {
	if strings.HasPrefix(pat, "!") {
		return false
	}
	dirOnly := strings.HasSuffix(pat, "/")
	pat = strings.TrimSuffix(pat, "/")
	// Folders are the leading elements; the last one is the file.
	n := len(elems)
	if dirOnly {
		n--
	}
	if !strings.Contains(pat, "/") {
		for _, e := range elems[:n] {
			if ok, _ := path.Match(pat, e); ok {
				return true
			}
		}
		return false
	}
	pat = strings.TrimPrefix(pat, "/")
	for k := 1; k <= n; k++ {
		if ok, _ := path.Match(pat, strings.Join(elems[:k], "/")); ok {
			return true
		}
	}
	return false
}
