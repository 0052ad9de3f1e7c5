package plan

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ferry-mirror/ferry/internal/helm"
	"github.com/ferry-mirror/ferry/internal/imageset"
)

// FailedChart starts the Name of a failed request that stands for a Helm
// chart that did not load or render, not for an image.
const FailedChart = "helm chart "

// Helm collects mirror.helm: the images the listed charts reference.
type Helm struct {
	Config imageset.Helm
	Client *helm.Client
	// Src reads oci:// chart repositories, which are registries.
	Src Source
	// Sandbox renders each chart; its zero value renders in this process.
	Sandbox helm.Sandbox
	Log     *slog.Logger
}

// Section implements Collector.
func (Helm) Section() string { return SectionHelm }

// Collect implements Collector. A repository that cannot be read, or a
// chart or version it does not have, fails the section: the config names
// something that is not there. A chart that does not load or render
// fails that chart only: it becomes a failed request carrying Helm's
// message (the errors file, exit bit 16) and the other charts mirror.
func (h Helm) Collect(ctx context.Context) (Collected, error) {
	reqs, err := h.requests(ctx)
	return Collected{Requests: reqs}, err
}

func (h Helm) requests(ctx context.Context) ([]Request, error) {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if h.Client == nil {
		h.Client = &helm.Client{}
	}
	var reqs []Request
	seen := map[string]bool{}
	// chart reads one chart's images; what names it for the user.
	chart := func(what string, job helm.Job, c imageset.HelmChart) error {
		job.Values, job.ImagePaths = c.Values, c.ImagePaths
		res, err := h.Sandbox.Run(ctx, job)
		if ce := (*helm.ChartError)(nil); errors.As(err, &ce) {
			if res != nil {
				// Helm stops at the first template that fails; the
				// others are not known to be good or bad.
				for _, t := range res.Templates {
					if strings.Contains(ce.Msg, t+":") {
						log.Debug("helm template does not render", "chart", what, "template", t, "error", ce.Msg)
					} else {
						log.Debug("helm template not rendered: the chart failed", "chart", what, "template", t)
					}
				}
			}
			log.Warn("helm chart failed", "chart", what, "error", ce.Msg)
			reqs = append(reqs, Request{Section: SectionHelm, Name: FailedChart + what, Failed: ce.Msg})
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		counts := map[string]int{}
		for _, t := range res.PerTemplate {
			counts[t.Template] = t.Images
		}
		for _, t := range res.Templates {
			log.Debug("helm template rendered", "chart", what, "template", t, "images", counts[t])
		}
		for _, bad := range res.Invalid {
			log.Warn("helm chart: not an image", "chart", what, "found", bad)
		}
		log.Info("helm chart", "chart", what, "images", len(res.Images))
		if len(res.Images) == 0 {
			log.Warn("helm chart renders no image at the image paths; if its images are in custom resources, add their paths to imagePaths", "chart", what)
		}
		for _, im := range res.Images {
			log.Debug("chart image", "chart", what, "image", im.Ref, "found", im.Where)
			if seen[im.Ref] {
				continue
			}
			seen[im.Ref] = true
			reqs = append(reqs, Request{Section: SectionHelm, Name: im.Ref, Platforms: c.Platforms})
		}
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
				if err := chart(r.Name+"/"+c.Name+" "+c.Version, helm.Job{Archive: data}, c); err != nil {
					return nil, fmt.Errorf("helm repository %q: %w", r.Name, err)
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
			if err := chart(r.Name+"/"+c.Name+" "+e.Version, helm.Job{Archive: data}, c); err != nil {
				return nil, fmt.Errorf("helm repository %q: %w", r.Name, err)
			}
		}
	}
	for _, c := range h.Config.Local {
		if _, err := os.Stat(c.Path); err != nil {
			return nil, fmt.Errorf("local helm chart %q: %w (the path must be a chart folder or a .tgz)", c.Name, err)
		}
		if err := chart(c.Name+" ("+c.Path+")", helm.Job{Path: c.Path}, c); err != nil {
			return nil, fmt.Errorf("local helm chart %q: %w", c.Name, err)
		}
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
