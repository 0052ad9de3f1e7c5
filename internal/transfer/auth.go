package transfer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// AuthFiles lists the credential files podman and oc-mirror read, in their
// order: an explicit --authfile alone, else REGISTRY_AUTH_FILE,
// ${XDG_RUNTIME_DIR}/containers/auth.json and ~/.docker/config.json.
func AuthFiles(explicit string) []string {
	if explicit != "" {
		return []string{explicit}
	}
	var files []string
	if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		files = append(files, f)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		files = append(files, filepath.Join(d, "config.json"))
	} else if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".docker", "config.json"))
	}
	return files
}

// Keychain resolves registry credentials from containers auth.json /
// docker config.json files.
type Keychain struct {
	auths []map[string]authEntry // one per file, in priority order
}

type authEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// LoadKeychain reads the files; a missing file is skipped unless it was
// named explicitly (mustExist), because a typo in --authfile would
// otherwise look like an authorization problem much later.
func LoadKeychain(files []string, mustExist bool) (*Keychain, error) {
	k := &Keychain{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) && !mustExist {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read auth file: %w", err)
		}
		var doc struct {
			Auths map[string]authEntry `json:"auths"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("auth file %s is not valid JSON (expected {\"auths\": {...}}): %w", f, err)
		}
		k.auths = append(k.auths, doc.Auths)
	}
	return k, nil
}

// Resolve implements authn.Keychain.
func (k *Keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := r.RegistryStr()
	keys := []string{host, "https://" + host, "http://" + host}
	if host == "index.docker.io" {
		keys = append(keys, "docker.io", "https://index.docker.io/v1/")
	}
	for _, auths := range k.auths {
		for _, key := range keys {
			e, ok := auths[key]
			if !ok {
				continue
			}
			cfg := authn.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
			if e.Auth != "" {
				raw, err := base64.StdEncoding.DecodeString(e.Auth)
				if err != nil {
					return nil, fmt.Errorf("auth entry for %s: \"auth\" is not base64: %w", key, err)
				}
				user, pass, ok := strings.Cut(string(raw), ":")
				if !ok {
					return nil, fmt.Errorf("auth entry for %s: \"auth\" must encode user:password", key)
				}
				cfg.Username, cfg.Password = user, pass
			}
			return authn.FromConfig(cfg), nil
		}
	}
	return authn.Anonymous, nil
}
