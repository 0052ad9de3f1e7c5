package registry

import (
	"context"
	"crypto/rand"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

func newUploadID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func uploadLocation(repo, id string) string { return "/v2/" + repo + "/blobs/uploads/" + id }

func uploadUnknown(id string) *apiError {
	return newError(errBlobUploadUnknown, "upload "+quote(id)+" is not known; start a new one with POST /v2/<name>/blobs/uploads/")
}

// blobCreated answers a finished upload or mount.
func blobCreated(w http.ResponseWriter, repo string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", "/v2/"+repo+"/blobs/"+string(d))
	h.Set("Docker-Content-Digest", string(d))
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// uploadAccepted answers a session still open at offset.
func uploadAccepted(w http.ResponseWriter, status int, repo, id string, offset int64) {
	h := w.Header()
	h.Set("Location", uploadLocation(repo, id))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Range", rangeHeader(offset))
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// rangeHeader is the inclusive byte range received so far; "0-0" for none,
// as distribution answers.
func rangeHeader(offset int64) string {
	if offset == 0 {
		return "0-0"
	}
	return "0-" + strconv.FormatInt(offset-1, 10)
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

// startUpload handles POST /v2/<name>/blobs/uploads/: a mount, a
// monolithic upload (?digest=), or a new session.
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	q := req.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, aerr := parseDigest(m)
		if aerr != nil {
			return aerr
		}
		mounted, err := r.mount(req, rt.name, d, q.Get("from"))
		if err != nil {
			return err
		}
		if mounted {
			blobCreated(w, rt.name, d)
			return nil
		}
		// Not mountable: the spec says open a session instead.
	}
	if ds := q.Get("digest"); ds != "" {
		d, aerr := parseDigest(ds)
		if aerr != nil {
			return aerr
		}
		id := newUploadID()
		h := d.Algorithm().Hash()
		n, err := r.blobs.WriteUpload(ctx, id, 0, io.TeeReader(bodyReader{req.Body}, h))
		if err != nil {
			r.blobs.DeleteUpload(ctx, id)
			return err
		}
		if err := r.commit(ctx, rt.name, id, d, digest.NewDigest(d.Algorithm(), h), n); err != nil {
			r.blobs.DeleteUpload(ctx, id)
			return err
		}
		blobCreated(w, rt.name, d)
		return nil
	}
	if err := r.checkUploadQuota(ctx, w, rt.who); err != nil {
		return err
	}
	u := &store.Upload{ID: newUploadID(), Repo: rt.name, Algorithm: digest.Canonical, Owner: rt.who}
	state, err := marshalHash(u.Algorithm.Hash())
	if err != nil {
		return err
	}
	u.HashState = state
	if _, err := r.blobs.WriteUpload(ctx, u.ID, 0, http.NoBody); err != nil {
		return err
	}
	if err := r.meta.CreateUpload(ctx, u); err != nil {
		return err
	}
	uploadAccepted(w, http.StatusAccepted, rt.name, u.ID, 0)
	return nil
}

// checkUploadQuota refuses a new session to who when it has as many open
// as allowed. The count is read from the metadata store, so it holds
// across replicas; two sessions opened at the same instant may both pass,
// which a limit against floods can afford.
func (r *Registry) checkUploadQuota(ctx context.Context, w http.ResponseWriter, who string) error {
	if r.maxUploads <= 0 {
		return nil
	}
	n, err := r.meta.OpenUploads(ctx, who)
	if err != nil {
		return err
	}
	if n < r.maxUploads {
		return nil
	}
	w.Header().Set("Retry-After", "30")
	return newError(errTooManyRequests, fmt.Sprintf("%s has %d upload sessions open, the most allowed (--max-uploads-per-user); finish or cancel (DELETE) open uploads, or wait until abandoned ones are purged (--upload-max-age)", quote(who), n))
}

// mount links blob d into repo from repository from, or, when from is
// empty, from any repository holding it.
func (r *Registry) mount(req *http.Request, repo string, d digest.Digest, from string) (bool, error) {
	ctx := req.Context()
	var size int64
	var err error
	switch {
	case from == "":
		size, err = r.meta.AnyBlobLink(ctx, d)
	case validName(from):
		size, err = r.meta.BlobLink(ctx, from, d)
	default:
		return false, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := r.meta.LinkBlob(ctx, repo, d, size); errors.Is(err, store.ErrDeleting) {
		return false, nil // the client uploads it instead
	} else if err != nil {
		return false, err
	}
	if err := r.linkedBytesExist(ctx, repo, d); errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, nil
}

// commit checks the computed digest got against the client's want and
// makes the blob readable in repo.
func (r *Registry) commit(ctx context.Context, repo, id string, want, got digest.Digest, size int64) error {
	if got != want {
		return newError(errDigestInvalid, fmt.Sprintf("the %d bytes uploaded have digest %s, not %s; nothing was stored, upload the right content or correct the digest", size, got, want)).
			withDetail(map[string]string{"digest": string(want), "computed": string(got)})
	}
	if err := r.blobs.CommitUpload(ctx, id, want); errors.Is(err, store.ErrNotFound) {
		return uploadUnknown(id)
	} else if err != nil {
		return err
	}
	return r.link(ctx, repo, want, size)
}

// link makes the stored blob d readable in repo, unless a collector is
// deleting it this moment.
func (r *Registry) link(ctx context.Context, repo string, want digest.Digest, size int64) error {
	gone := newError(errUnavailable, fmt.Sprintf("blob %s was being removed by garbage collection at this moment; upload it again", want))
	if err := r.meta.LinkBlob(ctx, repo, want, size); errors.Is(err, store.ErrDeleting) {
		// The store already held these bytes, so the upload was dropped,
		// and a collector is deleting them this moment.
		return gone
	} else if err != nil {
		return err
	}
	if err := r.linkedBytesExist(ctx, repo, want); errors.Is(err, store.ErrNotFound) {
		return gone
	} else if err != nil {
		return err
	}
	return nil
}

// linkedBytesExist checks, once blob d is linked in repo, that its bytes
// are still stored. A collector claims a blob only while nothing links
// it, so once linked the bytes stay; but one that deleted them between
// the commit (which found them there and dropped the upload) and the link
// would leave a link to nothing, which is undone here.
func (r *Registry) linkedBytesExist(ctx context.Context, repo string, d digest.Digest) error {
	_, err := r.blobs.Stat(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		if uerr := r.meta.UnlinkBlob(ctx, repo, d); uerr != nil && !errors.Is(uerr, store.ErrNotFound) {
			return uerr
		}
	}
	return err
}

// loadUpload locks session rt.ref and loads it; the caller must call
// release, even on error.
func (r *Registry) loadUpload(req *http.Request, rt route) (u *store.Upload, release func(), err error) {
	release = r.uploads.lock(rt.ref)
	u, err = r.meta.Upload(req.Context(), rt.ref)
	if errors.Is(err, store.ErrNotFound) || err == nil && u.Repo != rt.name {
		return nil, release, uploadUnknown(rt.ref)
	}
	return u, release, err
}

// appendChunk writes the request body at the session's offset and records
// the new offset and hash state.
func (r *Registry) appendChunk(w http.ResponseWriter, req *http.Request, u *store.Upload) error {
	h, n, err := r.writeChunk(w, req, u)
	if errors.Is(err, store.ErrNotFound) {
		// The session's data file is gone (cleaned up, or lost with a disk).
		return uploadUnknown(u.ID)
	}
	if err != nil || n == 0 {
		return err
	}
	from := u.Offset
	u.Offset += n
	if u.HashState, err = marshalHash(h); err != nil {
		return err
	}
	if err := r.meta.AdvanceUpload(req.Context(), u, from); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return newError(errBlobUploadInvalid, "another request wrote to this upload at the same time; check its status with GET and continue from there").
				withStatus(http.StatusRequestedRangeNotSatisfiable)
		}
		if errors.Is(err, store.ErrNotFound) {
			return uploadUnknown(u.ID)
		}
		return err
	}
	return nil
}

// writeChunk writes the request body at the session's offset, after
// checking Content-Range, and returns the running hash over the session
// and the chunk, and the chunk's length. It does not move the session:
// until the offset is recorded, the bytes written are strays that the
// next write at the same offset replaces, so a request resent after a
// failure (or by a balancer after a replica died) cannot add its body
// twice. A chunk whose length is not the one its Content-Range announces
// is refused. The data file being gone is store.ErrNotFound, with the
// body unread.
func (r *Registry) writeChunk(w http.ResponseWriter, req *http.Request, u *store.Upload) (hash.Hash, int64, error) {
	want := int64(-1)
	if cr := req.Header.Get("Content-Range"); cr != "" {
		start, end, ok := parseContentRange(cr)
		if !ok || start != u.Offset {
			return nil, 0, rangeInvalid(w, u, fmt.Sprintf("Content-Range %q does not continue the upload, which has %d bytes; send the chunk starting at byte %d", cr, u.Offset, u.Offset))
		}
		want = end - start + 1
		if req.ContentLength >= 0 && req.ContentLength != want {
			return nil, 0, rangeInvalid(w, u, fmt.Sprintf("Content-Range %q is %d bytes but Content-Length is %d; send a chunk as long as its range", cr, want, req.ContentLength))
		}
	}
	h, err := restoreHash(u)
	if err != nil {
		return nil, 0, err
	}
	body := io.Reader(bodyReader{req.Body})
	if want >= 0 {
		body = io.LimitReader(body, want+1) // one byte more tells a longer chunk
	}
	n, err := r.blobs.WriteUpload(req.Context(), u.ID, u.Offset, io.TeeReader(body, h))
	if err != nil {
		return nil, 0, err
	}
	if want >= 0 && n != want {
		got := strconv.FormatInt(n, 10)
		if n > want {
			got = "more than " + strconv.FormatInt(want, 10)
		}
		return nil, 0, rangeInvalid(w, u, fmt.Sprintf("Content-Range %q announces %d bytes but the chunk had %s; nothing was added, send the chunk again with its true range", req.Header.Get("Content-Range"), want, got))
	}
	return h, n, nil
}

// rangeInvalid answers 416 with the range the session really has, so the
// client can continue from there.
func rangeInvalid(w http.ResponseWriter, u *store.Upload, msg string) *apiError {
	w.Header().Set("Location", uploadLocation(u.Repo, u.ID))
	w.Header().Set("Range", rangeHeader(u.Offset))
	return newError(errRangeInvalid, msg)
}

// patchUpload handles PATCH: one chunk, in order.
func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	u, release, err := r.loadUpload(req, rt)
	defer release()
	if err != nil {
		return err
	}
	if err := r.appendChunk(w, req, u); err != nil {
		return err
	}
	uploadAccepted(w, http.StatusAccepted, rt.name, u.ID, u.Offset)
	return nil
}

