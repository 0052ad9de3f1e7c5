package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-mirror/ferry/internal/archive"
)

func newArchiveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "Check or unpack a Ferry disk archive",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify <dir>",
		Short: "Check every chunk's size and SHA-256 and every blob's place; exits non-zero naming what is bad",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := archive.Open(args[0])
			if err != nil {
				return err
			}
			if err := a.Verify(cmd.Context(), nil); err != nil {
				return err
			}
			m := a.Metadata()
			var size int64
			for _, c := range m.Chunks {
				size += c.Size
			}
			fmt.Fprintf(cmd.OutOrStdout(), "archive %s is complete and intact: %d chunks, %d blobs, %d bytes\n", args[0], len(m.Chunks), len(m.Blobs), size)
			return nil
		},
	}, &cobra.Command{
		Use:   "extract <dir> <dest>",
		Short: "Unpack an archive's chunks into <dest> (never writing outside it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := archive.Extract(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "extracted %s into %s\n", args[0], args[1])
			return nil
		},
	})
	return cmd
}
