package mirror

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/oci"
	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/release"
	"github.com/ferry-mirror/ferry/internal/runreport"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// recordRun pushes the run's report to runreport.Repo when the
// destination is a Ferry registry (it says so when pinged); any other
// registry gets no repository it did not ask for. A report that cannot be
// pushed (no push permission on ferry/runs, say) is a warning: the
// mirroring itself succeeded or failed on its own.
func (r *run) recordRun(p *plan.Plan, results []transfer.Result, failures []string, resourcesDir string) {
	if r.dst == nil || r.dst.PingHeader().Get(runreport.Header) == "" {
		return
	}
	rep := r.report(p, results, failures, resourcesDir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tag, err := pushReport(ctx, r.dst, rep, r.started)
	if err != nil {
		r.log.Warn("the run report could not be recorded in the destination; the web console will not list this run", "repository", runreport.Repo, "error", err)
		return
	}
	r.log.Info("run report recorded", "reference", r.dst.Host()+"/"+runreport.Repo+":"+tag)
}

func (r *run) report(p *plan.Plan, results []transfer.Result, failures []string, resourcesDir string) *runreport.Report {
	s := r.stats.Snapshot()
	host, _ := os.Hostname()
	rep := &runreport.Report{
		Workflow: string(r.o.Mode), Destination: r.o.Dest, Config: filepath.Base(r.o.ConfigPath),
		Started: r.started.UTC(), Finished: time.Now().UTC(), Host: host,
		ImagesCopied: s.ImagesCopied, ImagesPresent: s.ImagesSkipped, ImagesFailed: s.ImagesFailed,
		Missing: len(p.Missing), Blocked: len(p.Blocked), BytesCopied: s.BytesCopied,
	}
	signed := map[string]bool{}
	for _, sg := range r.signedReleases() {
		signed[sg.Digest.String()] = true
	}
	for i, im := range p.Images {
		if i >= len(results) || results[i].Err != nil {
			continue
		}
		ref := plan.DestPath(r.o.Dest, im.DestRepo, r.o.MaxNestedPaths)
		if im.DestTag != "" {
			ref += ":" + im.DestTag
		} else {
			ref += "@" + im.Digest.String()
		}
		switch {
		case im.Section == plan.SectionRelease && strings.HasSuffix(im.DestRepo, release.ReleaseImagesRepo):
			rep.Releases = append(rep.Releases, runreport.Release{Image: ref, Digest: im.Digest.String(),
				Signed: signed[im.Digest.String()] || signed[im.SourceDigest.String()]})
		case im.Generated && im.Section == plan.SectionOperator:
			rep.Catalogs = append(rep.Catalogs, ref)
		}
	}
	if resourcesDir != "" {
		entries, _ := os.ReadDir(resourcesDir)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && !fi.ModTime().Before(r.started) {
				rep.ClusterResources = append(rep.ClusterResources, e.Name())
				if e.Name() == signatureConfigMapFile {
					rep.SignatureConfigMap = true
				}
			}
		}
	}
	if len(failures) > runreport.MaxFailures {
		rep.MoreFailures = len(failures) - runreport.MaxFailures
		failures = failures[:runreport.MaxFailures]
	}
	rep.Failures = failures
	return rep
}

// signedReleases are the release signatures of this run.
func (r *run) signedReleases() []release.Signed {
	if r.rel == nil {
		return nil
	}
	if c := r.rel.collector; c != nil {
		return c.Signed
	}
	return r.rel.signed
}

// pushReport pushes rep as an OCI artifact tagged by the run's start.
func pushReport(ctx context.Context, dst *transfer.Client, rep *runreport.Report, started time.Time) (string, error) {
	body, err := json.Marshal(rep)
	if err != nil {
		return "", err
	}
	if len(body) > runreport.MaxSize {
		return "", fmt.Errorf("report is %d bytes, more than %d", len(body), runreport.MaxSize)
	}
	empty := []byte("{}")
	ld, cd := digest.FromBytes(body), digest.FromBytes(empty)
	for _, b := range []struct {
		d    digest.Digest
		data []byte
	}{{cd, empty}, {ld, body}} {
		if err := dst.Upload(ctx, runreport.Repo, b.d, int64(len(b.data)), bytes.NewReader(b.data), ""); err != nil {
			return "", err
		}
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int    `json:"size"`
	}
	m, err := json.Marshal(struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		ArtifactType  string            `json:"artifactType"`
		Config        desc              `json:"config"`
		Layers        []desc            `json:"layers"`
		Annotations   map[string]string `json:"annotations"`
	}{2, oci.MediaTypeImageManifest, runreport.ArtifactType,
		desc{"application/vnd.oci.empty.v1+json", cd.String(), len(empty)},
		[]desc{{runreport.MediaType, ld.String(), len(body)}},
		map[string]string{"org.opencontainers.image.created": rep.Finished.Format(time.RFC3339)}})
	if err != nil {
		return "", err
	}
	suffix := make([]byte, 3)
	rand.Read(suffix)
	tag := runreport.Tag(started, hex.EncodeToString(suffix))
	if _, err := dst.PutManifest(ctx, runreport.Repo, tag, transfer.Manifest{MediaType: oci.MediaTypeImageManifest, Digest: digest.FromBytes(m), Data: m}); err != nil {
		return "", err
	}
	return tag, nil
}
