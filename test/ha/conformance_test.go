package ha

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

// TestConformanceOnHAReplica runs the OCI distribution-spec conformance
// suite, every workflow on, against one replica of a two-replica
// PostgreSQL + S3 deployment. Zero failures is the bar.
func TestConformanceOnHAReplica(t *testing.T) {
	bin := testenv.Tool(t, "oci-conformance")
	c := startCluster(t, 2)
	srv := c.replicas[1]
	dir := t.TempDir() // the suite writes its reports into its working directory
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OCI_ROOT_URL="+srv.URL,
		"OCI_NAMESPACE=conformance/one",
		"OCI_CROSSMOUNT_NAMESPACE=conformance/two",
		"OCI_TEST_PULL=1", "OCI_TEST_PUSH=1",
		"OCI_TEST_CONTENT_DISCOVERY=1", "OCI_TEST_CONTENT_MANAGEMENT=1",
	)
	timer := time.AfterFunc(10*time.Minute, func() { cmd.Process.Kill() })
	out, runErr := cmd.CombinedOutput()
	timer.Stop()

	var report struct {
		Suites []struct {
			Tests int `xml:"tests,attr"`
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Status  string    `xml:"status,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	var junit string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "junit.xml" {
			junit = p
		}
		return nil
	})
	raw, err := os.ReadFile(junit)
	if err != nil {
		t.Fatalf("no junit report (%v); suite: %v\n%s", err, runErr, lastBytes(out))
	}
	if err := xml.Unmarshal(raw, &report); err != nil {
		t.Fatal(err)
	}
	total, failed := 0, 0
	for _, s := range report.Suites {
		total += s.Tests
		for _, c := range s.Cases {
			if c.Failure != nil || c.Error != nil || c.Status == "failed" || c.Status == "error" {
				failed++
				t.Errorf("conformance check failed: %s", c.Name)
			}
		}
	}
	if total < 100 {
		t.Errorf("the conformance suite ran only %d checks; expected hundreds", total)
	}
	if runErr != nil && failed == 0 {
		t.Errorf("conformance suite exited with %v but reported no failing check:\n%s", runErr, lastBytes(out))
	}
	t.Logf("conformance on an HA replica: %d checks, %d failed", total, failed)
	if failed > 0 {
		t.Logf("suite output:\n%s\nreplica log:\n%s", lastBytes(out), lastBytes([]byte(srv.Log.String())))
	}
}

func lastBytes(b []byte) string {
	const max = 8000
	if len(b) > max {
		return "…" + strings.ToValidUTF8(string(b[len(b)-max:]), "")
	}
	return string(b)
}
