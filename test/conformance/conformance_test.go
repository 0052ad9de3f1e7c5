// Package conformance runs the OCI distribution-spec conformance suite
// against a real `ferry serve --plain-http`.
package conformance

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

type junitSuites struct {
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string    `xml:"name,attr"`
	Status  string    `xml:"status,attr"`
	Failure *junitMsg `xml:"failure"`
	Error   *junitMsg `xml:"error"`
}

type junitMsg struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// TestConformance runs every API and data check of the suite (pull, push,
// content discovery, content management) with the settings the project
// brief names, and fails naming each failing check; zero failures is the bar.
func TestConformance(t *testing.T) {
	bin := testenv.Tool(t, "oci-conformance")
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	runSuite(t, bin, srv,
		"OCI_ROOT_URL="+srv.URL,
		"OCI_NAMESPACE=conformance/one",
		"OCI_CROSSMOUNT_NAMESPACE=conformance/two",
		"OCI_TEST_PULL=1",
		"OCI_TEST_PUSH=1",
		"OCI_TEST_CONTENT_DISCOVERY=1",
		"OCI_TEST_CONTENT_MANAGEMENT=1",
	)
}

// TestConformanceOptionalAPIs also turns on the checks the suite leaves off
// by default: upload cancel, Docker-Content-Digest checks, ?tag= on a push
// by digest. Only "sparse" indexes stay off: Ferry requires an index's
// manifests to be in the repository (400 MANIFEST_BLOB_UNKNOWN) on purpose.
func TestConformanceOptionalAPIs(t *testing.T) {
	bin := testenv.Tool(t, "oci-conformance")
	srv := testenv.StartFerry(t, testenv.FerryOptions{})
	conf := filepath.Join(t.TempDir(), "conformance.yaml")
	yaml := strings.ReplaceAll(optionalConfig, "REGISTRY", srv.Host)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	runSuite(t, bin, srv, "OCI_CONFIGURATION="+conf)
}

const optionalConfig = `registry: REGISTRY
tls: disabled
repo1: optional/one
repo2: optional/two
logging: warn
apis:
  ping: true
  pull: true
  push: true
  blobs: {atomic: true, delete: true, digestHeader: true, mountAnonymous: true, uploadCancel: true}
  manifests: {atomic: true, delete: true, digestHeader: true, tagParam: true}
  tags: {atomic: true, delete: true, list: true}
  referrer: true
data:
  image: true
  index: true
  indexList: true
  sparse: false
  artifact: true
  subject: true
  subjectMissing: true
  artifactList: true
  subjectList: true
  dataField: true
  nondistributable: true
  customFields: true
  noLayers: true
  emptyBlob: true
  sha512: true
`

func runSuite(t *testing.T, bin string, srv *testenv.Server, env ...string) {
	t.Helper()
	dir := t.TempDir() // the suite writes its reports into the working directory
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	done := make(chan struct{})
	var out []byte
	var runErr error
	go func() { out, runErr = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("conformance suite did not finish in 10 minutes; output:\n%s", tail(out))
	}

	junitPath := findFile(t, dir, "junit.xml")
	raw, err := os.ReadFile(junitPath)
	if err != nil {
		t.Fatalf("conformance suite wrote no junit report (%v); run error %v; output:\n%s", err, runErr, tail(out))
	}
	var report junitSuites
	if err := xml.Unmarshal(raw, &report); err != nil {
		t.Fatalf("parse %s: %v", junitPath, err)
	}
	total, failed := 0, 0
	for _, s := range report.Suites {
		total += s.Tests
		for _, c := range s.Cases {
			msg := ""
			switch {
			case c.Failure != nil:
				msg = c.Failure.Message + " " + c.Failure.Text
			case c.Error != nil:
				msg = c.Error.Message + " " + c.Error.Text
			case c.Status == "failed" || c.Status == "error":
				msg = c.Status
			default:
				continue
			}
			failed++
			t.Errorf("conformance check failed: %s: %s", c.Name, strings.TrimSpace(msg))
		}
	}
	// A suite that ran nothing proves nothing.
	if total < 100 {
		t.Errorf("the conformance suite ran only %d checks; expected hundreds (did its configuration change?)", total)
	}
	if runErr != nil && failed == 0 {
		t.Errorf("conformance suite exited with %v but reported no failing check; output:\n%s", runErr, tail(out))
	}
	t.Logf("conformance: %d checks, %d failed", total, failed)
	if failed > 0 {
		t.Logf("server log:\n%s", tail([]byte(srv.Log.String())))
	}
}

// findFile finds the report wherever this version of the suite puts it
// (the working directory or a results/ subdirectory).
func findFile(t *testing.T, dir, name string) string {
	t.Helper()
	var found string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name && found == "" {
			found = p
		}
		return nil
	})
	if found == "" {
		return filepath.Join(dir, name)
	}
	return found
}

func tail(b []byte) string {
	const max = 8000
	if len(b) > max {
		return "…" + string(b[len(b)-max:])
	}
	return string(b)
}
