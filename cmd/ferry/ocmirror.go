package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-mirror/ferry/internal/mirror"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// ocMirrorName is the binary name (a symlink) that selects the personality.
const ocMirrorName = "oc-mirror"

// ocFlags are oc-mirror v2's root flags, with its names and defaults.
type ocFlags struct {
	o                           mirror.Options
	logLevel, workspace         string
	parallelImages, parLayers   uint
	retryTimes                  int
	retryDelay                  time.Duration
	srcAuthFile, destAuthFile   string
	tlsVerify                   bool
	from, since                 string
	dryRunManifestLists, secure bool
}

// ignoredFlags have no effect in Ferry; each is reported once when set,
// with why.
var ignoredFlags = map[string]string{
	"cache-dir":             "Ferry keeps no cache",
	"port":                  "Ferry runs no local registry",
	"v2":                    "Ferry is oc-mirror v2 only",
	"cpu-prof":              "use --cpu-profile",
	"mem-prof":              "not supported",
	"strict-archive":        "archive chunks never exceed archiveSize",
	"rootless-storage-path": "Ferry uses no containers storage",
	"quiet":                 "",
	"force":                 "",
	"force-cache-delete":    "Ferry keeps no cache",
	"delete-v1-images":      "Ferry never wrote oc-mirror v1 tags",
	"oc-mirror-v":           "",
}

// credentialFlags are skopeo-style credential and transport flags; Ferry
// reads credentials from --authfile and the containers auth files only.
var credentialFlags = []string{"cert-dir", "shared-blob-dir", "daemon-host"}

var destOnlyFlags = []string{"compress", "decompress", "oci-accept-uncompressed-layers", "compress-format", "compress-level", "precompute-digests"}

func (c *ocFlags) registerPersistent(f *pflag.FlagSet) {
	f.StringVarP(&c.o.ConfigPath, "config", "c", "", "Path to imageset configuration file")
	f.String("cache-dir", "", "oc-mirror cache directory location (no effect in Ferry)")
	f.StringVar(&c.logLevel, "log-level", "info", "Log level one of (info, debug, trace, error)")
	f.StringVar(&c.workspace, "workspace", "", "oc-mirror workspace where resources and internal artifacts are generated")
	f.Uint16P("port", "p", 55000, "HTTP port used by oc-mirror's local storage instance (no effect in Ferry)")
	f.Bool("v2", false, "Redirect the flow to oc-mirror v2")
	// Users type -v2 (one dash): pflag reads that as -v with "2".
	f.StringP("oc-mirror-v", "v", "", "accepted for -v2")
	f.UintVar(&c.parLayers, "parallel-layers", 5, "Indicates the number of image layers mirrored in parallel")
	f.UintVar(&c.parallelImages, "parallel-images", 4, "Indicates the number of images mirrored in parallel")
	f.Bool("cpu-prof", false, "Enable CPU profiling")
	f.Bool("mem-prof", false, "Enable Memory profiling")
	f.StringVar(&c.o.RegistriesD, "registries.d", "", "use registry configuration files in `DIR` (e.g. for container signature storage)")
	f.StringVar(&c.o.PolicyPath, "policy", "", "Path to a trust policy file (containers-policy.json), used with --secure-policy")
	f.StringVar(&c.o.AuthFile, "authfile", os.Getenv("REGISTRY_AUTH_FILE"), "path of the authentication file. Default is ${XDG_RUNTIME_DIR}/containers/auth.json")
	f.IntVar(&c.retryTimes, "retry-times", 5, "the number of times to possibly retry")
	f.DurationVar(&c.retryDelay, "retry-delay", 0, "delay between 2 retries (default 0 uses exponential backoff)")
	f.BoolVar(&c.tlsVerify, "tls-verify", true, "deprecated: use --src-tls-verify and --dest-tls-verify")
	for _, p := range []string{"src-", "dest-"} {
		f.String(p+"creds", "", "Use `USERNAME[:PASSWORD]` for accessing the registry")
		f.String(p+"username", "", "Username for accessing the registry")
		f.String(p+"password", "", "Password for accessing the registry")
		f.String(p+"registry-token", "", "Provide a Bearer token for accessing the registry")
		f.String(p+"cert-dir", "", "use certificates at `PATH` (*.crt, *.cert, *.key) to connect to the registry or daemon")
		f.Bool(p+"no-creds", false, "Access the registry anonymously")
		f.String(p+"shared-blob-dir", "", "`DIRECTORY` to use to share blobs across OCI repositories")
		f.String(p+"daemon-host", "", "use docker daemon host at `HOST` (docker-daemon: only)")
	}
	f.StringVar(&c.srcAuthFile, "src-authfile", "", "path of the authentication file for the source registries")
	f.StringVar(&c.destAuthFile, "dest-authfile", "", "path of the authentication file for the destination registry")
	f.String("screds", "", "Use `USERNAME[:PASSWORD]` for accessing the source registry")
	f.String("dcreds", "", "Use `USERNAME[:PASSWORD]` for accessing the destination registry")
	f.BoolVar(&c.o.SrcTLSVerify, "src-tls-verify", true, "require HTTPS and verify certificates when talking to the container registry or daemon")
	f.BoolVar(&c.o.DestTLSVerify, "dest-tls-verify", true, "require HTTPS and verify certificates when talking to the container registry or daemon")
	f.Bool("dest-compress", false, "Compress tarball image layers when saving to directory using the 'dir' transport")
	f.Bool("dest-decompress", false, "Decompress tarball image layers when saving to directory using the 'dir' transport")
	f.Bool("dest-oci-accept-uncompressed-layers", false, "Allow uncompressed image layers when saving to an OCI image using the 'oci' transport")
	f.String("dest-compress-format", "", "`FORMAT` to use for the compression")
	f.Int("dest-compress-level", 0, "`LEVEL` to use for the compression")
	f.Bool("dest-precompute-digests", false, "Precompute digests to prevent uploading layers already on the registry")
	for _, h := range []string{"v2", "oc-mirror-v", "tls-verify", "screds", "dcreds", "cpu-prof", "mem-prof"} {
		_ = f.MarkHidden(h)
	}
}

