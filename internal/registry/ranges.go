package registry

import (
	"strconv"
	"strings"
)

// parseContentRange parses the Content-Range of an upload chunk: the
// spec's "<start>-<end>" (inclusive), also accepting the "bytes " or
// "bytes=" prefix and "/<total>" suffix some clients send.
func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimSpace(s)
	if v, found := strings.CutPrefix(s, "bytes"); found {
		s = strings.TrimLeft(v, " =")
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}
