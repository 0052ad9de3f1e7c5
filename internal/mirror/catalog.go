package mirror

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ferry-mirror/ferry/internal/clusterresources"
	"github.com/ferry-mirror/ferry/internal/plan"
	"github.com/ferry-mirror/ferry/internal/transfer"
)

// operatorCollector sets up the operators section; the rebuilt catalogs'
// new blobs go with the other generated blobs.
func (r *run) operatorCollector(src *transfer.Registries) *plan.Operators {
	return &plan.Operators{
		Operators: r.cfg.Mirror.Operators, Src: src, Log: r.log,
		Blobs: plan.BlobDir(filepath.Join(r.workDir, "generated", "blobs")),
	}
}

// annotateMissing names, for each operator image that cannot be mirrored,
// the bundles it breaks: the user decides from that whether to drop them.
func annotateMissing(p *plan.Plan, ops *plan.Operators) {
	for i, m := range p.Missing {
		if m.Section != plan.SectionOperator {
			continue
		}
		var names []string
		seen := map[string]bool{}
		for _, u := range ops.Users[m.Source] {
			n := fmt.Sprintf("bundle %s (package %s)", u.Bundle, u.Package)
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			p.Missing[i].Reason += "; needed by " + strings.Join(names, ", ") + ", which cannot be installed from the mirror"
		}
	}
}

// catalogResources writes cs-<name>.yaml and cc-<name>.yaml for every
// rebuilt catalog that reached the destination, by digest.
func (r *run) catalogResources(dir string, p *plan.Plan, results []transfer.Result) ([]string, error) {
	var files []string
	for i, im := range p.Images {
		if !im.Generated || im.Section != plan.SectionOperator || i >= len(results) || results[i].Err != nil {
			continue
		}
		name, err := plan.CatalogResourceName(im.DestRepo, im.DestTag)
		if err != nil {
			return files, err
		}
		image := plan.DestPath(r.o.Dest, im.DestRepo, r.o.MaxNestedPaths) + "@" + im.Digest.String()
		fs, err := clusterresources.WriteCatalogSource(dir, name, image)
		if err != nil {
			return files, err
		}
		files = append(files, fs...)
	}
	return files, nil
}
