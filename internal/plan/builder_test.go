package plan_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-mirror/ferry/internal/imageset"
	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// memRegistry is a source registry held in memory: repositories of tags
// and manifests, with the referrers API or without it, like a registry
// that predates it.
type memRegistry struct {
	host      string
	referrers bool

	mu    sync.Mutex
	repos map[string]*memRepo
	gets  map[string]int // GetManifest calls by repo@ref
	lists atomic.Int64   // Tags calls
}

type memRepo struct {
	tags      map[string]digest.Digest
	manifests map[digest.Digest]transfer.Manifest
}

func newMemRegistry(host string) *memRegistry {
	return &memRegistry{host: host, repos: map[string]*memRepo{}, gets: map[string]int{}}
}

func (r *memRegistry) repo(path string) *memRepo {
	rp := r.repos[path]
	if rp == nil {
		rp = &memRepo{tags: map[string]digest.Digest{}, manifests: map[digest.Digest]transfer.Manifest{}}
		r.repos[path] = rp
	}
	return rp
}

// put stores doc in path, tagged tag unless empty.
func (r *memRegistry) put(t *testing.T, path, tag, mediaType string, doc any) transfer.Manifest {
	t.Helper()
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	m := transfer.Manifest{MediaType: mediaType, Digest: digest.FromBytes(data), Data: data}
	r.mu.Lock()
	defer r.mu.Unlock()
	rp := r.repo(path)
	rp.manifests[m.Digest] = m
	if tag != "" {
		rp.tags[tag] = m.Digest
	}
	return m
}

// image stores an image of one config and the given layer sizes.
func (r *memRegistry) image(t *testing.T, path, tag, seed string, layers ...int64) (transfer.Manifest, []ocispec.Descriptor) {
	t.Helper()
	blobs := []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString(seed + " config"), Size: 100}}
	var ls []ocispec.Descriptor
	for i, n := range layers {
		ls = append(ls, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString(fmt.Sprintf("%s layer %d", seed, i)), Size: n})
	}
	m := r.put(t, path, tag, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specsV2, MediaType: ocispec.MediaTypeImageManifest, Config: blobs[0], Layers: ls,
	})
	return m, append(blobs, ls...)
}

func (r *memRegistry) Host() string { return r.host }

func (r *memRegistry) GetManifest(_ context.Context, repo, ref string) (transfer.Manifest, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gets[repo+"@"+ref]++
	rp := r.repos[repo]
	if rp != nil {
		d, ok := rp.tags[ref]
		if !ok {
			d = digest.Digest(ref)
		}
		if m, ok := rp.manifests[d]; ok {
			return m, nil
		}
	}
	return transfer.Manifest{}, &transfer.HTTPError{Method: http.MethodGet, URL: "https://" + r.host + "/v2/" + repo + "/manifests/" + ref, Status: http.StatusNotFound, Code: "MANIFEST_UNKNOWN"}
}

func (r *memRegistry) GetBlob(context.Context, string, digest.Digest) (io.ReadCloser, int64, error) {
	return nil, 0, errors.New("the builder reads no blob")
}

func (r *memRegistry) Tags(_ context.Context, repo string, _ int) ([]string, bool, error) {
	r.lists.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	var tags []string
	if rp := r.repos[repo]; rp != nil {
		for t := range rp.tags {
			tags = append(tags, t)
		}
	}
	return tags, true, nil
}

