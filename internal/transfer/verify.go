package transfer

import (
	"fmt"
	"hash"
	"io"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"
)

// DigestError says a blob's bytes did not match its digest or size.
type DigestError struct {
	Image string
	Blob  digest.Digest
	Got   digest.Digest
	Size  int64
	Read  int64
}

func (e *DigestError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("image %s: blob %s: read %d bytes, expected %d", e.Image, e.Blob, e.Read, e.Size)
	}
	return fmt.Sprintf("image %s: blob %s: content has digest %s", e.Image, e.Blob, e.Got)
}

// Temporary is true: a corrupted transfer is worth another try.
func (e *DigestError) Temporary() bool { return true }

// verifier passes bytes through while hashing them, and turns the final EOF
// into an error when the digest or size is wrong, so a bad blob can never
// be committed by a destination that trusts the stream.
type verifier struct {
	r     io.Reader
	h     hash.Hash
	want  digest.Digest
	size  int64 // -1 when unknown
	n     int64
	image string
	live  *atomic.Int64 // bytes moved, for progress
	err   error
}

func newVerifier(r io.Reader, want digest.Digest, size int64, image string, live *atomic.Int64) *verifier {
	return &verifier{r: r, h: want.Algorithm().Hash(), want: want, size: size, image: image, live: live}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if v.live != nil {
		v.live.Add(int64(n))
	}
	if v.size >= 0 && v.n > v.size {
		v.err = &DigestError{Image: v.image, Blob: v.want, Size: v.size, Read: v.n}
		return n, v.err
	}
	// Check as soon as the expected size is reached: a consumer that stops
	// at Content-Length never asks for the EOF.
	if (v.size >= 0 && v.n == v.size && n > 0) || (err == io.EOF && (v.size < 0 || v.n != v.size || n == 0)) {
		if v.size >= 0 && v.n != v.size {
			v.err = &DigestError{Image: v.image, Blob: v.want, Size: v.size, Read: v.n}
			return n, v.err
		}
		if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
			v.err = &DigestError{Image: v.image, Blob: v.want, Got: got, Size: v.size, Read: v.n}
			return n, v.err
		}
	}
	if err != nil {
		v.err = err
	}
	return n, err
}
