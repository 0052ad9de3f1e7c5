package catalog

import (
	"bufio"
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

// ReadOption changes what LoadFS and ReadImage keep.
type ReadOption func(*loader)

// OnlyPackages keeps the documents of the named packages and drops the
// others' channels, bundles and deprecations as each file is parsed, so a
// filter of a few packages takes memory for those packages only. Every
// olm.package document is kept: a filter naming a package the catalog
// lacks lists the ones it has. Every document is still parsed, so a
// damaged catalog fails as it would when read whole.
func OnlyPackages(names ...string) ReadOption {
	return func(l *loader) {
		l.keep = map[string]bool{}
		for _, n := range names {
			l.keep[n] = true
		}
	}
}

// LoadFS reads the FBC rooted at fsys: every file at any depth, except those
// an .indexignore file excludes, as opm serve does.
func LoadFS(ctx context.Context, fsys fs.FS, opts ...ReadOption) (*Catalog, error) {
	return loadFS(ctx, fsys, limits{}, opts...)
}

func loadFS(ctx context.Context, fsys fs.FS, lim limits, opts ...ReadOption) (*Catalog, error) {
	l := newLoader(lim, opts)
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
	files   []*loadedFile
	ignores map[string][]string // folder -> patterns of its .indexignore
	parsers errgroup.Group
	started bool
	spool   *spool          // shared by every file's bundles
	keep    map[string]bool // packages whose documents are kept; nil: all
	names   *interner       // shared by every file's channels
}

func newLoader(lim limits, opts []ReadOption) *loader {
	l := &loader{limits: lim}
	for _, o := range opts {
		o(l)
	}
	return l
}

// loadedFile is one file's documents, in order, each parsed on its own.
type loadedFile struct {
	path  string
	mu    sync.Mutex
	parts []*part
}

// part is one document (one file, for YAML), or the syntax error that
// ended the file.
type part struct {
	cat *Catalog
	err error
}

// add appends an empty part for a parser to fill.
func (f *loadedFile) add() *part {
	p := &part{}
	f.mu.Lock()
	f.parts = append(f.parts, p)
	f.mu.Unlock()
	return p
}

const indexIgnore = ".indexignore"

// What a catalog may hold. A gzip layer shrinks a run of one byte about a
// thousand times, so a catalog image of a few hundred KiB can unpack to
// gigabytes. JSON is read a document at a time, so a JSON file may be as
// large as the whole catalog (opm render of an index writes one file) while
// one document is bounded; the largest real bundle documents are a few
// MiB. A YAML file, and an .indexignore, are read whole.
const (
	MaxDocumentBytes = 32 << 20
	MaxFileBytes     = 256 << 20
	MaxTotalBytes    = 1 << 30
)

// limits counts the bytes of a catalog's files against MaxTotalBytes, and
// of each file read whole against MaxFileBytes (or smaller bounds, for
// tests).
type limits struct {
	file, total, doc int64 // 0: the defaults
	used             int64
}

// take counts a file of size bytes against the catalog's total.
func (m *limits) take(p string, size int64) error {
	total := m.total
	if total == 0 {
		total = MaxTotalBytes
	}
	if size < 0 || size > total-m.used {
		return fmt.Errorf("catalog files add up to more than %s at %s; the catalog image is damaged or not a catalog, check where it comes from", mib(total), p)
	}
	m.used += size
	return nil
}

// whole checks a file that is read into memory at once.
func (m *limits) whole(p string, size int64) error {
	file := m.file
	if file == 0 {
		file = MaxFileBytes
	}
	if size > file {
		return fmt.Errorf("catalog file %s is %d bytes, more than the %s a YAML catalog file may hold; write large catalogs as JSON, or check where the catalog image comes from", p, size, mib(file))
	}
	return nil
}

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// file reads the size bytes of r, checked against the total before any is
// read. A JSON file is parsed as it streams in, a document at a time, each
// handed to a parser goroutine: memory holds the documents in flight and
// what is kept, not the file. A YAML file (rare, and small) is read whole.
func (l *loader) file(p string, size int64, r io.Reader) error {
	if err := l.limits.take(p, size); err != nil {
		return err
	}
	body := &exactReader{r: r, left: size, size: size, path: p}
	if path.Base(p) == indexIgnore {
		if err := l.limits.whole(p, size); err != nil {
			return err
		}
		data, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		if l.ignores == nil {
			l.ignores = map[string][]string{}
		}
		l.ignores[path.Dir(p)] = ignorePatterns(string(data))
		return nil
	}
	if !l.started {
		l.parsers.SetLimit(runtime.GOMAXPROCS(0))
		l.spool = newSpool()
		l.names = &interner{}
		l.started = true
	}
	f := &loadedFile{path: p}
	l.mu.Lock()
	l.files = append(l.files, f)
	l.mu.Unlock()

	br := bufio.NewReader(body)
	isJSON, err := startsJSON(br)
	if err != nil {
		return err
	}
	if !isJSON {
		if err := l.limits.whole(p, size); err != nil {
			return err
		}
		data, err := io.ReadAll(br)
		if err != nil {
			return err
		}
		part := f.add()
		l.parsers.Go(func() error {
			part.cat = l.newCatalog()
			part.err = part.cat.ParseFile(p, data)
			return nil
		})
		return nil
	}
	err = scanJSON(p, br, l.limits.doc, func(raw []byte, line int) error {
		part := f.add()
		l.parsers.Go(func() error {
			part.cat = l.newCatalog()
			part.err = part.cat.addDocument(p, line, raw)
			return nil
		})
		return nil
	})
	if body.err != nil {
		return body.err
	}
	// A parse error is kept, not returned: an .indexignore read later may
	// exclude the file (a README next to the catalog, say).
	if err != nil {
		f.add().err = err
	}
	return nil
}

func (l *loader) newCatalog() *Catalog {
	return &Catalog{spool: l.spool, keep: l.keep, names: l.names}
}

// startsJSON skips a byte order mark and says whether the first byte that
// is not white space is '{', which makes the file JSON for opm; anything
// else is YAML.
func startsJSON(br *bufio.Reader) (bool, error) {
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		br.Discard(3)
	}
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			if errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull) {
				return false, nil // empty, or white space past the buffer: YAML reads it
			}
			return false, err
		}
		if isJSONSpace(b[n-1]) {
			continue
		}
		return b[n-1] == '{', nil
	}
}

// exactReader reads exactly left bytes of a file from r, which says it
// holds that many: fewer, or more, is an error naming the file.
type exactReader struct {
	r    io.Reader
	left int64
	size int64
	path string
	err  error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.left == 0 {
		if n, _ := e.r.Read(make([]byte, 1)); n > 0 {
			e.err = fmt.Errorf("read %s: the file grew past its %d bytes while it was read", e.path, e.size)
			return 0, e.err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && !errors.Is(err, io.EOF) {
		e.err = fmt.Errorf("read %s: %w", e.path, err)
		return n, e.err
	}
	if e.left == 0 {
		err = nil // the next Read checks that nothing follows
	}
	return n, err
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
		for _, p := range f.parts {
			if p.err != nil {
				return nil, p.err
			}
			out.Packages = append(out.Packages, p.cat.Packages...)
			out.Channels = append(out.Channels, p.cat.Channels...)
			out.Bundles = append(out.Bundles, p.cat.Bundles...)
			out.Deprecations = append(out.Deprecations, p.cat.Deprecations...)
			out.Others = append(out.Others, p.cat.Others...)
		}
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
