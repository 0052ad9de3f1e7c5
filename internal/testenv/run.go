package testenv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RunFerry runs the built ferry binary with extra environment variables and
// returns its combined output and exit code; it fails the test only when the
// binary could not run at all. The output is logged, so a failing assertion
// on it shows what ferry said.
func RunFerry(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, FerryBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run ferry %s: %v", strings.Join(args, " "), err)
	}
	out := buf.String()
	logged := out
	if len(logged) > 8000 {
		logged = "...\n" + logged[len(logged)-8000:]
	}
	t.Logf("ferry %s (exit %d):\n%s", strings.Join(args, " "), code, logged)
	return out, code
}
