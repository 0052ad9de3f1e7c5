package ha

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// TestBlobRedirect: with --blob-redirect a replica answers blob GETs with
// a presigned MinIO URL instead of relaying the bytes, and clients that
// follow the redirect (go-containerregistry, crane) pull and verify.
func TestBlobRedirect(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	pg := testenv.StartPostgres(t)
	m := testenv.StartMinIO(t)
	args := []string{"--metadata", pg.NewDatabase(t), "--blob-store", m.BlobStoreURL(testenv.BucketName()), "--blob-redirect"}
	s := testenv.StartFerry(t, testenv.FerryOptions{Args: args, Env: m.Env()})
	img, err := random.Image(512<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, s, "redirect/app:1"), img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(s.URL + "/v2/redirect/app/blobs/" + ld.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(loc, m.Host) || !strings.Contains(loc, "X-Amz-Signature") {
		t.Fatalf("blob GET: %d Location %q; want 307 to a presigned URL on %s", resp.StatusCode, loc, m.Host)
	}
	// HEAD is still answered by the registry.
	if resp := do(t, http.MethodHead, s.URL+"/v2/redirect/app/blobs/"+ld.String(), nil); resp.StatusCode != http.StatusOK {
		t.Errorf("blob HEAD: %d", resp.StatusCode)
	}
	want, _ := img.Digest()
	verifyImage(t, s, "redirect/app:1", want)
	if out, err := exec.Command(crane, "validate", "--insecure", "--remote", s.Host+"/redirect/app:1").CombinedOutput(); err != nil {
		t.Fatalf("crane validate through redirects: %v\n%s", err, out)
	}
}
