package catalog

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
)

// spillAbove is the size from which a bundle's properties are kept in the
// spool rather than in memory: olm.bundle.object properties (a bundle's
// CSV and CRDs, base64) make a bundle tens of KB, and most of a catalog's
// bytes, while a filter keeps few bundles and never reads them.
const spillAbove = 16 << 10

// spool holds large document fields in an unlinked temporary file, so
// that reading a catalog takes memory for its small documents and the
// bundles kept, not for the whole catalog. The file goes when the last
// document referring to it is collected.
type spool struct {
	mu  sync.Mutex
	f   *os.File
	end int64
}

// newSpool creates the spool's file; nil when none can be made (reading
// then keeps everything in memory, as it did before the spool).
func newSpool() *spool {
	f, err := os.CreateTemp("", "ferry-catalog-*")
	if err != nil {
		return nil
	}
	os.Remove(f.Name()) // open but unlinked: no leftover on a crash
	s := &spool{f: f}
	runtime.AddCleanup(s, func(f *os.File) { f.Close() }, f)
	return s
}

// put appends b and returns where it is.
func (s *spool) put(b []byte) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off := s.end
	if _, err := s.f.WriteAt(b, off); err != nil {
		return 0, fmt.Errorf("catalog spool: %w", err)
	}
	s.end += int64(len(b))
	return off, nil
}

// spilled is a document field whose value is in a spool.
type spilled struct {
	key string
	sp  *spool
	off int64
	n   int
}

func (v *spilled) value() (json.RawMessage, error) {
	b := make([]byte, v.n)
	if _, err := v.sp.f.ReadAt(b, v.off); err != nil {
		return nil, fmt.Errorf("catalog spool: read %s: %w", v.key, err)
	}
	return b, nil
}

// spill moves d's field key (matched as the decoder matches it, ignoring
// case) to sp when it is larger than spillAbove.
func (d *doc) spill(sp *spool, key string) error {
	if sp == nil || d.big != nil {
		return nil
	}
	for k, v := range d.fields {
		if !strings.EqualFold(k, key) || len(v) <= spillAbove {
			continue
		}
		off, err := sp.put(v)
		if err != nil {
			return err
		}
		d.big = &spilled{key: k, sp: sp, off: off, n: len(v)}
		delete(d.fields, k)
		return nil
	}
	return nil
}

// allFields returns the document's fields with any spilled one read back.
func (d doc) allFields() (map[string]json.RawMessage, error) {
	if d.big == nil {
		return d.fields, nil
	}
	v, err := d.big.value()
	if err != nil {
		return nil, err
	}
	f := make(map[string]json.RawMessage, len(d.fields)+1)
	for k, x := range d.fields {
		f[k] = x
	}
	f[d.big.key] = v
	return f, nil
}