// finishUpload handles PUT ?digest=: an optional last chunk, then the
// digest check and the commit. It is safe to repeat: the last chunk
// becomes part of the session only in the commit, so the same PUT resent
// after a replica died mid-way (by a balancer, or the client) finds
// either the session as it was, the data already committed, or the
// session ended with the blob in place, and answers 201 each time the
// bytes are right.
func (r *Registry) finishUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	ds := req.URL.Query().Get("digest")
	if ds == "" {
		return newError(errDigestInvalid, "closing an upload needs ?digest=<algorithm>:<hex> of the whole blob")
	}
	d, aerr := parseDigest(ds)
	if aerr != nil {
		return aerr
	}
	ctx := req.Context()
	u, release, err := r.loadUpload(req, rt)
	defer release()
	var ae *apiError
	if errors.As(err, &ae) && ae.code == errBlobUploadUnknown {
		return r.finishedBefore(w, req, rt, d, err)
	}
	if err != nil {
		return err
	}
	h, n, err := r.writeChunk(w, req, u)
	committed := false
	if errors.Is(err, store.ErrNotFound) {
		// The data is gone: an earlier attempt of this PUT committed it
		// and stopped before ending the session, or it was purged. The
		// body, unread, tells which.
		if _, serr := r.blobs.Stat(ctx, d); serr != nil {
			return uploadUnknown(u.ID)
		}
		if h, err = restoreHash(u); err != nil {
			return err
		}
		n, err = io.Copy(h, bodyReader{req.Body})
		committed = true
	}
	if err != nil {
		return err
	}
	size := u.Offset + n
	var got digest.Digest
	if d.Algorithm() == u.Algorithm {
		got = digest.NewDigest(u.Algorithm, h)
	} else if committed {
		got = "" // cannot be checked without the data: a fresh upload will do
	} else {
		// The running hash is sha256; another algorithm needs one read.
		rc, err := r.blobs.OpenUpload(ctx, u.ID)
		if errors.Is(err, store.ErrNotFound) {
			return uploadUnknown(u.ID)
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
	if committed {
		if got != d {
			return uploadUnknown(u.ID)
		}
		err = r.link(ctx, rt.name, d, size)
	} else {
		err = r.commit(ctx, rt.name, u.ID, d, got, size)
	}
	if err != nil {
		return err
	}
	if err := r.meta.DeleteUpload(ctx, u.ID); err != nil {
		return err
	}
	blobCreated(w, rt.name, d)
	return nil
}

// finishedBefore answers a PUT ?digest= on a session that does not exist
// (any more). When blob d is already in repo, an earlier attempt of the
// same PUT most likely committed it and ended the session before its
// answer was lost; the body, when it is the whole blob, must then have
// digest d, and the repeat gets 201. Anything else is unknownErr.
func (r *Registry) finishedBefore(w http.ResponseWriter, req *http.Request, rt route, d digest.Digest, unknownErr error) error {
	ctx := req.Context()
	if _, err := r.meta.BlobLink(ctx, rt.name, d); errors.Is(err, store.ErrNotFound) {
		return unknownErr
	} else if err != nil {
		return err
	}
	if req.ContentLength != 0 {
		if !d.Algorithm().Available() {
			return unknownErr
		}
		got, err := d.Algorithm().FromReader(bodyReader{req.Body})
		if err != nil {
			return err
		}
		if got != d {
			return unknownErr
		}
	}
	if err := r.linkedBytesExist(ctx, rt.name, d); errors.Is(err, store.ErrNotFound) {
		return unknownErr
	} else if err != nil {
		return err
	}
	blobCreated(w, rt.name, d)
	return nil
}

// uploadStatus handles GET on a session.
func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, rt route) error {
	u, release, err := r.loadUpload(req, rt)
	defer release()
	if err != nil {
		return err
	}
	uploadAccepted(w, http.StatusNoContent, rt.name, u.ID, u.Offset)
	return nil
}

// cancelUpload handles DELETE on a session.
func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	u, release, err := r.loadUpload(req, rt)
	defer release()
	if err != nil {
		return err
	}
	if err := r.meta.DeleteUpload(req.Context(), u.ID); err != nil {
		return err
	}
	if err := r.blobs.DeleteUpload(req.Context(), u.ID); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
