package plan

import (
	"encoding/json"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/imageset"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// filterPlatforms rewrites a manifest list to keep only the entries for
// the wanted platforms. Entry bytes and the list's other fields are kept;
// the result has a new digest, which the report states.
func filterPlatforms(m transfer.Manifest, want []imageset.PlatformSpec) (transfer.Manifest, []string, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(m.Data, &doc); err != nil {
		return m, nil, fmt.Errorf("manifest list %s: %w", m.Digest, err)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(doc["manifests"], &entries); err != nil {
		return m, nil, fmt.Errorf("manifest list %s: manifests: %w", m.Digest, err)
	}
	var kept []json.RawMessage
	var keptNames, all []string
	for _, e := range entries {
		var d struct {
			Platform *struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
				Variant      string `json:"variant"`
			} `json:"platform"`
		}
		if err := json.Unmarshal(e, &d); err != nil {
			return m, nil, fmt.Errorf("manifest list %s: entry: %w", m.Digest, err)
		}
		if d.Platform == nil {
			continue
		}
		name := d.Platform.OS + "/" + d.Platform.Architecture
		if d.Platform.Variant != "" {
			name += "/" + d.Platform.Variant
		}
		all = append(all, name)
		for _, w := range want {
			if w.Architecture == d.Platform.Architecture &&
				(w.OS == "" || w.OS == d.Platform.OS) &&
				(w.Variant == "" || w.Variant == d.Platform.Variant) {
				kept = append(kept, e)
				keptNames = append(keptNames, name)
				break
			}
		}
	}
	if len(kept) == 0 {
		var ws []string
		for _, w := range want {
			ws = append(ws, strings.Trim(w.OS+"/"+w.Architecture+"/"+w.Variant, "/"))
		}
		return m, nil, fmt.Errorf("none of the platforms %s is in the manifest list (it has %s); fix platforms in the config", strings.Join(ws, ", "), strings.Join(all, ", "))
	}
	if len(kept) == len(entries) {
		return m, keptNames, nil
	}
	raw, err := json.Marshal(kept)
	if err != nil {
		return m, nil, err
	}
	doc["manifests"] = raw
	data, err := json.Marshal(doc)
	if err != nil {
		return m, nil, err
	}
	return transfer.Manifest{MediaType: m.MediaType, Digest: digest.FromBytes(data), Data: data}, keptNames, nil
}
