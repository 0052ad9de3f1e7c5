package mirror

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	ok := []struct {
		dest, from, ws string
		mode           Mode
		root           string
	}{
		{"file:///media/usb", "", "", MirrorToDisk, ""},
		{"docker://mirror.lan:8443/ocp", "file:///media/usb", "", DiskToMirror, "mirror.lan:8443/ocp"},
		{"docker://mirror.lan:8443/", "", "file:///var/ferry/working-dir", MirrorToMirror, "mirror.lan:8443"},
	}
	for _, c := range ok {
		got, err := ParseTarget(c.dest, c.from, c.ws)
		if err != nil || got.Mode != c.mode || got.Dest != c.root {
			t.Errorf("ParseTarget(%q, %q, %q) = %+v, %v", c.dest, c.from, c.ws, got, err)
		}
	}
	if got, _ := ParseTarget("docker://m", "", "file:///var/ferry/working-dir"); got.Dir != "/var/ferry" {
		t.Errorf("workspace ending in working-dir: dir %q, want /var/ferry", got.Dir)
	}
	bad := []struct{ dest, from, ws, want string }{
		{"mirror.lan:8443", "", "file:///x", "docker://"},
		{"docker://m", "", "", "--workspace"},
		{"docker://m", "file:///a", "file:///b", "cannot be used together"},
		{"docker://m", "/a", "", "file://"},
		{"file:///a", "file:///b", "", "--from is not used"},
		{"docker://m/ocp:v1", "", "file:///x", "tag"},
		{"", "", "", "required"},
	}
	for _, c := range bad {
		_, err := ParseTarget(c.dest, c.from, c.ws)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseTarget(%q, %q, %q) error %v; want it to mention %q", c.dest, c.from, c.ws, err, c.want)
		}
	}
}

func TestExitCodeBits(t *testing.T) {
	e := sectionError("x", "", map[string]bool{"additional": true, "operator": true})
	if e.ExitCode() != ExitAdditional|ExitOperator {
		t.Errorf("exit code %d, want %d", e.ExitCode(), ExitAdditional|ExitOperator)
	}
}
