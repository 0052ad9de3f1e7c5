// Package upload is the blob upload protocol of the registry, over a
// store.BlobStore (the session's data) and a store.MetadataStore (its
// offset, running hash and owner): start, resume, append, commit, cancel
// and purge. Like distribution's BlobWriter it hides the hash state, the
// offset compare-and-swap between replicas, the per-process lock and the
// commit's race with garbage collection, so the HTTP handler deals only
// with headers and status codes.
//
// Every step is safe to repeat after a replica died mid-way, which a load
// balancer does by resending the request to another replica: a chunk is
// written past the recorded offset and counts only once the offset moves,
// and the last chunk (the body of PUT ?digest=) counts only in the commit.
package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

// ErrUnknown is a session that does not exist: never started, cancelled,
// finished, purged, or in another repository. The client starts again.
var ErrUnknown = errors.New("upload session unknown")

// ErrConflict is a chunk that lost the race with another request writing
// to the same session; the client asks for the offset and continues.
var ErrConflict = errors.New("another request wrote to the upload session at the same time")

// ErrGone is a commit that met a garbage collector deleting the same blob:
// nothing was linked, and the client uploads it again.
var ErrGone = errors.New("blob was being removed by garbage collection")

// RangeError is a chunk that does not continue the session: it starts
// elsewhere, or its length is not the one announced. Nothing was added.
type RangeError struct {
	Offset int64 // what the session has
	Msg    string
}

func (e *RangeError) Error() string { return e.Msg }

// DigestError is a commit whose bytes do not have the digest the client
// gave. Nothing was stored.
type DigestError struct {
	Want, Got digest.Digest
	Size      int64
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("the %d bytes uploaded have digest %s, not %s", e.Size, e.Got, e.Want)
}

// QuotaError refuses a session to an owner that has as many open as
// allowed.
type QuotaError struct {
	Owner string
	Open  int
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%q has %d upload sessions open, the most allowed", e.Owner, e.Open)
}

// Range is what a chunk announces (Content-Range): its first byte and its
// length.
type Range struct {
	Start, Length int64
}

// Manager runs upload sessions over the stores every replica shares.
type Manager struct {
	blobs       store.BlobStore
	meta        store.MetadataStore
	maxPerOwner int
	locks       locks
}

// New returns a Manager; maxPerOwner, when positive, bounds the sessions
// an owner may have open.
func New(blobs store.BlobStore, meta store.MetadataStore, maxPerOwner int) *Manager {
	return &Manager{blobs: blobs, meta: meta, maxPerOwner: maxPerOwner}
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Session is an open upload session, locked in this process until Close.
type Session struct {
	m       *Manager
	u       *store.Upload
	release func()
}

// ID is the session's id, the last element of its URL.
func (s *Session) ID() string { return s.u.ID }

// Repo is the repository the blob goes into.
func (s *Session) Repo() string { return s.u.Repo }

// Offset is how many bytes the session has.
func (s *Session) Offset() int64 { return s.u.Offset }

// Close releases the session's lock; the session itself stays open.
func (s *Session) Close() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
}

// Start opens a session for owner in repo. The owner's open sessions are
// counted in the metadata store, so the limit holds across replicas; two
// opened at the same instant may both pass, which a limit against floods
// can afford.
func (m *Manager) Start(ctx context.Context, repo, owner string) (*Session, error) {
	if m.maxPerOwner > 0 {
		n, err := m.meta.OpenUploads(ctx, owner)
		if err != nil {
			return nil, err
		}
		if n >= m.maxPerOwner {
			return nil, &QuotaError{Owner: owner, Open: n}
		}
	}
	u := &store.Upload{ID: newID(), Repo: repo, Algorithm: digest.Canonical, Owner: owner}
	state, err := marshalHash(u.Algorithm.Hash())
	if err != nil {
		return nil, err
	}
	u.HashState = state
	if _, err := m.blobs.WriteUpload(ctx, u.ID, 0, eof{}); err != nil {
		return nil, err
	}
	if err := m.meta.CreateUpload(ctx, u); err != nil {
		return nil, err
	}
	return &Session{m: m, u: u, release: m.locks.lock(u.ID)}, nil
}

