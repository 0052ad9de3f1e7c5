package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesOut *prometheus.CounterVec
	bytesIn  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_http_request_duration_seconds", Help: "HTTP request duration by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_http_response_bytes_total", Help: "Response body bytes by route.",
		}, []string{"route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_http_request_bytes_total", Help: "Request body bytes by route.",
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytesOut, m.bytesIn)
	return m
}

// statusWriter records status and bytes. It implements io.ReaderFrom by
// delegating, so http.ServeContent on an *os.File still reaches sendfile.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	route  string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		// HTTP/2's writer has no ReadFrom; hide ours so io.Copy does not
		// come back here.
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func setRoute(w http.ResponseWriter, kind string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.route = kind
	}
}

// countingBody counts request body bytes.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// deadlineBody gives each read of a request body timeout to bring data:
// a client that stops sending, or trickles, loses the connection, while a
// large upload that keeps flowing is never cut. The deadline is set only
// around reads and cleared at the end of the body, so the server's own
// read after the body (which cancels the request on error) never hits it.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	// ErrNotSupported (a writer without deadlines) leaves the read unbounded.
	_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		_ = b.rc.SetReadDeadline(time.Time{})
	} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("no request data for %s (--body-read-timeout): %w", b.timeout, err)
	}
	return n, err
}

func (r *Registry) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, route: "other"}
		var body *countingBody
		if req.Body != nil && req.Body != http.NoBody {
			if r.bodyTimeout > 0 {
				req.Body = &deadlineBody{ReadCloser: req.Body, rc: http.NewResponseController(w), timeout: r.bodyTimeout}
			}
			body = &countingBody{ReadCloser: req.Body}
			req.Body = body
		}
		next.ServeHTTP(sw, req)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		status := strconv.Itoa(sw.status)
		r.metrics.requests.WithLabelValues(sw.route, req.Method, status).Inc()
		r.metrics.duration.WithLabelValues(sw.route, req.Method).Observe(d.Seconds())
		r.metrics.bytesOut.WithLabelValues(sw.route).Add(float64(sw.bytes))
		var in int64
		if body != nil {
			in = body.n
			r.metrics.bytesIn.WithLabelValues(sw.route).Add(float64(in))
		}
		r.log.LogAttrs(req.Context(), accessLevel(sw.status), "request",
			slog.String("method", req.Method), slog.String("path", req.URL.Path), slog.Int("status", sw.status),
			slog.Int64("bytes_in", in), slog.Int64("bytes_out", sw.bytes), slog.Duration("duration", d),
			slog.String("remote", req.RemoteAddr), slog.String("user_agent", req.UserAgent()))
	})
}

func (r *Registry) serveMetrics(w http.ResponseWriter, req *http.Request) {
	promhttp.HandlerFor(r.gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, req)
}

// ready answers 200 when both stores answer within a few seconds.
func (r *Registry) ready(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
	defer cancel()
	if err := r.meta.Ping(ctx); err != nil {
		http.Error(w, "metadata store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if err := r.blobs.Ping(ctx); err != nil {
		http.Error(w, "blob store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n"))
}

// accessLevel logs server errors as errors, the rest at info.
func accessLevel(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
