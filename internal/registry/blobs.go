package registry

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

// parseDigest validates a digest from a URL or query: well formed and of
// an algorithm the registry computes (sha256, sha512).
func parseDigest(s string) (digest.Digest, *apiError) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", newError(errDigestInvalid, "invalid digest "+quote(s)+": "+err.Error()+"; expected <algorithm>:<hex>, e.g. sha256:<64 hex digits>").
			withDetail(map[string]string{"digest": truncate(s, 300)})
	}
	if a := d.Algorithm(); a != digest.SHA256 && a != digest.SHA512 {
		return "", newError(errDigestInvalid, "digest algorithm "+quote(string(a))+" is not supported; use sha256 or sha512").
			withDetail(map[string]string{"digest": truncate(s, 300)})
	}
	return d, nil
}

func blobUnknown(d digest.Digest, repo string) *apiError {
	return newError(errBlobUnknown, "blob "+string(d)+" is not known to repository "+repo).
		withDetail(map[string]string{"digest": string(d)})
}

// getBlob serves GET and HEAD, with Range, from the blob store.
func (r *Registry) getBlob(w http.ResponseWriter, req *http.Request, rt route) error {
	d, aerr := parseDigest(rt.ref)
	if aerr != nil {
		return aerr
	}
	ctx := req.Context()
	if _, err := r.meta.BlobLink(ctx, rt.name, d); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return blobUnknown(d, rt.name)
		}
		return err
	}
	if r.presign != nil && req.Method == http.MethodGet {
		u, err := r.presign.PresignGet(ctx, d, r.redirect)
		if err != nil {
			return err
		}
		w.Header().Set("Docker-Content-Digest", string(d))
		http.Redirect(w, req, u.String(), http.StatusTemporaryRedirect)
		return nil
	}
	b, err := r.blobs.Open(ctx, d)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return blobUnknown(d, rt.name)
		}
		return err
	}
	defer b.Close()
	h := w.Header()
	h.Set("Docker-Content-Digest", string(d))
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+string(d)+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	if req.Method == http.MethodHead {
		// ServeContent would seek and stat; a HEAD needs only the length.
		if req.Header.Get("Range") == "" {
			h.Set("Content-Length", strconv.FormatInt(b.Size, 10))
			h.Set("Accept-Ranges", "bytes")
			w.WriteHeader(http.StatusOK)
			return nil
		}
	}
	// The *os.File itself goes to ServeContent so the copy reaches
	// sendfile; the empty name keeps it from guessing a Content-Type.
	http.ServeContent(w, req, "", b.ModTime, b.ReadSeekCloser)
	return nil
}

// deleteBlob unlinks a blob from the repository; the bytes stay until
// garbage collection finds nothing else uses them.
func (r *Registry) deleteBlob(w http.ResponseWriter, req *http.Request, rt route) error {
	d, aerr := parseDigest(rt.ref)
	if aerr != nil {
		return aerr
	}
	if err := r.meta.UnlinkBlob(req.Context(), rt.name, d); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return blobUnknown(d, rt.name)
		}
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
