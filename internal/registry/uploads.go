package registry

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/upload"
)

// The upload protocol itself (hash state, offsets, commit, the race with
// garbage collection) is package upload's; these handlers turn HTTP into
// its calls and its errors into the spec's answers.

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

// uploadError answers the errors of package upload for session id of
// repo; others pass through.
func uploadError(w http.ResponseWriter, repo, id string, err error) error {
	var re *upload.RangeError
	var de *upload.DigestError
	var qe *upload.QuotaError
	switch {
	case errors.Is(err, upload.ErrUnknown):
		return uploadUnknown(id)
	case errors.Is(err, upload.ErrConflict):
		return newError(errBlobUploadInvalid, "another request wrote to this upload at the same time; check its status with GET and continue from there").
			withStatus(http.StatusRequestedRangeNotSatisfiable)
	case errors.Is(err, upload.ErrGone):
		return newError(errUnavailable, err.Error()+" at this moment; upload it again")
	case errors.As(err, &re):
		// The range the session really has, so the client can continue.
		w.Header().Set("Location", uploadLocation(repo, id))
		w.Header().Set("Range", rangeHeader(re.Offset))
		return newError(errRangeInvalid, re.Msg)
	case errors.As(err, &de):
		return newError(errDigestInvalid, de.Error()+"; nothing was stored, upload the right content or correct the digest").
			withDetail(map[string]string{"digest": string(de.Want), "computed": string(de.Got)})
	case errors.As(err, &qe):
		w.Header().Set("Retry-After", "30")
		return newError(errTooManyRequests, fmt.Sprintf("%s has %d upload sessions open, the most allowed (--max-uploads-per-user); finish or cancel (DELETE) open uploads, or wait until abandoned ones are purged (--upload-max-age)", quote(qe.Owner), qe.Open))
	}
	return err
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
		// A source that is no valid name cannot hold it: open a session.
		if from := q.Get("from"); from == "" || validName(from) {
			mounted, err := r.uploads.Mount(ctx, rt.name, d, from)
			if err != nil {
				return err
			}
			if mounted {
				blobCreated(w, rt.name, d)
				return nil
			}
		}
		// Not mountable: the spec says open a session instead.
	}
	if ds := q.Get("digest"); ds != "" {
		d, aerr := parseDigest(ds)
		if aerr != nil {
			return aerr
		}
		if err := r.uploads.Put(ctx, rt.name, d, bodyReader{req.Body}); err != nil {
			return uploadError(w, rt.name, "", err)
		}
		blobCreated(w, rt.name, d)
		return nil
	}
	s, err := r.uploads.Start(ctx, rt.name, rt.who)
	if err != nil {
		return uploadError(w, rt.name, "", err)
	}
	defer s.Close()
	uploadAccepted(w, http.StatusAccepted, rt.name, s.ID(), 0)
	return nil
}

// chunkRange reads the Content-Range of a chunk for a session at offset;
// nil when there is none.
func chunkRange(w http.ResponseWriter, req *http.Request, s *upload.Session) (*upload.Range, error) {
	cr := req.Header.Get("Content-Range")
	if cr == "" {
		return nil, nil
	}
	bad := func(msg string) error {
		return uploadError(w, s.Repo(), s.ID(), &upload.RangeError{Offset: s.Offset(), Msg: msg})
	}
	start, end, ok := parseContentRange(cr)
	if !ok || start != s.Offset() {
		return nil, bad(fmt.Sprintf("Content-Range %q does not continue the upload, which has %d bytes; send the chunk starting at byte %d", cr, s.Offset(), s.Offset()))
	}
	n := end - start + 1
	if req.ContentLength >= 0 && req.ContentLength != n {
		return nil, bad(fmt.Sprintf("Content-Range %q is %d bytes but Content-Length is %d; send a chunk as long as its range", cr, n, req.ContentLength))
	}
	return &upload.Range{Start: start, Length: n}, nil
}

// patchUpload handles PATCH: one chunk, in order.
func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	return r.withSession(w, req, rt, func(s *upload.Session) error {
		rng, err := chunkRange(w, req, s)
		if err != nil {
			return err
		}
		if err := s.Append(req.Context(), bodyReader{req.Body}, rng); err != nil {
			return uploadError(w, rt.name, rt.ref, err)
		}
		uploadAccepted(w, http.StatusAccepted, rt.name, s.ID(), s.Offset())
		return nil
	})
}

// withSession runs fn on the upload session rt names, answering as the
// distribution spec says when there is none.
func (r *Registry) withSession(w http.ResponseWriter, req *http.Request, rt route, fn func(*upload.Session) error) error {
	s, err := r.uploads.Resume(req.Context(), rt.name, rt.ref)
	if err != nil {
		return uploadError(w, rt.name, rt.ref, err)
	}
	defer s.Close()
	return fn(s)
}

// finishUpload handles PUT ?digest=: an optional last chunk, then the
// digest check and the commit. It is safe to repeat, so the same PUT
// resent by a balancer after a replica died mid-way gets 201 when the
// bytes are right, whether the first attempt committed or not.
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
	s, err := r.uploads.Resume(ctx, rt.name, rt.ref)
	if errors.Is(err, upload.ErrUnknown) {
		// Finished by an earlier attempt whose answer was lost?
		ok, rerr := r.uploads.Recommit(ctx, rt.name, d, bodyReader{req.Body}, req.ContentLength)
		if rerr != nil {
			return rerr
		}
		if ok {
			blobCreated(w, rt.name, d)
			return nil
		}
	}
	if err != nil {
		return uploadError(w, rt.name, rt.ref, err)
	}
	defer s.Close()
	rng, err := chunkRange(w, req, s)
	if err != nil {
		return err
	}
	if err := s.Commit(ctx, d, bodyReader{req.Body}, rng); err != nil {
		return uploadError(w, rt.name, rt.ref, err)
	}
	blobCreated(w, rt.name, d)
	return nil
}

// uploadStatus handles GET on a session.
func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, rt route) error {
	return r.withSession(w, req, rt, func(s *upload.Session) error {
		uploadAccepted(w, http.StatusNoContent, rt.name, s.ID(), s.Offset())
		return nil
	})
}

// cancelUpload handles DELETE on a session.
func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	return r.withSession(w, req, rt, func(s *upload.Session) error {
		if err := s.Cancel(req.Context()); err != nil {
			return err
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
