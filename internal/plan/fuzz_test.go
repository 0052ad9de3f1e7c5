package plan

import (
	"encoding/json"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/transfer"
)

// FuzzPlanValidate feeds arbitrary plans, as an archive could carry them,
// to Validate. Whatever it accepts must push only inside the destination
// prefix, under valid tags and digests, whatever --max-nested-paths is.
func FuzzPlanValidate(f *testing.F) {
	d := digest.FromString("image")
	good := Plan{Version: Version, Images: []Image{{
		Section: SectionAdditional, Source: "quay.io/app/alpha:1.0", SourceRepo: "quay.io/app/alpha",
		SourceDigest: d, Digest: d, DestRepo: "app/alpha", DestTag: "1.0",
		Extras: []Extra{{Kind: "signature", Tag: "sha256-" + d.Encoded() + ".sig", Digest: d}},
	}}, Manifests: []Descriptor{{Digest: d}}, Blobs: []Descriptor{{Digest: d, Size: 1}},
		Synthesized: []transfer.Manifest{{Digest: digest.FromString("{}"), Data: []byte("{}")}}}
	seed := func(edit func(p *Plan)) {
		p := good
		p.Images = []Image{good.Images[0]}
		p.Images[0].Extras = []Extra{good.Images[0].Extras[0]}
		edit(&p)
		data, err := json.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, n := range []int{0, 1, 2, 3} {
			f.Add(data, n)
		}
	}
	seed(func(p *Plan) {})
	for _, repo := range []string{"../../outside/evil", "/abs", "a/./b", "a//b", "UP/per", "", "a/../../b", "a/b/", "-a/b", strings.Repeat("a/", 200) + "a"} {
		seed(func(p *Plan) { p.Images[0].DestRepo = repo })
	}
	for _, tag := range []string{"../evil", "v1/x", ".hidden", "-x", strings.Repeat("t", 129), "a b", "x:y"} {
		seed(func(p *Plan) { p.Images[0].DestTag = tag })
		seed(func(p *Plan) { p.Images[0].Extras[0].Tag = tag })
	}
	for _, dg := range []string{"nope", "sha256:", "sha256:../x", "md5:aa"} {
		seed(func(p *Plan) { p.Images[0].Digest = digest.Digest(dg) })
		seed(func(p *Plan) { p.Manifests[0].Digest = digest.Digest(dg) })
		seed(func(p *Plan) { p.Synthesized[0].Digest = digest.Digest(dg) })
	}
	seed(func(p *Plan) { p.Images[0].SourceRepo = "quay.io/../../evil" })
	seed(func(p *Plan) { p.Images[0].Section = "../../etc" })
	seed(func(p *Plan) { p.Images[0].Source = "quay.io/a/../b:1" })
	f.Fuzz(func(t *testing.T, data []byte, maxNested int) {
		var p Plan
		if json.Unmarshal(data, &p) != nil || p.Validate() != nil {
			return
		}
		const root = "mirror.lan:5000/disconnected/ocp"
		maxNested %= 8
		// Folding by --max-nested-paths may reach into the prefix, as
		// oc-mirror does: its tail components then start the folded name.
		want := map[int]string{1: "disconnected-ocp-", 2: "disconnected/ocp-"}[maxNested]
		if want == "" {
			want = "disconnected/ocp/"
		}
		for _, j := range p.Jobs(root, maxNested, true) {
			for _, it := range j.Items {
				if !strings.HasPrefix(it.DstRepo, want) || !InsidePrefix(root, maxNested, it.DstRepo) {
					t.Fatalf("accepted plan pushes to %q, outside %s (max nested %d)", it.DstRepo, root, maxNested)
				}
				if err := CheckRepoPath(it.DstRepo); err != nil {
					t.Fatalf("accepted plan pushes to %v", err)
				}
				if it.Ref != "" {
					if err := CheckTag(it.Ref); err != nil {
						t.Fatalf("accepted plan pushes under %v", err)
					}
				}
				if err := it.Digest.Validate(); err != nil {
					t.Fatalf("accepted plan pushes digest %q", it.Digest)
				}
			}
		}
	})
}
