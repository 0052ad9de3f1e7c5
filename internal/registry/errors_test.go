package registry_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestBadInput sends every kind of bad request the spec names to a real
// server and checks the status, the OCI error code, and that the content
// stored before is all still there.
func TestBadInput(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{Args: []string{"--max-manifest-size", "2048"}})
	c := client{t, srv.URL}
	img := c.pushImage("keep/app", "v1", "bad-input")
	cfg, layer := digest.FromBytes(img.config), digest.FromBytes(img.layer)

	t.Run("Digests", func(t *testing.T) {
		for _, ref := range []string{"sha256:xyz", "sha256:" + strings.Repeat("a", 63), "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256", "sha256:" + strings.Repeat("A", 64)} {
			c.do("GET", "/v2/keep/app/blobs/"+ref, nil).wantError(t, 400, "DIGEST_INVALID")
			c.do("HEAD", "/v2/keep/app/blobs/"+ref, nil).wantStatus(t, 400)
			c.do("DELETE", "/v2/keep/app/blobs/"+ref, nil).wantError(t, 400, "DIGEST_INVALID")
			if strings.Contains(ref, ":") { // "sha256" alone is a valid tag
				c.do("GET", "/v2/keep/app/manifests/"+ref, nil).wantError(t, 400, "DIGEST_INVALID")
			}
			c.do("GET", "/v2/keep/app/referrers/"+ref, nil).wantError(t, 400, "DIGEST_INVALID")
			c.do("POST", "/v2/keep/app/blobs/uploads/?digest="+ref, []byte("x")).wantError(t, 400, "DIGEST_INVALID")
		}
		loc := c.startUpload("keep/app")
		c.do("PUT", loc+"?digest=sha1:abc", []byte("x")).wantError(t, 400, "DIGEST_INVALID")
		c.do("PUT", loc, []byte("x")).wantError(t, 400, "DIGEST_INVALID")
	})

	t.Run("Names", func(t *testing.T) {
		long := strings.Repeat("a", 250) + "/" + strings.Repeat("b", 10)
		for _, name := range []string{"a..b", "keep/../app", "Keep/App", "UPPER", "a/-b", "a//b", "_x", long} {
			c.do("GET", "/v2/"+name+"/tags/list", nil).wantError(t, 400, "NAME_INVALID")
			c.do("GET", "/v2/"+name+"/manifests/v1", nil).wantError(t, 400, "NAME_INVALID")
			c.do("PUT", "/v2/"+name+"/manifests/v1", img.manifest, "Content-Type", "application/vnd.oci.image.manifest.v1+json").
				wantError(t, 400, "NAME_INVALID")
			c.do("POST", "/v2/"+name+"/blobs/uploads/", nil).wantError(t, 400, "NAME_INVALID")
		}
		// 255 characters is the limit, inclusive.
		ok := strings.Repeat("a", 200) + "/" + strings.Repeat("b", 54)
		c.do("GET", "/v2/"+ok+"/tags/list", nil).wantError(t, 404, "NAME_UNKNOWN")
	})

	t.Run("ManifestMissingBlobs", func(t *testing.T) {
		absent := digest.FromString("never pushed")
		m := strings.Replace(string(img.manifest), string(layer), string(absent), 1)
		c.do("PUT", "/v2/keep/app/manifests/broken", []byte(m), "Content-Type", "application/vnd.oci.image.manifest.v1+json").
			wantError(t, 400, "MANIFEST_BLOB_UNKNOWN")
		// Blobs of another repository do not count.
		c.do("PUT", "/v2/other/app/manifests/v1", img.manifest, "Content-Type", "application/vnd.oci.image.manifest.v1+json").
			wantError(t, 400, "MANIFEST_BLOB_UNKNOWN")
		// An index naming a manifest the repository lacks.
		idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + string(absent) + `","size":10}]}`
		c.do("PUT", "/v2/keep/app/manifests/idx", []byte(idx), "Content-Type", "application/vnd.oci.image.index.v1+json").
			wantError(t, 400, "MANIFEST_BLOB_UNKNOWN")
		c.do("GET", "/v2/keep/app/manifests/broken", nil).wantError(t, 404, "MANIFEST_UNKNOWN")
		c.do("GET", "/v2/keep/app/manifests/idx", nil).wantError(t, 404, "MANIFEST_UNKNOWN")
	})

	t.Run("InvalidManifests", func(t *testing.T) {
		for _, body := range []string{
			`{not json`,
			``,
			`[]`,
			`{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}`,
			`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`,
			`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"nope","size":1},"layers":[]}`,
			`{"schemaVersion":2,"mediaType":"text/plain","config":{"digest":"` + string(cfg) + `","size":1}}`,
		} {
			c.do("PUT", "/v2/keep/app/manifests/bad", []byte(body), "Content-Type", "application/vnd.oci.image.manifest.v1+json").
				wantError(t, 400, "MANIFEST_INVALID")
		}
		// A mediaType that contradicts the Content-Type.
		c.do("PUT", "/v2/keep/app/manifests/bad", img.manifest, "Content-Type", "application/vnd.oci.image.index.v1+json").
			wantError(t, 400, "MANIFEST_INVALID")
		// Bad tags.
		c.do("PUT", "/v2/keep/app/manifests/-dash", img.manifest, "Content-Type", "application/vnd.oci.image.manifest.v1+json").
			wantError(t, 400, "MANIFEST_INVALID")
		c.do("PUT", "/v2/keep/app/manifests/"+strings.Repeat("t", 129), img.manifest, "Content-Type", "application/vnd.oci.image.manifest.v1+json").
			wantError(t, 400, "MANIFEST_INVALID")
		// Pushed by a digest that is not its own.
		c.do("PUT", "/v2/keep/app/manifests/"+string(cfg), img.manifest, "Content-Type", "application/vnd.oci.image.manifest.v1+json").
			wantError(t, 400, "DIGEST_INVALID")
	})

	t.Run("ManifestTooLarge", func(t *testing.T) {
		big := strings.Replace(string(img.manifest), `"layers"`, `"annotations":{"pad":"`+strings.Repeat("x", 4096)+`"},"layers"`, 1)
		c.do("PUT", "/v2/keep/app/manifests/big", []byte(big), "Content-Type", "application/vnd.oci.image.manifest.v1+json").
			wantError(t, 413, "MANIFEST_INVALID")
		c.do("GET", "/v2/keep/app/manifests/big", nil).wantError(t, 404, "MANIFEST_UNKNOWN")
	})

	t.Run("ContentRange", func(t *testing.T) {
		data := []byte("0123456789abcdefghij")
		loc := c.startUpload("keep/app")
		r := c.do("PATCH", loc, data[:10], "Content-Range", "0-9", "Content-Type", "application/octet-stream").wantStatus(t, 202)
		if got := r.Header.Get("Range"); got != "0-9" {
			t.Errorf("Range after first chunk %q, want 0-9", got)
		}
		loc = strings.TrimPrefix(r.Header.Get("Location"), srv.URL)
		// A gap, an overlap, a restart from zero, garbage: all 416.
		for _, cr := range []string{"11-19", "5-14", "0-9", "x-y", "15-10"} {
			body := data[10:]
			c.do("PATCH", loc, body, "Content-Range", cr, "Content-Type", "application/octet-stream").
				wantError(t, 416, "RANGE_INVALID")
		}
		// The session is untouched: status still 0-9, and it completes.
		r = c.do("GET", loc, nil).wantStatus(t, 204)
		if got := r.Header.Get("Range"); got != "0-9" {
			t.Errorf("Range after rejected chunks %q, want 0-9", got)
		}
		c.do("PATCH", loc, data[10:], "Content-Range", "10-19", "Content-Type", "application/octet-stream").wantStatus(t, 202)
		d := digest.FromBytes(data)
		c.do("PUT", withDigest(loc, d), nil).wantStatus(t, 201)
		got := c.do("GET", "/v2/keep/app/blobs/"+string(d), nil).wantStatus(t, 200)
		if !bytes.Equal(got.body, data) {
			t.Errorf("blob after rejected chunks = %q, want %q", got.body, data)
		}
	})

	t.Run("DigestMismatchAtClose", func(t *testing.T) {
		data := []byte("the real content")
		wrong := digest.FromString("something else")
		loc := c.startUpload("keep/app")
		c.do("PATCH", loc, data, "Content-Type", "application/octet-stream").wantStatus(t, 202)
		c.do("PUT", withDigest(loc, wrong), nil).wantError(t, 400, "DIGEST_INVALID")
		c.do("GET", "/v2/keep/app/blobs/"+string(wrong), nil).wantError(t, 404, "BLOB_UNKNOWN")
		c.do("GET", "/v2/keep/app/blobs/"+string(digest.FromBytes(data)), nil).wantError(t, 404, "BLOB_UNKNOWN")
		// The session survives the mistake; closing with the right digest works.
		c.do("PUT", withDigest(loc, digest.FromBytes(data)), nil).wantStatus(t, 201)
		// Monolithic POST with a wrong digest stores nothing.
		c.do("POST", "/v2/keep/app/blobs/uploads/?digest="+string(wrong), []byte("other bytes")).wantError(t, 400, "DIGEST_INVALID")
		c.do("HEAD", "/v2/keep/app/blobs/"+string(wrong), nil).wantStatus(t, 404)
	})

	t.Run("Unknowns", func(t *testing.T) {
		c.do("GET", "/v2/keep/app/blobs/"+string(digest.FromString("x")), nil).wantError(t, 404, "BLOB_UNKNOWN")
		c.do("GET", "/v2/keep/app/manifests/nope", nil).wantError(t, 404, "MANIFEST_UNKNOWN")
		c.do("DELETE", "/v2/keep/app/manifests/nope", nil).wantError(t, 404, "MANIFEST_UNKNOWN")
		c.do("GET", "/v2/never/pushed/tags/list", nil).wantError(t, 404, "NAME_UNKNOWN")
		c.do("GET", "/v2/keep/app/blobs/uploads/0123456789abcdef0123456789abcdef", nil).wantError(t, 404, "BLOB_UPLOAD_UNKNOWN")
		c.do("PATCH", "/v2/keep/app/blobs/uploads/../../etc", []byte("x")).wantStatus(t, 404)
		c.do("PUT", "/v2/keep/app/blobs/uploads/nope?digest="+string(cfg), []byte("x")).wantError(t, 404, "BLOB_UPLOAD_UNKNOWN")
		// An upload is bound to its repository.
		loc := c.startUpload("keep/app")
		other := strings.Replace(loc, "/keep/app/", "/keep/other/", 1)
		c.do("GET", other, nil).wantError(t, 404, "BLOB_UPLOAD_UNKNOWN")
		c.do("PATCH", "/v2/keep/app/tags/list", nil).wantError(t, 405, "UNSUPPORTED")
		c.do("GET", "/v2/keep/app/tags/list?n=-1", nil).wantStatus(t, 400)
	})

	// Nothing stored before was lost, and the server never answered 500.
	c.checkImage("keep/app", "v1", img)
	if strings.Contains(srv.Log.String(), `"status":500`) {
		t.Errorf("the server answered 500 during bad-input tests:\n%s", srv.Log.String())
	}
}
