package release

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"
)

// Where the cluster-version operator looks for mirrored signatures.
const (
	SignatureNamespace = "openshift-config-managed"
	SignatureLabel     = "release.openshift.io/verification-signatures"
)

// UpdateService defaults, as oc-mirror writes them, so that applying
// Ferry's file over oc-mirror's replaces it rather than adding a second.
const (
	UpdateServiceName      = "update-service-oc-mirror"
	UpdateServiceNamespace = "openshift-update-service"
)

type objectMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels,omitempty"`
}

type configMap struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   objectMeta        `json:"metadata"`
	BinaryData map[string][]byte `json:"binaryData"`
}

// SignatureConfigMaps renders signature-configmap.yaml: one ConfigMap per
// release, as `oc adm release mirror` writes them, named sha256-<hex> in
// openshift-config-managed with the verification-signatures label, whose
// binaryData keys sha256-<hex>-1, -2, ... hold the raw signatures
// (base64 in the YAML). Documents are ordered by digest.
func SignatureConfigMaps(releases []Signed) ([]byte, error) {
	var buf bytes.Buffer
	for _, cm := range signatureConfigMaps(releases) {
		doc, err := yaml.Marshal(cm)
		if err != nil {
			return nil, fmt.Errorf("signature ConfigMap %s: %w", cm.Metadata.Name, err)
		}
		if buf.Len() > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(doc)
	}
	return buf.Bytes(), nil
}

// SignatureConfigMapsJSON renders signature-configmap.json, the same
// ConfigMaps as SignatureConfigMaps: the ConfigMap itself for one release
// (the shape oc-mirror writes), a v1 List of them for several, since one
// JSON file holds one value. oc and kubectl apply either.
func SignatureConfigMapsJSON(releases []Signed) ([]byte, error) {
	cms := signatureConfigMaps(releases)
	var v any = cms
	switch len(cms) {
	case 0:
		return nil, nil
	case 1:
		v = cms[0]
	default:
		v = struct {
			APIVersion string      `json:"apiVersion"`
			Kind       string      `json:"kind"`
			Items      []configMap `json:"items"`
		}{"v1", "List", cms}
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("signature ConfigMaps: %w", err)
	}
	return append(out, '\n'), nil
}

func signatureConfigMaps(releases []Signed) []configMap {
	sorted := slices.Clone(releases)
	slices.SortFunc(sorted, func(a, b Signed) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	var out []configMap
	seen := map[v1.Hash]bool{}
	for _, r := range sorted {
		if seen[r.Digest] || len(r.Signatures) == 0 {
			continue
		}
		seen[r.Digest] = true
		name := r.Digest.Algorithm + "-" + r.Digest.Hex
		cm := configMap{
			APIVersion: "v1",
			Kind:       "ConfigMap",
			Metadata:   objectMeta{Name: name, Namespace: SignatureNamespace, Labels: map[string]string{SignatureLabel: ""}},
			BinaryData: map[string][]byte{},
		}
		for i, s := range r.Signatures {
			cm.BinaryData[fmt.Sprintf("%s-%d", name, i+1)] = s
		}
		out = append(out, cm)
	}
	return out
}

type updateService struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Replicas       int    `json:"replicas"`
		Releases       string `json:"releases"`
		GraphDataImage string `json:"graphDataImage"`
	} `json:"spec"`
}

// UpdateServiceYAML renders updateService.yaml for the OpenShift Update
// Service operator: releases is the mirrored release repository (such as
// mirror.lan:8443/ocp/openshift/release-images, no tag) and graphImage the
// mirrored graph-data image, by digest.
func UpdateServiceYAML(releases, graphImage string) ([]byte, error) {
	if releases == "" || graphImage == "" {
		return nil, fmt.Errorf("UpdateService needs the release repository (%q) and the graph image (%q)", releases, graphImage)
	}
	var u updateService
	u.APIVersion = "updateservice.operator.openshift.io/v1"
	u.Kind = "UpdateService"
	u.Metadata = objectMeta{Name: UpdateServiceName, Namespace: UpdateServiceNamespace}
	u.Spec.Replicas = 2
	u.Spec.Releases = releases
	u.Spec.GraphDataImage = graphImage
	out, err := yaml.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("UpdateService: %w", err)
	}
	return out, nil
}
