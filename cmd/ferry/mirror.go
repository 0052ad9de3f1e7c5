package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-mirror/ferry/internal/helm"
	"github.com/ferry-mirror/ferry/internal/mirror"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

func newMirrorCmd() *cobra.Command {
	var (
		o                       mirror.Options
		from, workspace, since  string
		logLevel                string
		retryTimes              int
		retryDelay              time.Duration
		v2, secure, strict      bool
		cacheDir                string
		port                    uint16
		parallelImages, parLays uint
	)
	cmd := &cobra.Command{
		Use:   "mirror -c <imageset.yaml> (file://<dir> | --from file://<dir> docker://<registry>[/<prefix>] | --workspace file://<dir> docker://<registry>[/<prefix>])",
		Short: "Mirror the images an ImageSetConfiguration names: registry to registry, to a disk archive, or from one",
		Long: `Mirror the images an ImageSetConfiguration (oc-mirror v2's format) names.

Workflows, as oc-mirror v2 names them:
  mirror to disk:    ferry mirror -c isc.yaml file://<dir>
  disk to mirror:    ferry mirror -c isc.yaml --from file://<dir> docker://<registry>[/<prefix>]
  mirror to mirror:  ferry mirror -c isc.yaml --workspace file://<dir> docker://<registry>[/<prefix>]

Cluster resources (IDMS, ITMS, CatalogSource, ClusterCatalog, UpdateService,
signature ConfigMaps; only Kubernetes objects, for oc apply -f) are written to
<dir>/working-dir/cluster-resources/; registries.conf (CRI-O and podman hosts)
and install-config-snippet.yaml (new clusters) to <dir>/working-dir/host-config/;
logs and failure reports to <dir>/working-dir/logs/. The exit code adds oc-mirror's values for each
section that failed: 1 generic, 2 release, 4 operators, 8 additional
images, 16 helm (additional images and operators failing: 12).

Release payloads (mirror.platform) read, like oc-mirror:
  UPDATE_URL_OVERRIDE            the Cincinnati graph URL
  OCP_SIGNATURE_URL              where release signatures are fetched
                                 (default mirror.openshift.com)
  OCP_SIGNATURE_VERIFICATION_PK  the armored public key that verifies them
                                 (or --release-signature-key; default Red
                                 Hat's release keys, built in)
and GRAPH_DATA_URL_OVERRIDE, the graph-data tarball for graph: true.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dest := ""
			if len(args) == 1 {
				dest = args[0]
			}
			o.SecurePolicy = secure
			o.ParallelImages, o.ParallelLayers = int(parallelImages), int(parLays)
			o.Retry = transfer.Retry{Times: retryTimes, Delay: retryDelay}
			return runMirror(cmd, o, dest, from, workspace, since, logLevel)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigPath, "config", "c", "", "path to the ImageSetConfiguration file")
	f.StringVar(&from, "from", "", "archive folder for disk to mirror, file://<dir>")
	f.StringVar(&workspace, "workspace", "", "workspace for mirror to mirror, file://<dir>; working-dir is created in it")
	f.BoolVar(&o.DryRun, "dry-run", false, "collect and plan only; write mapping.txt and missing.txt to working-dir/dry-run")
	f.UintVar(&parallelImages, "parallel-images", 4, "number of images copied in parallel")
	f.UintVar(&parLays, "parallel-layers", 10, "number of blobs copied in parallel per image")
	f.IntVar(&retryTimes, "retry-times", 2, "retries of a request that failed on the network or with 429/5xx")
	f.DurationVar(&retryDelay, "retry-delay", time.Second, "delay before the first retry; doubled for each further one")
	f.StringVar(&o.AuthFile, "authfile", os.Getenv("REGISTRY_AUTH_FILE"), "credentials file (default ${XDG_RUNTIME_DIR}/containers/auth.json, then ~/.docker/config.json)")
	f.BoolVar(&o.SrcTLSVerify, "src-tls-verify", true, "verify source registries' TLS certificates (false also allows plain HTTP)")
	f.BoolVar(&o.DestTLSVerify, "dest-tls-verify", true, "verify the destination registry's TLS certificate (false also allows plain HTTP)")
	f.IntVar(&o.MaxNestedPaths, "max-nested-paths", 0, "fold destination paths to at most this many components, for registries that limit depth")
	f.StringVar(&since, "since", "", "mirror to disk: archive everything new since this date (yyyy-mm-dd) rather than since the last archive")
	f.StringVar(&logLevel, "log-level", "info", "log level: info, debug, trace, warn, error")
	f.BoolVar(&o.NoDigestTags, "no-digest-tags", false, "push images configured by digest alone (name@sha256:...) without a tag; by default each is also tagged sha256_<hex> so registries that delete untagged manifests (Quay) keep it. Clusters pull by digest either way")
	f.BoolVar(&o.RemoveSignatures, "remove-signatures", false, "do not copy cosign signatures, attestations, SBOMs and OCI referrers")
	f.StringVar(&o.CABundle, "ca-bundle", "", "PEM file put in host-config/install-config-snippet.yaml as additionalTrustBundle")
	f.StringVar(&o.ReleaseSignatureKey, "release-signature-key", "", "armored OpenPGP public key file that verifies release signatures (default $OCP_SIGNATURE_VERIFICATION_PK, else Red Hat's built-in release keys)")
	f.BoolVar(&o.IgnoreReleaseSignature, "ignore-release-signature", false, "mirror releases without fetching or verifying their signatures")
	f.StringVar(&o.GraphBaseImage, "graph-base-image", mirror.DefaultGraphBaseImage, "base image of the update graph image (graph: true), read from its registry like any source image")
	// Accepted for oc-mirror compatibility.
	f.BoolVar(&v2, "v2", false, "accepted for oc-mirror compatibility; ignored")
	// oc-mirror users type -v2 (one dash): pflag reads that as -v with "2".
	f.StringP("oc-mirror-v", "v", "", "accepted for oc-mirror compatibility (-v2); ignored")
	f.BoolVar(&secure, "secure-policy", false, "verify source images against the containers signature policy (--policy, default ~/.config/containers/policy.json, then /etc/containers/policy.json): sigstoreSigned requirements need a cosign signature by one of its keys, signedBy ones a GPG signature from the lookaside server --registries.d names; an image that fails is not mirrored")
	f.StringVar(&o.PolicyPath, "policy", "", "containers-policy.json for --secure-policy")
	f.StringVar(&o.RegistriesD, "registries.d", "", "containers-registries.d `DIR` naming the lookaside servers of signedBy signatures (default ~/.config/containers/registries.d, else /etc/containers/registries.d)")
	f.BoolVar(&strict, "strict-archive", false, "accepted for oc-mirror compatibility; chunks never exceed archiveSize")
	f.StringVar(&cacheDir, "cache-dir", "", "accepted for oc-mirror compatibility; Ferry keeps no cache")
	f.Uint16VarP(&port, "port", "p", 55000, "accepted for oc-mirror compatibility; Ferry runs no local registry")
	f.DurationVar(&o.ImageTimeout, "image-timeout", 10*time.Minute, "give up on an image (and everything that travels with it) after this long; 0 waits forever")
	// For tests of hostile charts, which should not wait the default.
	f.DurationVar(&o.HelmSandbox.Timeout, "helm-render-timeout", helm.DefaultRenderTimeout, "give up rendering a Helm chart after this long")
	for _, h := range []string{"helm-render-timeout", "v2", "oc-mirror-v", "strict-archive", "cache-dir", "port"} {
		_ = f.MarkHidden(h)
	}
	cmd.AddCommand(newDeleteCmd())
	return cmd
}

// runMirror settles the target, dates and log level shared by ferry mirror
// and the oc-mirror personality, and runs the mirror.
func runMirror(cmd *cobra.Command, o mirror.Options, dest, from, workspace, since, logLevel string) error {
	if o.ConfigPath == "" {
		return errors.New("--config (-c) is required: the ImageSetConfiguration file to mirror")
	}
	t, err := mirror.ParseTarget(dest, from, workspace)
	if err != nil {
		return err
	}
	o.Mode, o.Dir, o.Dest = t.Mode, t.Dir, t.Dest
	if since != "" {
		o.Since, err = time.Parse(time.DateOnly, since)
		if err != nil {
			return fmt.Errorf("--since %q: expected a date as yyyy-mm-dd", since)
		}
	}
	level, err := parseLogLevel(logLevel)
	if err != nil {
		return err
	}
	o.Out = cmd.OutOrStdout()
	o.Progress = cmd.ErrOrStderr()
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		o.Terminal = true
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the ferry binary, which renders Helm charts: %w", err)
	}
	o.HelmSandbox.Exe = exe
	if o.HelmSandbox.Timeout == 0 {
		o.HelmSandbox.Timeout = helm.DefaultRenderTimeout
	}
	o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	return mirror.Run(cmd.Context(), o)
}

func parseLogLevel(s string) (slog.Level, error) {
	switch s {
	case "info":
		return slog.LevelInfo, nil
	case "debug", "trace":
		return slog.LevelDebug, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level %q: use one of info, debug, trace, warn, error", s)
}
