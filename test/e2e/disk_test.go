package e2e

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

var hexName = regexp.MustCompile(`^[0-9a-f]{64}([0-9a-f]{64})?$`)

// assertDiskBlobsIntact hashes every file stored under a digest's name in
// the data directory: a crash must never leave a partial blob under a real
// name. Files named <hex> (or <hex>/data) below a sha256 or sha512 directory
// count as blobs. Every digest in want, acknowledged to a client, must be
// among them: nothing stored is lost.
func assertDiskBlobsIntact(t *testing.T, s *testenv.Server, want []string) {
	t.Helper()
	found := map[string]bool{}
	err := filepath.WalkDir(s.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		if name == "data" {
			name = filepath.Base(filepath.Dir(path))
		}
		if !hexName.MatchString(name) {
			return nil
		}
		alg := algorithmOf(path)
		if alg == "" {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		got, err := hashReader(alg, f)
		if err != nil {
			return err
		}
		if got != alg+":"+name {
			t.Errorf("%s holds bytes hashing to %s", path, got)
		}
		found[alg+":"+name] = true
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", s.DataDir, err)
	}
	for _, d := range want {
		if !found[d] {
			t.Errorf("blob %s, acknowledged before the crash, is not among the %d blob files under %s (layout <alg>/<xx>/<hex> as in DESIGN.md)", d, len(found), s.DataDir)
		}
	}
	t.Logf("checked %d blob files on disk against their digests", len(found))
}

// algorithmOf is the digest algorithm named by a directory in path.
func algorithmOf(path string) string {
	for _, part := range strings.Split(filepath.ToSlash(path), "/") {
		if part == "sha256" || part == "sha512" {
			return part
		}
	}
	return ""
}

func hashReader(alg string, r io.Reader) (string, error) {
	h, ok := newHash(alg)
	if !ok {
		return "", os.ErrInvalid
	}
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return alg + ":" + hex.EncodeToString(h.Sum(nil)), nil
}

func catalogRepos(t *testing.T, e exchange) []string {
	t.Helper()
	var c struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.Unmarshal(e.Body, &c); err != nil {
		t.Fatalf("catalog body: %v: %v", err, e)
	}
	return c.Repositories
}
