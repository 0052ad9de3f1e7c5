package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestOrasPushPull pushes files as an OCI artifact and pulls them back.
func TestOrasPushPull(t *testing.T) {
	reg := startRegistry(t)
	home := t.TempDir()
	src := t.TempDir()
	files := map[string][]byte{
		"notes.txt":   []byte("release notes for the e2e artifact\n"),
		"payload.bin": randomBytes(700, 3<<20),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(src, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ref := reg.Host + "/artifacts/bundle:v1"
	orasIn(t, src, home, "push", "--plain-http", "--artifact-type", "application/vnd.ferry.e2e.bundle", ref,
		"notes.txt:text/plain", "payload.bin")

	out := t.TempDir()
	orasIn(t, out, home, "pull", "--plain-http", ref)
	for n, want := range files {
		got, err := os.ReadFile(filepath.Join(out, n))
		if err != nil {
			t.Errorf("oras pull did not write %s: %v", n, err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("pulled %s differs from the pushed file", n)
		}
	}
	var m struct {
		ArtifactType string `json:"artifactType"`
	}
	e := do(t, "GET", reg.URL+"/v2/artifacts/bundle/manifests/v1", map[string][]string{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}, nil)
	if err := json.Unmarshal(e.Body, &m); err != nil || m.ArtifactType != "application/vnd.ferry.e2e.bundle" {
		t.Errorf("artifact manifest: %v (%v)", e, err)
	}
}

// TestOrasAttachDiscover attaches an SBOM and a signature to an image and
// finds them through the referrers API, with no fallback tag created: a
// registry without the API makes oras write a sha256-<hex> tag instead.
func TestOrasAttachDiscover(t *testing.T) {
	reg := startRegistry(t)
	home := t.TempDir()
	img := seedImage(t, true, 710, 711, "amd64")
	pushImage(t, reg.Host+"/apps/signed:1", img)
	subject := digestOf(t, img)

	dir := t.TempDir()
	for n, b := range map[string]string{"sbom.spdx.json": `{"spdxVersion":"SPDX-2.3"}`, "sig.txt": "signature bytes"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ref := reg.Host + "/apps/signed@" + subject
	orasIn(t, dir, home, "attach", "--plain-http", "--artifact-type", "application/spdx+json", ref, "sbom.spdx.json")
	orasIn(t, dir, home, "attach", "--plain-http", "--artifact-type", "application/vnd.ferry.e2e.signature", ref, "sig.txt")

	// oras discover reads the referrers API.
	var found struct {
		Referrers []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"referrers"`
	}
	out := orasIn(t, dir, home, "discover", "--plain-http", "--format", "json", reg.Host+"/apps/signed:1")
	if err := json.Unmarshal([]byte(out), &found); err != nil {
		t.Fatalf("oras discover output: %v\n%s", err, out)
	}
	var types []string
	for _, r := range found.Referrers {
		types = append(types, r.ArtifactType)
	}
	slices.Sort(types)
	if !slices.Equal(types, []string{"application/spdx+json", "application/vnd.ferry.e2e.signature"}) {
		t.Errorf("oras discover found artifact types %q, want the SBOM and the signature\n%s", types, out)
	}

	ferryOnly(t) // distribution v3 has no referrers API

	// The API itself, filtered by artifactType.
	e := do(t, "GET", reg.URL+"/v2/apps/signed/referrers/"+subject+"?artifactType=application/spdx%2Bjson", nil, nil)
	if e.Status != 200 {
		t.Fatalf("referrers API: %v", e)
	}
	var idx struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			ArtifactType string `json:"artifactType"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(e.Body, &idx); err != nil {
		t.Fatalf("referrers API body: %v: %v", err, e)
	}
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != "application/spdx+json" {
		t.Errorf("referrers filtered by artifactType: %v", e)
	}
	if got := e.Header.Get("OCI-Filters-Applied"); got != "artifactType" {
		t.Errorf("OCI-Filters-Applied %q, want artifactType", got)
	}

	fallback := regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)
	for _, tag := range tags(t, reg, "apps/signed") {
		if fallback.MatchString(tag) {
			t.Errorf("oras created the fallback tag %s: the referrers API was not detected", tag)
		}
	}
}

// orasIn runs oras in dir, where it reads and writes files by relative name.
func orasIn(t *testing.T, dir, home string, args ...string) string {
	t.Helper()
	out, err := runIn(t, dir, home, nil, "oras", args...)
	if err != nil {
		t.Fatalf("oras %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
