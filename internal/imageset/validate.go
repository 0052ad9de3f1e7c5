package imageset

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/distribution/reference"
)

// maxArchiveGiB keeps archiveSize << 30 from overflowing; 1 PiB per chunk is
// far beyond any real medium.
const maxArchiveGiB = 1 << 20

var (
	// ReleaseArchitectures are the values platform.architectures accepts.
	ReleaseArchitectures = []string{"amd64", "arm64", "ppc64le", "s390x", "multi"}
	// imageArchitectures are the GOARCH values images are published for.
	imageArchitectures = []string{"386", "amd64", "arm", "arm64", "loong64", "mips64le", "ppc64le", "riscv64", "s390x"}

	// pathComponents is a repository path without host, tag or digest, as
	// oc-mirror requires of targetCatalog.
	pathComponents = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagPattern     = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	osPattern      = regexp.MustCompile(`^[a-z0-9]+$`)
)

// validator checks decoded values; it shares the decoder's line table and
// error list so that every message can name its line.
type validator struct {
	*decoder
}

func (v *validator) failAt(path, format string, args ...any) {
	v.fail(v.line(path), path, format, args...)
}

func (v *validator) archiveSize(n int64) {
	if n < 0 || n > maxArchiveGiB {
		v.failAt("archiveSize", "%d is out of range; give the largest chunk size in GiB, from 1 to %d, or leave it out for no limit", n, maxArchiveGiB)
	}
}

func (v *validator) mirror(m *Mirror, path string) {
	v.platform(&m.Platform, path+".platform")
	v.operators(m.Operators, path+".operators")
	v.images(m.AdditionalImages, path+".additionalImages")
	v.images(m.Samples, path+".samples")
	v.helm(&m.Helm, path+".helm")
	for i, b := range m.BlockedImages {
		p := fmt.Sprintf("%s.blockedImages[%d].name", path, i)
		if b.Name == "" {
			v.failAt(p, "missing; give a regular expression matched against image references")
			continue
		}
		if _, err := regexp.Compile(b.Name); err != nil {
			v.failAt(p, "%q is not a valid regular expression (Go RE2 syntax): %v", b.Name, err)
		}
	}
}

func (v *validator) delete(d *Delete, path string) {
	v.platform(&d.Platform, path+".platform")
	v.operators(d.Operators, path+".operators")
	v.images(d.AdditionalImages, path+".additionalImages")
	v.images(d.Samples, path+".samples")
	v.helm(&d.Helm, path+".helm")
}

func (v *validator) platform(p *Platform, path string) {
	seen := map[string]string{}
	for i, c := range p.Channels {
		cp := fmt.Sprintf("%s.channels[%d]", path, i)
		if c.Name == "" {
			v.failAt(cp+".name", "missing; give the update channel, like stable-4.16")
		} else if first, dup := seen[c.Name]; dup {
			v.failAt(cp+".name", "channel %q is listed twice (first as %s); merge the two entries", c.Name, first)
		} else {
			seen[c.Name] = cp
		}
		if c.Type != "" && c.Type != "ocp" && c.Type != "okd" {
			v.failAt(cp+".type", "%q is not a platform type; allowed: ocp (the default), okd", c.Type)
		}
		v.versionRange(cp, c.MinVersion, c.MaxVersion)
	}
	v.architectures(p.Architectures, path+".architectures")
	if len(p.Architectures) > 0 && len(p.Platforms) > 0 {
		v.failAt(path+".platforms", "set either architectures or platforms, not both")
	}
	v.platformSpecs(p.Platforms, path+".platforms")
	if p.Release != "" {
		v.imageRef(p.Release, path+".release")
	}
}

