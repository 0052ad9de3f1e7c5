package upload

import "sync"

// locks serializes requests on one upload session within this
// process, so two chunks sent at once cannot interleave their bytes in the
// data file while only one of them is recorded. (Across replicas the
// offset compare-and-swap in the metadata store rejects the loser.)
type locks struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	sync.Mutex
	refs int
}

// lock takes the lock of upload id and returns its release.
func (l *locks) lock(id string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*entry)
	}
	ul := l.m[id]
	if ul == nil {
		ul = &entry{}
		l.m[id] = ul
	}
	ul.refs++
	l.mu.Unlock()
	ul.Lock()
	return func() {
		ul.Unlock()
		l.mu.Lock()
		if ul.refs--; ul.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}
