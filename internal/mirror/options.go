// Package mirror runs `ferry mirror`: the collect -> plan -> copy ->
// cluster resources pipeline for the three workflows oc-mirror v2 users
// know (mirror to mirror, mirror to disk, disk to mirror).
package mirror

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ferry-mirror/ferry/internal/helm"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// Mode is the workflow, named as oc-mirror names it.
type Mode string

// Workflows.
const (
	MirrorToMirror Mode = "mirrorToMirror"
	MirrorToDisk   Mode = "mirrorToDisk"
	DiskToMirror   Mode = "diskToMirror"
)

const (
	fileScheme   = "file://"
	dockerScheme = "docker://"
	workingDir   = "working-dir"
)

// Options are the settled inputs of one run.
type Options struct {
	ConfigPath string
	Mode       Mode
	// Dir holds working-dir: the workspace (m2m) or the archive folder (m2d, d2m).
	Dir string
	// Dest is the destination registry root, host[:port][/prefix] (m2m, d2m).
	Dest string

	DryRun           bool
	ParallelImages   int
	ParallelLayers   int
	ImageTimeout     time.Duration
	Retry            transfer.Retry
	AuthFile         string
	SrcTLSVerify     bool
	DestTLSVerify    bool
	MaxNestedPaths   int
	Since            time.Time
	RemoveSignatures bool
	CABundle         string
	// NoDigestTags pushes images configured by digest alone without the
	// plan.DigestTag tag, for registries that keep untagged manifests.
	NoDigestTags bool

	// ReleaseSignatureKey is an armored OpenPGP public key file; it wins
	// over OCP_SIGNATURE_VERIFICATION_PK.
	ReleaseSignatureKey    string
	IgnoreReleaseSignature bool
	// GraphBaseImage is the base of the update graph image (default
	// DefaultGraphBaseImage).
	GraphBaseImage string
	// HelmSandbox renders Helm charts (see helm.Sandbox); cmd/ferry sets
	// its Exe to the ferry binary so charts render in a child process.
	HelmSandbox helm.Sandbox
	// Getenv reads the environment (UPDATE_URL_OVERRIDE, OCP_SIGNATURE_*,
	// GRAPH_DATA_URL_OVERRIDE); nil is os.Getenv.
	Getenv func(string) string

	// Out receives the summary; Progress the live progress line or bars.
	Out      io.Writer
	Progress io.Writer
	Terminal bool
	Logger   *slog.Logger
	// SrcCreds and DestCreds, when set, replace the auth files for the
	// source registries and the destination (oc-mirror's --src-creds,
	// --dest-creds and their kin).
	SrcCreds, DestCreds Credentials
	// SecurePolicy checks every source image against the containers
	// policy at PolicyPath (default: the containers tools' policy.json)
	// before copying it; an image that fails is not mirrored.
	SecurePolicy bool
	PolicyPath   string
	// RegistriesD is the containers-registries.d directory naming the
	// lookaside servers of signedBy requirements (default: the user's,
	// else /etc/containers/registries.d).
	RegistriesD string
	// LogName is the log file's name in working-dir/logs; {time} is
	// replaced by the run's time stamp. Default ferry-mirror.log.
	LogName string
}

// Target is what the positional argument and --from/--workspace select.
type Target struct {
	Mode Mode
	Dir  string
	Dest string
}

