package registry_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestChunkedUploadSurvivesRestart starts a chunked upload, restarts the
// server, and finishes the upload where it stopped: the session, its
// offset and its hash state live on disk, not in the process.
func TestChunkedUploadSurvivesRestart(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	data := bytes.Repeat([]byte("chunk-of-data-"), 100000) // 1.4 MB
	half := len(data) / 2
	loc := c.startUpload("restart/app")
	r := c.do("PATCH", loc, data[:half], "Content-Range", "0-"+strconv.Itoa(half-1), "Content-Type", "application/octet-stream").wantStatus(t, 202)
	loc = strings.TrimPrefix(r.Header.Get("Location"), srv.URL)

	srv.Kill() // no chance to flush anything it kept in memory
	srv.Restart()

	r = c.do("GET", loc, nil).wantStatus(t, 204)
	if got, want := r.Header.Get("Range"), "0-"+strconv.Itoa(half-1); got != want {
		t.Fatalf("after restart the upload reports Range %q, want %q", got, want)
	}
	c.do("PATCH", loc, data[half:], "Content-Range", strconv.Itoa(half)+"-"+strconv.Itoa(len(data)-1), "Content-Type", "application/octet-stream").wantStatus(t, 202)
	d := digest.FromBytes(data)
	c.do("PUT", withDigest(loc, d), nil).wantStatus(t, 201)
	got := c.do("GET", "/v2/restart/app/blobs/"+string(d), nil).wantStatus(t, 200)
	if !bytes.Equal(got.body, data) {
		t.Fatalf("blob after restart: %d bytes, not the %d uploaded", len(got.body), len(data))
	}
}

func TestBlobsArePerRepository(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	data := []byte("shared layer")
	d := c.pushBlob("team/a", data)
	c.do("GET", "/v2/team/b/blobs/"+string(d), nil).wantError(t, 404, "BLOB_UNKNOWN")

	// Explicit mount from a repository that has it.
	r := c.do("POST", "/v2/team/b/blobs/uploads/?mount="+string(d)+"&from=team/a", nil).wantStatus(t, 201)
	if r.Header.Get("Docker-Content-Digest") != string(d) || !strings.HasSuffix(r.Header.Get("Location"), "/v2/team/b/blobs/"+string(d)) {
		t.Errorf("mount answered Location %q, digest %q", r.Header.Get("Location"), r.Header.Get("Docker-Content-Digest"))
	}
	c.do("GET", "/v2/team/b/blobs/"+string(d), nil).wantStatus(t, 200)
	// Mounting from a repository that lacks it opens an upload instead.
	c.do("POST", "/v2/team/c/blobs/uploads/?mount="+string(d)+"&from=team/nothing", nil).wantStatus(t, 202)
	// Automatic mount: no from.
	c.do("POST", "/v2/team/d/blobs/uploads/?mount="+string(d), nil).wantStatus(t, 201)
	// Deleting in one repository leaves the others.
	c.do("DELETE", "/v2/team/a/blobs/"+string(d), nil).wantStatus(t, 202)
	c.do("GET", "/v2/team/a/blobs/"+string(d), nil).wantError(t, 404, "BLOB_UNKNOWN")
	got := c.do("GET", "/v2/team/b/blobs/"+string(d), nil).wantStatus(t, 200)
	if !bytes.Equal(got.body, data) {
		t.Errorf("mounted blob = %q", got.body)
	}
}