func (v *validator) architectures(archs []string, path string) {
	for i, a := range archs {
		ap := fmt.Sprintf("%s[%d]", path, i)
		if !slices.Contains(ReleaseArchitectures, a) {
			v.failAt(ap, "%q is not a release architecture; allowed: %s", a, strings.Join(ReleaseArchitectures, ", "))
		} else if j := slices.Index(archs, a); j < i {
			v.failAt(ap, "%q is listed twice (also %s[%d])", a, path, j)
		}
	}
}

func (v *validator) platformSpecs(specs []PlatformSpec, path string) {
	for i, s := range specs {
		sp := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case s.Architecture == "":
			v.failAt(sp+".architecture", "missing; allowed: %s", strings.Join(imageArchitectures, ", "))
		case !slices.Contains(imageArchitectures, s.Architecture):
			v.failAt(sp+".architecture", "%q is not an image architecture; allowed: %s", s.Architecture, strings.Join(imageArchitectures, ", "))
		}
		if s.OS != "" && !osPattern.MatchString(s.OS) {
			v.failAt(sp+".os", "%q is not an operating system name like linux or windows", s.OS)
		}
	}
}

func (v *validator) versionRange(path, minV, maxV string) {
	lo := v.version(path+".minVersion", minV)
	hi := v.version(path+".maxVersion", maxV)
	if lo != nil && hi != nil && lo.GreaterThan(hi) {
		v.failAt(path+".minVersion", "%s is greater than maxVersion %s; swap them", minV, maxV)
	}
}

func (v *validator) version(path, s string) *semver.Version {
	if s == "" {
		return nil
	}
	ver, err := semver.NewVersion(s)
	if err != nil {
		v.failAt(path, "%q is not a semantic version; write it like 4.16.3", s)
		return nil
	}
	return ver
}

func (v *validator) operators(ops []Operator, path string) {
	seen := map[string]string{}
	for i, op := range ops {
		op := op
		opPath := fmt.Sprintf("%s[%d]", path, i)
		if op.Catalog == "" {
			v.failAt(opPath+".catalog", "missing; give the catalog image, like registry.redhat.io/redhat/redhat-operator-index:v4.16, or oci://<path>")
		} else {
			v.imageRef(op.Catalog, opPath+".catalog")
			key := op.Catalog + "|" + op.TargetCatalog + "|" + op.TargetTag
			if first, dup := seen[key]; dup {
				v.failAt(opPath+".catalog", "catalog %q is listed twice with the same target (first as %s); merge the two entries or set a different targetCatalog or targetTag", op.Catalog, first)
			} else {
				seen[key] = opPath
			}
		}
		if op.TargetCatalog != "" && !pathComponents.MatchString(op.TargetCatalog) {
			v.failAt(opPath+".targetCatalog", "%q is not a repository path: use lowercase path components separated by /, with no registry host, tag or digest", op.TargetCatalog)
		}
		v.tag(op.TargetTag, opPath+".targetTag")
		v.platformSpecs(op.Platforms, opPath+".platforms")
		v.packages(&op, opPath)
	}
}

func (v *validator) packages(op *Operator, opPath string) {
	seen := map[string]string{}
	for j, pkg := range op.Packages {
		pp := fmt.Sprintf("%s.packages[%d]", opPath, j)
		if pkg.Name == "" {
			v.failAt(pp+".name", "missing; give the operator package name")
		} else if first, dup := seen[pkg.Name]; dup {
			v.failAt(pp+".name", "package %q is listed twice in catalog %s (first as %s); merge the two entries", pkg.Name, op.Catalog, first)
		} else {
			seen[pkg.Name] = pp
		}
		v.versionRange(pp, pkg.MinVersion, pkg.MaxVersion)
		chans := map[string]string{}
		for k, ch := range pkg.Channels {
			cp := fmt.Sprintf("%s.channels[%d]", pp, k)
			if ch.Name == "" {
				v.failAt(cp+".name", "missing; give the channel name")
			} else if first, dup := chans[ch.Name]; dup {
				v.failAt(cp+".name", "channel %q is listed twice in package %s (first as %s); merge the two entries", ch.Name, pkg.Name, first)
			} else {
				chans[ch.Name] = cp
			}
			v.versionRange(cp, ch.MinVersion, ch.MaxVersion)
			if (pkg.MinVersion != "" || pkg.MaxVersion != "") && (ch.MinVersion != "" || ch.MaxVersion != "") {
				v.failAt(cp, "package %s has a package-level minVersion/maxVersion, so its channels cannot have their own; keep one of the two", pkg.Name)
			}
		}
		for k, b := range pkg.Bundles {
			if b.Name == "" {
				v.failAt(fmt.Sprintf("%s.bundles[%d].name", pp, k), "missing; give the bundle name, like my-operator.v1.2.3")
			}
		}
	}
}

