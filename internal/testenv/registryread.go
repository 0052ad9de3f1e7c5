package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// WriteImageSetConfig writes an ImageSetConfiguration (v2alpha1) whose
// mirror section is mirror, YAML indented under "mirror:", and returns
// its path.
func WriteImageSetConfig(t testing.TB, mirror string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "isc.yaml")
	cfg := "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n" + mirror
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Manifest is a manifest as a plain-HTTP registry answered it.
type Manifest struct {
	Status    int
	MediaType string
	Digest    string // of the body
	Body      []byte
}

// GetManifest reads repo:ref (a tag or digest) from the registry at host,
// accepting every manifest type.
func GetManifest(t testing.TB, host, repo, ref string) Manifest {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", ManifestAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("get %s/%s:%s: %v", host, repo, ref, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := sha256.Sum256(body)
	return Manifest{Status: resp.StatusCode, MediaType: resp.Header.Get("Content-Type"), Digest: "sha256:" + hex.EncodeToString(sum[:]), Body: body}
}

// Catalog lists the repositories of the registry at host, every page.
func Catalog(t testing.TB, host string) []string {
	t.Helper()
	var out []string
	for next := "/v2/_catalog"; next != ""; {
		var doc struct {
			Repositories []string `json:"repositories"`
		}
		next, _ = getJSON(t, host, next, &doc)
		out = append(out, doc.Repositories...)
	}
	return out
}

// Tags lists repo's tags at host, every page, sorted; nil when the
// repository is not there.
func Tags(t testing.TB, host, repo string) []string {
	t.Helper()
	var out []string
	for next := "/v2/" + repo + "/tags/list"; next != ""; {
		var doc struct {
			Tags []string `json:"tags"`
		}
		var found bool
		if next, found = getJSON(t, host, next, &doc); !found {
			return nil
		}
		out = append(out, doc.Tags...)
	}
	sort.Strings(out)
	return out
}

// getJSON decodes the answer to a GET of path at host into v and returns
// the next page's path from the Link header; found is false on 404. No
// page size is asked for: registries cap it differently (distribution
// refuses more than 1000).
func getJSON(t testing.TB, host, path string, v any) (next string, found bool) {
	t.Helper()
	url := "http://" + host + path
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return "", false
	default:
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	// Link: </v2/_catalog?last=x&n=100>; rel="next"
	if l := resp.Header.Get("Link"); strings.Contains(l, `rel="next"`) {
		if a, b := strings.Index(l, "<"), strings.Index(l, ">"); a >= 0 && b > a {
			next = l[a+1 : b]
			if i := strings.Index(next, "/v2/"); i > 0 {
				next = next[i:] // an absolute URL: keep the path
			}
		}
	}
	return next, true
}

// AssertDigest checks that repo:ref at host is the manifest want and that
// its whole tree (child manifests, config, layers) reads back by digest.
func AssertDigest(t testing.TB, host, repo, ref, want string) {
	t.Helper()
	m := GetManifest(t, host, repo, ref)
	if m.Status != http.StatusOK {
		t.Errorf("%s/%s:%s: status %d, want 200", host, repo, ref, m.Status)
		return
	}
	if m.Digest != want {
		t.Errorf("%s/%s:%s: digest %s, want %s (unchanged from upstream)", host, repo, ref, m.Digest, want)
		return
	}
	AssertTree(t, host, repo, m)
}

// AssertTree checks that every manifest m lists, and every config and
// layer below it, reads back from repo at host with the digest and size
// the manifest gives.
func AssertTree(t testing.TB, host, repo string, m Manifest) {
	t.Helper()
	type desc struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	}
	var doc struct {
		Manifests []desc `json:"manifests"`
		Config    *desc  `json:"config"`
		Layers    []desc `json:"layers"`
	}
	if err := json.Unmarshal(m.Body, &doc); err != nil {
		t.Fatalf("manifest %s: %v", m.Digest, err)
	}
	for _, c := range doc.Manifests {
		cm := GetManifest(t, host, repo, c.Digest)
		if cm.Status != http.StatusOK || cm.Digest != c.Digest {
			t.Errorf("%s/%s: child %s: status %d digest %s", host, repo, c.Digest, cm.Status, cm.Digest)
			continue
		}
		AssertTree(t, host, repo, cm)
	}
	blobs := doc.Layers
	if doc.Config != nil {
		blobs = append([]desc{*doc.Config}, blobs...)
	}
	for _, b := range blobs {
		resp, err := http.Get("http://" + host + "/v2/" + repo + "/blobs/" + b.Digest)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(data)
		if resp.StatusCode != http.StatusOK || "sha256:"+hex.EncodeToString(sum[:]) != b.Digest || int64(len(data)) != b.Size {
			t.Errorf("%s/%s: blob %s: status %d, %d bytes (want %d), content digest sha256:%x", host, repo, b.Digest, resp.StatusCode, len(data), b.Size, sum)
		}
	}
}
