package catalog

import (
	"archive/tar"
	"bytes"
	"io"
	"path"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// FuzzParseFile feeds arbitrary files to the FBC parser. Whatever it
// accepts must write out and read back to the same files, and filtering or
// listing it must return, with an error at worst.
func FuzzParseFile(f *testing.F) {
	for _, data := range fixtureFiles(f) {
		f.Add([]byte(data))
	}
	f.Add([]byte(`{"schema":"olm.channel","package":"p","name":"c","entries":[{"name":"a","replaces":"a"},{"name":"b","skips":["b","a"]}]}`))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("{\"schema\":\"x\"}\n{\"schema\":\"x\",\"k\":1e999}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Catalog{}
		if err := c.ParseFile("fuzz.json", data); err != nil {
			return
		}
		first, err := c.Files()
		if err != nil {
			return // a package name that cannot be a folder
		}
		back := &Catalog{}
		for _, file := range first {
			if err := back.ParseFile(file.Path, file.Data); err != nil {
				t.Fatalf("written file %s does not parse: %v\n%s", file.Path, err, file.Data)
			}
		}
		second, err := back.Files()
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != len(second) {
			t.Fatalf("%d files written, %d after a round trip", len(first), len(second))
		}
		for i := range first {
			if first[i].Path != second[i].Path || string(first[i].Data) != string(second[i].Data) {
				t.Fatalf("round trip changed %s:\n%s\n---\n%s", first[i].Path, first[i].Data, second[i].Data)
			}
		}
		if res, err := c.Filter(Filter{}); err == nil {
			if _, err := res.Catalog.Files(); err != nil {
				t.Fatalf("a filtered catalog does not write: %v", err)
			}
		}
		_, _ = c.List("")
	})
}

// rawLayer is an uncompressed tar layer held in memory.
type rawLayer []byte

func (l rawLayer) Digest() (v1.Hash, error)            { return v1.Hash{}, nil }
func (l rawLayer) DiffID() (v1.Hash, error)            { return v1.Hash{}, nil }
func (l rawLayer) Size() (int64, error)                { return int64(len(l)), nil }
func (l rawLayer) MediaType() (types.MediaType, error) { return types.OCIUncompressedLayer, nil }
func (l rawLayer) Compressed() (io.ReadCloser, error)  { return io.NopCloser(bytes.NewReader(l)), nil }
func (l rawLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l)), nil
}

func tarOf(f *testing.F, entries ...*tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if err := tw.WriteHeader(h); err != nil {
			f.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(bytes.Repeat([]byte(" "), int(h.Size))); err != nil {
				f.Fatal(err)
			}
		}
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzReadLayer feeds arbitrary layer tars to the catalog reader, as a
// catalog image's layers would reach it, with small limits. Nothing may
// panic, a file outside the catalog folder is never read, and no more
// than the limits is ever taken in.
func FuzzReadLayer(f *testing.F) {
	const fileMax, totalMax = 4 << 10, 16 << 10
	reg := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size}
	}
	f.Add(tarOf(f, reg("configs/a/catalog.json", 100)))
	f.Add(tarOf(f, reg("configs/a/catalog.json", fileMax+1)))                                                                                                                                                 // one file too big
	f.Add(tarOf(f, reg("configs/a/1.json", 3000), reg("configs/a/2.json", 3000), reg("configs/a/3.json", 3000), reg("configs/a/4.json", 3000), reg("configs/a/5.json", 3000), reg("configs/a/6.json", 3000))) // too much in all
	f.Add(tarOf(f, reg("../../configs/a/catalog.json", 10), reg("configs/../../etc/passwd", 10)))
	f.Add(tarOf(f, &tar.Header{Name: "configs/a/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}))
	f.Add(tarOf(f, reg("configs/.wh..wh..opq", 0), reg("configs/.wh.a", 0), reg("configs/a/.indexignore", 5)))
	f.Add(tarOf(f, reg("configs", 10)))
	// A header that claims a GiB, with the data cut off.
	var hdr bytes.Buffer
	if err := tar.NewWriter(&hdr).WriteHeader(reg("configs/a/catalog.json", 1<<30)); err != nil {
		f.Fatal(err)
	}
	f.Add(hdr.Bytes())
	for _, data := range fixtureFiles(f) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(reg("configs/x/catalog.json", int64(len(data))))
		tw.Write([]byte(data))
		tw.Close()
		f.Add(buf.Bytes())
		break
	}
	f.Fuzz(func(t *testing.T, layer []byte) {
		l := loader{limits: limits{file: fileMax, total: totalMax}}
		var w whiteouts
		var read int64
		err := w.layer(rawLayer(layer), "configs", func(rel string, size int64, r io.Reader) error {
			if rel == "" || strings.HasPrefix(rel, "/") || strings.HasPrefix(rel, "../") || strings.Contains(rel, "/../") || rel == ".." {
				t.Fatalf("the reader handed out %q, outside the catalog folder", rel)
			}
			if err := l.file(path.Join("configs", rel), size, r); err != nil {
				return err
			}
			read += size
			return nil
		})
		if read > totalMax || l.limits.used > totalMax {
			t.Fatalf("read %d bytes, more than the %d limit", read, totalMax)
		}
		if err != nil {
			l.wait()
			return
		}
		_, _ = l.catalog()
	})
}
