package registry

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ferry-mirror/ferry/internal/oci"
	"github.com/ferry-mirror/ferry/internal/store"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxPage bounds one page of tags or repositories.
const maxPage = 10000

// pageArgs reads ?n= and ?last=.
func pageArgs(req *http.Request) (n int, last string, aerr *apiError) {
	q := req.URL.Query()
	last = q.Get("last")
	n = maxPage
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, "", newError(errUnsupported, "n must be a non-negative integer, got "+quote(s)).withStatus(http.StatusBadRequest)
		}
		n = min(v, maxPage)
	}
	return n, last, nil
}

func writeJSON(w http.ResponseWriter, req *http.Request, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		w.Write(b)
	}
	return nil
}

// nextLink sets the Link header of a paginated answer that filled its page.
func nextLink(w http.ResponseWriter, path string, n int, items []string) {
	if n == 0 || len(items) < n {
		return
	}
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {items[len(items)-1]}}
	w.Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}

func (r *Registry) tags(w http.ResponseWriter, req *http.Request, rt route) error {
	n, last, aerr := pageArgs(req)
	if aerr != nil {
		return aerr
	}
	tags, err := r.meta.Tags(req.Context(), rt.name, last, n)
	if errors.Is(err, store.ErrNotFound) {
		return newError(errNameUnknown, "repository "+rt.name+" is not known").withDetail(map[string]string{"name": rt.name})
	}
	if err != nil {
		return err
	}
	nextLink(w, req.URL.Path, n, tags)
	return writeJSON(w, req, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, tags})
}

func (r *Registry) catalog(w http.ResponseWriter, req *http.Request, _ route) error {
	n, last, aerr := pageArgs(req)
	if aerr != nil {
		return aerr
	}
	repos, err := r.meta.Repositories(req.Context(), last, n)
	if err != nil {
		return err
	}
	nextLink(w, req.URL.Path, n, repos)
	return writeJSON(w, req, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// referrers answers the referrers API: an image index of the manifests
// whose subject is the digest, empty (not 404) when there are none.
func (r *Registry) referrers(w http.ResponseWriter, req *http.Request, rt route) error {
	d, aerr := parseDigest(rt.ref)
	if aerr != nil {
		return aerr
	}
	at := req.URL.Query().Get("artifactType")
	descs, err := r.meta.Referrers(req.Context(), rt.name, d, at)
	if err != nil {
		return err
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, req, oci.MediaTypeImageIndex, struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Manifests     []ocispec.Descriptor `json:"manifests"`
	}{2, oci.MediaTypeImageIndex, descs})
}
