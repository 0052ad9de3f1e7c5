package console_test

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ferry-mirror/ferry/internal/fixtures"
	"github.com/ferry-mirror/ferry/internal/testenv"
)

// mirrored is a protected ferry serve after a real `ferry mirror` of one
// release, one operator package of a catalog and two additional images,
// plus an image whose label holds markup.
type mirrored struct {
	up      *upstream
	srv     *testenv.Server
	version string // the release mirrored
	pkg     string // the operator package kept by the filter
	xss     string // ocp/library/xss:v1's digest
}

func mirror(t *testing.T) *mirrored {
	t.Helper()
	up := startUpstream(t)
	srv := startProtected(t)
	rel := up.u.Releases[0]
	for _, r := range up.u.Releases {
		if r.Arch == "x86_64" && slices.Contains(r.Channels, "stable-4.16") {
			rel = r
		}
	}
	cat := up.u.Catalogs[0]
	pkg := cat.Packages[0].Name
	var extras []string
	for _, s := range up.u.CosignSigned {
		extras = append(extras, "  - name: "+s.Image.ByTag())
	}
	cfg := filepath.Join(t.TempDir(), "isc.yaml")
	isc := fmt.Sprintf(`kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  platform:
    channels:
    - name: stable-4.16
      minVersion: %[1]s
      maxVersion: %[1]s
  operators:
  - catalog: %[2]s
    packages:
    - name: %[3]s
  additionalImages:
%[4]s
`, rel.Version, cat.Image.ByTag(), pkg, strings.Join(extras, "\n"))
	if err := os.WriteFile(cfg, []byte(isc), 0o644); err != nil {
		t.Fatal(err)
	}
	authFile := filepath.Join(t.TempDir(), "auth.json")
	writeAuthFile(t, authFile, srv.Host, "root", rootPW)
	out, code := testenv.RunFerry(t, up.srv.Env(up.keyFile), "mirror", "-c", cfg, "--workspace", "file://"+t.TempDir(),
		"--src-tls-verify=false", "--dest-tls-verify=false", "--authfile", authFile, "docker://"+srv.Host+"/ocp")
	if code != 0 {
		t.Fatalf("ferry mirror exit %d:\n%s", code, out)
	}
	m := &mirrored{up: up, srv: srv, version: rel.Version, pkg: pkg}
	m.xss = pushMarkup(t, srv.Host)
	return m
}