func (c *ocFlags) registerMirror(f *pflag.FlagSet) {
	f.StringVar(&c.from, "from", "", "Local storage directory for disk to mirror workflow")
	f.BoolVar(&c.o.DryRun, "dry-run", false, "Print actions without mirroring images")
	f.BoolVar(&c.dryRunManifestLists, "dry-run-manifest-lists", false, "Like --dry-run (Ferry's mapping.txt lists manifest lists, not their sub-digests)")
	f.BoolP("quiet", "q", false, "Enable detailed logging when copying images")
	f.BoolP("force", "f", false, "Force the copy and mirror functionality")
	f.StringVar(&c.since, "since", "", "Include all new content since specified date (format yyyy-MM-dd)")
	f.DurationVar(&c.o.ImageTimeout, "image-timeout", 10*time.Minute, "Timeout for mirroring an image")
	f.BoolVar(&c.secure, "secure-policy", false, "If set, will enable signature verification (secure policy for signature verification)")
	f.IntVar(&c.o.MaxNestedPaths, "max-nested-paths", 0, "Number of nested paths, for destination registries that limit nested paths")
	f.Bool("strict-archive", false, "If set, generates archives that are strictly less than archiveSize (always so in Ferry)")
	f.String("rootless-storage-path", "", "Override the default container rootless storage path")
	f.BoolVar(&c.o.RemoveSignatures, "remove-signatures", false, "Do not copy image signature")
	f.BoolVar(&c.o.IgnoreReleaseSignature, "ignore-release-signature", false, "Ignore release signature")
	// Ferry's own, for what oc-mirror reads from elsewhere.
	f.StringVar(&c.o.ReleaseSignatureKey, "release-signature-key", "", "armored OpenPGP key that verifies release signatures (default $OCP_SIGNATURE_VERIFICATION_PK, else Red Hat's keys)")
	f.StringVar(&c.o.GraphBaseImage, "graph-base-image", mirror.DefaultGraphBaseImage, "base image of the update graph image")
	f.StringVar(&c.o.CABundle, "ca-bundle", "", "PEM file put in host-config/install-config-snippet.yaml as additionalTrustBundle")
	f.BoolVar(&c.o.NoDigestTags, "no-digest-tags", false, "push images configured by digest alone without a sha256_<hex> tag")
	for _, h := range []string{"quiet", "force"} {
		_ = f.MarkHidden(h)
	}
}

