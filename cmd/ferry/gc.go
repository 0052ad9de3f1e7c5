package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-mirror/ferry/internal/gc"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

func newGCCmd() *cobra.Command {
	var (
		stores storeFlags
		grace  time.Duration
		debug  bool
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Free the storage of blobs no image uses any more, while ferry serve runs",
		Long: `Remove what deleted images left behind, on the stores ferry serve uses
(--data-dir, or --metadata postgres://... and --blob-store s3://... for HA
replicas): blob links no manifest of their repository references, then the
blob bytes no repository links. Serving goes on meanwhile, on every replica.

Images are deleted by their manifests (skopeo delete, crane delete, regctl
manifest rm, or DELETE /v2/<name>/manifests/<digest>); gc never deletes a
manifest. Blobs and links younger than --grace are kept, so a push that has
uploaded its blobs but not yet its manifest is not robbed of them.

  ferry gc --data-dir /var/lib/ferry
  ferry gc --metadata postgres://ferry@db/ferry --blob-store s3://ferry?endpoint=minio:9000`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnvAndConfig(cmd.Flags(), "")
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if grace < 0 {
				return fmt.Errorf("--grace %s: must not be negative", grace)
			}
			ctx := cmd.Context()
			blobs, meta, err := stores.open(ctx)
			if err != nil {
				return err
			}
			defer meta.Close()
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			start := time.Now()
			rep, err := gc.Run(ctx, meta, blobs, gc.Options{Grace: grace, Log: log, DryRun: dryRun})
			if dryRun {
				fmt.Fprintf(cmd.OutOrStdout(), "dry run: would delete %d blobs (%s, %d bytes) no image uses; would keep %d blobs; nothing was changed\n",
					rep.BlobsDeleted, transfer.FormatBytes(rep.BytesFreed), rep.BytesFreed, rep.BlobsKept)
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d blob links no manifest uses; deleted %d blobs (%s, %d bytes); kept %d blobs; %s\n",
				rep.LinksRemoved, rep.BlobsDeleted, transfer.FormatBytes(rep.BytesFreed), rep.BytesFreed, rep.BlobsKept, time.Since(start).Round(time.Millisecond))
			if err != nil {
				return fmt.Errorf("gc: %w (what is reported above was done; run gc again to finish)", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	stores.register(f, true)
	f.DurationVar(&grace, "grace", 24*time.Hour, "keep blobs and links younger than this")
	f.BoolVar(&debug, "debug", false, "log every blob deleted")
	f.BoolVar(&dryRun, "dry-run", false, "report how much a collection would free, changing nothing")
	return cmd
}