func TestBlobGet(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	d := c.pushBlob("get/app", data)
	r := c.do("HEAD", "/v2/get/app/blobs/"+string(d), nil).wantStatus(t, 200)
	if r.Header.Get("Content-Length") != strconv.Itoa(len(data)) || r.Header.Get("Docker-Content-Digest") != string(d) {
		t.Errorf("HEAD headers %v", r.Header)
	}
	r = c.do("GET", "/v2/get/app/blobs/"+string(d), nil, "Range", "bytes=10-19").wantStatus(t, 206)
	if string(r.body) != "abcdefghij" || r.Header.Get("Content-Range") != "bytes 10-19/36" {
		t.Errorf("range GET = %q, Content-Range %q", r.body, r.Header.Get("Content-Range"))
	}
	c.do("GET", "/v2/get/app/blobs/"+string(d), nil, "Range", "bytes=100-200").wantStatus(t, 416)

	// sha512, monolithic POST.
	d512 := digest.SHA512.FromBytes(data)
	c.do("POST", "/v2/get/app/blobs/uploads/?digest="+string(d512), data, "Content-Type", "application/octet-stream").wantStatus(t, 201)
	r = c.do("GET", "/v2/get/app/blobs/"+string(d512), nil).wantStatus(t, 200)
	if !bytes.Equal(r.body, data) || r.Header.Get("Docker-Content-Digest") != string(d512) {
		t.Errorf("sha512 blob = %q", r.body)
	}
	// sha512 through a chunked session (the running hash is sha256).
	loc := c.startUpload("get/app")
	other := []byte("chunked sha512 content")
	c.do("PATCH", loc, other, "Content-Type", "application/octet-stream").wantStatus(t, 202)
	r = c.do("GET", loc, nil).wantStatus(t, 204)
	loc = strings.TrimPrefix(r.Header.Get("Location"), srv.URL)
	c.do("PUT", withDigest(loc, digest.SHA512.FromBytes(other)), nil).wantStatus(t, 201)
	c.do("HEAD", "/v2/get/app/blobs/"+string(digest.SHA512.FromBytes(other)), nil).wantStatus(t, 200)
}

func TestManifests(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	img := c.pushImage("man/app", "v1", "one")

	// Podman pushes Docker v2-2 manifests without the mediaType field: the
	// Content-Type says what they are, and GET answers with it.
	cfgD, layD := digest.FromBytes(img.config), digest.FromBytes(img.layer)
	v2s2 := []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"` + string(cfgD) + `","size":` + strconv.Itoa(len(img.config)) + `},` +
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"` + string(layD) + `","size":` + strconv.Itoa(len(img.layer)) + `}]}`)
	c.do("PUT", "/v2/man/app/manifests/v2s2", v2s2, "Content-Type", "application/vnd.docker.distribution.manifest.v2+json").wantStatus(t, 201)
	r := c.do("GET", "/v2/man/app/manifests/v2s2", nil).wantStatus(t, 200)
	if ct := r.Header.Get("Content-Type"); ct != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Errorf("manifest without mediaType served as %q", ct)
	}
	if !bytes.Equal(r.body, v2s2) {
		t.Error("manifest bytes changed")
	}
	r = c.do("HEAD", "/v2/man/app/manifests/"+string(img.digest), nil).wantStatus(t, 200)
	if r.Header.Get("Content-Length") != strconv.Itoa(len(img.manifest)) || r.Header.Get("Docker-Content-Digest") != string(img.digest) ||
		r.Header.Get("Content-Type") != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("HEAD by digest headers: %v", r.Header)
	}

	// A Docker manifest list of both, pushed by digest without a tag, then tagged.
	list := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[` +
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"` + string(digest.FromBytes(v2s2)) + `","size":` + strconv.Itoa(len(v2s2)) + `,"platform":{"architecture":"amd64","os":"linux"}}]}`)
	ld := digest.FromBytes(list)
	c.do("PUT", "/v2/man/app/manifests/"+string(ld), list, "Content-Type", "application/vnd.docker.distribution.manifest.list.v2+json").wantStatus(t, 201)
	tags := listTags(t, c, "man/app", "")
	if strings.Join(tags, ",") != "v1,v2s2" {
		t.Errorf("push by digest created a tag: %v", tags)
	}
	c.do("PUT", "/v2/man/app/manifests/multi", list, "Content-Type", "application/vnd.docker.distribution.manifest.list.v2+json").wantStatus(t, 201)
	// Deleting the list's tag, then the list, keeps its child.
	c.do("DELETE", "/v2/man/app/manifests/multi", nil).wantStatus(t, 202)
	c.do("GET", "/v2/man/app/manifests/"+string(ld), nil).wantStatus(t, 200)
	c.do("DELETE", "/v2/man/app/manifests/"+string(ld), nil).wantStatus(t, 202)
	c.do("GET", "/v2/man/app/manifests/"+string(ld), nil).wantStatus(t, 404)
	c.do("GET", "/v2/man/app/manifests/v2s2", nil).wantStatus(t, 200)
	// Deleting a manifest by digest removes its tags.
	c.do("DELETE", "/v2/man/app/manifests/"+string(img.digest), nil).wantStatus(t, 202)
	c.do("GET", "/v2/man/app/manifests/v1", nil).wantError(t, 404, "MANIFEST_UNKNOWN")
}

