package release

import (
	"fmt"
	"strings"
)

// Arch is a release architecture as ImageSetConfiguration names it.
type Arch string

// The architectures OpenShift publishes releases for. Multi is the
// manifest-list payload that carries every architecture.
const (
	AMD64   Arch = "amd64"
	ARM64   Arch = "arm64"
	PPC64LE Arch = "ppc64le"
	S390X   Arch = "s390x"
	Multi   Arch = "multi"
)

// knownArches lists the architectures in the order users see them.
var knownArches = []Arch{AMD64, ARM64, PPC64LE, S390X, Multi}

// ParseArch accepts an architecture name from a config or a flag.
func ParseArch(s string) (Arch, error) {
	for _, a := range knownArches {
		if string(a) == s {
			return a, nil
		}
	}
	names := make([]string, len(knownArches))
	for i, a := range knownArches {
		names[i] = string(a)
	}
	return "", fmt.Errorf("unknown architecture %q: use one of %s", s, strings.Join(names, ", "))
}

// GraphArch is the value of the Cincinnati arch query parameter.
func (a Arch) GraphArch() string { return string(a) }

// TagSuffix is the architecture as release tags spell it (4.16.3-x86_64).
func (a Arch) TagSuffix() string {
	switch a {
	case AMD64:
		return "x86_64"
	case ARM64:
		return "aarch64"
	default:
		return string(a)
	}
}

// bootImageKey is the key of the architecture in the CoreOS boot-images
// stream JSON.
func (a Arch) bootImageKey() string { return a.TagSuffix() }
