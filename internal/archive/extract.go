package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
)

var partSuffix = regexp.MustCompile(`\.part[0-9]{4,}$`)

// Extract unpacks the complete archive in dir into dest as plain files:
// blobs/<algo>/<hex> and extra/<name>, with split blobs joined again. Any
// entry that could land outside dest is refused, and every file is opened
// through an os.Root on dest, so no symbolic link can lead out either.
func Extract(ctx context.Context, dir, dest string) error {
	a, err := Open(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("extract archive: %w", err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("extract archive: %w", err)
	}
	defer root.Close()
	type partOf struct {
		base     string
		index, n int
	}
	parts := map[Part]partOf{}
	add := func(base string, ps []Part) {
		if len(ps) > 1 {
			for i, p := range ps {
				parts[Part{Chunk: p.Chunk, Offset: p.Offset}] = partOf{base, i, len(ps)}
			}
		}
	}
	for _, b := range a.meta.Blobs {
		add(blobBase(b.Digest), b.Parts)
	}
	for _, f := range a.meta.Files {
		add(fileBase(f.Name), f.Parts)
	}
	for _, c := range a.meta.Chunks {
		err := extractChunk(ctx, filepath.Join(dir, c.Name), func(hdr *tar.Header, off int64, r io.Reader) error {
			name, flag := hdr.Name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC
			if po, ok := parts[Part{Chunk: c.Name, Offset: off}]; ok {
				name = po.base + ".partial"
				if po.index > 0 {
					flag = os.O_WRONLY | os.O_APPEND
				}
				if err := writeRooted(root, name, flag, r); err != nil {
					return err
				}
				if po.index == po.n-1 {
					return root.Rename(name, po.base)
				}
				return nil
			}
			if partSuffix.MatchString(name) {
				return nil // a part of a write that was rolled back
			}
			return writeRooted(root, name, flag, r)
		})
		if err != nil {
			return fmt.Errorf("extract chunk %s: %w", c.Name, err)
		}
	}
	return nil
}

func extractChunk(ctx context.Context, file string, fn func(hdr *tar.Header, off int64, r io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	cr := &countingReader{r: &ctxReader{ctx: ctx, r: f}}
	tr := tar.NewReader(cr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := checkHeader(hdr); err != nil {
			return err
		}
		if err := fn(hdr, cr.n, tr); err != nil {
			return err
		}
	}
}

func writeRooted(root *os.Root, name string, flag int, r io.Reader) error {
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := root.OpenFile(name, flag, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
