package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-mirror/ferry/internal/archive"
	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/release"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// DefaultGraphBaseImage is the base of the update graph image, as oc-mirror
// builds it.
const DefaultGraphBaseImage = "registry.access.redhat.com/ubi9/ubi:latest"

// Files a release mirror carries in an archive, so disk to mirror needs
// no network but the destination.
const (
	archiveSignatures = "release/signatures.json"
	archiveGraphs     = "release/graphs.json"
	archiveGraphData  = "release/graph-data.tar.gz"
)

// Cluster resource files of the release section.
const (
	signatureConfigMapFile     = "signature-configmap.yaml"
	signatureConfigMapJSONFile = "signature-configmap.json"
	updateServiceFile          = "updateService.yaml"
)

// releaseRun is the release section's state in one run.
type releaseRun struct {
	collector *plan.Releases
	graphs    *release.GraphClient
	// signed are the verified signatures: collected now, or read from
	// the archive in d2m.
	signed []release.Signed
	// graphData is the downloaded graph-data tarball, when graph: true.
	graphData string
}

// savedGraph is one graph document as an archive carries it.
type savedGraph struct {
	Type    string          `json:"type"`
	Channel string          `json:"channel"`
	Arch    release.Arch    `json:"arch"`
	Graph   json.RawMessage `json:"graph"`
}

func (r *run) getenv(k string) string {
	if r.o.Getenv != nil {
		return r.o.Getenv(k)
	}
	return os.Getenv(k)
}

// releaseCollector sets up the release section: the graph client and the
// signature verifier, so a missing key fails before anything is fetched.
func (r *run) releaseCollector(src *transfer.Registries) (*plan.Releases, error) {
	p := r.cfg.Mirror.Platform
	if _, err := plan.Arches(p); err != nil {
		return nil, err
	}
	if len(p.Channels) == 0 && p.Release == "" && !p.Graph {
		return nil, errors.New("mirror.platform: kubeVirtContainer needs channels or release to say which releases to mirror")
	}
	var ver *release.Verifier
	if !r.o.IgnoreReleaseSignature {
		so := release.SignatureOptionsFromEnv(r.getenv, r.o.ReleaseSignatureKey)
		so.Log = r.log
		v, err := release.NewVerifier(so)
		if err != nil {
			return nil, err
		}
		if src != nil { // nil: only the configuration is being checked
			r.log.Info("release signatures are verified", "keys", v.KeySource(), "fingerprints", strings.Join(v.Fingerprints(), ","))
		}
		ver = v
	}
	if r.rel == nil {
		go_ := release.GraphOptionsFromEnv(r.getenv)
		go_.Log = r.log
		r.rel = &releaseRun{graphs: release.NewGraphClient(go_)}
	}
	c := &plan.Releases{Platform: p, Graphs: r.rel.graphs, Src: plan.Registries(src), Verifier: ver, Parallel: max(r.o.ParallelImages, 2), Log: r.log}
	r.rel.collector = c
	return c, nil
}

// graphCollector builds the update graph image. The graph data it
// downloads goes into the archive too.
func (r *run) graphCollector(src *transfer.Registries) *plan.Graph {
	gdo := release.GraphDataOptionsFromEnv(r.getenv)
	base := r.o.GraphBaseImage
	if base == "" {
		base = DefaultGraphBaseImage
	}
	g := &plan.Graph{Data: gdo, BaseImage: base, Src: plan.Registries(src), Dir: filepath.Join(r.workDir, "release"),
		Blobs: plan.BlobDir(filepath.Join(r.workDir, "generated", "blobs")), Log: r.log}
	if r.rel != nil {
		r.rel.graphData = g.Tarball()
	}
	return g
}