// settle applies what the flags mean together and reports, once, the
// flags that have no effect here.
func (c *ocFlags) settle(cmd *cobra.Command) error {
	f := cmd.Flags()
	if f.Changed("tls-verify") {
		if !f.Changed("src-tls-verify") {
			c.o.SrcTLSVerify = c.tlsVerify
		}
		if !f.Changed("dest-tls-verify") {
			c.o.DestTLSVerify = c.tlsVerify
		}
	}
	switch {
	case c.srcAuthFile != "" && c.destAuthFile != "" && c.srcAuthFile != c.destAuthFile:
		return errors.New("--src-authfile and --dest-authfile name different files; Ferry reads one credentials file: merge them and give it with --authfile")
	case c.srcAuthFile != "":
		c.o.AuthFile = c.srcAuthFile
	case c.destAuthFile != "":
		c.o.AuthFile = c.destAuthFile
	}
	if f.Changed("v2") || f.Changed("oc-mirror-v") {
		if v := f.Lookup("oc-mirror-v"); v != nil && f.Changed("oc-mirror-v") && v.Value.String() != "2" {
			return fmt.Errorf("-v %s: did you mean --v2?", v.Value.String())
		}
	}
	var err error
	if c.o.SrcCreds, err = credentialsFrom(f, "src-", "screds"); err != nil {
		return err
	}
	if c.o.DestCreds, err = credentialsFrom(f, "dest-", "dcreds"); err != nil {
		return err
	}
	var ignored []string
	f.Visit(func(fl *pflag.Flag) {
		if why, ok := ignoredFlags[fl.Name]; ok && fl.Name != "v2" && fl.Name != "oc-mirror-v" {
			ignored = append(ignored, flagNote(fl.Name, why))
		}
		for _, p := range []string{"src-", "dest-"} {
			for _, n := range credentialFlags {
				if fl.Name == p+n {
					ignored = append(ignored, flagNote(fl.Name, "Ferry uses the system's CA pool and --dest-tls-verify; no daemon or shared blob directory"))
				}
			}
		}
		for _, n := range destOnlyFlags {
			if fl.Name == "dest-"+n {
				ignored = append(ignored, flagNote(fl.Name, "Ferry copies layers unchanged"))
			}
		}
	})
	if len(ignored) > 0 {
		sort.Strings(ignored)
		fmt.Fprintf(cmd.ErrOrStderr(), "oc-mirror flags with no effect in Ferry, ignored: %s\n", strings.Join(ignored, "; "))
	}
	return nil
}

// credentialsFrom reads skopeo's credential flags with prefix (src-,
// dest-): --<p>creds (or its alias), --<p>username with --<p>password,
// --<p>registry-token, --<p>no-creds.
func credentialsFrom(f *pflag.FlagSet, p, alias string) (mirror.Credentials, error) {
	get := func(n string) string { v, _ := f.GetString(n); return v }
	var c mirror.Credentials
	given := 0
	for _, n := range []string{p + "creds", alias} {
		if f.Changed(n) {
			cr, err := mirror.ParseCredentials(n, get(n))
			if err != nil {
				return c, err
			}
			c = cr
			given++
		}
	}
	if f.Changed(p+"username") || f.Changed(p+"password") {
		if get(p+"username") == "" || get(p+"password") == "" {
			return c, fmt.Errorf("--%susername and --%spassword go together", p, p)
		}
		c = mirror.Credentials{Username: get(p + "username"), Password: get(p + "password")}
		given++
	}
	if f.Changed(p + "registry-token") {
		c = mirror.Credentials{Token: get(p + "registry-token")}
		given++
	}
	if none, _ := f.GetBool(p + "no-creds"); none {
		c = mirror.Credentials{Anonymous: true}
		given++
	}
	if given > 1 {
		return c, fmt.Errorf("give one of --%screds, --%susername/--%spassword, --%sregistry-token and --%sno-creds", p, p, p, p, p)
	}
	return c, nil
}