func listTags(t *testing.T, c client, repo, query string) []string {
	t.Helper()
	r := c.do("GET", "/v2/"+repo+"/tags/list"+query, nil).wantStatus(t, 200)
	var body struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Name != repo {
		t.Fatalf("tags/list body %s: %v", r.body, err)
	}
	return body.Tags
}

func TestPagination(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	img := c.pushImage("page/app", "a", "p")
	for _, tag := range []string{"b", "c", "d", "e"} {
		c.do("PUT", "/v2/page/app/manifests/"+tag, img.manifest, "Content-Type", "application/vnd.oci.image.manifest.v1+json").wantStatus(t, 201)
	}
	var all []string
	q := "?n=2"
	for i := 0; q != "" && i < 10; i++ {
		r := c.do("GET", "/v2/page/app/tags/list"+q, nil).wantStatus(t, 200)
		var body struct{ Tags []string }
		json.Unmarshal(r.body, &body)
		all = append(all, body.Tags...)
		q = ""
		if link := r.Header.Get("Link"); link != "" {
			start, end := strings.Index(link, "<"), strings.Index(link, ">")
			if start < 0 || end < start || !strings.Contains(link, `rel="next"`) {
				t.Fatalf("bad Link header %q", link)
			}
			q = link[start+1 : end]
			q = q[strings.Index(q, "?"):]
		}
	}
	if strings.Join(all, ",") != "a,b,c,d,e" {
		t.Errorf("paginated tags = %v", all)
	}
	if tags := listTags(t, c, "page/app", "?n=0"); len(tags) != 0 {
		t.Errorf("n=0 gave %v", tags)
	}
	if tags := listTags(t, c, "page/app", "?last=c"); strings.Join(tags, ",") != "d,e" {
		t.Errorf("last=c gave %v", tags)
	}
	c.pushImage("page/other", "x", "q")
	r := c.do("GET", "/v2/_catalog?n=1", nil).wantStatus(t, 200)
	if !strings.Contains(string(r.body), `"page/app"`) || !strings.Contains(r.Header.Get("Link"), "last=page%2Fapp") {
		t.Errorf("catalog page 1: %s, Link %q", r.body, r.Header.Get("Link"))
	}
}

func TestReferrers(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	img := c.pushImage("ref/app", "v1", "subject")
	empty := c.pushBlob("ref/app", []byte("{}"))
	artifact := func(at, note string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"` + at + `",` +
			`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + string(empty) + `","size":2},"layers":[],` +
			`"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + string(img.digest) + `","size":` + strconv.Itoa(len(img.manifest)) + `},` +
			`"annotations":{"note":"` + note + `"}}`)
	}
	sig, sbom := artifact("application/vnd.example.sig", "s"), artifact("application/vnd.example.sbom", "b")
	for _, a := range [][]byte{sig, sbom} {
		r := c.do("PUT", "/v2/ref/app/manifests/"+string(digest.FromBytes(a)), a, "Content-Type", "application/vnd.oci.image.manifest.v1+json").wantStatus(t, 201)
		if r.Header.Get("OCI-Subject") != string(img.digest) {
			t.Errorf("OCI-Subject %q, want %s", r.Header.Get("OCI-Subject"), img.digest)
		}
	}
	type index struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest       digest.Digest     `json:"digest"`
			ArtifactType string            `json:"artifactType"`
			Annotations  map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	get := func(q string) (index, http.Header) {
		r := c.do("GET", "/v2/ref/app/referrers/"+string(img.digest)+q, nil).wantStatus(t, 200)
		if r.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" {
			t.Errorf("referrers Content-Type %q", r.Header.Get("Content-Type"))
		}
		var ix index
		if err := json.Unmarshal(r.body, &ix); err != nil {
			t.Fatal(err)
		}
		return ix, r.Header
	}
	ix, h := get("")
	if len(ix.Manifests) != 2 || h.Get("OCI-Filters-Applied") != "" {
		t.Errorf("all referrers: %+v, filters %q", ix, h.Get("OCI-Filters-Applied"))
	}
	ix, h = get("?artifactType=application/vnd.example.sbom")
	if len(ix.Manifests) != 1 || ix.Manifests[0].Digest != digest.FromBytes(sbom) || ix.Manifests[0].Annotations["note"] != "b" ||
		h.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("filtered referrers: %+v, filters %q", ix, h.Get("OCI-Filters-Applied"))
	}
	r := c.do("GET", "/v2/ref/app/referrers/"+string(digest.FromString("none")), nil).wantStatus(t, 200)
	if !strings.Contains(string(r.body), `"manifests":[]`) {
		t.Errorf("referrers of an unknown digest: %s", r.body)
	}
	// No fallback tag was created.
	if tags := listTags(t, c, "ref/app", ""); strings.Join(tags, ",") != "v1" {
		t.Errorf("tags after pushing referrers: %v", tags)
	}
}