// saveRelease puts what d2m needs into the archive: the signatures, the
// graphs and the graph data.
func (r *run) saveRelease(ctx context.Context, w *archive.Writer) error {
	if r.rel == nil {
		return nil
	}
	var files = map[string][]byte{}
	if c := r.rel.collector; c != nil && len(c.Signed) > 0 {
		data, err := json.Marshal(c.Signed)
		if err != nil {
			return err
		}
		files[archiveSignatures] = data
	}
	var graphs []savedGraph
	for k, g := range r.rel.graphs.Fetched() {
		graphs = append(graphs, savedGraph{Type: k.Type, Channel: k.Channel, Arch: k.Arch, Graph: g})
	}
	if len(graphs) > 0 {
		data, err := json.Marshal(graphs)
		if err != nil {
			return err
		}
		files[archiveGraphs] = data
	}
	if r.rel.graphData != "" {
		data, err := os.ReadFile(r.rel.graphData)
		if err != nil {
			return err
		}
		files[archiveGraphData] = data
	}
	for name, data := range files {
		if err := w.PutFile(ctx, name, data); err != nil {
			return err
		}
	}
	return nil
}

// loadRelease reads what saveRelease stored; an archive without a
// release section has none of it.
func (r *run) loadRelease(a *archive.Archive) error {
	r.rel = &releaseRun{}
	data, err := a.ReadFile(archiveSignatures)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(data, &r.rel.signed); err != nil {
			return fmt.Errorf("archive %s: %s is damaged: %w", r.o.Dir, archiveSignatures, err)
		}
	}
	if data, err := a.ReadFile(archiveGraphs); err == nil {
		var graphs []savedGraph
		if err := json.Unmarshal(data, &graphs); err != nil {
			return fmt.Errorf("archive %s: %s is damaged: %w", r.o.Dir, archiveGraphs, err)
		}
		off := release.OfflineGraphs{}
		for _, g := range graphs {
			off[release.GraphKey{Type: g.Type, Channel: g.Channel, Arch: g.Arch}] = g.Graph
		}
		r.checkOffline(off)
	}
	return nil
}

// checkOffline warns when the config given to d2m selects releases from
// the graphs the archive carries that the archive does not hold.
func (r *run) checkOffline(graphs release.OfflineGraphs) {
	p := r.cfg.Mirror.Platform
	arches, err := plan.Arches(p)
	if err != nil || len(p.Channels) == 0 || p.Release != "" { // release replaces the channels
		return
	}
	var chans []release.Channel
	for _, ch := range p.Channels {
		chans = append(chans, release.Channel{Name: ch.Name, Type: ch.Type, MinVersion: ch.MinVersion, MaxVersion: ch.MaxVersion, ShortestPath: ch.ShortestPath, Full: ch.Full})
	}
	for _, a := range arches {
		rs, err := release.Select(context.Background(), graphs, chans, a, r.log)
		if err != nil {
			r.log.Warn("the config's channels do not match the graphs in the archive; the archive's plan is pushed as it is", "error", err)
			return
		}
		r.log.Info("releases the archive's graphs select", "arch", a, "count", len(rs))
	}
}

// releaseResources writes signature-configmap.yaml and .json and, when the graph
// image was pushed, updateService.yaml.
func (r *run) releaseResources(dir string, p *plan.Plan, results []transfer.Result) ([]string, error) {
	var signed []release.Signed
	if r.rel != nil {
		signed = r.rel.signed
		if c := r.rel.collector; c != nil {
			signed = c.Signed
		}
	}
	var written []string
	if len(signed) > 0 {
		// oc-mirror writes both; scripts apply one or the other by name.
		for _, f := range []struct {
			file   string
			render func([]release.Signed) ([]byte, error)
		}{{signatureConfigMapFile, release.SignatureConfigMaps}, {signatureConfigMapJSONFile, release.SignatureConfigMapsJSON}} {
			data, err := f.render(signed)
			if err != nil {
				return nil, err
			}
			path := filepath.Join(dir, f.file)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return nil, fmt.Errorf("write %s: %w", path, err)
			}
			written = append(written, path)
		}
	}
	for i, im := range p.Images {
		if !im.Generated || im.DestRepo != release.GraphImageRepo || i >= len(results) || results[i].Err != nil {
			continue
		}
		rels := plan.DestPath(r.o.Dest, release.ReleaseImagesRepo, r.o.MaxNestedPaths)
		graph := plan.DestPath(r.o.Dest, release.GraphImageRepo, r.o.MaxNestedPaths) + "@" + im.Digest.String()
		data, err := release.UpdateServiceYAML(rels, graph)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, updateServiceFile)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		written = append(written, path)
	}
	return written, nil
}
