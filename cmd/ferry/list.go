package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-mirror/ferry/internal/release"
)

func newListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List what the upstream offers",
	}
	cmd.AddCommand(newListReleasesCmd(), newListOperatorsCmd())
	return cmd
}

func newListReleasesCmd() *cobra.Command {
	var (
		q      release.ListQuery
		arches []string
		typ    string
	)
	cmd := &cobra.Command{
		Use:   "releases [--channel <name> | --version <x.y> [--channels]]",
		Short: "List the releases or channels the update graph offers (UPDATE_URL_OVERRIDE names another graph server)",
		Long: `List what the OpenShift update graph offers, as oc-mirror's list releases does:
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
			if mode == release.ListMinorVersions {
				return errors.New("give --channel=<name> or --version=<x.y>: listing every minor version needs the release registry's tags, which this command does not read")
			}
			opts := release.GraphOptionsFromEnv(os.Getenv)
			opts.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			graphs := release.NewGraphClient(opts)
			out := cmd.OutOrStdout()
			if mode == release.ListChannelNames {
				names, err := release.ChannelNames(cmd.Context(), graphs, q.Channel)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "Channels of %s:\n%s\n", q.Version, strings.Join(names, "\n"))
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
	return cmd
}
