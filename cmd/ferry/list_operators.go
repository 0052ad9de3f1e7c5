package main

import (
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

func newListOperatorsCmd() *cobra.Command {
	var (
		ref, pkg, authFile string
		tlsVerify          bool
	)
	cmd := &cobra.Command{
		Use:   "operators --catalog <image or oci://folder> [--package <name>]",
		Short: "List a catalog's packages, default channels, and channels with their heads and versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ref == "" {
				return fmt.Errorf("give the catalog with --catalog, e.g. --catalog registry.redhat.io/redhat/redhat-operator-index:v4.16")
			}
			kc, err := transfer.LoadKeychain(transfer.AuthFiles(authFile), authFile != "")
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			src := transfer.NewRegistries(transfer.RegistryOptions{Insecure: !tlsVerify, Keychain: kc, Logger: log, UserAgent: "ferry-mirror"})
			cat, err := plan.ReadCatalog(cmd.Context(), src, ref)
			if err != nil {
				return err
			}
			pkgs, err := cat.List(pkg)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			if pkg == "" {
				fmt.Fprintln(w, "NAME\tDEFAULT CHANNEL")
				for _, p := range pkgs {
					fmt.Fprintf(w, "%s\t%s\n", p.Name, p.DefaultChannel)
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintln(w, "PACKAGE\tCHANNEL\tHEAD\tVERSIONS")
			for _, p := range pkgs {
				for _, c := range p.Channels {
					head := c.Head
					if c.Err != nil {
						head = "(" + c.Err.Error() + ")"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, c.Name, head, strings.Join(c.Versions, ", "))
				}
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "catalog", "", "catalog image reference, or oci://<folder> for an OCI layout")
	f.StringVar(&pkg, "package", "", "list only this package's channels")
	f.BoolVar(&tlsVerify, "src-tls-verify", true, "verify the catalog registry's TLS certificate; false also allows plain HTTP")
	f.StringVar(&authFile, "authfile", "", "registry credentials file (default: $REGISTRY_AUTH_FILE, then the podman/docker files)")
	return cmd
}