func TestOperations(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	r := c.do("GET", "/v2/", nil).wantStatus(t, 200)
	if r.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Errorf("/v2/ without Docker-Distribution-API-Version")
	}
	c.do("GET", "/healthz", nil).wantStatus(t, 200)
	c.do("GET", "/readyz", nil).wantStatus(t, 200)
	c.pushImage("ops/app", "v1", "ops")
	r = c.do("GET", "/metrics", nil).wantStatus(t, 200)
	for _, want := range []string{`ferry_http_requests_total{method="PUT",route="manifest",status="201"} 1`, "ferry_http_request_duration_seconds_bucket", `ferry_http_request_bytes_total{route="upload"}`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(srv.Log.String(), `"path":"/v2/ops/app/manifests/v1","status":201`) {
		t.Errorf("no access log line for the manifest push:\n%s", srv.Log.String())
	}
}

func TestReadOnly(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	img := c.pushImage("ro/app", "v1", "ro")
	srv.Stop()
	ro := testenv.StartFerry(t, testenv.FerryOptions{DataDir: srv.DataDir, Args: []string{"--read-only"}})
	c = client{t, ro.URL}
	c.checkImage("ro/app", "v1", img)
	c.do("POST", "/v2/ro/app/blobs/uploads/", nil).wantError(t, 405, "UNSUPPORTED")
	c.do("DELETE", "/v2/ro/app/manifests/v1", nil).wantError(t, 405, "UNSUPPORTED")
	c.checkImage("ro/app", "v1", img)
}

// TestForeignLayers: a layer that lives at its URLs (a Windows base
// layer) need not be pushed; a layer of an ordinary type must be, URLs or
// not, as distribution decides (oci.Distributable).
func TestForeignLayers(t *testing.T) {
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	c := client{t, srv.URL}
	cfg := []byte(`{"architecture":"amd64","os":"windows"}`)
	cfgD := c.pushBlob("win/app", cfg)
	absent := digest.FromString("a layer nobody pushed")
	manifest := func(layerType string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",` +
			`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"` + string(cfgD) + `","size":` + strconv.Itoa(len(cfg)) + `},` +
			`"layers":[{"mediaType":"` + layerType + `","digest":"` + string(absent) + `","size":100,"urls":["https://mcr.example/layer"]}]}`)
	}
	const ct = "application/vnd.docker.distribution.manifest.v2+json"
	c.do("PUT", "/v2/win/app/manifests/foreign", manifest("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"), "Content-Type", ct).wantStatus(t, 201)
	c.do("PUT", "/v2/win/app/manifests/ordinary", manifest("application/vnd.docker.image.rootfs.diff.tar.gzip"), "Content-Type", ct).wantError(t, 400, "MANIFEST_BLOB_UNKNOWN")
}
