package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func TestRoundTripSpanning(t *testing.T) {
	dir := t.TempDir()
	const max = 256 << 10
	blobs := makeBlobs(1, 150, func(r *rand.Rand) int {
		if r.IntN(10) == 0 {
			return 300<<10 + r.IntN(700<<10) // larger than a chunk: spans
		}
		return r.IntN(40 << 10)
	})
	blobs = append(blobs, blob{digest.FromBytes(nil), nil}) // an empty blob is legal
	w := create(t, dir, max)
	putAll(t, w, blobs)
	putAll(t, w, blobs[:10]) // again: skipped, not duplicated
	if err := w.PutFile(context.Background(), "release-signatures/sha256=abc", []byte("sig")); err != nil {
		t.Fatal(err)
	}
	if err := w.PutFile(context.Background(), "graph.json", bytes.Repeat([]byte("g"), 5000)); err != nil {
		t.Fatal(err)
	}
	cfg := []byte(`{"kind":"ImageSetConfiguration"}`)
	if err := w.Commit(context.Background(), Metadata{Tool: "ferry test", Config: cfg, Base: &BaseRef{Kind: "archive", ID: "prev"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, journalFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("journal still present after Commit: %v", err)
	}

	a := open(t, dir)
	m := a.Metadata()
	var compact bytes.Buffer
	json.Compact(&compact, m.Config)
	if m.FormatVersion != FormatVersion || m.Created.IsZero() || m.Tool != "ferry test" || compact.String() != string(cfg) || m.Base.ID != "prev" {
		t.Errorf("metadata: version %d, created %v, tool %q, config %s, base %+v", m.FormatVersion, m.Created, m.Tool, m.Config, m.Base)
	}
	if len(m.Blobs) != len(blobs) {
		t.Errorf("%d blobs recorded, want %d", len(m.Blobs), len(blobs))
	}
	spanning := 0
	for _, b := range m.Blobs {
		if len(b.Parts) > 1 {
			spanning++
		}
	}
	if spanning < 5 {
		t.Errorf("only %d blobs span chunks; the test means to exercise spanning", spanning)
	}
	if len(m.Chunks) < 10 {
		t.Errorf("%d chunks, want many at %d bytes each", len(m.Chunks), max)
	}
	for _, c := range m.Chunks {
		info, err := os.Stat(filepath.Join(dir, c.Name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > max || info.Size() != c.Size {
			t.Errorf("chunk %s is %d bytes (recorded %d), limit %d", c.Name, info.Size(), c.Size, max)
		}
	}
	if err := a.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	checkBlobs(t, a, blobs)
	if got, err := a.ReadFile("graph.json"); err != nil || len(got) != 5000 {
		t.Errorf("ReadFile(graph.json) = %d bytes, %v", len(got), err)
	}
	if got, err := a.ReadFile("release-signatures/sha256=abc"); err != nil || string(got) != "sig" {
		t.Errorf("ReadFile(signature) = %q, %v", got, err)
	}
	if _, err := a.ReadFile("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file = %v, want ErrNotExist", err)
	}
	if _, _, err := a.OpenBlob(digest.FromString("absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenBlob of a missing blob = %v, want ErrNotExist", err)
	}

	// Every chunk is a plain tar file that tar(1) lists.
	if tarBin, err := exec.LookPath("tar"); err == nil {
		out, err := exec.Command(tarBin, "-tf", filepath.Join(dir, m.Chunks[1].Name)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "blobs/sha256/") {
			t.Errorf("tar -tf %s: %v\n%s", m.Chunks[1].Name, err, out)
		}
	}
}

func TestProgress(t *testing.T) {
	dir := t.TempDir()
	w := create(t, dir, 1<<20)
	putAll(t, w, makeBlobs(2, 20, func(r *rand.Rand) int { return 1 << 20 }))
	commit(t, w)
	a := open(t, dir)
	var last, total int64
	if err := a.Verify(context.Background(), func(done, tot int64) { last, total = done, tot }); err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, c := range a.Metadata().Chunks {
		want += c.Size
	}
	if last != want || total != want {
		t.Errorf("progress ended at %d of %d, want %d of %d", last, total, want, want)
	}
}

func TestUnlimitedChunk(t *testing.T) {
	dir := t.TempDir()
	blobs := makeBlobs(3, 30, func(r *rand.Rand) int { return r.IntN(200 << 10) })
	w := create(t, dir, 0)
	putAll(t, w, blobs)
	commit(t, w)
	a := open(t, dir)
	if n := len(a.Metadata().Chunks); n != 1 {
		t.Errorf("%d chunks with no size limit, want 1", n)
	}
	checkBlobs(t, a, blobs)
}

func TestChunkSizeTooSmall(t *testing.T) {
	_, err := Create(context.Background(), t.TempDir(), Options{MaxChunkBytes: 1000})
	if err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("Create with a 1000-byte chunk limit = %v", err)
	}
}

func TestEmptyArchive(t *testing.T) {
	dir := t.TempDir()
	commit(t, create(t, dir, 0))
	a := open(t, dir)
	if len(a.Metadata().Chunks) != 0 || a.Verify(context.Background(), nil) != nil {
		t.Errorf("empty archive: %+v", a.Metadata())
	}
}

// TestBadBlobRolledBack writes blobs with a wrong digest, a short and a
// long body, one of them spanning chunks, between good blobs; the result
// must be byte for byte the archive of the good blobs alone.
func TestBadBlobRolledBack(t *testing.T) {
	const max = 128 << 10
	good := makeBlobs(4, 40, func(r *rand.Rand) int { return r.IntN(60 << 10) })
	big := makeBlobs(5, 1, func(r *rand.Rand) int { return 400 << 10 })[0]

	clean := t.TempDir()
	w := create(t, clean, max)
	putAll(t, w, good)
	commit(t, w)

	dir := t.TempDir()
	w = create(t, dir, max)
	ctx := context.Background()
	putAll(t, w, good[:20])
	wrong := append(bytes.Clone(big.data[:len(big.data)-1]), big.data[len(big.data)-1]^1)
	err := w.PutBlob(ctx, big.d, int64(len(wrong)), bytes.NewReader(wrong))
	if err == nil || !strings.Contains(err.Error(), "digest mismatch") || !strings.Contains(err.Error(), big.d.String()) {
		t.Fatalf("PutBlob with flipped data = %v, want a digest mismatch naming %s", err, big.d)
	}
	if w.Has(big.d) {
		t.Error("Has reports a blob that failed")
	}
	putAll(t, w, good[20:30])
	b := good[30]
	if err := w.PutBlob(ctx, b.d, int64(len(b.data))+10, bytes.NewReader(b.data)); err == nil || !strings.Contains(err.Error(), "size mismatch") {
		t.Fatalf("PutBlob with a short body = %v", err)
	}
	if err := w.PutBlob(ctx, b.d, int64(len(b.data))-1, bytes.NewReader(b.data)); err == nil || !strings.Contains(err.Error(), "size mismatch") {
		t.Fatalf("PutBlob with a long body = %v", err)
	}
	if err := w.PutBlob(ctx, b.d, int64(len(b.data)), iotestErrReader(b.data[:100], errors.New("connection reset"))); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("PutBlob with a failing reader = %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.PutBlob(cctx, big.d, int64(len(big.data)), bytes.NewReader(big.data)); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutBlob with a cancelled context = %v", err)
	}
	putAll(t, w, good[30:])
	commit(t, w)
	sameChunks(t, dir, clean)
	a := open(t, dir)
	if err := a.Verify(ctx, nil); err != nil {
		t.Fatal(err)
	}
	checkBlobs(t, a, good)
}

func iotestErrReader(data []byte, err error) io.Reader {
	return io.MultiReader(bytes.NewReader(data), errReader{err})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestPutFile(t *testing.T) {
	dir := t.TempDir()
	w := create(t, dir, 0)
	ctx := context.Background()
	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../b", "a//b", `a\b`, "./a"} {
		if err := w.PutFile(ctx, bad, []byte("x")); err == nil || !strings.Contains(err.Error(), "not valid") {
			t.Errorf("PutFile(%q) = %v, want a name error", bad, err)
		}
	}
	if err := w.PutFile(ctx, "plan.json", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := w.PutFile(ctx, "plan.json", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	commit(t, w)
	a := open(t, dir)
	if got, err := a.ReadFile("plan.json"); err != nil || string(got) != "v2" {
		t.Errorf("ReadFile after a replace = %q, %v, want v2", got, err)
	}
	if n := len(a.Metadata().Files); n != 1 {
		t.Errorf("%d files recorded, want 1", n)
	}
}

func TestMetadataWrittenLast(t *testing.T) {
	dir := t.TempDir()
	w := create(t, dir, 0)
	putAll(t, w, makeBlobs(6, 3, func(*rand.Rand) int { return 1000 }))
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), dir+" holds no complete Ferry archive: ferry-archive.json is missing; rerun the m2d that made it") {
		t.Errorf("Open before Commit = %v", err)
	}
	commit(t, w)
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if err := w.PutBlob(context.Background(), digest.FromString("x"), 1, strings.NewReader("x")); err == nil {
		t.Error("PutBlob after Commit succeeded")
	}
	_, err = Create(context.Background(), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "already holds a complete Ferry archive") {
		t.Errorf("Create over a complete archive = %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "usb")
	if _, err := Open(missing); err == nil || !strings.Contains(err.Error(), "archive folder "+missing+" does not exist") {
		t.Errorf("Open of a missing folder = %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, MetadataFile), []byte("{"), 0o644)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "is damaged") {
		t.Errorf("Open with broken metadata = %v", err)
	}
	os.WriteFile(filepath.Join(dir, MetadataFile), []byte(`{"formatVersion":1,"chunks":[],"blobs":[{"digest":"sha256:`+strings.Repeat("a", 64)+`","size":5,"parts":[{"chunk":"../../etc/passwd","offset":512,"length":5}]}]}`), 0o644)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "unknown chunk") {
		t.Errorf("Open with a part outside the chunks = %v", err)
	}
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "ferry_000001.tar"), []byte("junk"), 0o644)
	if _, err := Create(context.Background(), dir, Options{}); err == nil || !strings.Contains(err.Error(), "holds archive chunks but neither") {
		t.Errorf("Create over stray chunks = %v", err)
	}
}

func TestConcurrentPutBlob(t *testing.T) {
	dir := t.TempDir()
	w := create(t, dir, 256<<10)
	blobs := makeBlobs(7, 64, func(r *rand.Rand) int { return r.IntN(100 << 10) })
	errs := make(chan error, len(blobs))
	for i := range blobs {
		go func() {
			b := blobs[i%len(blobs)]
			errs <- w.PutBlob(context.Background(), b.d, int64(len(b.data)), bytes.NewReader(b.data))
		}()
	}
	for range blobs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	commit(t, w)
	a := open(t, dir)
	if err := a.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	checkBlobs(t, a, blobs)
}

// TestPutBlobFromOpensInTurn checks that sources are opened one at a time,
// when the archive is ready, and not at all for blobs already held.
func TestPutBlobFromOpensInTurn(t *testing.T) {
	dir := t.TempDir()
	w := create(t, dir, 256<<10)
	blobs := makeBlobs(8, 32, func(r *rand.Rand) int { return r.IntN(100 << 10) })
	putAll(t, w, blobs[:1])
	var mu sync.Mutex
	inUse, peak, opened := 0, 0, 0
	errs := make(chan error, len(blobs))
	for _, b := range blobs {
		go func() {
			errs <- w.PutBlobFrom(context.Background(), b.d, int64(len(b.data)), func(context.Context) (io.ReadCloser, error) {
				mu.Lock()
				inUse++
				opened++
				peak = max(peak, inUse)
				mu.Unlock()
				return closer{bytes.NewReader(b.data), func() { mu.Lock(); inUse--; mu.Unlock() }}, nil
			})
		}()
	}
	for range blobs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if peak != 1 || opened != len(blobs)-1 || inUse != 0 {
		t.Errorf("sources: %d opened, at most %d at once, %d left open; want %d, 1, 0", opened, peak, inUse, len(blobs)-1)
	}
	err := w.PutBlobFrom(context.Background(), digest.FromString("x"), 1, func(context.Context) (io.ReadCloser, error) {
		return nil, errors.New("upstream answered 404")
	})
	if err == nil || !strings.Contains(err.Error(), "upstream answered 404") || !strings.Contains(err.Error(), digest.FromString("x").String()) {
		t.Errorf("PutBlobFrom with a failing open = %v", err)
	}
	commit(t, w)
	checkBlobs(t, open(t, dir), blobs)
}

type closer struct {
	io.Reader
	close func()
}

func (c closer) Close() error { c.close(); return nil }