// eof is an empty body.
type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }

// Resume locks and loads session id of repo; ErrUnknown when there is
// none. Requests on one session are serialized within this process, so
// two chunks sent at once cannot interleave their bytes while only one is
// recorded; across replicas the offset compare-and-swap rejects the loser.
func (m *Manager) Resume(ctx context.Context, repo, id string) (*Session, error) {
	release := m.locks.lock(id)
	u, err := m.meta.Upload(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && u.Repo != repo {
		release()
		return nil, fmt.Errorf("upload %s: %w", id, ErrUnknown)
	}
	if err != nil {
		release()
		return nil, fmt.Errorf("upload %s: %w", id, err)
	}
	return &Session{m: m, u: u, release: release}, nil
}

// Append adds r at the session's offset and records the new offset and
// hash state. rng, when not nil, is what the chunk announced.
func (s *Session) Append(ctx context.Context, r io.Reader, rng *Range) error {
	h, n, err := s.write(ctx, r, rng)
	if errors.Is(err, store.ErrNotFound) {
		// The data is gone (purged, or lost with a disk).
		return fmt.Errorf("upload %s: %w", s.u.ID, ErrUnknown)
	}
	if err != nil || n == 0 {
		return err
	}
	next := *s.u
	next.Offset += n
	if next.HashState, err = marshalHash(h); err != nil {
		return err
	}
	switch err := s.m.meta.AdvanceUpload(ctx, &next, s.u.Offset); {
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("upload %s: %w", s.u.ID, ErrConflict)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("upload %s: %w", s.u.ID, ErrUnknown)
	case err != nil:
		return err
	}
	s.u = &next
	return nil
}

// write writes r at the session's offset, after checking rng, and returns
// the running hash over the session and the chunk, and the chunk's length.
// It does not move the session: until the offset is recorded, the bytes
// are strays that the next write at the same offset replaces, so a
// request resent after a failure cannot add its body twice. The data
// being gone is store.ErrNotFound, with r unread.
func (s *Session) write(ctx context.Context, r io.Reader, rng *Range) (hash.Hash, int64, error) {
	u := s.u
	if rng != nil && rng.Start != u.Offset {
		return nil, 0, &RangeError{Offset: u.Offset, Msg: fmt.Sprintf("the chunk starts at byte %d but the upload has %d bytes; send the chunk starting at byte %d", rng.Start, u.Offset, u.Offset)}
	}
	h, err := restoreHash(u)
	if err != nil {
		return nil, 0, err
	}
	if rng != nil {
		r = io.LimitReader(r, rng.Length+1) // one byte more tells a longer chunk
	}
	n, err := s.m.blobs.WriteUpload(ctx, u.ID, u.Offset, io.TeeReader(r, h))
	if err != nil {
		return nil, 0, err
	}
	if rng != nil && n != rng.Length {
		got := fmt.Sprint(n)
		if n > rng.Length {
			got = fmt.Sprintf("more than %d", rng.Length)
		}
		return nil, 0, &RangeError{Offset: u.Offset, Msg: fmt.Sprintf("the chunk announced %d bytes but had %s; nothing was added, send the chunk again with its true range", rng.Length, got)}
	}
	return h, n, nil
}

// Commit adds the last chunk r (possibly empty) and, when the whole has
// digest d, makes it blob d of the session's repository and ends the
// session. It is safe to repeat: a repeat that finds the data already
// committed by an attempt that died before ending the session checks r
// against the recorded hash and succeeds.
func (s *Session) Commit(ctx context.Context, d digest.Digest, r io.Reader, rng *Range) error {
	u := s.u
	h, n, err := s.write(ctx, r, rng)
	committed := false
	if errors.Is(err, store.ErrNotFound) {
		// The data is gone: committed by an earlier attempt of this
		// request, or purged. r, unread, tells which.
		if _, serr := s.m.blobs.Stat(ctx, d); serr != nil || d.Algorithm() != u.Algorithm {
			return fmt.Errorf("upload %s: %w", u.ID, ErrUnknown)
		}
		if h, err = restoreHash(u); err != nil {
			return err
		}
		n, err = io.Copy(h, r)
		committed = true
	}
	if err != nil {
		return err
	}
	size := u.Offset + n
	var got digest.Digest
	if d.Algorithm() == u.Algorithm {
		got = digest.NewDigest(u.Algorithm, h)
	} else {
		// The running hash is sha256; another algorithm needs one read.
		rc, err := s.m.blobs.OpenUpload(ctx, u.ID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("upload %s: %w", u.ID, ErrUnknown)
		}
		if err != nil {
			return err
		}
		got, err = d.Algorithm().FromReader(io.LimitReader(rc, size))
		rc.Close()
		if err != nil {
			return err
		}
	}
	switch {
	case committed && got != d:
		return fmt.Errorf("upload %s: %w", u.ID, ErrUnknown)
	case committed:
		err = s.m.link(ctx, u.Repo, d, size)
	default:
		err = s.m.commit(ctx, u.Repo, u.ID, d, got, size)
	}
	if err != nil {
		return err
	}
	return s.m.meta.DeleteUpload(ctx, u.ID)
}

// Cancel ends the session and drops its data.
func (s *Session) Cancel(ctx context.Context) error {
	if err := s.m.meta.DeleteUpload(ctx, s.u.ID); err != nil {
		return err
	}
	return s.m.blobs.DeleteUpload(ctx, s.u.ID)
}

// Recommit answers a commit of blob d into repo on a session that does not
// exist (any more). When d is already in repo, an earlier attempt of the
// same request most likely committed it and ended the session before its
// answer was lost. The resent body r (bodyLen bytes, -1 when unknown) must
// then be what that attempt sent: nothing, the blob's last bodyLen bytes
// (the last chunk), or, of unknown length, the whole blob. It reports
// whether d is in repo and r fits.
func (m *Manager) Recommit(ctx context.Context, repo string, d digest.Digest, r io.Reader, bodyLen int64) (bool, error) {
	size, err := m.meta.BlobLink(ctx, repo, d)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	switch {
	case bodyLen < 0:
		if !d.Algorithm().Available() {
			return false, nil
		}
		if got, err := d.Algorithm().FromReader(r); err != nil || got != d {
			return false, err
		}
	case bodyLen > 0:
		if ok, err := m.endsWith(ctx, d, size, r, bodyLen); err != nil || !ok {
			return false, err
		}
	}
	return m.stillStored(ctx, repo, d)
}

// endsWith reports whether blob d (size bytes) ends with the n bytes of r.
func (m *Manager) endsWith(ctx context.Context, d digest.Digest, size int64, r io.Reader, n int64) (bool, error) {
	if n > size {
		return false, nil
	}
	b, err := m.blobs.Open(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	defer b.Close()
	if _, err := b.Seek(size-n, io.SeekStart); err != nil {
		return false, fmt.Errorf("blob %s: %w", d, err)
	}
	const chunk = 64 << 10
	want, got := make([]byte, chunk), make([]byte, chunk)
	for n > 0 {
		k := min(n, chunk)
		if _, err := io.ReadFull(b, want[:k]); err != nil {
			return false, fmt.Errorf("blob %s: %w", d, err)
		}
		if _, err := io.ReadFull(r, got[:k]); err != nil {
			return false, err
		}
		if !bytes.Equal(want[:k], got[:k]) {
			return false, nil
		}
		n -= k
	}
	return true, nil
}

// Put stores r as blob d of repo in one step (POST ?digest=). A new data
// file each time, so a repeat is harmless.
func (m *Manager) Put(ctx context.Context, repo string, d digest.Digest, r io.Reader) error {
	id := newID()
	h := d.Algorithm().Hash()
	n, err := m.blobs.WriteUpload(ctx, id, 0, io.TeeReader(r, h))
	if err == nil {
		err = m.commit(ctx, repo, id, d, digest.NewDigest(d.Algorithm(), h), n)
	}
	if err != nil {
		m.blobs.DeleteUpload(context.WithoutCancel(ctx), id)
		return err
	}
	return nil
}

// Mount links blob d into repo from repository from, or, when from is
// empty, from any repository holding it; false when it is not there.
func (m *Manager) Mount(ctx context.Context, repo string, d digest.Digest, from string) (bool, error) {
	var size int64
	var err error
	if from == "" {
		size, err = m.meta.AnyBlobLink(ctx, d)
	} else {
		size, err = m.meta.BlobLink(ctx, from, d)
	}
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := m.meta.LinkBlob(ctx, repo, d, size); errors.Is(err, store.ErrDeleting) {
		return false, nil // the client uploads it instead
	} else if err != nil {
		return false, err
	}
	return m.stillStored(ctx, repo, d)
}

// commit checks the computed digest got against the client's want and
// makes upload id blob want of repo.
func (m *Manager) commit(ctx context.Context, repo, id string, want, got digest.Digest, size int64) error {
	if got != want {
		return &DigestError{Want: want, Got: got, Size: size}
	}
	if err := m.blobs.CommitUpload(ctx, id, want); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("upload %s: %w", id, ErrUnknown)
	} else if err != nil {
		return err
	}
	return m.link(ctx, repo, want, size)
}

// link makes the stored blob d readable in repo, unless a collector is
// deleting it this moment: the store may have held d already and dropped
// the upload, while a collector claimed d.
func (m *Manager) link(ctx context.Context, repo string, d digest.Digest, size int64) error {
	if err := m.meta.LinkBlob(ctx, repo, d, size); errors.Is(err, store.ErrDeleting) {
		return fmt.Errorf("blob %s: %w", d, ErrGone)
	} else if err != nil {
		return err
	}
	if err := m.linkedBytesExist(ctx, repo, d); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("blob %s: %w", d, ErrGone)
	} else if err != nil {
		return err
	}
	return nil
}

