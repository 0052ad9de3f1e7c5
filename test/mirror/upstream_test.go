package mirror_test

import (
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// upstream is the content pushed into the test's source registry.
type upstream struct {
	Host string

	Alpha     v1.Hash // app/alpha:1.0, Docker v2-2, with a cosign signature and an OCI referrer
	AlphaSig  v1.Hash // app/alpha:sha256-<hex>.sig
	AlphaSBOM v1.Hash // referrer of Alpha
	List      v1.Hash // multi/list:v1, Docker manifest list amd64+arm64
	OCIIndex  v1.Hash // multi/oci:v2, OCI index amd64+arm64
	Filtered  v1.Hash // multi/filtered:v1, list amd64+arm64+ppc64le, mirrored with platforms [amd64]
	// Signatures of platform images inside lists (cosign sign --recursive):
	// of multi/list's arm64 image, and of multi/filtered's amd64 image,
	// which the filter keeps.
	ListChild, ListChildSig         v1.Hash
	FilteredChild, FilteredChildSig v1.Hash
	ByDigest                        v1.Hash // bydigest/img, mirrored by digest only
	Renamed                         v1.Hash // target/src:3, mirrored to renamed/dst:stable
	Blocked                         v1.Hash // blocked/secret:1, blocked by the config
	UniqueBytes                     int64
}

// isc is the ImageSetConfiguration that mirrors the upstream.
func (u *upstream) isc(extra string) string {
	return fmt.Sprintf(`apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  additionalImages:
  - name: %[1]s/app/alpha:1.0
  - name: %[1]s/multi/list:v1
  - name: %[1]s/multi/oci:v2
  - name: %[1]s/multi/filtered:v1
    platforms:
    - architecture: amd64
  - name: %[1]s/bydigest/img@%[2]s
  - name: %[1]s/target/src:3
    targetRepo: renamed/dst
    targetTag: stable
  - name: %[1]s/blocked/secret:1
%[3]s  blockedImages:
  - name: ".*/blocked/.*"
`, u.Host, u.ByDigest, extra)
}

// must keeps fixture building readable; a failure here is a broken test
// setup, reported by the panic with its error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func push(t testing.TB, ref string, w remote.Taggable) v1.Hash {
	t.Helper()
	r := must(name.ParseReference(ref, name.Insecure))
	var err error
	switch x := w.(type) {
	case v1.Image:
		err = remote.Write(r, x)
	case v1.ImageIndex:
		err = remote.WriteIndex(r, x)
	default:
		err = remote.Put(r, x)
	}
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	type digester interface{ Digest() (v1.Hash, error) }
	if d, ok := w.(digester); ok {
		return must(d.Digest())
	}
	return v1.Hash{}
}

// buildUpstream pushes small random images of every shape the mirror
// must handle into the registry at host. Images share a base layer so
// deduplication and cross-repository mounts are exercised.
func buildUpstream(t testing.TB, host string) *upstream {
	t.Helper()
	u := &upstream{Host: host}
	base := must(random.Layer(4096, types.DockerLayer))
	img := func(size int64) v1.Image {
		i := must(random.Image(size, 2))
		return must(mutate.AppendLayers(i, base))
	}
	alpha := img(3000)
	u.Alpha = push(t, host+"/app/alpha:1.0", alpha)

	// cosign-style signature: a tag next to the image.
	sig := mutate.MediaType(must(random.Image(300, 1)), types.OCIManifestSchema1)
	u.AlphaSig = push(t, fmt.Sprintf("%s/app/alpha:sha256-%s.sig", host, u.Alpha.Hex), sig)

	// OCI referrer with a subject; docker-registry 2.8 has no referrers
	// API, so go-containerregistry also writes the referrers tag.
	desc := must(remote.Head(must(name.ParseReference(host+"/app/alpha:1.0", name.Insecure))))
	sbomImg := mutate.MediaType(must(random.Image(200, 1)), types.OCIManifestSchema1)
	sbom := mutate.Subject(mutate.ConfigMediaType(sbomImg, "application/vnd.example.sbom+json"), *desc).(v1.Image)
	u.AlphaSBOM = must(sbom.Digest())
	push(t, fmt.Sprintf("%s/app/alpha@%s", host, u.AlphaSBOM), sbom)

	list := func(mt types.MediaType, archs ...string) v1.ImageIndex {
		idx := mutate.IndexMediaType(empty.Index, mt)
		for _, a := range archs {
			i := img(2000)
			if mt == types.OCIImageIndex {
				i = mutate.MediaType(i, types.OCIManifestSchema1)
			}
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: i, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: a}}})
		}
		return idx
	}
	child := func(idx v1.ImageIndex, i int) v1.Hash { return must(idx.IndexManifest()).Manifests[i].Digest }
	signChild := func(repo string, d v1.Hash) v1.Hash {
		s := mutate.MediaType(must(random.Image(300, 1)), types.OCIManifestSchema1)
		return push(t, fmt.Sprintf("%s/%s:sha256-%s.sig", host, repo, d.Hex), s)
	}
	ml := list(types.DockerManifestList, "amd64", "arm64")
	u.List = push(t, host+"/multi/list:v1", ml)
	u.ListChild = child(ml, 1)
	u.ListChildSig = signChild("multi/list", u.ListChild)
	u.OCIIndex = push(t, host+"/multi/oci:v2", list(types.OCIImageIndex, "amd64", "arm64"))
	fl := list(types.DockerManifestList, "amd64", "arm64", "ppc64le")
	u.Filtered = push(t, host+"/multi/filtered:v1", fl)
	u.FilteredChild = child(fl, 0)
	u.FilteredChildSig = signChild("multi/filtered", u.FilteredChild)

	bd := img(1500)
	u.ByDigest = must(bd.Digest())
	push(t, fmt.Sprintf("%s/bydigest/img@%s", host, u.ByDigest), bd)
	u.Renamed = push(t, host+"/target/src:3", img(1000))
	u.Blocked = push(t, host+"/blocked/secret:1", img(1000))
	return u
}
