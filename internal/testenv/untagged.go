package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"testing"
)

// ManifestAccept is every manifest type a mirror holds, for Accept headers.
const ManifestAccept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

// PlanManifests returns the digest of every manifest a ferry plan.json
// lists: the candidates DeleteUntagged looks for in each repository.
func PlanManifests(t testing.TB, planFile string) []string {
	t.Helper()
	data, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Images []struct {
			Digest string `json:"digest"`
		} `json:"images"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s: %v", planFile, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, d := range p.Images {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			out = append(out, d.Digest)
		}
	}
	for _, d := range p.Manifests {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			out = append(out, d.Digest)
		}
	}
	return out
}

// DeleteUntagged does, through the registry API of the plain-HTTP registry
// at host, what Quay's expiry of untagged manifests does: in every
// repository, each of candidates that is present and is neither tagged,
// nor inside a tagged index, nor a referrer of a kept manifest is deleted.
// It returns the repo@digest references it deleted, sorted. The registry
// must allow deletes (ferry serve does).
func DeleteUntagged(t testing.TB, host string, candidates []string) []string {
	t.Helper()
	get := func(path string, accept string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+host+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	var catalog struct{ Repositories []string }
	if code, body := get("/v2/_catalog?n=10000", ""); code != http.StatusOK || json.Unmarshal(body, &catalog) != nil {
		t.Fatalf("_catalog: status %d: %s", code, body)
	}
	type doc struct {
		Manifests []struct{ Digest string } `json:"manifests"`
		Subject   *struct{ Digest string }  `json:"subject"`
	}
	var deleted []string
	for _, repo := range catalog.Repositories {
		manifest := func(ref string) (bool, doc) {
			code, body := get("/v2/"+repo+"/manifests/"+url.PathEscape(ref), ManifestAccept)
			var d doc
			if code != http.StatusOK {
				return false, d
			}
			_ = json.Unmarshal(body, &d)
			return true, d
		}
		kept := map[string]bool{}
		var keep func(d string, m doc)
		keep = func(dg string, m doc) {
			if kept[dg] {
				return
			}
			kept[dg] = true
			for _, c := range m.Manifests {
				if ok, cm := manifest(c.Digest); ok {
					keep(c.Digest, cm)
				}
			}
		}
		var tags struct{ Tags []string }
		if code, body := get("/v2/"+repo+"/tags/list?n=10000", ""); code == http.StatusOK {
			_ = json.Unmarshal(body, &tags)
		}
		for _, tag := range tags.Tags {
			code, body := get("/v2/"+repo+"/manifests/"+tag, ManifestAccept)
			if code != http.StatusOK {
				continue
			}
			sum := sha256.Sum256(body)
			var m doc
			_ = json.Unmarshal(body, &m)
			keep("sha256:"+hex.EncodeToString(sum[:]), m)
		}
		present := map[string]doc{}
		for _, d := range candidates {
			if ok, m := manifest(d); ok && !kept[d] {
				present[d] = m
			}
		}
		// A referrer lives as long as its subject, as registries with the
		// referrers API keep it; repeat until no subject is newly kept.
		for changed := true; changed; {
			changed = false
			for d, m := range present {
				if m.Subject != nil && kept[m.Subject.Digest] {
					keep(d, m)
					delete(present, d)
					changed = true
				}
			}
		}
		for d := range present {
			req, _ := http.NewRequest(http.MethodDelete, "http://"+host+"/v2/"+repo+"/manifests/"+d, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("DELETE %s@%s: %v", repo, d, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("DELETE %s@%s: status %d, want 202", repo, d, resp.StatusCode)
			}
			deleted = append(deleted, fmt.Sprintf("%s@%s", repo, d))
		}
	}
	sort.Strings(deleted)
	return deleted
}
