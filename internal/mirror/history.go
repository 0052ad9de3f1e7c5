package mirror

import (
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/archive"
)

// historyFile, in an m2d workspace, lists what earlier archives held, so
// the next archive carries only new blobs.
const historyFile = "ferry-archives.json"

type history struct {
	Archives []archived `json:"archives"`
}

type archived struct {
	ID      string          `json:"id"`
	Created time.Time       `json:"created"`
	Blobs   []digest.Digest `json:"blobs"`
}

func loadHistory(workDir string) (*history, error) {
	var h history
	if err := readJSON(filepath.Join(workDir, historyFile), &h, "archive history", "delete it to make a full archive"); err != nil {
		return nil, err
	}
	return &h, nil
}

func (h *history) save(workDir string) error {
	return writeJSON(filepath.Join(workDir, historyFile), h)
}

func (h *history) has(id string) bool {
	for _, a := range h.Archives {
		if a.ID == id {
			return true
		}
	}
	return false
}

func (h *history) add(id string, meta *archive.Metadata) {
	a := archived{ID: id, Created: meta.Created}
	for _, b := range meta.Blobs {
		a.Blobs = append(a.Blobs, b.Digest)
	}
	h.Archives = append(h.Archives, a)
}

// base returns the blobs of archives made before since (all when since is
// zero) and a reference to the newest of them.
func (h *history) base(since time.Time) (map[digest.Digest]bool, *archive.BaseRef) {
	set := map[digest.Digest]bool{}
	var ref *archive.BaseRef
	for _, a := range h.Archives {
		if !since.IsZero() && !a.Created.Before(since) {
			continue
		}
		for _, b := range a.Blobs {
			set[b] = true
		}
		if ref == nil || a.Created.After(ref.Created) {
			ref = &archive.BaseRef{Kind: "archive", ID: a.ID, Created: a.Created}
		}
	}
	return set, ref
}
