package e2e

import "testing"

// The tests compare digests across registries and runs, so seeded content
// must be byte-for-byte reproducible.
func TestSeedIsDeterministic(t *testing.T) {
	for _, oci := range []bool{false, true} {
		a, b := digestOf(t, seedIndex(t, oci, 7)), digestOf(t, seedIndex(t, oci, 7))
		if a != b {
			t.Errorf("oci=%v: two builds of the same seed give %s and %s", oci, a, b)
		}
		if c := digestOf(t, seedIndex(t, oci, 8)); c == a {
			t.Errorf("oci=%v: different seeds give the same digest %s", oci, c)
		}
	}
}
