package console_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-mirror/ferry/internal/runreport"
)

// markup is what an attacker would put in anything the console shows.
const markup = `<script>document.title="owned"</script><img src=x onerror=alert(1)>`

// pushMarkup pushes ocp/library/xss:v1, an image whose label and
// annotation hold markup, with a cosign-style signature tag and an SPDX
// referrer, as root; it returns the image's digest.
func pushMarkup(t *testing.T, host string) string {
	t.Helper()
	opt := remote.WithAuth(&authn.Basic{Username: "root", Password: rootPW})
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{"org.example.note": markup}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, map[string]string{"org.example.annotation": markup}).(v1.Image)
	ref, _ := name.ParseReference(host+"/ocp/library/xss:v1", name.Insecure)
	if err := remote.Write(ref, img, opt); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := img.Digest()
	desc, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}

	// cosign's layout: a tag sha256-<hex>.sig holding a simple-signing layer.
	sigRef, _ := name.ParseReference(host+"/ocp/library/xss:"+strings.Replace(d.String(), ":", "-", 1)+".sig", name.Insecure)
	sigAdd, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer([]byte(`{"critical":{}}`), "application/vnd.dev.cosign.simplesigning.v1+json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(sigRef, sigAdd, opt); err != nil {
		t.Fatalf("push signature: %v", err)
	}

	// An SBOM referrer: an artifact whose subject is the image.
	base, err := mutate.AppendLayers(empty.Image, static.NewLayer([]byte(`{"spdxVersion":"SPDX-2.3"}`), "application/spdx+json"))
	if err != nil {
		t.Fatal(err)
	}
	sbom := mutate.ConfigMediaType(mutate.MediaType(base, types.OCIManifestSchema1), "application/spdx+json")
	sbom = mutate.Subject(sbom, *desc).(v1.Image)
	sd, _ := sbom.Digest()
	sbomRef, _ := name.ParseReference(host+"/ocp/library/xss@"+sd.String(), name.Insecure)
	if err := remote.Write(sbomRef, sbom, opt); err != nil {
		t.Fatalf("push SBOM referrer: %v", err)
	}
	return d.String()
}

// pushMarkupReport pushes a run report whose fields hold markup to
// ferry/runs, as a hostile or broken mirror client could, and returns
// its tag.
func pushMarkupReport(t *testing.T, host string) string {
	t.Helper()
	body := []byte(`{"workflow":"mirrorToMirror","destination":"` + jsonEscape(markup) + `","config":"` + jsonEscape(markup) +
		`","imagesFailed":1,"failures":["` + jsonEscape(markup) + `"],"catalogs":["` + jsonEscape(markup) + `"]}`)
	base, err := mutate.AppendLayers(empty.Image, static.NewLayer(body, runreport.MediaType))
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(base, types.OCIManifestSchema1), "application/vnd.oci.empty.v1+json")
	tag := "run-20260101T000000Z-markup"
	ref, _ := name.ParseReference(host+"/"+runreport.Repo+":"+tag, name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "root", Password: rootPW})); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return tag
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
