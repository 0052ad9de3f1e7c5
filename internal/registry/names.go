package registry

import "strings"

// maxNameLength is the longest repository name accepted, as in distribution.
const maxNameLength = 255

// validName reports whether name is a repository name of the distribution
// spec: path components of [a-z0-9]+ joined by '.', '_', '__' or runs of
// '-', separated by '/'. It is hand-written because it sits on every request.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLength {
		return false
	}
	for _, comp := range strings.Split(name, "/") {
		if !validComponent(comp) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func validComponent(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		if isAlnum(c) {
			i++
			continue
		}
		// A separator run: ".", "_", "__" or one or more "-".
		j := i
		for j < len(s) && !isAlnum(s[j]) {
			j++
		}
		sep := s[i:j]
		switch {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

// validTag reports whether tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func validTag(tag string) bool {
	if tag == "" || len(tag) > 128 {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			i > 0 && (c == '.' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

// route is a parsed /v2/ request path.
type route struct {
	kind string // "base", "catalog", "manifest", "blob", "upload", "uploads", "tags", "referrers"
	name string // repository
	ref  string // tag, digest or upload id
	who  string // the user sending the request, or its address when anonymous
}

// parseRoute splits a /v2/ path. The repository name may contain slashes,
// so the route is found from the right: the last "/manifests/", "/blobs/",
// "/tags/list", "/referrers/" marker wins.
func parseRoute(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return route{kind: "base"}, true
		}
		return route{}, false
	}
	if rest == "" {
		return route{kind: "base"}, true
	}
	if rest == "_catalog" {
		return route{kind: "catalog"}, true
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return route{kind: "tags", name: name}, true
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads/"); ok {
		return route{kind: "uploads", name: name}, true
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads"); ok {
		return route{kind: "uploads", name: name}, true
	}
	if i := strings.LastIndex(rest, "/blobs/uploads/"); i > 0 {
		return route{kind: "upload", name: rest[:i], ref: rest[i+len("/blobs/uploads/"):]}, true
	}
	best, bestAt := "", -1
	for _, m := range [...]struct{ marker, kind string }{
		{"/manifests/", "manifest"}, {"/blobs/", "blob"}, {"/referrers/", "referrers"},
	} {
		if i := strings.LastIndex(rest, m.marker); i > bestAt {
			best, bestAt = m.marker, i
		}
	}
	if bestAt > 0 {
		ref := rest[bestAt+len(best):]
		if ref == "" || strings.Contains(ref, "/") {
			return route{}, false
		}
		kind := map[string]string{"/manifests/": "manifest", "/blobs/": "blob", "/referrers/": "referrers"}[best]
		return route{kind: kind, name: rest[:bestAt], ref: ref}, true
	}
	return route{}, false
}
