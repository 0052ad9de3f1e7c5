package clusterresources

import (
	"fmt"
	"strings"
)

// registriesConf renders containers-registries.conf(5) version 2: one
// [[registry]] per source repository, with a [[registry.mirror]] per
// destination. A mirror of digest references only is "digest-only", so a
// tag never resolves to whatever the mirror holds under that tag; a mirror
// that also received the source's tags serves both ("all").
func registriesConf(repos []repoMirror, insecure bool) []byte {
	var b strings.Builder
	b.WriteString("# Written by ferry: pull the mirrored images from the mirror registry.\n")
	b.WriteString("# For CRI-O and podman hosts outside OpenShift: merge into /etc/containers/registries.conf.\n")
	b.WriteString("unqualified-search-registries = []\n")
	for i := 0; i < len(repos); {
		src := repos[i].source
		type mirror struct {
			location     string
			digest, tags bool
		}
		var mirrors []*mirror
		for ; i < len(repos) && repos[i].source == src; i++ {
			r := repos[i]
			if n := len(mirrors); n == 0 || mirrors[n-1].location != r.mirror {
				mirrors = append(mirrors, &mirror{location: r.mirror})
			}
			m := mirrors[len(mirrors)-1]
			if r.byTag {
				m.tags = true
			} else {
				m.digest = true
			}
		}
		fmt.Fprintf(&b, "\n[[registry]]\n  prefix = %s\n  location = %s\n", quote(src), quote(src))
		for _, m := range mirrors {
			policy := "digest-only"
			if m.tags {
				policy = "all"
			}
			fmt.Fprintf(&b, "\n  [[registry.mirror]]\n    location = %s\n    pull-from-mirror = %s\n", quote(m.location), quote(policy))
			if insecure {
				b.WriteString("    insecure = true\n")
			}
		}
	}
	return []byte(b.String())
}

// quote makes a TOML basic string. Repository names hold only
// [a-z0-9._/:-], but quoting stays correct for anything.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
