package release

import (
	"testing"

	"github.com/ferry-mirror/ferry/internal/simplesign"
)

// FuzzParseGraph feeds arbitrary documents to the graph parser and walks
// every parsed graph: nothing from a server may crash the client.
func FuzzParseGraph(f *testing.F) {
	for name, ch := range testChannels {
		f.Add(graphJSON(name, ch, AMD64))
	}
	f.Add([]byte(`{"nodes":[{"version":"4.16.1","payload":"p"}],"edges":[[0,0],[0,-1]],"conditionalEdges":[{"edges":[{"from":"4.16.1","to":"x"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGraph(data)
		if err != nil {
			return
		}
		g.Versions()
		g.Channels()
		if n := len(g.Nodes); n > 0 && n < 50 {
			for i := range n {
				if p := g.shortestPath(0, i); p != nil && (p[0] != 0 || p[len(p)-1] != i) {
					t.Fatalf("path %v does not run 0 -> %d", p, i)
				}
			}
		}
	})
}

// FuzzReleaseManifests feeds arbitrary bytes to the parsers of the files a
// release image carries.
func FuzzReleaseManifests(f *testing.F) {
	f.Add([]byte(imageReferences("4.16.3", "etcd", "installer")))
	f.Add([]byte(releaseMetadata("4.16.3", "4.16.2")))
	f.Add([]byte(bootImages(map[string]string{"x86_64": "q.example/kv@sha256:" + digestOf("k")})))
	f.Fuzz(func(t *testing.T, data []byte) {
		if cs, err := parseImageReferences(data); err == nil && len(cs) == 0 {
			t.Fatal("accepted a release with no components")
		}
		parseReleaseMetadata(data)
		parseBootImages(data)
	})
}

// FuzzVerify feeds arbitrary bytes to signature verification: only a
// signature by the trusted key for the right digest may pass.
func FuzzVerify(f *testing.F) {
	key := newKey(f, "Release")
	v, err := NewVerifier(SignatureOptions{KeyFile: writePublicKey(f, key)})
	if err != nil {
		f.Fatal(err)
	}
	d := hashOf("4.16.3")
	f.Add(sign(f, key, atomicDocument(d, "q.example/r:4.16.3-x86_64", simplesign.AtomicType)))
	f.Add([]byte("-----BEGIN PGP MESSAGE-----\n\n-----END PGP MESSAGE-----\n"))
	f.Fuzz(func(t *testing.T, sig []byte) {
		c, err := v.Verify(sig, d)
		if err == nil && (c.Digest != d || c.KeyID != key.PrimaryKey.KeyIdString()) {
			t.Fatalf("accepted a claim %+v", c)
		}
	})
}
