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
		Operators: r.cfg.Mirror.Operators, Src: plan.Registries(src), Log: r.log,
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
		tmpl, err := r.catalogSourceTemplate(im)
		if err != nil {
			return files, err
		}
		fs, err := clusterresources.WriteCatalogSource(dir, name, image, tmpl)
		if err != nil {
			return files, err
		}
		files = append(files, fs...)
	}
	return files, nil
}

// catalogSourceTemplate reads the targetCatalogSourceTemplate of the
// operators entry whose catalog im is; nil when it has none.
func (r *run) catalogSourceTemplate(im plan.Image) (*clusterresources.CatalogSourceTemplate, error) {
	ref, ok := plan.CatalogOf(im)
	if !ok {
		return nil, nil
	}
	for _, op := range r.cfg.Mirror.Operators {
		if op.Catalog == ref && op.TargetCatalogSourceTemplate != "" {
			return clusterresources.ReadCatalogSourceTemplate(op.TargetCatalogSourceTemplate)
		}
	}
	return nil, nil
}

// checkCatalogSourceTemplates reads every targetCatalogSourceTemplate, so
// a wrong one stops the run before anything is copied.
func (r *run) checkCatalogSourceTemplates() error {
	for i, op := range r.cfg.Mirror.Operators {
		if op.TargetCatalogSourceTemplate == "" {
			continue
		}
		if _, err := clusterresources.ReadCatalogSourceTemplate(op.TargetCatalogSourceTemplate); err != nil {
			return fmt.Errorf("mirror.operators[%d] (%s): %w", i, op.Catalog, err)
		}
	}
	return nil
}
