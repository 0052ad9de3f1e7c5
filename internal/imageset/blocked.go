package imageset

import "regexp"

// BlockedPatterns compiles mirror.blockedImages. Parse has already checked
// that every expression compiles, so this cannot fail on a parsed config.
func (m *Mirror) BlockedPatterns() []*regexp.Regexp {
	res := make([]*regexp.Regexp, 0, len(m.BlockedImages))
	for _, b := range m.BlockedImages {
		res = append(res, regexp.MustCompile(b.Name))
	}
	return res
}
