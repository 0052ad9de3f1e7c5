package clusterresources

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestSkopeoPullsThroughRegistriesConf has a real client, skopeo, resolve
// images named by an unreachable upstream through the generated
// registries.conf: a digest through a digest-only mirror, a tag through a
// mirror that received tags, and never a tag through a digest-only mirror.
func TestSkopeoPullsThroughRegistriesConf(t *testing.T) {
	skopeo := testenv.Tool(t, "skopeo")
	mirror := testenv.StartDockerRegistry(t)

	push := func(ref string) string {
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	const upstream = "upstream.invalid:5000"
	appDigest := push(mirror.Host + "/ocp/team/app:sha256-x")
	push(mirror.Host + "/ocp/team/app:v1") // present on the mirror, but must not serve a tag pull
	toolDigest := push(mirror.Host + "/ocp/team/tool:v2")

	dir := t.TempDir()
	_, err := Write(dir, dir, []Mapping{
		{Source: upstream + "/team/app@" + appDigest, Destination: mirror.Host + "/ocp/team/app:sha256-x", Section: SectionAdditional},
		{Source: upstream + "/team/tool:v2", Destination: mirror.Host + "/ocp/team/tool:v2", Section: SectionAdditional},
	}, Options{InsecureMirrors: true})
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, RegistriesConfFile)
	inspect := func(ref string) (string, error) {
		cmd := exec.Command(skopeo, "--registries-conf", conf, "inspect", "--no-tags", "--format", "{{.Digest}}", "docker://"+ref)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := inspect(upstream + "/team/app@" + appDigest); err != nil || out != appDigest {
		t.Errorf("skopeo inspect by digest through the mirror: %v\n%s", err, out)
	}
	if out, err := inspect(upstream + "/team/tool:v2"); err != nil || out != toolDigest {
		t.Errorf("skopeo inspect by tag through the mirror: %v\n%s", err, out)
	}
	if out, err := inspect(upstream + "/team/app:v1"); err == nil || !strings.Contains(out, "upstream.invalid") {
		t.Errorf("skopeo resolved a tag through a digest-only mirror, or failed for another reason: %v\n%s", err, out)
	}
}
