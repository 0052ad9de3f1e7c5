package registry_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// client talks to one registry under test.
type client struct {
	t    *testing.T
	base string
}

type response struct {
	*http.Response
	body []byte
}

func (c client) do(method, path string, body []byte, headers ...string) response {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{resp, b}
}

// wantStatus fails unless the response has status.
func (r response) wantStatus(t *testing.T, status int) response {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
	return r
}

// wantError checks status and the OCI error code of the JSON body.
func (r response) wantError(t *testing.T, status int, code string) {
	t.Helper()
	if r.StatusCode != status {
		t.Errorf("%s %s: status %d, want %d; body %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
		return
	}
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Errors) == 0 {
		t.Errorf("%s %s: error body %q is not an OCI error list (%v)", r.Request.Method, r.Request.URL.Path, r.body, err)
		return
	}
	if body.Errors[0].Code != code {
		t.Errorf("%s %s: error code %s, want %s (%s)", r.Request.Method, r.Request.URL.Path, body.Errors[0].Code, code, body.Errors[0].Message)
	}
	if body.Errors[0].Message == "" {
		t.Errorf("%s %s: error without a message", r.Request.Method, r.Request.URL.Path)
	}
}

// pushBlob uploads data monolithically (POST then PUT) to repo.
func (c client) pushBlob(repo string, data []byte) digest.Digest {
	c.t.Helper()
	d := digest.FromBytes(data)
	loc := c.startUpload(repo)
	c.do("PUT", withDigest(loc, d), data, "Content-Type", "application/octet-stream").wantStatus(c.t, http.StatusCreated)
	return d
}

// startUpload opens a session and returns its Location path.
func (c client) startUpload(repo string) string {
	c.t.Helper()
	r := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil).wantStatus(c.t, http.StatusAccepted)
	loc := r.Header.Get("Location")
	if loc == "" {
		c.t.Fatal("upload started without a Location")
	}
	return strings.TrimPrefix(loc, c.base)
}

func withDigest(loc string, d digest.Digest) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + string(d)
}

// image is a pushed image: its blobs and manifest.
type image struct {
	config, layer []byte
	manifest      []byte
	digest        digest.Digest
}

// pushImage pushes a one-layer OCI image tagged tag.
func (c client) pushImage(repo, tag, seed string) image {
	c.t.Helper()
	img := image{config: []byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`), layer: []byte("layer bytes " + seed)}
	cd := c.pushBlob(repo, img.config)
	ld := c.pushBlob(repo, img.layer)
	img.manifest = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + string(cd) + `","size":` + strconv.Itoa(len(img.config)) + `},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + string(ld) + `","size":` + strconv.Itoa(len(img.layer)) + `}]}`)
	img.digest = digest.FromBytes(img.manifest)
	r := c.do("PUT", "/v2/"+repo+"/manifests/"+tag, img.manifest, "Content-Type", "application/vnd.oci.image.manifest.v1+json").
		wantStatus(c.t, http.StatusCreated)
	if got := r.Header.Get("Docker-Content-Digest"); got != string(img.digest) {
		c.t.Fatalf("manifest PUT: Docker-Content-Digest %q, want %s", got, img.digest)
	}
	return img
}

// checkImage asserts the image is intact: manifest by tag and blobs.
func (c client) checkImage(repo, tag string, img image) {
	c.t.Helper()
	r := c.do("GET", "/v2/"+repo+"/manifests/"+tag, nil, "Accept", "application/vnd.oci.image.manifest.v1+json").wantStatus(c.t, http.StatusOK)
	if !bytes.Equal(r.body, img.manifest) || r.Header.Get("Docker-Content-Digest") != string(img.digest) {
		c.t.Errorf("manifest %s:%s changed: %s", repo, tag, r.body)
	}
	for _, b := range [][]byte{img.config, img.layer} {
		r := c.do("GET", "/v2/"+repo+"/blobs/"+string(digest.FromBytes(b)), nil).wantStatus(c.t, http.StatusOK)
		if !bytes.Equal(r.body, b) {
			c.t.Errorf("blob %s changed", digest.FromBytes(b))
		}
	}
}
