package testenv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	return RunBinary(t, env, FerryBinary(t), args...)
}

// RunBinary is RunFerry for another binary, or ferry under another name
// (the oc-mirror link).
func RunBinary(t testing.TB, env []string, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	out := buf.String()
	logged := out
	if len(logged) > 8000 {
		logged = "...\n" + logged[len(logged)-8000:]
	}
	t.Logf("%s %s (exit %d):\n%s", filepath.Base(bin), strings.Join(args, " "), code, logged)
	return out, code
}

// EnvInt reads a positive whole number from the environment variable
// name, def when it is unset: the size knobs of the benchmarks.
func EnvInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}
