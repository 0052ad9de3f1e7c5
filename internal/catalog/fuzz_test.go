package catalog

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path"
	"slices"
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

// parseJSONEncodingJSON is how documents were split before jsontext: with
// encoding/json's Decoder and Unmarshal, the reference the fast path must
// agree with.
func parseJSONEncodingJSON(c *Catalog, name string, data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			fields = nil
		}
		if err := c.addFields(fields, raw, name); err != nil {
			return err
		}
	}
}

// FuzzParseJSONAgreesWithEncodingJSON checks that the jsontext reader
// accepts exactly what encoding/json accepts and reads it the same:
// the same documents written back byte for byte, the same properties.
func FuzzParseJSONAgreesWithEncodingJSON(f *testing.F) {
	for _, data := range fixtureFiles(f) {
		if strings.HasPrefix(strings.TrimSpace(data), "{") {
			f.Add([]byte(data))
		}
	}
	f.Add([]byte(`{"schema":"olm.bundle","package":"p","name":"b","properties":[{"type":"olm.package","value":{"packageName":"p","version":"1.0.0"}},{"TYPE":"x","Value":1,"other":[1,{"a":null}]}]}`))
	f.Add([]byte(`{"schema":"olm.bundle","package":"p","name":"b","properties":null}`))
	f.Add([]byte(`{"schema":"olm.bundle","package":"p","name":"b","properties":[{"type":null,"value":null}]}`))
	f.Add([]byte(`{"schema":"olm.bundle","package":"p","name":"b","properties":[{"type":"a","type":"b"}]}`))
	f.Add([]byte("{\"schema\":\"x\",\"k\":\"\xff\xfe\",\"\xffk\":1}{\"schema\":\"x\"} {\"schema\":\"x\",\"schema\":\"y\"}"))
	f.Add([]byte(`{"schema":"x","k":1e999}null`))
	f.Add([]byte(`{"\u0073chema":"olm.package","name":"p"} [1] "s" 1 true`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) {
			return // YAML: one reader only
		}
		fast, ref := &Catalog{}, &Catalog{}
		errFast := fast.parseJSON("fuzz.json", data)
		errRef := parseJSONEncodingJSON(ref, "fuzz.json", data)
		if (errFast == nil) != (errRef == nil) {
			t.Fatalf("jsontext says %v, encoding/json says %v", errFast, errRef)
		}
		if errFast != nil {
			return
		}
		a, errA := fast.Files()
		b, errB := ref.Files()
		if (errA == nil) != (errB == nil) {
			t.Fatalf("writing: %v, and from encoding/json: %v", errA, errB)
		}
		if !slices.EqualFunc(a, b, func(x, y File) bool { return x.Path == y.Path && string(x.Data) == string(y.Data) }) {
			t.Fatalf("written differently:\n%v\n---\n%v", a, b)
		}
		for i, bf := range fast.Bundles {
			raw, _ := bf.allFields()
			for k, v := range raw {
				if !strings.EqualFold(k, "properties") {
					continue
				}
				p1, err1 := parseProperties(v)
				var p2 []Property
				err2 := json.Unmarshal(v, &p2)
				if (err1 == nil) != (err2 == nil) {
					t.Fatalf("bundle %d properties: %v, and from encoding/json: %v", i, err1, err2)
				}
				if len(p1) != len(p2) {
					t.Fatalf("bundle %d: %d properties, %d from encoding/json", i, len(p1), len(p2))
				}
				for j := range p1 {
					if p1[j].Type != p2[j].Type || string(p1[j].Value) != string(p2[j].Value) {
						t.Fatalf("bundle %d property %d: %q %s, encoding/json: %q %s", i, j, p1[j].Type, p1[j].Value, p2[j].Type, p2[j].Value)
					}
				}
			}
		}
	})
}
