package clusterresources

import (
	"fmt"
	"sort"

	"sigs.k8s.io/yaml"
)

// The OpenShift config.openshift.io/v1 shapes, reduced to what is written.

type objectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// ImageDigestMirrorSet is config.openshift.io/v1 ImageDigestMirrorSet.
type ImageDigestMirrorSet struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		ImageDigestMirrors []ImageMirrors `json:"imageDigestMirrors"`
	} `json:"spec"`
}

// ImageTagMirrorSet is config.openshift.io/v1 ImageTagMirrorSet.
type ImageTagMirrorSet struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		ImageTagMirrors []ImageMirrors `json:"imageTagMirrors"`
	} `json:"spec"`
}

// ImageMirrors is one source repository and its mirrors.
type ImageMirrors struct {
	Source  string   `json:"source"`
	Mirrors []string `json:"mirrors"`
}

// mirrorSets renders the IDMS (byTag false) or ITMS (byTag true) file: one
// object per section group, named like oc-mirror's (idms-release-0, ...).
// It returns nil when no repository qualifies.
func mirrorSets(repos []repoMirror, byTag bool) ([]byte, error) {
	groups := scoped(repos, func(r repoMirror) bool { return r.byTag == byTag })
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	var docs [][]byte
	for _, g := range names {
		list := groups[g]
		for i := 0; len(list) > 0; i++ {
			part := list[:min(len(list), maxMirrorsPerObject)]
			list = list[len(part):]
			var obj any
			if byTag {
				o := ImageTagMirrorSet{APIVersion: "config.openshift.io/v1", Kind: "ImageTagMirrorSet", Metadata: objectMeta{Name: fmt.Sprintf("itms-%s-%d", g, i)}}
				o.Spec.ImageTagMirrors = part
				obj = o
			} else {
				o := ImageDigestMirrorSet{APIVersion: "config.openshift.io/v1", Kind: "ImageDigestMirrorSet", Metadata: objectMeta{Name: fmt.Sprintf("idms-%s-%d", g, i)}}
				o.Spec.ImageDigestMirrors = part
				obj = o
			}
			data, err := yaml.Marshal(obj)
			if err != nil {
				return nil, err
			}
			docs = append(docs, data)
		}
	}
	if len(docs) == 0 {
		return nil, nil
	}
	return joinDocs(docs), nil
}

// scoped groups the repositories keep selects by section group, each as
// entries of widened source and its widened mirrors, sorted by source;
// mirrors keep the order of repos.
func scoped(repos []repoMirror, keep func(repoMirror) bool) map[string][]ImageMirrors {
	bySource := map[string]map[string][]string{} // group -> source -> mirrors
	for _, r := range repos {
		if !keep(r) {
			continue
		}
		if bySource[r.group] == nil {
			bySource[r.group] = map[string][]string{}
		}
		bySource[r.group][r.scope] = appendUnique(bySource[r.group][r.scope], r.mirrorScope)
	}
	out := map[string][]ImageMirrors{}
	for g, m := range bySource {
		sources := make([]string, 0, len(m))
		for s := range m {
			sources = append(sources, s)
		}
		sort.Strings(sources)
		for _, s := range sources {
			out[g] = append(out[g], ImageMirrors{Source: s, Mirrors: m[s]})
		}
	}
	return out
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
