package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-mirror/ferry/internal/fixtures"
)

func newDemoCmd() *cobra.Command {
	demo := &cobra.Command{
		Use:   "demo",
		Short: "Offline demonstration helpers",
	}
	demo.AddCommand(newFixtureUpstreamCmd())
	return demo
}

type fixtureUpstreamFlags struct {
	registry   string
	size       string
	seed       uint64
	listenHost string
	dir        string
}

func newFixtureUpstreamCmd() *cobra.Command {
	var f fixtureUpstreamFlags
	cmd := &cobra.Command{
		Use:   "upstream",
		Short: "Stand up a synthetic OpenShift upstream on loopback (registry content, update graph, signatures, Helm charts)",
		Long: `Stand up a synthetic upstream shaped like quay.io, api.openshift.com and
mirror.openshift.com on loopback, so Ferry's mirroring can be tried with no
internet. Content is pushed into --registry, or into a ferry serve it starts.
It prints the environment to export and writes an ImageSetConfiguration,
then runs until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFixtureUpstream(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	cmd.Flags().StringVar(&f.registry, "registry", "", "push into this registry host:port (plain HTTP on loopback); default: start a ferry serve")
	cmd.Flags().StringVar(&f.size, "size", string(fixtures.SizeTiny), "content size: tiny or release")
	cmd.Flags().Uint64Var(&f.seed, "seed", 1, "seed of the generated content (same seed, same digests)")
	cmd.Flags().StringVar(&f.listenHost, "listen-host", "127.0.0.1", "address the graph, signature and chart servers (and a started registry) listen on")
	cmd.Flags().StringVar(&f.dir, "dir", "", "directory for the public key, the ImageSetConfiguration and a started registry's data (default: a new temporary directory)")
	return cmd
}

func runFixtureUpstream(ctx context.Context, out io.Writer, f fixtureUpstreamFlags) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	dir := f.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "ferry-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	host := f.registry
	if host == "" {
		h, stop, err := startFixtureRegistry(ctx, f.listenHost, filepath.Join(dir, "registry"))
		if err != nil {
			return err
		}
		defer stop()
		host = h
	}
	log.Info("generating upstream", "registry", host, "size", f.size, "seed", f.seed)
	u, err := fixtures.Generate(ctx, fixtures.Options{Host: host, Seed: f.seed, Size: fixtures.Size(f.size)})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	start := time.Now()
	if err := u.Push(ctx, fixtures.PushOptions{}); err != nil {
		return fmt.Errorf("demo: %w (is %s a registry that accepts pushes over plain HTTP?)", err, host)
	}
	log.Info("pushed", "images", len(u.Images()), "took", time.Since(start).Round(time.Millisecond))
	srv, err := u.Serve(f.listenHost)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer srv.Close()
	keyPath := filepath.Join(dir, "release-key.asc")
	if err := os.WriteFile(keyPath, u.PublicKey(), 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	iscPath := filepath.Join(dir, "imageset-config.yaml")
	if err := os.WriteFile(iscPath, u.ImageSetConfig(srv), 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	desc, err := json.MarshalIndent(u, "", "  ")
	if err != nil {
		return fmt.Errorf("demo: describe upstream: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "upstream.json"), desc, 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(out, "# Synthetic upstream ready: registry %s, graph %s, signatures %s, charts %s\n", host, srv.GraphURL, srv.SignatureURL, srv.ChartURL)
	fmt.Fprintln(out, "# Export these, then mirror with the ImageSetConfiguration below:")
	for _, e := range srv.Env(keyPath) {
		fmt.Fprintln(out, "export "+e)
	}
	fmt.Fprintf(out, "# Every image with its digest: %s\n", filepath.Join(dir, "upstream.json"))
	fmt.Fprintf(out, "# ImageSetConfiguration written to %s:\n", iscPath)
	out.Write(u.ImageSetConfig(srv))
	archive := filepath.Join(dir, "archive")
	base := host + "/ubi9/ubi:latest"
	fmt.Fprintf(out, "# Then, in the shell with those variables: mirror to disk, start a mirror registry, push the archive into it:\n")
	fmt.Fprintf(out, "#   ferry mirror -c %s --src-tls-verify=false --graph-base-image %s file://%s\n", iscPath, base, archive)
	fmt.Fprintf(out, "#   ferry serve --plain-http --listen 127.0.0.1:5000 --data-dir %s &\n", filepath.Join(dir, "mirror"))
	fmt.Fprintf(out, "#   ferry mirror -c %s --dest-tls-verify=false --from file://%s docker://127.0.0.1:5000/ocp\n", iscPath, archive)
	fmt.Fprintln(out, "# Running until interrupted (Ctrl-C).")
	<-ctx.Done()
	return nil
}

// startFixtureRegistry runs this binary's own `serve --plain-http` on a free
// port and waits until it answers /v2/.
func startFixtureRegistry(ctx context.Context, listenHost, dataDir string) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("demo: find own binary: %w", err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(listenHost, "0"))
	if err != nil {
		return "", nil, fmt.Errorf("demo: listen on %s: %w", listenHost, err)
	}
	host := net.JoinHostPort(listenHost, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	l.Close()
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", nil, fmt.Errorf("demo: %w", err)
	}
	// Not CommandContext: stop() interrupts it and waits, so it can shut
	// down cleanly after ctx ends.
	// The synthetic upstream is a public registry: open, on loopback.
	cmd := exec.Command(self, "serve", "--plain-http", "--auth=off", "--listen", host, "--data-dir", dataDir)
	// The registry's access log would bury the demo's own output: keep it
	// in a file beside the registry's data.
	logPath := filepath.Join(dataDir, "serve.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("demo: registry log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", nil, fmt.Errorf("demo: start registry: %w", err)
	}
	fmt.Fprintf(os.Stderr, "demo: registry %s started, its log is %s\n", host, logPath)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return host, stop, nil
		}
		select {
		case err := <-exited:
			return "", nil, fmt.Errorf("demo: registry %s serve exited: %v; pass --registry host:port to use another registry", self, err)
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("demo: registry did not answer /v2/ within 30s; pass --registry host:port to use another registry")
		}
	}
}
