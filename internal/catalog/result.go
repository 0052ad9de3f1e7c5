package catalog

import (
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// Result is a filtered catalog and what mirroring it takes.
type Result struct {
	// Catalog is the filtered catalog: what the rebuilt image serves.
	Catalog *Catalog
	// Unchanged is true when the filter keeps the whole catalog (full: true
	// with no packages): the original image can be mirrored as it is.
	Unchanged bool
	// Images are the kept bundles' images and related images, each once,
	// sorted by reference.
	Images []Image
	// Problems are image references of kept bundles that cannot be parsed;
	// those bundles cannot be mirrored whole.
	Problems []ImageProblem
	// Warnings explain choices the filter made that the user did not ask
	// for, like a bundle outside the version range kept to link the range.
	Warnings []string
	// Failed are the packages left out because the filter could not
	// select from them (see Catalog.Filter).
	Failed []*PackageError
}

// Image is one image to mirror and the bundles that need it.
type Image struct {
	// Ref is the reference as the catalog writes it.
	Ref string
	// Digest is the reference's digest, "" when it has only a tag.
	Digest string
	Users  []ImageUser
}

// ImageUser is one bundle that needs an image.
type ImageUser struct {
	Package string
	Bundle  string
	// Name is the relatedImages name; "" for the bundle image itself when
	// relatedImages does not list it.
	Name string
	// IsBundle is true when this is the bundle's own image.
	IsBundle bool
}

// ImageProblem is an image reference of a kept bundle that is not valid.
type ImageProblem struct {
	Package, Bundle, Ref string
	Err                  error
}

func (p ImageProblem) Error() string {
	return fmt.Sprintf("bundle %s of package %s: image %q: %v", p.Bundle, p.Package, p.Ref, p.Err)
}

func newResult(c *Catalog, unchanged bool, warnings []string) *Result {
	res := &Result{Catalog: c, Unchanged: unchanged, Warnings: warnings}
	byRef := map[string]*Image{}
	use := func(b *Bundle, ref, name string) {
		if ref == "" {
			// opm writes no image for bundles carried only as olm.bundle.object
			return
		}
		named, err := reference.ParseNormalizedNamed(strings.TrimPrefix(ref, "docker://"))
		if err != nil {
			res.Problems = append(res.Problems, ImageProblem{Package: b.Package, Bundle: b.Name, Ref: ref, Err: err})
			return
		}
		im := byRef[ref]
		if im == nil {
			im = &Image{Ref: ref}
			if d, ok := named.(reference.Digested); ok {
				im.Digest = d.Digest().String()
			}
			byRef[ref] = im
		}
		u := ImageUser{Package: b.Package, Bundle: b.Name, Name: name, IsBundle: ref == b.Image}
		for i, have := range im.Users {
			if have.Package == u.Package && have.Bundle == u.Bundle {
				// the bundle image listed again in relatedImages: one user
				if have.Name == "" {
					im.Users[i].Name = name
				}
				return
			}
		}
		im.Users = append(im.Users, u)
	}
	for _, b := range c.Bundles {
		use(b, b.Image, "")
		for _, ri := range b.RelatedImages {
			use(b, ri.Image, ri.Name)
		}
	}
	for _, im := range byRef {
		sort.Slice(im.Users, func(i, j int) bool {
			a, b := im.Users[i], im.Users[j]
			if a.Package != b.Package {
				return a.Package < b.Package
			}
			return a.Bundle < b.Bundle
		})
		res.Images = append(res.Images, *im)
	}
	sort.Slice(res.Images, func(i, j int) bool { return res.Images[i].Ref < res.Images[j].Ref })
	return res
}
