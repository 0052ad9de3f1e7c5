// Package ocmirror reads archives written by oc-mirror v2's mirror to
// disk, so `ferry mirror --from` can push them: a site that moves from
// oc-mirror to Ferry does not export everything again.
//
// The format, from oc-mirror v2's internal/pkg/archive: numbered chunks
// mirror_000001.tar, mirror_000002.tar, … holding the local cache
// registry's storage in CNCF distribution's filesystem layout
// (docker/registry/v2/blobs/<alg>/<xx>/<hex>/data, and
// docker/registry/v2/repositories/<name>/_manifests/{tags/<tag>/current,
// revisions/<alg>/<hex>}/link), oc-mirror's working-dir/, and the image
// set configuration (isc_*.yaml). A differential archive carries only the
// blobs earlier archives did not.
package ocmirror

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/oci"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

const (
	blobsPrefix = "docker/registry/v2/blobs/"
	reposPrefix = "docker/registry/v2/repositories/"
	// maxManifest bounds a manifest read into memory.
	maxManifest = 4 << 20
)

var chunkName = regexp.MustCompile(`^mirror_(\d{6})\.tar$`)

// IsArchive reports whether dir holds oc-mirror v2 chunks.
func IsArchive(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "mirror_*.tar"))
	return len(m) > 0
}

// Archive is an opened oc-mirror v2 archive.
type Archive struct {
	dir    string
	chunks []string
	blobs  map[digest.Digest]entry
	// Images are the tagged and untagged manifests of the cache's
	// repositories.
	Images []Image
	// WorkingDir counts the working-dir entries (oc-mirror always writes some).
	WorkingDir int
}

// Image is one manifest of a cache repository: by tag, or by digest
// alone when no tag names it.
type Image struct {
	Repo   string
	Tag    string
	Digest digest.Digest
}

type entry struct {
	chunk  string
	offset int64
	size   int64
}

// Open indexes every chunk of the archive in dir. A missing chunk, a
// chunk that is not a tar, or links naming digests that do not parse
// are errors naming the chunk.
func Open(dir string) (*Archive, error) {
	paths, _ := filepath.Glob(filepath.Join(dir, "mirror_*.tar"))
	a := &Archive{dir: dir, blobs: map[digest.Digest]entry{}}
	nums := map[int]string{}
	for _, p := range paths {
		m := chunkName.FindStringSubmatch(filepath.Base(p))
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		nums[n] = p
	}
	if len(nums) == 0 {
		return nil, fmt.Errorf("%s holds no oc-mirror archive chunks (mirror_000001.tar, …)", dir)
	}
	for i := 1; i <= len(nums); i++ {
		p, ok := nums[i]
		if !ok {
			return nil, fmt.Errorf("oc-mirror archive %s: chunk mirror_%06d.tar is missing (there are %d chunks); copy it over, nothing was pushed", dir, i, len(nums))
		}
		a.chunks = append(a.chunks, p)
	}
	tags := map[string]map[string]digest.Digest{} // repo -> tag -> digest
	revs := map[string][]digest.Digest{}
	for _, p := range a.chunks {
		if err := a.index(p, tags, revs); err != nil {
			return nil, fmt.Errorf("oc-mirror archive chunk %s is damaged: %w; nothing was pushed", p, err)
		}
	}
	var repos []string
	for r := range revs {
		repos = append(repos, r)
	}
	for r := range tags {
		if _, ok := revs[r]; !ok {
			repos = append(repos, r)
		}
	}
	sort.Strings(repos)
	for _, r := range repos {
		tagged := map[digest.Digest]bool{}
		var names []string
		for t := range tags[r] {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, t := range names {
			a.Images = append(a.Images, Image{Repo: r, Tag: t, Digest: tags[r][t]})
			tagged[tags[r][t]] = true
		}
		sort.Slice(revs[r], func(i, j int) bool { return revs[r][i] < revs[r][j] })
		for _, d := range revs[r] {
			if !tagged[d] {
				a.Images = append(a.Images, Image{Repo: r, Digest: d})
			}
		}
	}
	if len(a.Images) == 0 {
		return nil, fmt.Errorf("oc-mirror archive %s holds no images (no %s…/_manifests)", dir, reposPrefix)
	}
	return a, nil
}

func (a *Archive) index(path string, tags map[string]map[string]digest.Digest, revs map[string][]digest.Digest) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// archive/tar reads no further than it must, so the file's offset is
	// the tar's position: where an entry's data starts, after Next.
	pos := func() (int64, error) { return f.Seek(0, io.SeekCurrent) }
	tr := tar.NewReader(f)
	chunk := filepath.Base(path)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			end, err := pos()
			if err != nil {
				return err
			}
			return endsWithTrailer(f, end)
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch {
		case strings.HasPrefix(name, "working-dir/"):
			a.WorkingDir++
		case strings.HasPrefix(name, blobsPrefix) && strings.HasSuffix(name, "/data") && h.Typeflag == tar.TypeReg:
			parts := strings.Split(strings.TrimPrefix(name, blobsPrefix), "/")
			if len(parts) != 4 {
				return fmt.Errorf("%s: unexpected blob path", name)
			}
			d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
			if err := d.Validate(); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			off, err := pos()
			if err != nil {
				return err
			}
			a.blobs[d] = entry{chunk: path, offset: off, size: h.Size}
		case strings.HasPrefix(name, reposPrefix) && strings.HasSuffix(name, "/link") && strings.Contains(name, "/_manifests/"):
			repo, rest, _ := strings.Cut(strings.TrimPrefix(name, reposPrefix), "/_manifests/")
			data, err := io.ReadAll(io.LimitReader(tr, 512))
			if err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			d, err := digest.Parse(strings.TrimSpace(string(data)))
			if err != nil {
				return fmt.Errorf("%s in %s: link holds %q, not a digest", name, chunk, data)
			}
			switch {
			case strings.HasPrefix(rest, "tags/") && strings.HasSuffix(rest, "/current/link"):
				tag := strings.TrimSuffix(strings.TrimPrefix(rest, "tags/"), "/current/link")
				if tags[repo] == nil {
					tags[repo] = map[string]digest.Digest{}
				}
				tags[repo][tag] = d
			case strings.HasPrefix(rest, "revisions/"):
				revs[repo] = append(revs[repo], d)
			}
		}
	}
}

