package plan

import "github.com/distribution/reference"

// sourceRef is an image reference cut into what a registry request needs.
type sourceRef struct {
	named reference.Named // normalized; tagged latest when it had neither tag nor digest
	host  string
	path  string
	tag   string // "" when the reference has none
	// ref is what to fetch: the digest when there is one (repo:tag@digest
	// is pulled by the digest, as oc-mirror does), else the tag.
	ref string
}

// splitRef parses an image reference as users write it (docker.io and
// library/ implied). Its error is the parser's; callers say which setting
// held the reference.
func splitRef(s string) (sourceRef, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return sourceRef{}, err
	}
	named = reference.TagNameOnly(named)
	r := sourceRef{named: named, host: reference.Domain(named), path: reference.Path(named)}
	if t, ok := named.(reference.Tagged); ok {
		r.tag, r.ref = t.Tag(), t.Tag()
	}
	if c, ok := named.(reference.Canonical); ok {
		r.ref = c.Digest().String()
	}
	return r, nil
}

// repo is host/path.
func (r sourceRef) repo() string { return r.host + "/" + r.path }
