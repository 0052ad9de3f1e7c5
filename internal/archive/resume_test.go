package archive

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const resumeChunk = 128 << 10

// resumeBlobs is the content the crash tests write: small blobs, with
// every tenth larger than a chunk.
func resumeBlobs() []blob {
	return makeBlobs(11, 60, func(r *rand.Rand) int {
		if r.IntN(10) == 0 {
			return 200<<10 + r.IntN(200<<10)
		}
		return r.IntN(50 << 10)
	})
}

// TestHelperArchiveWriter is not a test: it is the process the crash tests
// kill. It writes the first N resume blobs, starts the next, and hangs
// after writing STOP bytes of it.
func TestHelperArchiveWriter(t *testing.T) {
	dir := os.Getenv("FERRY_ARCHIVE_HELPER_DIR")
	if dir == "" {
		t.Skip("run by the crash tests")
	}
	n, _ := strconv.Atoi(os.Getenv("FERRY_ARCHIVE_HELPER_N"))
	stop, _ := strconv.Atoi(os.Getenv("FERRY_ARCHIVE_HELPER_STOP"))
	blobs := resumeBlobs()
	w := create(t, dir, resumeChunk)
	putAll(t, w, blobs[:n])
	b := blobs[n]
	r := &hangingReader{data: b.data, stop: stop}
	w.PutBlob(context.Background(), b.d, int64(len(b.data)), r)
	t.Fatal("PutBlob returned; it should have hung until killed")
}

type hangingReader struct {
	data []byte
	off  int
	stop int
}

func (r *hangingReader) Read(p []byte) (int, error) {
	if r.off >= r.stop {
		fmt.Println("ready")
		select {}
	}
	n := copy(p, r.data[r.off:min(len(r.data), r.stop)])
	r.off += n
	return n, nil
}

// crash runs the helper and kills it with SIGKILL in the middle of blob n,
// after stop bytes of it were written.
func crash(t *testing.T, dir string, n, stop int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperArchiveWriter$", "-test.v")
	cmd.Env = append(os.Environ(), "FERRY_ARCHIVE_HELPER_DIR="+dir, fmt.Sprintf("FERRY_ARCHIVE_HELPER_N=%d", n), fmt.Sprintf("FERRY_ARCHIVE_HELPER_STOP=%d", stop))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		var log strings.Builder
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if sc.Text() == "ready" {
				ready <- ""
				io.Copy(io.Discard, out)
				return
			}
		}
		ready <- log.String()
	}()
	select {
	case l := <-ready:
		if l != "" {
			cmd.Wait()
			t.Fatalf("helper ended without hanging:\n%s", l)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("helper never reached the crash point")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

// cleanArchive writes blobs without interruption, for comparison.
func cleanArchive(t *testing.T, blobs []blob) string {
	dir := t.TempDir()
	w := create(t, dir, resumeChunk)
	putAll(t, w, blobs)
	commit(t, w)
	return dir
}

// resumeAndFinish reopens dir, checks what it kept, writes everything and
// checks the result equals an uninterrupted run.
func resumeAndFinish(t *testing.T, dir string, blobs []blob, keep int) {
	t.Helper()
	w := create(t, dir, resumeChunk)
	for i, b := range blobs {
		if got, want := w.Has(b.d), i < keep; got != want {
			t.Errorf("after resume, Has(blob %d) = %v, want %v", i, got, want)
		}
	}
	putAll(t, w, blobs)
	commit(t, w)
	sameChunks(t, dir, cleanArchive(t, blobs))
	a := open(t, dir)
	if err := a.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	checkBlobs(t, a, blobs)
}

func TestResumeAfterKill(t *testing.T) {
	blobs := resumeBlobs()
	spanning := -1
	small := -1
	for i, b := range blobs {
		if i > 5 && len(b.data) > 2*resumeChunk && spanning < 0 {
			spanning = i
		}
		if i > 5 && len(b.data) > 20<<10 && len(b.data) < 50<<10 && small < 0 {
			small = i
		}
	}
	for _, tc := range []struct {
		name    string
		n, stop int
	}{
		{"inside a small blob", small, 10 << 10},
		{"after a spanning blob crossed into a new chunk", spanning, len(blobs[spanning].data) - 1000},
		{"before any byte of a blob", small, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			crash(t, dir, tc.n, tc.stop)
			if _, err := os.Stat(dir + "/" + MetadataFile); err == nil {
				t.Fatal("a killed run left a metadata file")
			}
			if _, err := Open(dir); err == nil {
				t.Fatal("Open accepted an interrupted archive")
			}
			resumeAndFinish(t, dir, blobs, tc.n)
		})
	}
}

func TestResumeAfterTruncatedChunk(t *testing.T) {
	blobs := resumeBlobs()
	dir := t.TempDir()
	w := create(t, dir, resumeChunk)
	putAll(t, w, blobs[:40])
	w.Close()
	// Cut the chunk being written in the middle of its last blob.
	last := w.blobs[blobs[39].d].Parts
	p := last[len(last)-1]
	if err := os.Truncate(dir+"/"+p.Chunk, p.Offset+p.Length/2); err != nil {
		t.Fatal(err)
	}
	resumeAndFinish(t, dir, blobs, 39)
}

func TestResumeAfterTruncatedClosedChunk(t *testing.T) {
	blobs := resumeBlobs()
	dir := t.TempDir()
	w := create(t, dir, resumeChunk)
	putAll(t, w, blobs[:50])
	w.Close()
	// Cut an early, closed chunk in the middle of blob k: blob k and
	// everything after it must be written again.
	k := 3
	p := w.blobs[blobs[k].d].Parts[0]
	if w.chunks[len(w.chunks)-1].name == p.Chunk {
		t.Fatal("test setup: want the blob in a closed chunk")
	}
	if err := os.Truncate(dir+"/"+p.Chunk, p.Offset+p.Length/2); err != nil {
		t.Fatal(err)
	}
	resumeAndFinish(t, dir, blobs, k)
}

func TestResumeAfterTornJournal(t *testing.T) {
	blobs := resumeBlobs()
	dir := t.TempDir()
	w := create(t, dir, resumeChunk)
	putAll(t, w, blobs[:20])
	w.Close()
	j, err := os.ReadFile(dir + "/" + journalFile)
	if err != nil {
		t.Fatal(err)
	}
	// Cut the last line short, as a crash during its write would.
	j = j[:len(j)-20]
	if err := os.WriteFile(dir+"/"+journalFile, j, 0o644); err != nil {
		t.Fatal(err)
	}
	if bytes.Count(j, []byte("\n")) == 0 {
		t.Fatal("test setup: journal too short")
	}
	resumeAndFinish(t, dir, blobs, 19)
}

// TestResumeThenCommitKept commits right after resuming: the archive must
// hold exactly the blobs finished before the kill, with nothing of the
// interrupted one left in the chunks.
func TestResumeThenCommitKept(t *testing.T) {
	blobs := resumeBlobs()
	for n := range blobs {
		if n > 5 && len(blobs[n].data) > 2*resumeChunk {
			dir := t.TempDir()
			crash(t, dir, n, len(blobs[n].data)-1000)
			commit(t, create(t, dir, resumeChunk))
			sameChunks(t, dir, cleanArchive(t, blobs[:n]))
			a := open(t, dir)
			if err := a.Verify(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			checkBlobs(t, a, blobs[:n])
			return
		}
	}
	t.Fatal("test setup: no blob larger than two chunks")
}