// stillStored is linkedBytesExist for the callers that answer that d is
// not there rather than fail when its bytes went.
func (m *Manager) stillStored(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	err := m.linkedBytesExist(ctx, repo, d)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// linkedBytesExist checks, once blob d is linked in repo, that its bytes
// are still stored. A collector claims a blob only while nothing links
// it, so once linked the bytes stay; but one that deleted them between
// the commit (which found them there and dropped the upload) and the link
// would leave a link to nothing, which is undone here.
func (m *Manager) linkedBytesExist(ctx context.Context, repo string, d digest.Digest) error {
	_, err := m.blobs.Stat(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		if uerr := m.meta.UnlinkBlob(ctx, repo, d); uerr != nil && !errors.Is(uerr, store.ErrNotFound) {
			return uerr
		}
	}
	return err
}

func marshalHash(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, fmt.Errorf("hash %T cannot save its state", h)
	}
	return m.MarshalBinary()
}

func restoreHash(u *store.Upload) (hash.Hash, error) {
	if !u.Algorithm.Available() {
		return nil, fmt.Errorf("upload %s: digest algorithm %q unavailable", u.ID, u.Algorithm)
	}
	h := u.Algorithm.Hash()
	if len(u.HashState) > 0 {
		um, ok := h.(encoding.BinaryUnmarshaler)
		if !ok {
			return nil, fmt.Errorf("hash %T cannot restore its state", h)
		}
		if err := um.UnmarshalBinary(u.HashState); err != nil {
			return nil, fmt.Errorf("upload %s: restore hash state: %w", u.ID, err)
		}
	}
	return h, nil
}
