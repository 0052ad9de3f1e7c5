package transfer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Retry says how often and how patiently a failed request is tried again.
type Retry struct {
	Times int           // retries after the first attempt
	Delay time.Duration // first wait; doubled after each retry
}

// wait returns the pause before retry number n (0-based), or the context's error.
func (r Retry) wait(ctx context.Context, n int) error {
	d := r.Delay << n
	if d > 30*time.Second {
		d = 30 * time.Second
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryTransport retries requests that failed on the network or were
// answered 429 or 5xx. Only requests whose body can be replayed (none, or
// GetBody set) are retried here; streamed blob uploads are retried whole by
// the copy engine, which can reopen the source.
type retryTransport struct {
	inner http.RoundTripper
	retry Retry
	log   *slog.Logger
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for n := 0; ; n++ {
		resp, err := t.inner.RoundTrip(req)
		if !replayable || n >= t.retry.Times || !retryable(resp, err) || req.Context().Err() != nil {
			return resp, err
		}
		if err != nil {
			t.log.Debug("retrying request", "method", req.Method, "url", req.URL.Redacted(), "attempt", n+1, "error", err)
		} else {
			t.log.Debug("retrying request", "method", req.Method, "url", req.URL.Redacted(), "attempt", n+1, "status", resp.StatusCode)
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if werr := t.retry.wait(req.Context(), n); werr != nil {
			return nil, werr
		}
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, gerr
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !tlsFailure(err)
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
}

// tlsFailure reports errors that another try cannot fix: a plain-HTTP
// server answering a TLS handshake (the scheme probe) or a certificate
// that does not verify.
func tlsFailure(err error) bool {
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var al tls.AlertError
	return errors.As(err, &rh) || errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &al)
}
