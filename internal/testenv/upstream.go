package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/fixtures"
)

// Upstream is the synthetic upstream pushed into Debian's docker-registry,
// with its update graph, signature and chart servers on loopback.
type Upstream struct {
	*fixtures.Upstream
	Registry *Server
	Servers  *fixtures.Servers
	KeyFile  string // the armored public key that signs its releases
}

// StartUpstream generates the synthetic upstream with opts (Host is set
// here), pushes it into a new docker-registry and starts its servers; all
// stop when the test ends.
func StartUpstream(t testing.TB, opts fixtures.Options) *Upstream {
	t.Helper()
	reg := StartDockerRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts.Host = reg.Host
	u, err := fixtures.Generate(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Push(ctx, fixtures.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	srv, err := u.Serve("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	key := filepath.Join(t.TempDir(), "release-key.asc")
	if err := os.WriteFile(key, u.PublicKey(), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Upstream{Upstream: u, Registry: reg, Servers: srv, KeyFile: key}
}
