package plan

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-mirror/ferry/internal/imageset"
	"github.com/ferry-mirror/ferry/internal/release"
)

func TestArches(t *testing.T) {
	// platforms picks the multi payload, the one that holds every platform.
	got, err := Arches(imageset.Platform{Platforms: []imageset.PlatformSpec{{OS: "linux", Architecture: "arm64"}, {Architecture: "s390x"}}})
	if err != nil || len(got) != 1 || got[0] != release.Multi {
		t.Errorf("platforms arm64, s390x: got %v, %v; want [multi]", got, err)
	}
	got, err = Arches(imageset.Platform{Architectures: []string{"arm64", "arm64", "s390x"}})
	if err != nil || len(got) != 2 || got[0] != release.ARM64 || got[1] != release.S390X {
		t.Errorf("architectures arm64, arm64, s390x: got %v, %v; want [arm64 s390x]", got, err)
	}
	if got, err := Arches(imageset.Platform{}); err != nil || len(got) != 1 || got[0] != release.AMD64 {
		t.Errorf("no architecture: got %v, %v; want the amd64 default", got, err)
	}
	_, err = Arches(imageset.Platform{Architectures: []string{"riscv64"}})
	if err == nil || !strings.Contains(err.Error(), "riscv64") || !strings.Contains(err.Error(), "multi") {
		t.Errorf("riscv64: error %v; want one naming it and the accepted architectures", err)
	}
}

func TestBlobDir(t *testing.T) {
	dir := BlobDir(t.TempDir())
	data := "graph data layer"
	d := digest.FromString(data)
	if err := dir.Put(digest.FromString("something else"), strings.NewReader(data)); err == nil {
		t.Error("Put stored content under a digest it does not have")
	}
	if _, _, err := dir.Open(digest.FromString("something else")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a rejected blob is readable: %v", err)
	}
	if err := dir.Put(d, strings.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	rc, n, err := dir.Open(d)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Open: %v, size %d", err, n)
	}
	rc.Close()
}
