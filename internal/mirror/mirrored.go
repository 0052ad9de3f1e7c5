package mirror

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// mirroredFile, in working-dir, records what m2m and d2m runs pushed and
// what delete runs removed, so a delete keeps what another image set
// still needs (oc-mirror deletes without looking).
const mirroredFile = "ferry-mirrored.json"

type mirroredLog struct {
	Runs []mirroredRun `json:"runs"`
}

type mirroredRun struct {
	Time   time.Time `json:"time"`
	Config string    `json:"config,omitempty"`
	// Deleted marks a delete run: its images are gone.
	Deleted bool            `json:"deleted,omitempty"`
	Images  []mirroredImage `json:"images"`
}

// mirroredImage is one pushed manifest with what needs it.
type mirroredImage struct {
	Section string `json:"section,omitempty"`
	Source  string `json:"source,omitempty"`
	// Ref is host/path:tag or host/path@digest at the destination.
	Ref    string        `json:"ref"`
	Digest digest.Digest `json:"digest"`
	// Children are the manifests an index lists.
	Children []digest.Digest `json:"children,omitempty"`
	// Users are the operator bundles (package/bundle) that need the image;
	// Bundle is set when the image is that bundle's own image.
	Users  []string `json:"users,omitempty"`
	Bundle string   `json:"bundle,omitempty"`
}

func (im mirroredImage) repo() string { return refRepo(im.Ref) }

// refRepo is host/path of host/path:tag or host/path@digest.
func refRepo(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}

func loadMirrored(workDir string) (*mirroredLog, error) {
	var l mirroredLog
	if err := readJSON(filepath.Join(workDir, mirroredFile), &l, "mirror history", "move it away to delete without the safety check"); err != nil {
		return nil, err
	}
	return &l, nil
}

func appendMirrored(workDir string, run mirroredRun) error {
	l, err := loadMirrored(workDir)
	if err != nil {
		return err
	}
	l.Runs = append(l.Runs, run)
	return writeJSON(filepath.Join(workDir, mirroredFile), l)
}

// recordMirrored adds the images a run pushed to the history.
func (r *run) recordMirrored(p *plan.Plan, results []transfer.Result, ops *plan.Operators, known func(digest.Digest) (transfer.Manifest, bool)) {
	run := mirroredRun{Time: time.Now().UTC(), Config: r.o.ConfigPath}
	for i, res := range results {
		if res.Err != nil {
			continue
		}
		im := p.Images[i]
		mi := mirroredImage{Section: im.Section, Source: im.Source, Ref: im.DestRef(r.o.Dest, r.o.MaxNestedPaths), Digest: im.Digest}
		if known != nil {
			if m, ok := known(im.Digest); ok && m.IsIndex() {
				mi.Children = indexChildren(m.Data)
			}
		}
		if ops != nil {
			for _, u := range ops.Users[im.Source] {
				id := u.Package + "/" + u.Bundle
				mi.Users = append(mi.Users, id)
				if u.IsBundle {
					mi.Bundle = id
				}
			}
		}
		run.Images = append(run.Images, mi)
	}
	if len(run.Images) == 0 {
		return
	}
	if err := appendMirrored(r.workDir, run); err != nil {
		r.log.Warn("record what was mirrored (a later delete cannot check what is still in use)", "error", err)
	}
}

func indexChildren(data []byte) []digest.Digest {
	var idx struct {
		Manifests []struct {
			Digest digest.Digest `json:"digest"`
		} `json:"manifests"`
	}
	if json.Unmarshal(data, &idx) != nil {
		return nil
	}
	var ds []digest.Digest
	for _, m := range idx.Manifests {
		ds = append(ds, m.Digest)
	}
	return ds
}
