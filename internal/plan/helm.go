package plan

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ferry-mirror/ferry/internal/helm"
	"github.com/ferry-mirror/ferry/internal/imageset"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// Helm collects mirror.helm: the images the listed charts reference.
type Helm struct {
	Config imageset.Helm
	Client *helm.Client
	// Src reads oci:// chart repositories, which are registries.
	Src *transfer.Registries
	Log *slog.Logger
}

// Section implements Collector.
func (Helm) Section() string { return SectionHelm }

// Collect implements Collector. A repository that cannot be read, or a
// chart or version it does not have, fails the section: mirroring the
// rest would leave the user believing the chart's images are there.
func (h Helm) Collect(ctx context.Context) ([]Request, error) {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if h.Client == nil {
		h.Client = &helm.Client{}
	}
	var reqs []Request
	seen := map[string]bool{}
	add := func(chart string, imgs []helm.Image, platforms []imageset.PlatformSpec) {
		for _, im := range imgs {
			if seen[im.Ref] {
				continue
			}
			seen[im.Ref] = true
			log.Debug("chart image", "chart", chart, "image", im.Ref, "found", im.Where)
			reqs = append(reqs, Request{Section: SectionHelm, Name: im.Ref, Platforms: platforms})
		}
	}
	chart := func(repo string, data []byte, c imageset.HelmChart, version string) error {
		ch, err := helm.LoadArchive(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("helm repository %q: chart %s %s: %w", repo, c.Name, version, err)
		}
		imgs, err := helm.Images(ch, c.Values, c.ImagePaths)
		if err != nil {
			return fmt.Errorf("helm repository %q: chart %s: %w", repo, c.Name, err)
		}
		log.Info("helm chart", "repository", repo, "chart", c.Name, "version", version, "images", len(imgs))
		add(c.Name+" "+version, imgs, c.Platforms)
		return nil
	}
	for _, r := range h.Config.Repositories {
		if strings.HasPrefix(r.URL, "oci://") {
			if len(r.Charts) == 0 {
				return nil, fmt.Errorf("helm repository %q: list its charts; Ferry cannot list what an oci:// repository holds", r.Name)
			}
			for _, c := range r.Charts {
				data, err := ociChart(ctx, h.Src, r.URL, c.Name, c.Version)
				if err != nil {
					return nil, fmt.Errorf("helm repository %q: %w", r.Name, err)
				}
				if err := chart(r.Name, data, c, c.Version); err != nil {
					return nil, err
				}
			}
			continue
		}
		ix, err := h.Client.Index(ctx, r.URL)
		if err != nil {
			return nil, fmt.Errorf("helm repository %q: %w", r.Name, err)
		}
		charts := r.Charts
		if len(charts) == 0 { // as oc-mirror: every version of every chart
			for _, e := range ix.Applications() {
				charts = append(charts, imageset.HelmChart{Name: e.Name, Version: e.Version})
			}
		}
		for _, c := range charts {
			e, err := ix.Find(c.Name, c.Version)
			if err != nil {
				return nil, fmt.Errorf("helm repository %q: %w", r.Name, err)
			}
			data, err := h.Client.Download(ctx, ix, e)
			if err != nil {
				return nil, fmt.Errorf("helm repository %q: %w", r.Name, err)
			}
			if err := chart(r.Name, data, c, e.Version); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range h.Config.Local {
		ch, err := helm.Load(c.Path)
		if err != nil {
			return nil, fmt.Errorf("local helm chart %q: %w", c.Name, err)
		}
		imgs, err := helm.Images(ch, c.Values, c.ImagePaths)
		if err != nil {
			return nil, fmt.Errorf("local helm chart %q: %w", c.Name, err)
		}
		log.Info("helm chart", "local", c.Path, "chart", ch.Name, "version", ch.Version, "images", len(imgs))
		add(ch.Name+" "+ch.Version, imgs, c.Platforms)
	}
	return reqs, nil
}

// NewHelmClient is a chart repository client that takes basic-auth
// credentials from the same keychain as the registries (an auth file
// entry for the repository's host) and, when insecure, skips TLS
// verification as --src-tls-verify=false does for registries.
func NewHelmClient(kc authn.Keychain, insecure bool) *helm.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return &helm.Client{
		HTTP: &http.Client{Transport: tr, Timeout: 10 * time.Minute},
		Credentials: func(host string) (string, string, bool) {
			if kc == nil {
				return "", "", false
			}
			reg, err := name.NewRegistry(host)
			if err != nil {
				return "", "", false
			}
			a, err := kc.Resolve(reg)
			if err != nil {
				return "", "", false
			}
			cfg, err := a.Authorization()
			if err != nil || cfg.Username == "" {
				return "", "", false
			}
			return cfg.Username, cfg.Password, true
		},
	}
}
