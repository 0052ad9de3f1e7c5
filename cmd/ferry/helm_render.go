package main

import (
	"github.com/spf13/cobra"

	"github.com/ferry-mirror/ferry/internal/helm"
)

// newHelmRenderCmd is the child process `ferry mirror` renders each Helm
// chart in (see helm.Sandbox); not for users.
func newHelmRenderCmd() *cobra.Command {
	return &cobra.Command{
		Use:    helm.RenderCommand,
		Short:  "render one Helm chart read from stdin (internal to ferry mirror)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return helm.ServeRender(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
}
