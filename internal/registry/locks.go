package registry

import "sync"

// uploadLocks serializes requests on one upload session within this
// process, so two chunks sent at once cannot interleave their bytes in the
// data file while only one of them is recorded. (Across replicas the
// offset compare-and-swap in the metadata store rejects the loser.)
type uploadLocks struct {
	mu sync.Mutex
	m  map[string]*uploadLock
}

type uploadLock struct {
	sync.Mutex
	refs int
}

// lock takes the lock of upload id and returns its release.
func (l *uploadLocks) lock(id string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*uploadLock)
	}
	ul := l.m[id]
	if ul == nil {
		ul = &uploadLock{}
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
