package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/store"
)

func manifestUnknown(repo, ref string) *apiError {
	return newError(errManifestUnknown, "manifest "+quote(ref)+" is not known to repository "+repo).
		withDetail(map[string]string{"reference": truncate(ref, 300)})
}

// parseReference splits a manifest reference into a tag or a digest.
func parseReference(ref string) (tag string, d digest.Digest, aerr *apiError) {
	if strings.Contains(ref, ":") {
		d, aerr = parseDigest(ref)
		return "", d, aerr
	}
	if !validTag(ref) {
		return "", "", newError(errManifestInvalid, "invalid tag "+quote(ref)+": tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}").
			withDetail(map[string]string{"tag": truncate(ref, 300)})
	}
	return ref, "", nil
}

func (r *Registry) lookupManifest(req *http.Request, rt route) (*store.Manifest, error) {
	tag, d, aerr := parseReference(rt.ref)
	if aerr != nil {
		if tag == "" && d == "" && aerr.code == errManifestInvalid {
			// A GET of a tag that cannot exist is simply unknown.
			return nil, manifestUnknown(rt.name, rt.ref)
		}
		return nil, aerr
	}
	var m *store.Manifest
	var err error
	if tag != "" {
		m, err = r.meta.TaggedManifest(req.Context(), rt.name, tag)
	} else {
		m, err = r.meta.Manifest(req.Context(), rt.name, d)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, manifestUnknown(rt.name, rt.ref)
	}
	return m, err
}

// getManifest serves GET and HEAD by tag or digest. Manifests are served
// as pushed, whatever the Accept header says: Ferry never converts.
func (r *Registry) getManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	m, err := r.lookupManifest(req, rt)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Docker-Content-Digest", string(m.Digest))
	h.Set("ETag", `"`+string(m.Digest)+`"`)
	h.Set("Content-Length", strconv.Itoa(len(m.Content)))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		w.Write(m.Content)
	}
	return nil
}

// putManifest stores a manifest after checking it names only content the
// repository holds.
func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	tag, d, aerr := parseReference(rt.ref)
	if aerr != nil {
		return aerr
	}
	if req.ContentLength > r.maxMan {
		return manifestTooLarge(r.maxMan)
	}
	body, err := io.ReadAll(io.LimitReader(bodyReader{req.Body}, r.maxMan+1))
	if err != nil {
		return err
	}
	if int64(len(body)) > r.maxMan {
		return manifestTooLarge(r.maxMan)
	}
	m, err := parseManifest(body, req.Header.Get("Content-Type"))
	if err != nil {
		return newError(errManifestInvalid, err.Error())
	}
	m.Content = body
	alg := digest.Canonical
	if d != "" {
		alg = d.Algorithm()
	}
	m.Digest = alg.FromBytes(body)
	if d != "" && d != m.Digest {
		return newError(errDigestInvalid, fmt.Sprintf("manifest content has digest %s, not %s as the URL says; push the exact bytes or use the right digest", m.Digest, d)).
			withDetail(map[string]string{"digest": string(d), "computed": string(m.Digest)})
	}
	ctx := req.Context()
	missing, err := r.meta.MissingBlobs(ctx, rt.name, m.Blobs)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return newError(errManifestBlobUnknown, fmt.Sprintf("manifest references blob %s, which is not in repository %s; push or mount the blob first", missing[0], rt.name)).
			withDetail(map[string]string{"digest": string(missing[0])})
	}
	missing, err = r.meta.MissingManifests(ctx, rt.name, m.Children)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return newError(errManifestBlobUnknown, fmt.Sprintf("index references manifest %s, which is not in repository %s; push it first", missing[0], rt.name)).
			withDetail(map[string]string{"digest": string(missing[0])})
	}
	// A push by digest may name tags in ?tag= (distribution-spec after
	// v1.1); each is answered in an OCI-Tag header.
	var extra []string
	if d != "" {
		extra = req.URL.Query()["tag"]
		for _, t := range extra {
			if !validTag(t) {
				return newError(errManifestInvalid, "invalid tag "+quote(t)+" in ?tag=: tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
			}
		}
	}
	if err := r.storeManifest(ctx, rt.name, m, tag); err != nil {
		return err
	}
	h := w.Header()
	for _, t := range extra {
		if err := r.storeManifest(ctx, rt.name, m, t); err != nil {
			return err
		}
		h.Add("OCI-Tag", t)
	}
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+string(m.Digest))
	h.Set("Docker-Content-Digest", string(m.Digest))
	if m.Subject != "" {
		h.Set("OCI-Subject", string(m.Subject))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func manifestTooLarge(limit int64) *apiError {
	return newError(errManifestInvalid, fmt.Sprintf("manifest is larger than the limit of %d bytes (raise it with --max-manifest-size)", limit)).
		withStatus(http.StatusRequestEntityTooLarge)
}

// deleteManifest deletes a manifest by digest (with the tags pointing at
// it) or only a tag. An index's children are never deleted with it.
func (r *Registry) deleteManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	tag, d, aerr := parseReference(rt.ref)
	if aerr != nil {
		return aerr
	}
	var err error
	if tag != "" {
		err = r.meta.DeleteTag(req.Context(), rt.name, tag)
	} else {
		err = r.meta.DeleteManifest(req.Context(), rt.name, d)
	}
	if errors.Is(err, store.ErrNotFound) {
		return manifestUnknown(rt.name, rt.ref)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// storeManifest stores m. The store refuses it when a blob was unlinked
// since the check above (garbage collection ran in between).
func (r *Registry) storeManifest(ctx context.Context, repo string, m *store.Manifest, tag string) error {
	err := r.meta.PutManifest(ctx, repo, m, tag)
	if errors.Is(err, store.ErrNotFound) {
		return newError(errManifestBlobUnknown, fmt.Sprintf("a blob of the manifest was removed from repository %s by garbage collection; push it again, then the manifest", repo))
	}
	return err
}
