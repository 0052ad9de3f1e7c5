package main

import (
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-mirror/ferry/internal/mirror"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// deleteFlags are delete's own flags, as oc-mirror v2 names them.
type deleteFlags struct {
	o                mirror.DeleteOptions
	forceCacheDelete bool
	v1Images         bool
}

func (d *deleteFlags) register(f *pflag.FlagSet) {
	f.StringVar(&d.o.DeleteID, "delete-id", "", "suffix of the files delete --generate writes (delete-images-<id>.yaml), and that delete reads")
	f.StringVar(&d.o.DeleteYAML, "delete-yaml-file", "", "the delete-images.yaml to delete (written by delete --generate, editable)")
	f.BoolVar(&d.forceCacheDelete, "force-cache-delete", false, "accepted for oc-mirror compatibility; Ferry keeps no local cache")
	f.BoolVar(&d.o.Generate, "generate", false, "resolve the DeleteImageSetConfiguration (-c) and write working-dir/delete/delete-images.yaml; nothing is deleted")
	f.BoolVar(&d.o.DeleteSignatures, "delete-signatures", false, "also delete the images' cosign signature tags")
	f.BoolVar(&d.v1Images, "delete-v1-images", false, "accepted for oc-mirror compatibility; Ferry never wrote oc-mirror v1 tags")
}

const deleteLong = `Delete images from a mirror registry, in two steps as oc-mirror v2 does:

  1. resolve a DeleteImageSetConfiguration as the mirror resolved it, and
     write working-dir/delete/delete-images.yaml and delete-summary.txt;
     nothing is deleted:
       delete --generate -c delete-isc.yaml --workspace file://<dir> docker://<registry>[/<prefix>]
  2. delete the manifests that file names (review or edit it first):
       delete --delete-yaml-file <dir>/working-dir/delete/delete-images.yaml docker://<registry>[/<prefix>]

A manifest that an image set the workspace mirrored (and did not delete)
still uses is kept, and the report says which image needs it; a shared
tag is removed while its manifest stays. Registries that refuse DELETE
are reported per image. Deleting frees no space by itself: the registry's
garbage collector does (ferry gc; ferry gc --dry-run shows how much).`

// runDelete runs delete with the target and the registry flags settled.
func runDelete(cmd *cobra.Command, d *deleteFlags, args []string, workspace, logLevel string) error {
	if len(args) != 1 || !strings.HasPrefix(args[0], "docker://") {
		return errors.New("delete needs the destination registry, docker://<registry>[/<prefix>], as its one argument")
	}
	o := &d.o
	dest, err := mirror.ParseRegistry(args[0])
	if err != nil {
		return err
	}
	o.Dest = dest
	if workspace != "" {
		wt, err := mirror.ParseTarget(args[0], "", workspace)
		if err != nil {
			return err
		}
		o.Dir = wt.Dir
	}
	if o.Generate && o.Dir == "" {
		return errors.New("delete --generate needs --workspace file://<dir>: the delete files are written to <dir>/working-dir/delete")
	}
	if o.Generate && o.DeleteYAML != "" {
		return errors.New("--generate writes the delete file and --delete-yaml-file deletes what one names; give one of them")
	}
	level, err := parseLogLevel(logLevel)
	if err != nil {
		return err
	}
	o.Out = cmd.OutOrStdout()
	o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	if o.Retry.Times == 0 && o.Retry.Delay == 0 {
		o.Retry = transfer.Retry{Times: 2, Delay: time.Second}
	}
	if o.Generate {
		return mirror.GenerateDelete(cmd.Context(), *o)
	}
	return mirror.Delete(cmd.Context(), *o)
}

// newDeleteCmd is `ferry mirror delete`.
func newDeleteCmd() *cobra.Command {
	var (
		d                   deleteFlags
		workspace, logLevel string
	)
	cmd := &cobra.Command{
		Use:   "delete (--generate -c <delete-isc.yaml> --workspace file://<dir> | --delete-yaml-file <file>) docker://<registry>[/<prefix>]",
		Short: "Delete images from a mirror registry: generate the list, then delete it",
		Long:  deleteLong,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDelete(cmd, &d, args, workspace, logLevel)
		},
	}
	f := cmd.Flags()
	d.register(f)
	f.StringVarP(&d.o.ConfigPath, "config", "c", "", "the DeleteImageSetConfiguration (with --generate)")
	f.StringVar(&workspace, "workspace", "", "the workspace the images were mirrored with, file://<dir>")
	f.BoolVar(&d.o.DryRun, "dry-run", false, "say what would be deleted and kept; delete nothing")
	f.StringVar(&d.o.AuthFile, "authfile", "", "credentials file (default $REGISTRY_AUTH_FILE, then the podman and docker files)")
	f.BoolVar(&d.o.SrcTLSVerify, "src-tls-verify", true, "verify source registries' TLS certificates (--generate reads them); false also allows plain HTTP")
	f.BoolVar(&d.o.DestTLSVerify, "dest-tls-verify", true, "verify the destination's TLS certificate; false also allows plain HTTP")
	f.IntVar(&d.o.MaxNestedPaths, "max-nested-paths", 0, "the --max-nested-paths the images were mirrored with")
	f.StringVar(&logLevel, "log-level", "info", "log level: info, debug, trace, warn, error")
	return cmd
}
