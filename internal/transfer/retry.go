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

// Do runs f until it succeeds, fails with an error retryable rejects,
// has been retried Times times, or ctx ends; it returns f's last error.
// onRetry, when set, hears about each failure that is tried again (n is
// 0 for the first retry).
func (r Retry) Do(ctx context.Context, retryable func(error) bool, onRetry func(n int, err error), f func() error) error {
	for n := 0; ; n++ {
		err := f()
		if err == nil || n >= r.Times || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if onRetry != nil {
			onRetry(n, err)
		}
		if r.wait(ctx, n) != nil {
			return err
		}
	}
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
	policy := t.retry
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		policy.Times = 0 // a streamed body cannot be sent twice
	}
	var resp *http.Response
	try := req
	retryable := func(err error) bool {
		var pe *PermanentError
		return errors.Is(err, errRetryStatus) || (!errors.As(err, &pe) && retryableErr(err))
	}
	onRetry := func(n int, err error) {
		if resp == nil {
			t.log.Debug("retrying request", "method", req.Method, "url", req.URL.Redacted(), "attempt", n+1, "error", err)
			return
		}
		t.log.Debug("retrying request", "method", req.Method, "url", req.URL.Redacted(), "attempt", n+1, "status", resp.StatusCode)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp = nil
	}
	first := true
	err := policy.Do(req.Context(), retryable, onRetry, func() error {
		if !first && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return &PermanentError{err}
			}
			try = req.Clone(req.Context())
			try.Body = body
		}
		first = false
		var err error
		resp, err = t.inner.RoundTrip(try)
		if err != nil {
			resp = nil
			return err
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return errRetryStatus
		}
		return nil
	})
	switch {
	case errors.Is(err, errRetryStatus) && resp != nil:
		return resp, nil // out of tries: the caller reads the status
	case errors.Is(err, errRetryStatus):
		return nil, req.Context().Err() // the wait before the next try ended
	}
	return resp, err
}

// errRetryStatus marks an answer (429, 5xx) that another try may change.
var errRetryStatus = errors.New("retryable status")

// retryableErr reports whether a request that failed with err, not an
// HTTP status, is worth another try.
func retryableErr(err error) bool {
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !tlsFailure(err)
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
