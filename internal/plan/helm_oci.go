package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/helm"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// helmChartLayer is the media type of a chart .tgz pushed with `helm push`.
const helmChartLayer = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

// ociChart downloads chart name at version from an oci:// chart
// repository: the artifact <repository>/<name>:<version> in a registry,
// whose chart layer is the .tgz.
func ociChart(ctx context.Context, src Source, repoURL, name, version string) ([]byte, error) {
	what := fmt.Sprintf("chart %q version %q in %s", name, version, repoURL)
	if version == "" {
		return nil, fmt.Errorf("chart %q in %s: give its version; Ferry does not list the tags of oci:// chart repositories yet", name, repoURL)
	}
	if src == nil {
		return nil, fmt.Errorf("%s: no registry client", what)
	}
	host, repo, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(repoURL, "oci://"), "/"), "/")
	repo = strings.TrimPrefix(repo+"/"+name, "/")
	reg, err := src.Registry(host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// OCI tags cannot hold '+', so helm push writes 1.0.0+build as 1.0.0_build.
	m, err := reg.GetManifest(ctx, repo, strings.ReplaceAll(version, "+", "_"))
	if transfer.IsNotFound(err) {
		return nil, fmt.Errorf("%s not found (no %s/%s:%s)", what, host, repo, version)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var doc struct {
		Layers []struct {
			MediaType string        `json:"mediaType"`
			Digest    digest.Digest `json:"digest"`
			Size      int64         `json:"size"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(m.Data, &doc); err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", what, err)
	}
	for _, l := range doc.Layers {
		if l.MediaType != helmChartLayer {
			continue
		}
		if l.Size > helm.DefaultMaxChartBytes {
			return nil, fmt.Errorf("%s: the chart layer is %d bytes, over the %d MiB limit", what, l.Size, helm.DefaultMaxChartBytes>>20)
		}
		if err := l.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%s: chart layer: %w", what, err)
		}
		rc, _, err := reg.GetBlob(ctx, repo, l.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: chart layer: %w", what, err)
		}
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, helm.DefaultMaxChartBytes+1))
		if err != nil {
			return nil, fmt.Errorf("%s: chart layer: %w", what, err)
		}
		if got := digest.FromBytes(data); got != l.Digest {
			return nil, fmt.Errorf("%s: chart layer has digest %s, the manifest says %s", what, got, l.Digest)
		}
		return data, nil
	}
	return nil, fmt.Errorf("%s: %s/%s:%s is not a Helm chart (no %s layer)", what, host, repo, version, helmChartLayer)
}
