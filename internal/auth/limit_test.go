package auth

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-mirror/ferry/internal/store/sqlstore"
)

func TestFailureLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newFailureLimiter(3, 10*time.Second, 100)
	for i := range 3 {
		if d := l.take("a", now); d != 0 {
			t.Fatalf("attempt %d refused (%s) within the burst", i+1, d)
		}
	}
	if d := l.take("a", now); d != 10*time.Second {
		t.Errorf("4th attempt: wait %s, want 10s", d)
	}
	if d := l.wait("b", now); d != 0 {
		t.Errorf("another key waits %s", d)
	}
	if d := l.wait("a", now.Add(4*time.Second)); d != 6*time.Second {
		t.Errorf("4 s later: wait %s, want 6s", d)
	}
	if d := l.take("a", now.Add(10*time.Second)); d != 0 {
		t.Errorf("a token came back after 10 s, yet: wait %s", d)
	}
	l.refund("a", now.Add(10*time.Second))
	if d := l.take("a", now.Add(10*time.Second)); d != 0 {
		t.Errorf("after a refund: wait %s", d)
	}

	// A spray of keys stays bounded; a refilled key is forgotten first.
	small := newFailureLimiter(1, time.Second, 10)
	small.take("old", now)
	for i := range 50 {
		small.take("k"+strconv.Itoa(i), now.Add(time.Minute))
	}
	if n := len(small.m); n > 10 {
		t.Errorf("%d keys tracked, limit 10", n)
	}
}

// TestGuessesAtOnceAreLimited: distinct guesses sent together from one
// address are counted before they are checked, so no more bcrypt checks
// run than the limit allows.
func TestGuessesAtOnceAreLimited(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, _ := HashPassword("password-1")
	if err := st.CreateUser(ctx, "u", h); err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, Options{Store: st, Mode: On, FailedLogins: 3, PasswordChecks: 3, Box: testBox(t)})
	if err != nil {
		t.Fatal(err)
	}
	codes := make([]int, 20)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			r := httptest.NewRequest("GET", "http://reg.lan/v2/token", nil)
			r.RemoteAddr = "192.0.2.7:4000"
			r.SetBasicAuth("u", "guess-"+strconv.Itoa(i))
			w := httptest.NewRecorder()
			a.ServeToken(w, r)
			codes[i] = w.Code
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[401] != 3 || count[429] != 17 {
		t.Errorf("20 guesses at once with a limit of 3: %v, want 3×401 and 17×429", count)
	}
	if n := counter(t, a, "ferry_auth_password_checks_total"); n != 3 {
		t.Errorf("%v password checks, want 3", n)
	}
}

// counter reads one of the authorizer's unlabelled counters as /metrics
// would show it.
func counter(t *testing.T, a *Authorizer, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

// TestBusyPasswordChecks: when every password check slot stays taken, a
// login is told to come back (429, Retry-After) instead of queueing for
// ever; once a slot frees, it succeeds.
func TestBusyPasswordChecks(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, _ := HashPassword("password-1")
	if err := st.CreateUser(ctx, "u", h); err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, Options{Store: st, Mode: On, PasswordChecks: 1, Box: testBox(t)})
	if err != nil {
		t.Fatal(err)
	}
	a.slots.wait = 100 * time.Millisecond
	login := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://reg.lan/v2/token", nil)
		r.SetBasicAuth("u", "password-1")
		w := httptest.NewRecorder()
		a.ServeToken(w, r)
		return w
	}
	a.slots.ch <- struct{}{} // a long check holds the only slot
	if w := login(); w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Errorf("login with every slot busy: %d Retry-After %q, want 429 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	a.slots.release()
	if w := login(); w.Code != 200 {
		t.Errorf("login with a free slot: %d", w.Code)
	}
	if n := counter(t, a, "ferry_auth_password_checks_total"); n != 1 {
		t.Errorf("%v password checks, want 1", n)
	}
}