// endsWithTrailer checks that the tar ended with its two zero blocks:
// archive/tar reports a file cut at a header boundary as a clean end.
func endsWithTrailer(f *os.File, end int64) error {
	if end < 1024 {
		return errors.New("the tar has no end-of-archive blocks; it was cut short")
	}
	buf := make([]byte, 1024)
	if _, err := f.ReadAt(buf, end-1024); err != nil {
		return err
	}
	for _, b := range buf {
		if b != 0 {
			return errors.New("the tar has no end-of-archive blocks; it was cut short")
		}
	}
	return nil
}

// Verify reads every blob of the archive and checks it against its
// digest, so nothing is pushed from a damaged archive.
func (a *Archive) Verify(ctx context.Context) error {
	ds := make([]digest.Digest, 0, len(a.blobs))
	for d := range a.blobs {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool {
		return a.blobs[ds[i]].chunk < a.blobs[ds[j]].chunk || a.blobs[ds[i]].chunk == a.blobs[ds[j]].chunk && a.blobs[ds[i]].offset < a.blobs[ds[j]].offset
	})
	for _, d := range ds {
		if err := ctx.Err(); err != nil {
			return err
		}
		rc, _, err := a.open(d)
		if err != nil {
			return err
		}
		v := d.Verifier()
		_, err = io.Copy(v, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("blob %s in %s: %w", d, filepath.Base(a.blobs[d].chunk), err)
		}
		if !v.Verified() {
			return fmt.Errorf("blob %s in %s does not match its digest: the chunk is damaged; copy it again, nothing was pushed", d, filepath.Base(a.blobs[d].chunk))
		}
	}
	return nil
}

type sectionFile struct {
	*io.SectionReader
	f *os.File
}

func (s sectionFile) Close() error { return s.f.Close() }

func (a *Archive) open(d digest.Digest) (io.ReadCloser, int64, error) {
	e, ok := a.blobs[d]
	if !ok {
		return nil, 0, fmt.Errorf("blob %s is not in the oc-mirror archive %s: %w", d, a.dir, errNotInArchive)
	}
	f, err := os.Open(e.chunk)
	if err != nil {
		return nil, 0, err
	}
	return sectionFile{io.NewSectionReader(f, e.offset, e.size), f}, e.size, nil
}

var errNotInArchive = errors.New("not in the archive")

// Has reports whether the archive carries blob d (a differential archive
// leaves out what earlier archives carried).
func (a *Archive) Has(d digest.Digest) bool {
	_, ok := a.blobs[d]
	return ok
}

// Blob implements transfer.Source.
func (a *Archive) Blob(_ context.Context, _ string, d digest.Digest) (io.ReadCloser, int64, error) {
	return a.open(d)
}

// Manifest implements transfer.Source: the cache stores manifests as blobs.
func (a *Archive) Manifest(_ context.Context, repo string, d digest.Digest) (transfer.Manifest, error) {
	rc, size, err := a.open(d)
	if err != nil {
		return transfer.Manifest{}, fmt.Errorf("manifest %s@%s: %w", repo, d, err)
	}
	defer rc.Close()
	if size > maxManifest {
		return transfer.Manifest{}, fmt.Errorf("manifest %s@%s is larger than %d bytes", repo, d, maxManifest)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		return transfer.Manifest{}, err
	}
	if digest.FromBytes(data) != d && d.Algorithm().FromBytes(data) != d {
		return transfer.Manifest{}, fmt.Errorf("manifest %s@%s does not match its digest", repo, d)
	}
	var doc struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return transfer.Manifest{}, fmt.Errorf("manifest %s@%s is not JSON: %v", repo, d, err)
	}
	mt := doc.MediaType
	if mt == "" {
		mt = oci.MediaTypeImageManifest
		if doc.Manifests != nil {
			mt = oci.MediaTypeImageIndex
		}
	}
	return transfer.Manifest{MediaType: mt, Digest: d, Data: data}, nil
}