// ParseTarget reads the destination argument and the --from and
// --workspace flags the way oc-mirror v2 does, with errors that name the
// accepted forms.
func ParseTarget(dest, from, workspace string) (Target, error) {
	forms := "the accepted forms are file://<dir> (mirror to disk), or docker://<registry>[/<prefix>] with --from file://<dir> (disk to mirror) or --workspace file://<dir> (mirror to mirror)"
	switch {
	case strings.HasPrefix(dest, fileScheme):
		if from != "" {
			return Target{}, errors.New("the destination is file://, so this is mirror to disk and --from is not used; to push an archive, give docker://<registry> as the destination")
		}
		if workspace != "" {
			return Target{}, errors.New("the destination is file://, so this is mirror to disk and its workspace is <dir>/working-dir; drop --workspace")
		}
		dir, err := localDir(dest, "destination")
		if err != nil {
			return Target{}, err
		}
		return Target{Mode: MirrorToDisk, Dir: dir}, nil
	case strings.HasPrefix(dest, dockerScheme):
		root := strings.TrimSuffix(strings.TrimPrefix(dest, dockerScheme), "/")
		if root == "" || strings.HasPrefix(root, "/") || strings.ContainsAny(root, "@ ") {
			return Target{}, fmt.Errorf("destination %q: expected docker://<registry>[/<prefix>], e.g. docker://mirror.lan:8443/ocp", dest)
		}
		if _, prefix, _ := strings.Cut(root, "/"); strings.Contains(prefix, ":") {
			return Target{}, fmt.Errorf("destination %q: a tag is not allowed; give only docker://<registry>[/<prefix>]", dest)
		}
		switch {
		case from != "" && workspace != "":
			return Target{}, errors.New("--from (disk to mirror) and --workspace (mirror to mirror) cannot be used together")
		case from != "":
			dir, err := localDir(from, "--from")
			if err != nil {
				return Target{}, err
			}
			return Target{Mode: DiskToMirror, Dir: dir, Dest: root}, nil
		case workspace != "":
			dir, err := localDir(workspace, "--workspace")
			if err != nil {
				return Target{}, err
			}
			if filepath.Base(dir) == workingDir {
				dir = filepath.Dir(dir)
			}
			return Target{Mode: MirrorToMirror, Dir: dir, Dest: root}, nil
		}
		return Target{}, errors.New("the destination is docker://, so give --from file://<archive dir> (disk to mirror) or --workspace file://<dir> (mirror to mirror)")
	case dest == "":
		return Target{}, errors.New("a destination is required; " + forms)
	}
	return Target{}, fmt.Errorf("destination %q has no scheme; %s", dest, forms)
}

// ParseRegistry reads a docker://<registry>[/<prefix>] destination, as
// delete takes it, and returns host[:port][/prefix].
func ParseRegistry(dest string) (string, error) {
	t, err := ParseTarget(dest, "", fileScheme+"/")
	if err != nil {
		return "", err
	}
	return t.Dest, nil
}

func localDir(s, what string) (string, error) {
	if !strings.HasPrefix(s, fileScheme) {
		return "", fmt.Errorf("%s %q must start with file://, e.g. file:///var/ferry", what, s)
	}
	p := strings.TrimPrefix(s, fileScheme)
	if p == "" {
		return "", fmt.Errorf("%s %q names no directory, e.g. file:///var/ferry", what, s)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", what, s, err)
	}
	return abs, nil
}

// Credentials given on the command line.
type Credentials struct {
	Username, Password string
	// Token is a bearer token (--src-registry-token).
	Token string
	// Anonymous sends no credentials (--src-no-creds).
	Anonymous bool
}

func (c Credentials) set() bool {
	return c.Username != "" || c.Token != "" || c.Anonymous
}

// keychain returns files' keychain, or one that answers every registry
// with c when c is set.
func (c Credentials) keychain(files authn.Keychain) authn.Keychain {
	if !c.set() {
		return files
	}
	return staticKeychain{c}
}

type staticKeychain struct{ c Credentials }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	switch {
	case k.c.Anonymous:
		return authn.Anonymous, nil
	case k.c.Token != "":
		return &authn.Bearer{Token: k.c.Token}, nil
	}
	return &authn.Basic{Username: k.c.Username, Password: k.c.Password}, nil
}

// ParseCredentials reads oc-mirror's (skopeo's) USERNAME[:PASSWORD].
func ParseCredentials(flag, s string) (Credentials, error) {
	user, pw, ok := strings.Cut(s, ":")
	if user == "" || !ok {
		return Credentials{}, fmt.Errorf("--%s: expected USERNAME:PASSWORD (Ferry does not prompt for the password; or use --authfile)", flag)
	}
	return Credentials{Username: user, Password: pw}, nil
}
