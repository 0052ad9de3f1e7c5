package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// The benchmarks measure the registry through HTTP, as clients see it:
//
//	go test -run '^$' -bench . ./test/e2e/
//
// bench/registry.sh compares the same paths against distribution v3 and nginx.

func benchRegistry(b *testing.B) *testenv.Server {
	b.Helper()
	switch os.Getenv("FERRY_E2E_REGISTRY") {
	case "":
		return testenv.StartFerry(b, testenv.FerryOptions{})
	case "distribution-v3":
		return testenv.StartDistributionV3(b)
	}
	b.Fatalf("FERRY_E2E_REGISTRY=%q: want distribution-v3 or nothing", os.Getenv("FERRY_E2E_REGISTRY"))
	return nil
}

// benchPush stores data as a blob with one POST + PUT and fails b otherwise.
func benchPush(b *testing.B, client *http.Client, s *testenv.Server, repo string, data []byte) string {
	b.Helper()
	digest := sha256Digest(data)
	resp, err := client.Post(s.URL+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = s.URL + loc
	}
	req, err := http.NewRequest(http.MethodPut, loc+sep(loc)+"digest="+digest, bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("PUT blob: %s", resp.Status)
	}
	return digest
}

func BenchmarkManifestGetByTag(b *testing.B) {
	s := benchRegistry(b)
	pushImage(b, s.Host+"/bench/app:latest", seedImage(b, false, 4000, 4001, "amd64"))
	url := s.URL + "/v2/bench/app/manifests/latest"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("GET manifest: %s", resp.Status)
			}
		}
	})
}

func BenchmarkBlobGet(b *testing.B) {
	for _, size := range []int{64 << 10, 64 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			s := benchRegistry(b)
			client := &http.Client{}
			digest := benchPush(b, client, s, "bench/blob", randomBytes(uint64(size), size))
			url := s.URL + "/v2/bench/blob/blobs/" + digest
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || n != int64(size) {
					b.Fatalf("GET blob: %s, %d bytes", resp.Status, n)
				}
			}
		})
	}
}

func BenchmarkMonolithicPush(b *testing.B) {
	const size = 64 << 20
	s := benchRegistry(b)
	client := &http.Client{}
	data := randomBytes(4242, size)
	b.SetBytes(size)
	i := 0
	for b.Loop() {
		// A fresh repository each time, so no shortcut for known content
		// can skip the work.
		benchPush(b, client, s, fmt.Sprintf("bench/push-%d", i), data)
		i++
	}
}
