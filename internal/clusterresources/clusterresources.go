// Package clusterresources writes the files that make clusters and hosts
// pull from the mirror: ImageDigestMirrorSet and ImageTagMirrorSet objects
// (cluster-resources/, only Kubernetes objects, so `oc apply -f` takes the
// folder), and a containers-registries.conf for CRI-O and podman hosts and
// the imageDigestSources of an install-config (host-config/). Output is
// sorted, so the same mappings always give the same bytes.
package clusterresources

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// Sections of a mapping, which name the IDMS/ITMS objects.
const (
	SectionRelease    = "release"
	SectionOperator   = "operator"
	SectionAdditional = "additional"
	SectionHelm       = "helm"
)

// Folders under working-dir: cluster-resources holds Kubernetes objects
// only, as oc-mirror's does; host-config holds the files for hosts and the
// installer, which are not objects and would break `oc apply -f`.
const (
	ClusterResourcesDir = "cluster-resources"
	HostConfigDir       = "host-config"
)

// File names, as oc-mirror names them where it writes them.
const (
	IDMSFile            = "idms-oc-mirror.yaml"
	ITMSFile            = "itms-oc-mirror.yaml"
	RegistriesConfFile  = "registries.conf"
	InstallConfigFile   = "install-config-snippet.yaml"
	maxMirrorsPerObject = 1000 // keeps each object far below etcd's size limit
)

// legacyFiles are what earlier Ferry versions wrote into cluster-resources/:
// removed there, so `oc apply -f` neither applies a second copy of the
// mirror sets nor trips over a file that is not an object.
var legacyFiles = []string{"idms-ferry.yaml", "itms-ferry.yaml", RegistriesConfFile, InstallConfigFile}

// Mapping is one mirrored image: where it came from and where it went.
type Mapping struct {
	// Source is the full source reference: host/path:tag or host/path@sha256:...
	Source string
	// Destination is the full destination reference.
	Destination string
	// Section is "release", "operator", "additional" or "helm".
	Section string
}

// Options tune Write.
type Options struct {
	// CABundleFile is a PEM file for install-config additionalTrustBundle; optional.
	CABundleFile string
	// InsecureMirrors marks the mirrors insecure in registries.conf (plain
	// HTTP or an untrusted certificate), for --dest-tls-verify=false.
	InsecureMirrors bool
}

// repoMirror is one source repository mirrored to one destination repository.
type repoMirror struct {
	source, mirror string
	// scope and mirrorScope are source and mirror widened to their
	// namespace as oc-mirror widens them (see widen); mirror sets and the
	// install-config use them.
	scope, mirrorScope string
	byTag              bool // the source was referenced by tag, not by digest
	group              string
}

// Write writes the mirror sets for mappings into clusterDir, and
// registries.conf and the install-config snippet into hostDir (both
// created if needed), and returns the paths it wrote. A file with nothing
// to say is not written, and an old copy of it is removed so that
// `oc apply -f clusterDir` never applies stale objects.
func Write(clusterDir, hostDir string, mappings []Mapping, opts Options) ([]string, error) {
	repos, err := repositories(mappings)
	if err != nil {
		return nil, err
	}
	var bundle string
	if opts.CABundleFile != "" {
		if bundle, err = readCABundle(opts.CABundleFile); err != nil {
			return nil, err
		}
	}
	for _, dir := range []string{clusterDir, hostDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cluster resources: %w", err)
		}
	}
	for _, f := range legacyFiles {
		if err := os.Remove(filepath.Join(clusterDir, f)); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("cluster resources: remove %s left by an earlier version: %w", f, err)
		}
	}
	files := []struct {
		dir, name string
		data      []byte
		err       error
	}{
		{dir: clusterDir, name: IDMSFile},
		{dir: clusterDir, name: ITMSFile},
		{dir: hostDir, name: RegistriesConfFile},
		{dir: hostDir, name: InstallConfigFile},
	}
	files[0].data, files[0].err = mirrorSets(repos, false)
	files[1].data, files[1].err = mirrorSets(repos, true)
	files[2].data = registriesConf(repos, opts.InsecureMirrors)
	files[3].data, files[3].err = installConfig(repos, bundle)
	var paths []string
	for _, f := range files {
		if f.err != nil {
			return nil, fmt.Errorf("cluster resources: %s: %w", f.name, f.err)
		}
		path := filepath.Join(f.dir, f.name)
		if f.data == nil {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("cluster resources: remove stale %s: %w", f.name, err)
			}
			continue
		}
		if err := writeFile(path, f.data); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// group is the object name part oc-mirror uses for a section.
func group(section string) (string, error) {
	switch section {
	case SectionRelease:
		return "release", nil
	case SectionOperator:
		return "operator", nil
	case SectionAdditional, SectionHelm:
		return "generic", nil
	}
	return "", fmt.Errorf("section %q is not one of release, operator, additional, helm", section)
}

// repositories reduces mappings to sorted, deduplicated repository pairs.
func repositories(mappings []Mapping) ([]repoMirror, error) {
	seen := map[repoMirror]bool{}
	var out []repoMirror
	for _, m := range mappings {
		g, err := group(m.Section)
		if err != nil {
			return nil, fmt.Errorf("cluster resources: mapping %s: %w", m.Source, err)
		}
		src, err := reference.ParseNormalizedNamed(m.Source)
		if err != nil {
			return nil, fmt.Errorf("cluster resources: source %q: %w", m.Source, err)
		}
		dst, err := reference.ParseNormalizedNamed(m.Destination)
		if err != nil {
			return nil, fmt.Errorf("cluster resources: destination %q: %w", m.Destination, err)
		}
		_, digested := src.(reference.Digested)
		rm := repoMirror{source: src.Name(), mirror: dst.Name(), byTag: !digested, group: g}
		rm.scope, rm.mirrorScope = widen(rm.source, rm.mirror)
		if !seen[rm] {
			seen[rm] = true
			out = append(out, rm)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.source != b.source {
			return a.source < b.source
		}
		if a.mirror != b.mirror {
			return a.mirror < b.mirror
		}
		return !a.byTag && b.byTag
	})
	return out, nil
}

// widen returns the namespaces of source and mirror (the repository
// without its last path component) when the mirror path ends with the
// whole source path, so one mirror-set entry covers every repository a
// release, catalog or team namespace has, as oc-mirror's namespace scope
// does. Otherwise (a targetRepo, folded paths) the repositories stay as
// they are. Unlike oc-mirror, the match is on whole path components:
// ocp/xrhel9/bundle does not end with rhel9/bundle.
func widen(source, mirror string) (string, string) {
	host, path, ok := strings.Cut(source, "/")
	if !ok {
		return source, mirror
	}
	mhost, mpath, _ := strings.Cut(mirror, "/")
	if mpath != path && !strings.HasSuffix(mpath, "/"+path) {
		return source, mirror
	}
	return parent(host, path), parent(mhost, mpath)
}

// parent is host/path without the last path component.
func parent(host, path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 {
		return host + "/" + path[:i]
	}
	return host
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("cluster resources: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cluster resources: %w", err)
	}
	return nil
}

// joinDocs joins YAML documents into one multi-document file.
func joinDocs(docs [][]byte) []byte {
	var b strings.Builder
	for i, d := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(d)
	}
	return []byte(b.String())
}