func (r *memRegistry) Referrers(_ context.Context, repo string, d digest.Digest) ([]byte, bool, error) {
	if !r.referrers {
		return nil, false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	idx := ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	if rp := r.repos[repo]; rp != nil {
		for _, m := range rp.manifests {
			var doc struct {
				Subject *ocispec.Descriptor `json:"subject"`
			}
			if json.Unmarshal(m.Data, &doc) == nil && doc.Subject != nil && doc.Subject.Digest == d {
				idx.Manifests = append(idx.Manifests, m.Descriptor())
			}
		}
	}
	data, err := json.Marshal(idx)
	return data, true, err
}

func (r *memRegistry) getCount(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[key]
}

// memSource serves the registries it holds by host.
type memSource map[string]*memRegistry

func (s memSource) Registry(host string) (plan.Registry, error) {
	if r, ok := s[host]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("no registry %s", host)
}

var specsV2 = specs.Versioned{SchemaVersion: 2}

func blobDigests(p *plan.Plan) []digest.Digest {
	var out []digest.Digest
	for _, b := range p.Blobs {
		out = append(out, b.Digest)
	}
	slices.Sort(out)
	return out
}

func TestBuildResolvesTagsAndDigests(t *testing.T) {
	src := newMemRegistry("quay.example")
	app, appBlobs := src.image(t, "team/app", "v1", "app", 1000, 2000)
	// A second image sharing nothing with the first; named by digest.
	db, dbBlobs := src.image(t, "team/db", "", "db", 3000)
	b := &plan.Builder{Src: memSource{src.host: src}, RemoveSignatures: true, DigestTags: true, Parallel: 4}
	p, err := b.Build(context.Background(), []plan.Request{
		{Section: plan.SectionAdditional, Name: "quay.example/team/app:v1"},
		{Section: plan.SectionAdditional, Name: "quay.example/team/db@" + db.Digest.String()},
		{Section: plan.SectionAdditional, Name: "quay.example/team/app:v1"}, // twice: one image
		{Section: plan.SectionAdditional, Name: "quay.example/team/app:v2"},
		{Section: plan.SectionAdditional, Name: "quay.example/team/app:v1", TargetRepo: "apps/app", TargetTag: "stable"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Images) != 3 {
		t.Fatalf("images %+v; want app:v1, db and app as apps/app:stable", p.Images)
	}
	byDest := map[string]plan.Image{}
	for _, im := range p.Images {
		byDest[im.DestRepo+":"+im.DestTag] = im
	}
	if im := byDest["team/app:v1"]; im.Digest != app.Digest || im.SourceRepo != "quay.example/team/app" {
		t.Errorf("app:v1 planned as %+v", im)
	}
	if im := byDest["team/db:"+plan.DigestTag(db.Digest)]; im.Digest != db.Digest {
		t.Errorf("db by digest planned as %+v; want it tagged %s", p.Images, plan.DigestTag(db.Digest))
	}
	if im := byDest["apps/app:stable"]; im.Digest != app.Digest || im.SourceRepo != "quay.example/team/app" {
		t.Errorf("targetRepo/targetTag planned as %+v", p.Images)
	}
	if len(p.Missing) != 1 || p.Missing[0].Source != "quay.example/team/app:v2" || !strings.Contains(p.Missing[0].Reason, "not found in quay.example") {
		t.Errorf("missing %+v; want app:v2 not found in quay.example", p.Missing)
	}
	var want []digest.Digest
	var bytes int64
	for _, bl := range append(appBlobs, dbBlobs...) {
		want = append(want, bl.Digest)
		bytes += bl.Size
	}
	slices.Sort(want)
	if got := blobDigests(p); !slices.Equal(got, want) {
		t.Errorf("blobs %v; want %v", got, want)
	}
	if p.TotalBytes() != bytes {
		t.Errorf("total bytes %d; want %d (each blob once)", p.TotalBytes(), bytes)
	}
	if m, ok := b.Manifest(app.Digest); !ok || string(m.Data) != string(app.Data) {
		t.Error("the builder does not hand out the bytes of the manifests it read")
	}
}

func TestBuildFiltersPlatformsAndWalksChildren(t *testing.T) {
	src := newMemRegistry("quay.example")
	amd, amdBlobs := src.image(t, "team/app", "", "amd64", 10)
	arm, _ := src.image(t, "team/app", "", "arm64", 20)
	desc := func(m transfer.Manifest, arch string) ocispec.Descriptor {
		d := m.Descriptor()
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		return d
	}
	list := src.put(t, "team/app", "v1", ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{desc(amd, "amd64"), desc(arm, "arm64")},
	})
	b := &plan.Builder{Src: memSource{src.host: src}, RemoveSignatures: true}
	p, err := b.Build(context.Background(), []plan.Request{
		{Section: plan.SectionAdditional, Name: "quay.example/team/app:v1", Platforms: []imageset.PlatformSpec{{OS: "linux", Architecture: "amd64"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Images) != 1 {
		t.Fatalf("images %+v, missing %+v", p.Images, p.Missing)
	}
	im := p.Images[0]
	if im.SourceDigest != list.Digest || im.Digest == list.Digest || !slices.Equal(im.Filtered, []string{"linux/amd64"}) {
		t.Fatalf("filtered list planned as %+v; want a new digest keeping linux/amd64", im)
	}
	if len(p.Synthesized) != 1 || p.Synthesized[0].Digest != im.Digest {
		t.Fatalf("synthesized %+v; want the filtered list", p.Synthesized)
	}
	var kept ocispec.Index
	if err := json.Unmarshal(p.Synthesized[0].Data, &kept); err != nil || len(kept.Manifests) != 1 || kept.Manifests[0].Digest != amd.Digest {
		t.Errorf("filtered list %s (%v); want only the amd64 image", p.Synthesized[0].Data, err)
	}
	var want []digest.Digest
	for _, bl := range amdBlobs {
		want = append(want, bl.Digest)
	}
	slices.Sort(want)
	if got := blobDigests(p); !slices.Equal(got, want) {
		t.Errorf("blobs %v; want only the amd64 image's %v", got, want)
	}
	if n := src.getCount("team/app@" + arm.Digest.String()); n != 0 {
		t.Errorf("the arm64 image, filtered out, was read %d times", n)
	}
}

func TestBuildMissingChildFailsTheImage(t *testing.T) {
	src := newMemRegistry("quay.example")
	gone := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("gone"), Size: 10,
		Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}}
	src.put(t, "team/app", "v1", ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{gone}})
	src.image(t, "team/other", "v1", "other", 5)
	b := &plan.Builder{Src: memSource{src.host: src}, RemoveSignatures: true}
	p, err := b.Build(context.Background(), []plan.Request{
		{Section: plan.SectionAdditional, Name: "quay.example/team/app:v1"},
		{Section: plan.SectionAdditional, Name: "quay.example/team/other:v1"},
		{Section: plan.SectionOperator, Name: "catalog package foo", Failed: "package foo is not in the catalog"},
		{Section: plan.SectionAdditional, Name: "Not A Reference"},
		{Section: plan.SectionAdditional, Name: "elsewhere.example/x:1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Images) != 1 || p.Images[0].DestRepo != "team/other" {
		t.Errorf("images %+v; want team/other only", p.Images)
	}
	reasons := map[string]string{}
	for _, m := range p.Missing {
		reasons[m.Source] = m.Reason
	}
	for src, want := range map[string]string{
		"quay.example/team/app:v1": "child manifest " + gone.Digest.String(),
		"catalog package foo":      "package foo is not in the catalog",
		"Not A Reference":          "not a valid image reference",
		"elsewhere.example/x:1":    "no registry elsewhere.example",
	} {
		if !strings.Contains(reasons[src], want) {
			t.Errorf("missing %s: reason %q; want it to say %q", src, reasons[src], want)
		}
	}
}

func TestBuildFindsSignaturesAndReferrers(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrersAPI=%v", api), func(t *testing.T) {
			src := newMemRegistry("quay.example")
			src.referrers = api
			app, _ := src.image(t, "team/app", "v1", "app", 10)
			tag := "sha256-" + app.Digest.Encoded()
			sig, _ := src.image(t, "team/app", tag+".sig", "signature", 1)
			sbom := src.put(t, "team/app", "", ocispec.MediaTypeImageManifest, ocispec.Manifest{
				Versioned: specsV2, MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/spdx+json",
				Config: ocispec.DescriptorEmptyJSON, Layers: []ocispec.Descriptor{{MediaType: "application/spdx+json", Digest: digest.FromString("sbom"), Size: 7}},
				Subject: &ocispec.Descriptor{MediaType: app.MediaType, Digest: app.Digest, Size: int64(len(app.Data))},
			})
			if !api { // the referrers tag schema: an index under the subject's tag
				src.put(t, "team/app", tag, ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{sbom.Descriptor()}})
			}
			var resolved atomic.Int64
			b := &plan.Builder{Src: memSource{src.host: src}, Resolved: func(plan.Image) { resolved.Add(1) }}
			p, err := b.Build(context.Background(), []plan.Request{{Section: plan.SectionAdditional, Name: "quay.example/team/app:v1"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Images) != 1 {
				t.Fatalf("images %+v, missing %+v", p.Images, p.Missing)
			}
			kinds := map[string]digest.Digest{}
			for _, x := range p.Images[0].Extras {
				kinds[x.Kind] = x.Digest
			}
			if kinds["signature"] != sig.Digest {
				t.Errorf("extras %+v; want the cosign signature %s", p.Images[0].Extras, sig.Digest)
			}
			ref, ok := kinds["referrers"]
			if !ok {
				t.Fatalf("extras %+v; want the referrers index", p.Images[0].Extras)
			}
			idx, ok := b.Manifest(ref)
			if !ok || !strings.Contains(string(idx.Data), sbom.Digest.String()) {
				t.Errorf("referrers index %s does not list the SBOM %s", idx.Data, sbom.Digest)
			}
			if !slices.Contains(blobDigests(p), digest.FromString("sbom")) {
				t.Error("the SBOM's layer is not among the plan's blobs")
			}
			if resolved.Load() != 1 {
				t.Errorf("Resolved called %d times; want once", resolved.Load())
			}
		})
	}
}

func TestBuildSharedDigestReadOnce(t *testing.T) {
	src := newMemRegistry("quay.example")
	shared, _ := src.image(t, "ocp/release", "", "component", 10)
	var reqs []plan.Request
	for i := range 5 { // five releases naming the same component
		reqs = append(reqs, plan.Request{Section: plan.SectionRelease, Name: "quay.example/ocp/release@" + shared.Digest.String(), TargetTag: fmt.Sprintf("4.%d-etcd", i)})
	}
	b := &plan.Builder{Src: memSource{src.host: src}, Parallel: 1}
	p, err := b.Build(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Images) != 5 {
		t.Fatalf("images %+v; want one per tag", p.Images)
	}
	if n := src.getCount("ocp/release@" + shared.Digest.String()); n != 1 {
		t.Errorf("the shared digest was read %d times; want once", n)
	}
	if n := src.lists.Load(); n != 1 {
		t.Errorf("the repository's tags were listed %d times; want once for every signature lookup", n)
	}
}

func TestBuildCancelled(t *testing.T) {
	src := newMemRegistry("quay.example")
	src.image(t, "team/app", "v1", "app", 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := &plan.Builder{Src: memSource{src.host: src}}
	if _, err := b.Build(ctx, []plan.Request{{Section: plan.SectionAdditional, Name: "quay.example/team/app:v1"}}); err == nil {
		t.Error("a cancelled build returned a plan")
	}
}