func (v *validator) images(imgs []AdditionalImage, path string) {
	for i, img := range imgs {
		ip := fmt.Sprintf("%s[%d]", path, i)
		if img.Name == "" {
			v.failAt(ip+".name", "missing; give an image reference, like registry.example.com/team/app:1.0 or ...@sha256:<hex>")
		} else {
			v.imageRef(img.Name, ip+".name")
		}
		if img.TargetRepo != "" && !pathComponents.MatchString(img.TargetRepo) {
			v.failAt(ip+".targetRepo", "%q is not a repository path: use lowercase path components separated by /, with no registry host, tag or digest", img.TargetRepo)
		}
		v.tag(img.TargetTag, ip+".targetTag")
		v.platformSpecs(img.Platforms, ip+".platforms")
	}
}

func (v *validator) tag(t, path string) {
	if t != "" && !tagPattern.MatchString(t) {
		v.failAt(path, "%q is not a valid tag: up to 128 letters, digits, _, . and -, not starting with . or -", t)
	}
}

// imageRef accepts what oc-mirror accepts: a registry reference, optionally
// with a docker:// prefix, or oci://<path> for a local OCI layout.
func (v *validator) imageRef(s, path string) {
	if rest, ok := strings.CutPrefix(s, "oci://"); ok {
		if rest == "" {
			v.failAt(path, "%q names no folder; write oci://<path to an OCI layout>", s)
		}
		return
	}
	ref := strings.TrimPrefix(s, "docker://")
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		v.failAt(path, "%q is not a valid image reference (%v); write it like registry.example.com/team/app:1.0 or registry.example.com/team/app@sha256:<64 hex>", s, err)
	}
}

func (v *validator) helm(h *Helm, path string) {
	seen := map[string]string{}
	for i, r := range h.Repositories {
		rp := fmt.Sprintf("%s.repositories[%d]", path, i)
		if r.Name == "" {
			v.failAt(rp+".name", "missing; give the repository a name")
		} else if first, dup := seen[r.Name]; dup {
			v.failAt(rp+".name", "repository %q is listed twice (first as %s)", r.Name, first)
		} else {
			seen[r.Name] = rp
		}
		u, err := url.Parse(r.URL)
		switch {
		case r.URL == "":
			v.failAt(rp+".url", "missing; give the chart repository URL, like https://charts.example.com")
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "oci"):
			v.failAt(rp+".url", "%q is not a chart repository URL; use an http://, https:// or oci:// URL with a host", r.URL)
		}
		for j, c := range r.Charts {
			if c.Name == "" {
				v.failAt(fmt.Sprintf("%s.charts[%d].name", rp, j), "missing; give the chart name")
			}
			v.platformSpecs(c.Platforms, fmt.Sprintf("%s.charts[%d].platforms", rp, j))
		}
	}
	for i, c := range h.Local {
		lp := fmt.Sprintf("%s.local[%d]", path, i)
		if c.Name == "" {
			v.failAt(lp+".name", "missing; give the chart name")
		}
		if c.Path == "" {
			v.failAt(lp+".path", "missing; give the chart's folder or .tgz file")
		}
		v.platformSpecs(c.Platforms, lp+".platforms")
	}
}
