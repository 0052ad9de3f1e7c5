package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-mirror/ferry/internal/secretbox"
	"github.com/ferry-mirror/ferry/internal/store"
)

// keyring is the set of bearer-token signing keys, kept sealed in the
// metadata store under store.SecretSigningKeys. The newest key signs; the
// older ones still verify the tokens they signed until those expire, so a
// rotation needs no downtime.
type keyring struct {
	Keys []ringKey `json:"keys"` // oldest first
}

type ringKey struct {
	ID      string `json:"kid"`
	Key     []byte `json:"key"`
	Created int64  `json:"created"`
}

// ringPurpose binds the sealed ring to its slot.
const ringPurpose = "token signing keys"

// RingRefresh is how often a replica rereads the ring, so it signs with a
// rotated key within this long. A rotated-out key is kept until every
// token it may have signed has expired.
const RingRefresh = 30 * time.Second

func newRingKey(now time.Time) (ringKey, error) {
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		return ringKey{}, fmt.Errorf("random signing key: %w", err)
	}
	return ringKey{ID: hex.EncodeToString(b[:8]), Key: b[8:], Created: now.Unix()}, nil
}

func (r *keyring) newest() ringKey { return r.Keys[len(r.Keys)-1] }

func (r *keyring) key(id string) (ringKey, bool) {
	for _, k := range r.Keys {
		if k.ID == id {
			return k, true
		}
	}
	return ringKey{}, false
}

// prune drops keys that can no longer have signed a live token: those
// whose successor has existed longer than a token lives plus the time
// replicas take to notice the successor.
func (r *keyring) prune(now time.Time) bool {
	cut := now.Add(-(TokenLifetime + RingRefresh + clockSkew)).Unix()
	keep := r.Keys[:0:0]
	for i, k := range r.Keys {
		if i == len(r.Keys)-1 || r.Keys[i+1].Created > cut {
			keep = append(keep, k)
		}
	}
	pruned := len(keep) != len(r.Keys)
	r.Keys = keep
	return pruned
}

// ringStore reads and changes the sealed ring.
type ringStore struct {
	st  store.AuthStore
	box *secretbox.Box
}

// load returns the ring and its sealed form, creating the ring on first
// use. A plain signing key left by a version before sealing is replaced by
// a sealed ring: tokens it signed are refused and clients log in again.
func (rs ringStore) load(ctx context.Context, now time.Time) (*keyring, string, error) {
	for range 5 {
		fresh, err := newRingKey(now)
		if err != nil {
			return nil, "", err
		}
		cand, err := rs.seal(&keyring{Keys: []ringKey{fresh}})
		if err != nil {
			return nil, "", err
		}
		v, err := rs.st.Secret(ctx, store.SecretSigningKeys, cand)
		if err != nil {
			return nil, "", fmt.Errorf("signing keys: %w", err)
		}
		plain, err := rs.box.Open(ringPurpose, v)
		if errors.Is(err, secretbox.ErrNotSealed) {
			if _, err := rs.st.SwapSecret(ctx, store.SecretSigningKeys, v, cand); err != nil {
				return nil, "", fmt.Errorf("seal signing keys: %w", err)
			}
			continue // reread, whoever won
		}
		if err != nil {
			return nil, "", err
		}
		var r keyring
		if err := json.Unmarshal([]byte(plain), &r); err != nil || len(r.Keys) == 0 {
			return nil, "", errors.New("signing keys in the metadata store are damaged")
		}
		return &r, v, nil
	}
	return nil, "", errors.New("signing keys: the metadata store keeps changing them; retry")
}

func (rs ringStore) seal(r *keyring) (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("signing keys: %w", err)
	}
	return rs.box.Seal(ringPurpose, string(b)), nil
}

// update applies change to the stored ring until it wins against
// concurrent writers, and returns the ring stored.
func (rs ringStore) update(ctx context.Context, now time.Time, change func(*keyring) (bool, error)) (*keyring, error) {
	for range 10 {
		r, old, err := rs.load(ctx, now)
		if err != nil {
			return nil, err
		}
		changed, err := change(r)
		if err != nil || !changed {
			return r, err
		}
		v, err := rs.seal(r)
		if err != nil {
			return nil, err
		}
		ok, err := rs.st.SwapSecret(ctx, store.SecretSigningKeys, old, v)
		if err != nil {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
		if ok {
			return r, nil
		}
	}
	return nil, errors.New("signing keys: the metadata store keeps changing them; retry")
}

// RotateSigningKey adds a new signing key that every replica starts
// signing with within RingRefresh, and drops keys whose tokens have all
// expired. Tokens signed with older keys stay valid until they expire.
func RotateSigningKey(ctx context.Context, st store.AuthStore, box *secretbox.Box) (newID string, kept int, err error) {
	now := time.Now()
	r, err := ringStore{st, box}.update(ctx, now, func(r *keyring) (bool, error) {
		k, err := newRingKey(now)
		if err != nil {
			return false, err
		}
		r.prune(now)
		r.Keys = append(r.Keys, k)
		return true, nil
	})
	if err != nil {
		return "", 0, err
	}
	return r.newest().ID, len(r.Keys), nil
}
