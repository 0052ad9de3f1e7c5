package console

import (
	"sync"

	"github.com/opencontainers/go-digest"
)

// digestCache remembers what was read from an image by its manifest
// digest. Content addressed, so every replica computes the same and none
// needs to share; it is emptied when full rather than kept in order.
type digestCache[T any] struct {
	mu  sync.Mutex
	max int
	m   map[digest.Digest]*T
}

func newDigestCache[T any](max int) *digestCache[T] {
	return &digestCache[T]{max: max, m: map[digest.Digest]*T{}}
}

func (dc *digestCache[T]) get(d digest.Digest) *T {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.m[d]
}

func (dc *digestCache[T]) put(d digest.Digest, v *T) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if len(dc.m) >= dc.max {
		clear(dc.m)
	}
	dc.m[d] = v
}
