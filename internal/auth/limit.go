package auth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Throttled refuses a login that may not be tried now: too many recent
// failures from its address or for its user name, or every password check
// busy. It is answered 429 with Retry-After.
type Throttled struct {
	Msg        string
	RetryAfter time.Duration
	reason     string // metric label: address, user or busy
}

func (e *Throttled) Error() string { return e.Msg }

// RetryAfterSeconds is the Retry-After value: whole seconds, at least 1.
func (e *Throttled) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// failureLimiter is a token bucket per key (a client address or a user
// name): each failed login takes a token, one comes back every per, and
// a key with no token left may not try again until one does. Only
// failures count, so a client that logs in correctly is never slowed.
type failureLimiter struct {
	burst float64
	per   time.Duration
	max   int // keys tracked at most; memory stays bounded under a spray of names

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newFailureLimiter(burst int, per time.Duration, maxKeys int) *failureLimiter {
	return &failureLimiter{burst: float64(burst), per: per, max: maxKeys, m: map[string]*bucket{}}
}

// refill brings b up to now; the caller holds l.mu.
func (l *failureLimiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(l.burst, b.tokens+float64(d)/float64(l.per))
		b.at = now
	}
}

// wait returns how long key must wait before its next try; 0: it may try.
func (l *failureLimiter) wait(key string, now time.Time) time.Duration {
	return l.check(key, now, false)
}

// take counts an attempt for key before it is checked, so that many
// guesses sent at once cannot all pass before the first has failed. It
// returns 0 when the attempt may go on, else how long to wait. A login
// that succeeds gives its token back (refund).
func (l *failureLimiter) take(key string, now time.Time) time.Duration {
	return l.check(key, now, true)
}

// check returns how long key must wait (0: it may try) and, with spend,
// takes a token when there is one; only spend makes a bucket for a key
// that has none.
func (l *failureLimiter) check(key string, now time.Time, spend bool) time.Duration {
	if l == nil || l.burst <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[key]
	if !ok {
		if !spend {
			return 0
		}
		if len(l.m) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.m[key] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) * float64(l.per))
	}
	if spend {
		b.tokens--
	}
	return 0
}

// refund gives back the token of an attempt that did not fail.
func (l *failureLimiter) refund(key string, now time.Time) {
	if l == nil || l.burst <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.m[key]; ok {
		l.refill(b, now)
		b.tokens = min(l.burst, b.tokens+1)
	}
}

// evict forgets keys whose bucket is full again (they carry no
// information), and if none is, an arbitrary one: an attacker would need
// max fresh keys, each a failure of its own, to free one address's count.
func (l *failureLimiter) evict(now time.Time) {
	for k, b := range l.m {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) < l.max {
			break
		}
		delete(l.m, k)
	}
}

// checkSlots bounds the bcrypt checks running at once, so failed logins
// cannot take every core from the requests that serve pulls.
type checkSlots struct {
	ch   chan struct{}
	wait time.Duration // longest wait for a slot before answering 429
}

var errBusy = errors.New("busy")

func (s checkSlots) acquire(ctx context.Context) error {
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.ch <- struct{}{}:
		return nil
	case <-t.C:
		return errBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s checkSlots) release() { <-s.ch }

func throttled(reason, what string, d time.Duration) *Throttled {
	return &Throttled{reason: reason, RetryAfter: d, Msg: fmt.Sprintf("too many failed logins %s; retry in %ds with the right credentials", what, max(1, int(math.Ceil(d.Seconds()))))}
}
