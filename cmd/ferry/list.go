package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-mirror/ferry/internal/release"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// defaultReleaseRepo is where oc-mirror's list releases reads the X.Y
// versions from, as tags.
const defaultReleaseRepo = "quay.io/openshift-release-dev/ocp-release"

// sourceAccess is how list reaches source registries. The oc-mirror
// personality shares its root's flags; ferry list registers its own.
type sourceAccess struct {
	tlsVerify *bool
	authFile  *string
}

func ownSourceAccess(f *pflag.FlagSet) sourceAccess {
	a := sourceAccess{tlsVerify: new(bool), authFile: new(string)}
	f.BoolVar(a.tlsVerify, "src-tls-verify", true, "verify the source registry's TLS certificate; false also allows plain HTTP")
	f.StringVar(a.authFile, "authfile", "", "registry credentials file (default: $REGISTRY_AUTH_FILE, then the podman/docker files)")
	return a
}

func (a sourceAccess) registryOptions(cmd *cobra.Command) (transfer.RegistryOptions, error) {
	kc, err := transfer.LoadKeychain(transfer.AuthFiles(*a.authFile), *a.authFile != "")
	if err != nil {
		return transfer.RegistryOptions{}, err
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return transfer.RegistryOptions{Insecure: !*a.tlsVerify, Keychain: kc, Logger: log, UserAgent: "ferry-mirror"}, nil
}

func newListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List what the upstream offers",
	}
	cmd.AddCommand(newListReleasesCmd(nil, nil), newListOperatorsCmd(nil, nil))
	return cmd
}

// newListReleasesCmd is list releases; tlsVerify and authFile, when not
// nil, are the parent's flags.
func newListReleasesCmd(tlsVerify *bool, authFile *string) *cobra.Command {
	var (
		q           release.ListQuery
		arches      []string
		typ         string
		releaseRepo string
		access      = sourceAccess{tlsVerify, authFile}
	)
	cmd := &cobra.Command{
		Use:   "releases [--channel <name> | --version <x.y> [--channels]]",
		Short: "List the releases or channels the update graph offers (UPDATE_URL_OVERRIDE names another graph server)",
		Long: `List what OpenShift offers, as oc-mirror's list releases does:
  (no flags)                          the X.Y versions, from the release repository's tags
  --channel=stable-4.16               the versions of a channel
  --version=4.16                      the versions of stable-4.16
  --channels --version=4.16           the channels the 4.16 releases belong to
--filter-by-archs picks architectures (default amd64).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, a := range arches {
				q.Arches = append(q.Arches, release.Arch(a))
			}
			q, mode, err := q.Resolve()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if mode == release.ListMinorVersions {
				return listMinorVersions(cmd, access, releaseRepo)
			}
			opts := release.GraphOptionsFromEnv(os.Getenv)
			opts.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			graphs := release.NewGraphClient(opts)
			if mode == release.ListChannelNames {
				names, err := release.ChannelNames(cmd.Context(), graphs, q.Channel)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "Listing channels for version %s:\n\n%s\n", q.Version, strings.Join(names, "\n"))
				return nil
			}
			for _, a := range q.Arches {
				vs, err := release.ChannelVersions(cmd.Context(), graphs, typ, q.Channel, a)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "Channel: %s\nArchitecture: %s\n%s\n", q.Channel, a, strings.Join(vs, "\n"))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Channel, "channel", "", "list the versions of this channel, e.g. stable-4.16")
	f.StringVar(&q.Version, "version", "", "a minor version, x.y: alone lists stable-x.y, with --channels lists its channels")
	f.BoolVar(&q.Channels, "channels", false, "list channel names (needs --version)")
	f.StringSliceVar(&arches, "filter-by-archs", nil, "architectures: amd64, arm64, ppc64le, s390x, multi (default amd64)")
	f.StringVar(&typ, "type", release.TypeOCP, "graph type: ocp or okd")
	f.StringVar(&releaseRepo, "release-repo", defaultReleaseRepo, "repository whose tags give the X.Y versions (no flags); a mirror of it works too")
	if tlsVerify == nil {
		access = ownSourceAccess(f)
	}
	return cmd
}

// listMinorVersions prints the X.Y versions the release repository's tags
// (X.Y.Z-arch) name, as oc-mirror's list releases does with no flags.
func listMinorVersions(cmd *cobra.Command, access sourceAccess, repoRef string) error {
	host, repo, ok := strings.Cut(repoRef, "/")
	if !ok || repo == "" {
		return fmt.Errorf("--release-repo %q: expected host/path, e.g. %s", repoRef, defaultReleaseRepo)
	}
	ro, err := access.registryOptions(cmd)
	if err != nil {
		return err
	}
	reg, err := transfer.NewClient(host, ro)
	if err != nil {
		return err
	}
	tags, _, err := reg.Tags(cmd.Context(), repo, 1000)
	if err != nil {
		return fmt.Errorf("read the release versions from %s: %w (a mirror of it can be named with --release-repo)", repoRef, err)
	}
	vs := release.MinorVersions(tags)
	if len(vs) == 0 {
		return fmt.Errorf("%s has no release tags (X.Y.Z-<arch>)", repoRef)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintln(out, "Available OpenShift Container Platform release versions:")
	for _, v := range vs {
		fmt.Fprintf(out, "  %s\n", v)
	}
	return nil
}
