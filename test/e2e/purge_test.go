package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestAbandonedUploadsArePurged: uploads a client gave up on (a killed
// mirror, a dropped link) must not fill the disk. With --upload-max-age
// an idle session and its data go, and so does upload data no session
// owns (a crash during a monolithic upload); a session still being
// written survives and completes.
func TestAbandonedUploadsArePurged(t *testing.T) {
	s := testenv.StartFerry(t, testenv.FerryOptions{Args: []string{"--upload-max-age=2s"}})
	data := stream{seed: 41, size: 64 << 10}

	idle := startUpload(t, s, "app/idle")
	patchChunk(t, idle, data, 0, 1000)

	orphan := filepath.Join(s.DataDir, "uploads", "0123456789abcdef0123456789abcdef")
	if err := os.WriteFile(orphan, []byte("left by a crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(orphan, old, old); err != nil {
		t.Fatal(err)
	}

	// The active session gets a chunk every 500 ms for 5 s: far more than
	// the max age in all, but never idle that long.
	active := startUpload(t, s, "app/active")
	var offset int64
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		active = patchChunk(t, active, data, offset, 4096)
		offset += 4096
		time.Sleep(500 * time.Millisecond)
	}

	if e := do(t, http.MethodGet, idle, nil, nil); e.Status != http.StatusNotFound || !bytes.Contains(e.Body, []byte("BLOB_UPLOAD_UNKNOWN")) {
		t.Errorf("idle session after 5 s with --upload-max-age=2s: %v; want 404 BLOB_UPLOAD_UNKNOWN", e)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphaned upload data still there: %v", err)
	}
	if got := uploadOffset(t, active); got != offset {
		t.Fatalf("active session holds %d bytes, want %d", got, offset)
	}
	active = patchChunk(t, active, data, offset, data.size-offset)
	e := sendBody(t, http.MethodPut, active+sep(active)+"digest="+data.digest(t), nil, 0, "")
	if e.Status != http.StatusCreated {
		t.Fatalf("completing the active upload: %v", e)
	}
	assertBlob(t, s, "app/active", data.digest(t), data)
	entries, _ := os.ReadDir(filepath.Join(s.DataDir, "uploads"))
	for _, en := range entries {
		t.Errorf("upload data left behind: %s", en.Name())
	}
}
