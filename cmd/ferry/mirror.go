package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newMirrorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "mirror",
		Short: "not implemented yet",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("mirror: not implemented yet")
		},
	}
}