// TestConsoleInBrowser walks the console in headless Chromium as an
// administrator would after a mirror run: sign in, the release complete,
// then incomplete naming the component whose manifest was deleted, the
// filtered catalog, an image, and a robot token created, used with crane,
// revoked and refused. Screenshots of each view go to $FERRY_ARTIFACTS.
func TestConsoleInBrowser(t *testing.T) {
	m := mirror(t)
	crane := testenv.Tool(t, "crane")
	ctx := browser(t)
	shots := artifacts(t)
	base := m.srv.URL

	// A visitor is sent to sign in.
	open(t, ctx, base+"/releases")
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/login?") {
		t.Fatalf("anonymous visit of /releases landed on %s, want the sign-in page", loc)
	}
	screenshot(t, ctx, shots, "login")
	signIn(t, ctx, base, "root", rootPW)

	t.Run("repositories", func(t *testing.T) {
		open(t, ctx, base+"/repositories")
		rows := text(t, ctx, "#repositories")
		for _, want := range []string{"ocp/openshift/release-images", "ocp/openshift/release", "ocp/redhat/redhat-operator-index"} {
			if !strings.Contains(rows, want) {
				t.Errorf("repository list lacks %s:\n%s", want, rows)
			}
		}
		if size := text(t, ctx, `tr.repository[data-name="ocp/library/xss"] td.size`); size == "" || size == "0 B" {
			t.Errorf("ocp/library/xss size: %q", size)
		}
		screenshot(t, ctx, shots, "repositories")
		open(t, ctx, base+"/repository?name=ocp/library/xss")
		if tags := text(t, ctx, "#tags"); !strings.Contains(tags, "v1") || !strings.Contains(tags, ".sig") || !strings.Contains(tags, "linux/amd64") {
			t.Errorf("tags of ocp/library/xss:\n%s", tags)
		}
		// The SBOM referrer was pushed by digest only.
		if untagged := text(t, ctx, "#untagged"); !strings.Contains(untagged, "artifact") {
			t.Errorf("manifests pushed by digest:\n%s", untagged)
		}
		screenshot(t, ctx, shots, "repository")
		open(t, ctx, base+"/repositories?q=operator-index")
		if rows := text(t, ctx, "#repositories"); strings.Contains(rows, "release-images") || !strings.Contains(rows, "redhat-operator-index") {
			t.Errorf("search operator-index shows:\n%s", rows)
		}
	})

	t.Run("release complete", func(t *testing.T) {
		open(t, ctx, base+"/releases")
		row := text(t, ctx, fmt.Sprintf(`tr.release[data-version="%s"]`, m.version))
		if !strings.Contains(row, "complete") || strings.Contains(row, "incomplete") || !strings.Contains(row, "amd64") {
			t.Fatalf("release %s row: %q, want complete on amd64", m.version, row)
		}
		screenshot(t, ctx, shots, "releases")
	})

	t.Run("run report", func(t *testing.T) {
		open(t, ctx, base+"/runs")
		runs := get(t, ctx, "runs", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("tr.run")).map(r => r.dataset.tag)`))
		if len(runs) != 1 {
			t.Fatalf("runs listed: %v, want the one mirror run", runs)
		}
		if row := text(t, ctx, "tr.run"); !strings.Contains(row, "succeeded") || !strings.Contains(row, m.srv.Host+"/ocp") {
			t.Errorf("run row: %q", row)
		}
		screenshot(t, ctx, shots, "runs")
		do(t, ctx, "open the run", chromedp.Click(chromedp.CSS("tr.run a")), chromedp.WaitVisible(chromedp.CSS("#report")))
		rep := text(t, ctx, "#report")
		if !strings.Contains(rep, "Signature ConfigMap\twritten") && !strings.Contains(rep, "written") {
			t.Errorf("report does not say the signature ConfigMap was written:\n%s", rep)
		}
		if rels := text(t, ctx, "#run-releases"); !strings.Contains(rels, "release-images:"+m.version+"-x86_64") || !strings.Contains(rels, "(signed)") {
			t.Errorf("report releases: %q", rels)
		}
		if cats := text(t, ctx, "#run-catalogs"); !strings.Contains(cats, "redhat-operator-index:v4.16") {
			t.Errorf("report catalogs: %q", cats)
		}
		screenshot(t, ctx, shots, "run")
		open(t, ctx, base+"/releases")
		if sig := text(t, ctx, fmt.Sprintf(`tr.release[data-version="%s"] td.signature`, m.version)); sig != "written" {
			t.Errorf("release signature ConfigMap: %q, want written", sig)
		}
	})

	t.Run("release incomplete", func(t *testing.T) {
		rel := m.releaseFixture(t)
		gone := rel.Components[len(rel.Components)/2]
		registryDelete(t, m.srv.Host, "ocp/openshift/release", gone.Image.Digest, "root", rootPW)
		var missing []string
		for _, c := range rel.Components {
			if c.Image.Digest == gone.Image.Digest {
				missing = append(missing, c.Name)
			}
		}
		open(t, ctx, base+"/releases")
		row := text(t, ctx, fmt.Sprintf(`tr.release[data-version="%s"]`, m.version))
		want := fmt.Sprintf("incomplete: %d missing", len(missing))
		if !strings.Contains(row, want) {
			t.Fatalf("after deleting %s: row %q, want %q", gone.Name, row, want)
		}
		for _, n := range missing {
			if !strings.Contains(row, n) {
				t.Errorf("row does not name the missing component %s: %q", n, row)
			}
		}
		screenshot(t, ctx, shots, "releases-incomplete")
	})

	t.Run("catalog", func(t *testing.T) {
		open(t, ctx, base+"/catalogs?repo=ocp/redhat/redhat-operator-index&tag=v4.16")
		names := get(t, ctx, "package names", chromedp.Evaluate[[]string](
			`Array.from(document.querySelectorAll("tr.package")).map(r => r.dataset.package).filter((v, i, a) => a.indexOf(v) === i)`))
		if !slices.Equal(names, []string{m.pkg}) {
			t.Fatalf("catalog view lists packages %v, want only the filtered %s", names, m.pkg)
		}
		body := text(t, ctx, "#packages")
		if !strings.Contains(body, "bundle present") || strings.Contains(body, "missing") {
			t.Errorf("head bundles of %s should be present with their related images:\n%s", m.pkg, body)
		}
		// Every bundle of the filtered package is marked present.
		bad := get(t, ctx, "bundles marked missing", chromedp.Evaluate[int](`document.querySelectorAll("span.bundle.bad").length`))
		good := get(t, ctx, "bundles marked present", chromedp.Evaluate[int](`document.querySelectorAll("span.bundle.ok").length`))
		if bad != 0 || good == 0 {
			t.Errorf("bundles: %d present, %d missing; want all present", good, bad)
		}
		screenshot(t, ctx, shots, "catalog")

		// Delete one related image of a bundle from the mirror: the view
		// names that bundle incomplete.
		bundle := get(t, ctx, "a bundle", chromedp.Evaluate[string](`document.querySelector("span.bundle").title`))
		var related string
		for _, p := range m.up.u.Catalogs[0].Packages {
			for _, b := range p.Bundles {
				for _, ri := range b.RelatedImages {
					if b.Name == bundle && ri != b.Image.ByDigest() {
						related = ri
					}
				}
			}
		}
		if related == "" {
			t.Fatalf("bundle %s has no related image besides itself in the fixture", bundle)
		}
		repo, dg, _ := strings.Cut(strings.TrimPrefix(related, m.up.u.Host+"/"), "@")
		registryDelete(t, m.srv.Host, "ocp/"+repo, dg, "root", rootPW)
		open(t, ctx, base+"/catalogs?repo=ocp/redhat/redhat-operator-index&tag=v4.16")
		sel := fmt.Sprintf(`span.bundle[title="%s"]`, bundle)
		if cls := get(t, ctx, "bundle class", chromedp.Evaluate[string](`document.querySelector('`+sel+`').className`)); !strings.Contains(cls, "bad") {
			t.Errorf("bundle %s after deleting its related image %s: class %q, want it marked incomplete", bundle, related, cls)
		}
		if txt := text(t, ctx, sel); !strings.Contains(txt, "1 images missing") {
			t.Errorf("bundle %s reads %q", bundle, txt)
		}
	})

	t.Run("image", func(t *testing.T) {
		open(t, ctx, base+"/image?repo=ocp/library/xss&ref=v1")
		sum := text(t, ctx, "#summary")
		if !strings.Contains(sum, m.xss) || !strings.Contains(sum, "sha256-") {
			t.Errorf("image summary lacks its digest or its cosign signature:\n%s", sum)
		}
		if refs := text(t, ctx, "#referrers"); !strings.Contains(refs, "application/spdx+json") {
			t.Errorf("referrers: %q", refs)
		}
		pulls := text(t, ctx, "#pull")
		for _, want := range []string{"podman pull " + m.srv.Host + "/ocp/library/xss:v1", "podman pull " + m.srv.Host + "/ocp/library/xss@" + m.xss} {
			if !strings.Contains(pulls, want) {
				t.Errorf("pull commands lack %q:\n%s", want, pulls)
			}
		}
		// The label's markup is text: no script ran, no element was made.
		if title := get(t, ctx, "title", chromedp.Title()); title == "owned" {
			t.Error("the script in the image's label ran")
		}
		if n := get(t, ctx, "elements", chromedp.Evaluate[int](`document.querySelectorAll("script, img").length`)); n != 1 {
			t.Errorf("the page has %d script or img elements, want only the console's script", n)
		}
		if labels := text(t, ctx, "#labels"); !strings.Contains(labels, markup) {
			t.Errorf("the label is not shown as text:\n%s", labels)
		}
		// The copy buttons work with the page's own script (no inline
		// script is allowed).
		do(t, ctx, "copy the pull command", chromedp.Click(chromedp.CSS("#pull button")))
		if !get(t, ctx, "wait for the copy", chromedp.Poll[bool](`document.querySelector("#pull button").textContent === "Copied"`)) {
			t.Error("the copy button did not copy")
		}
		screenshot(t, ctx, shots, "image")
		// Phone width: the same page, narrow.
		do(t, ctx, "phone viewport", chromedp.EmulateViewport(390, 844))
		open(t, ctx, base+"/releases")
		screenshot(t, ctx, shots, "releases-phone")
		do(t, ctx, "desktop viewport", chromedp.EmulateViewport(1280, 900))
	})

	t.Run("robot token", func(t *testing.T) {
		open(t, ctx, base+"/admin")
		do(t, ctx, "create a token for alice",
			chromedp.SetValue(chromedp.CSS("#token-user"), "alice"),
			chromedp.SendKeys(chromedp.CSS("#token-description"), "console test"),
			chromedp.Click(chromedp.CSS("#create-token")),
			chromedp.WaitVisible(chromedp.CSS("#new-token")),
		)
		secret := text(t, ctx, "#new-token")
		msg := text(t, ctx, "#message")
		id := strings.Fields(strings.TrimPrefix(msg, "Token "))[0]
		screenshot(t, ctx, shots, "admin-token")
		ref := m.srv.Host + "/ocp/openshift/release-images:" + m.version + "-x86_64"
		if out, err := craneDigest(t, crane, m.srv.Host, "alice", secret, ref); err != nil {
			t.Fatalf("crane with the new token: %v\n%s", err, out)
		}
		// Shown once: a reload does not show it again.
		open(t, ctx, base+"/admin")
		if n := get(t, ctx, "token shown", chromedp.Evaluate[int](`document.querySelectorAll("#new-token").length`)); n != 0 {
			t.Error("the token is shown again after a reload")
		}
		do(t, ctx, "revoke the token",
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr.token[data-token="%s"] button.revoke`, id))),
			chromedp.WaitVisible(chromedp.CSS("#message")),
		)
		if msg := text(t, ctx, "#message"); !strings.Contains(msg, "revoked") {
			t.Errorf("after revoking: %q", msg)
		}
		if n := get(t, ctx, "token row", chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('tr.token[data-token="%s"]').length`, id))); n != 0 {
			t.Error("the revoked token is still listed")
		}
		if out, err := craneDigest(t, crane, m.srv.Host, "alice", secret, ref); err == nil {
			t.Fatalf("crane with the revoked token still works:\n%s", out)
		}
	})

	t.Run("storage", func(t *testing.T) {
		startUpload(t, m.srv.Host, "ocp/library/pending", []byte("half of a layer"))
		var files int
		var size int64
		filepath.WalkDir(filepath.Join(m.srv.DataDir, "blobs"), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files++
				if fi, err := d.Info(); err == nil {
					size += fi.Size()
				}
			}
			return nil
		})
		open(t, ctx, base+"/storage")
		if got := text(t, ctx, "#blob-count"); got != fmt.Sprint(files) {
			t.Errorf("blobs stored: %s, want the %d files of the data dir", got, files)
		}
		if got := text(t, ctx, "#upload-count"); got != "1" {
			t.Errorf("uploads in progress: %s, want 1", got)
		}
		if rows := text(t, ctx, "#uploads"); !strings.Contains(rows, "ocp/library/pending") || !strings.Contains(rows, "15 B") {
			t.Errorf("uploads: %q", rows)
		}
		screenshot(t, ctx, shots, "storage")
		t.Logf("%d blobs, %d bytes", files, size)
	})

	t.Run("health", func(t *testing.T) {
		open(t, ctx, base+"/health")
		if got := text(t, ctx, "#metadata-health") + "/" + text(t, ctx, "#blob-health"); got != "ok/ok" {
			t.Errorf("stores: %s", got)
		}
		screenshot(t, ctx, shots, "health")
	})
	t.Logf("screenshots in %s", shots)
}

// craneDigest runs `crane digest` with user's credentials in a fresh
// docker config, as a CI job with a robot token would.
func craneDigest(t *testing.T, crane, host, user, pw, ref string) (string, error) {
	t.Helper()
	home := t.TempDir()
	writeAuthFile(t, filepath.Join(home, ".docker", "config.json"), host, user, pw)
	cmd := exec.Command(crane, "digest", "--insecure", ref)
	cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// releaseFixture is the upstream's description of the mirrored release.
func (m *mirrored) releaseFixture(t *testing.T) fixtures.Release {
	t.Helper()
	for _, r := range m.up.u.Releases {
		if r.Version == m.version && r.Arch == "x86_64" {
			return r
		}
	}
	t.Fatalf("no fixture release %s", m.version)
	return fixtures.Release{}
}
