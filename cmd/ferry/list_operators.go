package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/Masterminds/semver/v3"
	"github.com/spf13/cobra"

	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// Red Hat's default catalogs, as oc-mirror lists them; the marketplace
// index ends with 4.22.
var defaultCatalogs = []string{
	"registry.redhat.io/redhat/redhat-operator-index",
	"registry.redhat.io/redhat/certified-operator-index",
	"registry.redhat.io/redhat/community-operator-index",
}

const marketplaceCatalog = "registry.redhat.io/redhat/redhat-marketplace-index"

func newListOperatorsCmd(tlsVerify *bool, authFile *string) *cobra.Command {
	var (
		ref, pkg, channel, version string
		catalogs                   bool
		access                     = sourceAccess{tlsVerify, authFile}
	)
	cmd := &cobra.Command{
		Use:   "operators (--catalogs --version <x.y> | --catalog <image or oci://folder> [--package <name> [--channel <name>]])",
		Short: "List the default catalogs of a version, a catalog's packages, a package's channels, or a channel's versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if version != "" && ref == "" {
				catalogs = true
			}
			switch {
			case catalogs && ref != "":
				return errors.New("--catalogs (the default catalogs of a version) and --catalog (one catalog's content) exclude each other")
			case catalogs && version == "":
				return errors.New("--catalogs needs --version, such as --version=4.16")
			case !catalogs && ref == "":
				return errors.New("give --catalogs --version=<x.y>, or --catalog <image>, e.g. --catalog registry.redhat.io/redhat/redhat-operator-index:v4.16")
			case pkg == "" && channel != "":
				return errors.New("--channel needs --catalog and --package")
			}
			out := cmd.OutOrStdout()
			if catalogs {
				v, err := semver.NewVersion(version)
				if err != nil {
					return fmt.Errorf("--version %q: want major.minor, such as 4.16", version)
				}
				fmt.Fprintf(out, "Available OpenShift OperatorHub catalogs:\nOpenShift %s:\n", version)
				list := defaultCatalogs
				if v.LessThan(semver.MustParse("4.22.0")) {
					list = append(list[:len(list):len(list)], marketplaceCatalog)
				}
				for _, c := range list {
					fmt.Fprintf(out, "%s:v%d.%d\n", c, v.Major(), v.Minor())
				}
				return nil
			}
			ro, err := access.registryOptions(cmd)
			if err != nil {
				return err
			}
			cat, err := plan.ReadCatalog(cmd.Context(), plan.Registries(transfer.NewRegistries(ro)), ref)
			if err != nil {
				return err
			}
			pkgs, err := cat.List(pkg)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			switch {
			case channel != "":
				for _, p := range pkgs {
					for _, c := range p.Channels {
						if c.Name == channel {
							fmt.Fprintln(w, "VERSIONS")
							for _, v := range c.Versions {
								fmt.Fprintln(w, v)
							}
							return w.Flush()
						}
					}
					var names []string
					for _, c := range p.Channels {
						names = append(names, c.Name)
					}
					return fmt.Errorf("package %s has no channel %q; its channels are %s", pkg, channel, strings.Join(names, ", "))
				}
			}
			// oc-mirror prints the packages table; the channels with
			// their heads and versions follow, which oc-mirror needs a
			// command per package for.
			fmt.Fprintln(w, "NAME\tDEFAULT CHANNEL")
			for _, p := range pkgs {
				fmt.Fprintf(w, "%s\t%s\n", p.Name, p.DefaultChannel)
			}
			fmt.Fprintln(w)
			fmt.Fprintln(w, "PACKAGE\tCHANNEL\tHEAD\tVERSIONS")
			for _, p := range pkgs {
				for _, c := range p.Channels {
					head := c.Head
					if c.Err != nil {
						head = "ERROR: " + c.Err.Error()
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, c.Name, head, strings.Join(c.Versions, ", "))
				}
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&catalogs, "catalogs", false, "list Red Hat's default catalogs for an OpenShift version (needs --version)")
	f.StringVar(&version, "version", "", "an OpenShift version, x.y")
	f.StringVar(&ref, "catalog", "", "catalog image reference, or oci://<folder> for an OCI layout")
	f.StringVar(&pkg, "package", "", "list this package's channels (needs --catalog)")
	f.StringVar(&channel, "channel", "", "list this channel's versions (needs --catalog and --package)")
	if tlsVerify == nil {
		access = ownSourceAccess(f)
	}
	return cmd
}
