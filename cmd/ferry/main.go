// Command ferry is a highly available mirror registry and the mirroring tool
// that fills it, for OpenShift and Kubernetes clusters in disconnected networks.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, stopProfile := newRootCmd()
	if filepath.Base(os.Args[0]) == ocMirrorName {
		// Started through a symlink named oc-mirror: oc-mirror v2's command line.
		root = newOcMirrorCmd()
	}
	err := root.ExecuteContext(ctx)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// newRootCmd returns the command tree and a function that ends the CPU
// profile --cpu-profile started, to be called whether or not the command
// failed.
func newRootCmd() (*cobra.Command, func()) {
	var profilePath string
	stopProfile := func() {}
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Mirror registry and mirroring tool for disconnected OpenShift and Kubernetes clusters",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if profilePath == "" {
				return nil
			}
			f, err := os.Create(profilePath)
			if err != nil {
				return fmt.Errorf("cpu profile: %w", err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return fmt.Errorf("cpu profile: %w", err)
			}
			stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
			return nil
		},
	}
	// For finding where a slow run spends its time; see bench/.
	root.PersistentFlags().StringVar(&profilePath, "cpu-profile", "", "write a Go CPU profile of the run to this file")
	_ = root.PersistentFlags().MarkHidden("cpu-profile")
	root.AddCommand(
		newServeCmd(),
		newMirrorCmd(),
		newArchiveCmd(),
		newListCmd(),
		newDemoCmd(),
		newUserCmd(),
		newGCCmd(),
		newHelmRenderCmd(),
		newInstallCmd(),
		newUninstallCmd(),
		newOcMirrorCmd(),
	)
	return root, func() { stopProfile() }
}