func flagNote(name, why string) string {
	if why == "" {
		return "--" + name
	}
	return "--" + name + " (" + why + ")"
}

// newOcMirrorCmd is oc-mirror v2's command line: the root mirrors, with
// delete, list and version below it.
func newOcMirrorCmd() *cobra.Command {
	var c ocFlags
	cmd := &cobra.Command{
		Use:   "oc-mirror <destination type>:<destination location> --config <imageset.yaml> [flags]",
		Short: "Mirror container images using a declarative configuration file as an input (Ferry's oc-mirror v2 command line)",
		Long: `Ferry running as oc-mirror v2: the same command lines, flags, exit codes and
working-dir layout.

  mirror to disk:    oc-mirror -c isc.yaml file://<dir> --v2
  disk to mirror:    oc-mirror -c isc.yaml --from file://<dir> docker://<registry> --v2
  mirror to mirror:  oc-mirror -c isc.yaml --workspace file://<dir> docker://<registry> --v2

Exit codes add up: 1 generic, 2 release, 4 operators, 8 additional images,
16 helm. Logs go to working-dir/logs/oc-mirror-<time>.log, failures to
working-dir/logs/mirroring_errors_<time>.txt. Flags that have no effect in
Ferry are accepted and reported once.`,
		Version:       "v2.0.0 (ferry " + version + ")",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("give the destination: file://<dir> (mirror to disk) or docker://<registry> with --from or --workspace; see oc-mirror --help")
			}
			if err := c.settle(cmd); err != nil {
				return err
			}
			if c.dryRunManifestLists {
				if c.o.DryRun {
					return errors.New("--dry-run-manifest-lists implies --dry-run; give one of them")
				}
				c.o.DryRun = true
			}
			o := c.o
			o.SecurePolicy = c.secure
			o.ParallelImages, o.ParallelLayers = int(c.parallelImages), int(c.parLayers)
			// oc-mirror's 0 delay means exponential backoff: Ferry's doubles from 1s.
			delay := c.retryDelay
			if delay == 0 {
				delay = time.Second
			}
			o.Retry = transfer.Retry{Times: c.retryTimes, Delay: delay}
			o.LogName = "oc-mirror-{time}.log"
			return runMirror(cmd, o, args[0], c.from, c.workspace, c.since, c.logLevel)
		},
	}
	c.registerPersistent(cmd.PersistentFlags())
	c.registerMirror(cmd.Flags())
	cmd.AddCommand(newOcDeleteCmd(&c), newOcListCmd(&c), newOcVersionCmd())
	return cmd
}

func newOcDeleteCmd(c *ocFlags) *cobra.Command {
	var d deleteFlags
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Deletes all related images and manifests from a remote repository",
		Long:  strings.ReplaceAll(deleteLong, "  delete ", "  oc-mirror delete "),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.settle(cmd); err != nil {
				return err
			}
			d.o.Options = c.o
			d.o.ParallelImages = int(c.parallelImages)
			d.o.Retry = transfer.Retry{Times: c.retryTimes, Delay: max(c.retryDelay, time.Second)}
			d.o.LogName = "oc-mirror-delete-{time}.log"
			return runDelete(cmd, &d, args, c.workspace, c.logLevel)
		},
	}
	d.register(cmd.Flags())
	// Ferry's addition: oc-mirror has no dry run of the delete itself.
	cmd.Flags().BoolVar(&c.o.DryRun, "dry-run", false, "say what would be deleted and kept; delete nothing")
	return cmd
}

func newOcListCmd(c *ocFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List available platform and operator content and their versions",
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return c.settle(cmd)
		},
	}
	cmd.AddCommand(newListReleasesCmd(&c.o.SrcTLSVerify, &c.o.AuthFile), newListOperatorsCmd(&c.o.SrcTLSVerify, &c.o.AuthFile))
	return cmd
}

func newOcVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "oc-mirror v2 command line, Ferry %s\n", version)
		},
	}
}
