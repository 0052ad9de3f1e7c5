package plan

import (
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// Validate checks a plan read from outside (an archive) before anything
// acts on it: every repository path and tag must follow the registry name
// grammar, so no destination can leave the prefix it is pushed under
// (path.Join would resolve "../" in a path), and every digest must be a
// digest. A synthesized manifest must hash to its digest. The error names
// the first bad entry.
func (p *Plan) Validate() error {
	if p.Version != Version {
		return fmt.Errorf("plan version %d, want %d", p.Version, Version)
	}
	var errs []error
	for _, im := range p.Images {
		if err := im.validate(); err != nil {
			errs = append(errs, fmt.Errorf("image %q: %w", im.Source, err))
		}
	}
	for _, d := range p.Manifests {
		if err := d.Digest.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("manifest digest %q: %w", d.Digest, err))
		}
	}
	for _, d := range p.Blobs {
		if err := d.Digest.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("blob digest %q: %w", d.Digest, err))
		}
	}
	for _, m := range p.Synthesized {
		if err := m.Digest.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("synthesized manifest digest %q: %w", m.Digest, err))
		} else if got := m.Digest.Algorithm().FromBytes(m.Data); got != m.Digest {
			errs = append(errs, fmt.Errorf("synthesized manifest %s: its bytes have digest %s", m.Digest, got))
		}
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	return errors.Join(errs...)
}

func (i Image) validate() error {
	switch i.Section {
	case SectionRelease, SectionOperator, SectionAdditional, SectionHelm:
	default:
		return fmt.Errorf("section %q is none of %s, %s, %s, %s", i.Section, SectionRelease, SectionOperator, SectionAdditional, SectionHelm)
	}
	if err := CheckRepoPath(i.DestRepo); err != nil {
		return fmt.Errorf("destination repository: %w", err)
	}
	if i.DestTag != "" {
		if err := CheckTag(i.DestTag); err != nil {
			return fmt.Errorf("destination tag: %w", err)
		}
	}
	if err := i.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", i.Digest, err)
	}
	if i.SourceDigest != "" {
		if err := i.SourceDigest.Validate(); err != nil {
			return fmt.Errorf("source digest %q: %w", i.SourceDigest, err)
		}
	}
	// The source names the mirrored repository in the cluster resources.
	if !i.Generated {
		if _, err := reference.ParseNormalizedNamed(i.Source); err != nil {
			return fmt.Errorf("source %q: %w", i.Source, err)
		}
	}
	if i.SourceRepo != "" || !i.Generated {
		if _, err := reference.WithName(i.SourceRepo); err != nil || !strings.Contains(i.SourceRepo, "/") {
			return fmt.Errorf("source repository %q is not host/path", i.SourceRepo)
		}
	}
	for _, x := range i.Extras {
		if err := CheckTag(x.Tag); err != nil {
			return fmt.Errorf("%s tag: %w", x.Kind, err)
		}
		if err := x.Digest.Validate(); err != nil {
			return fmt.Errorf("%s digest %q: %w", x.Kind, x.Digest, err)
		}
	}
	return nil
}

// grammarHost stands in for the registry when a bare repository path is
// checked against the full name grammar.
const grammarHost = "registry.invalid"

// CheckRepoPath reports whether repo is a repository path under a
// registry (no host): lowercase components separated by single slashes,
// with no "." or ".." elements.
func CheckRepoPath(repo string) error {
	if _, err := reference.WithName(grammarHost + "/" + repo); err != nil || repo == "" {
		return fmt.Errorf("%q is not a repository path (lowercase letters, digits and separators, components joined by /, no . or ..)", repo)
	}
	return nil
}

// CheckTag reports whether tag is a valid tag.
func CheckTag(tag string) error {
	named, _ := reference.WithName(grammarHost + "/x")
	if _, err := reference.WithTag(named, tag); err != nil {
		return fmt.Errorf("%q is not a tag (up to 128 letters, digits, _, . and -, not starting with . or -)", tag)
	}
	return nil
}

// InsidePrefix reports whether dst, a repository path DestPath made
// under root (host[/prefix]) with maxNested, lies inside the prefix. When
// --max-nested-paths folds into the prefix itself, its tail components
// start the folded name, joined by "-", as the user asked.
func InsidePrefix(root string, maxNested int, dst string) bool {
	_, prefix, _ := strings.Cut(root, "/")
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return true
	}
	pp := strings.Split(prefix, "/")
	if maxNested <= 0 || len(pp) < maxNested {
		return strings.HasPrefix(dst, prefix+"/")
	}
	want := strings.Join(pp[maxNested-1:], "-") + "-"
	if head := strings.Join(pp[:maxNested-1], "/"); head != "" {
		want = head + "/" + want
	}
	return strings.HasPrefix(dst, want)
}
