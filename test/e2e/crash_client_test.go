package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/testenv"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestCrashDuringSkopeoCopy kills the server while skopeo copies an image
// into it, then reruns the copy after a restart, as an operator would: the
// rerun succeeds and the image is complete and intact.
func TestCrashDuringSkopeoCopy(t *testing.T) {
	upstream := testenv.StartDockerRegistry(t)
	s := startRegistry(t)
	home := t.TempDir()

	img, err := mutate.AppendLayers(empty.Image,
		seedLayer(t, 5001, 16<<20, types.DockerLayer),
		seedLayer(t, 5002, 16<<20, types.DockerLayer),
		seedLayer(t, 5003, 16<<20, types.DockerLayer))
	if err != nil {
		t.Fatal(err)
	}
	pushImage(t, upstream.Host+"/big/app:1", img)
	want := digestOf(t, img)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}

	args := []string{"copy", "--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://" + upstream.Host + "/big/app:1", "docker://" + s.Host + "/big/app:1"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Tool(t, "skopeo"), args...)
	cmd.Env = append(cmd.Environ(), "HOME="+home)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan error, 1)
	go func() { copied <- cmd.Wait() }()

	// Kill as soon as any layer has landed, with the others in flight.
	killed := false
	for !killed {
		select {
		case err := <-copied:
			t.Logf("skopeo finished before the kill (%v); the rerun still checks the result", err)
			killed = true
			continue
		case <-time.After(5 * time.Millisecond):
		}
		for _, l := range layers {
			if do(t, http.MethodHead, s.URL+"/v2/big/app/blobs/"+digestOf(t, l), nil, nil).Status == http.StatusOK {
				s.Kill()
				killed = true
				if err := <-copied; err == nil {
					t.Log("skopeo finished just before the kill")
				}
				break
			}
		}
	}
	s.Restart()

	run(t, home, "skopeo", args...)
	if got := remoteDigest(t, s.Host+"/big/app:1"); got != want {
		t.Fatalf("after the rerun: digest %s, upstream %s", got, want)
	}
	verifyImage(t, s.Host+"/big/app:1")
	assertDiskBlobsIntact(t, s, imageBlobs(t, img))
}
