package auth_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-mirror/ferry/internal/testenv"
)

// fromAddr is an HTTP client whose connections come from the loopback
// address local (127.0.0.0/8 is all loopback on Linux), so one test can
// be several clients to the server.
func fromAddr(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 100}}
}

// login asks /v2/token for a token with Basic credentials and returns the
// status, the error code and the Retry-After header.
func login(t *testing.T, c *http.Client, s *testenv.Server, user, pw string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/v2/token?service="+s.Host, nil)
	req.SetBasicAuth(user, pw)
	return do(t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &body)
	code := ""
	if len(body.Errors) > 0 {
		code = body.Errors[0].Code
	}
	return resp.StatusCode, code, resp.Header.Get("Retry-After")
}

// TestFailedLoginLimit: an address that keeps failing gets 429 with
// Retry-After before any password check; other addresses, and users whose
// credentials were verified, keep working. A user name attacked from many
// addresses is limited too, without locking out its owner's clients.
func TestFailedLoginLimit(t *testing.T) {
	s := startProtected(t, "--failed-logins-per-minute", "2")
	attacker, alice, bob := fromAddr("127.0.0.1"), fromAddr("127.0.0.2"), fromAddr("127.0.0.3")
	if st, _, _ := login(t, alice, s, "alice", alicePW); st != 200 {
		t.Fatalf("alice logs in: %d", st)
	}
	// The limit is 2 a minute: the 3rd failure in a row is refused, unless
	// checks are so slow (race detector, busy machine) that a token came
	// back meanwhile; either way a 429 must come within a few more.
	var st, tries int
	var code, retry string
	for st != 429 && tries < 10 {
		tries++
		if st, code, retry = login(t, attacker, s, "mallory", "guess-"+strconv.Itoa(tries)); st != 401 && st != 429 {
			t.Fatalf("failed login %d: %d %s, want 401 or 429", tries, st, code)
		}
		if st == 429 && tries <= 2 {
			t.Fatalf("failed login %d refused with 429 within the limit of 2", tries)
		}
	}
	if n, _ := strconv.Atoi(retry); st != 429 || code != "TOOMANYREQUESTS" || n < 1 || n > 60 {
		t.Fatalf("after %d failed logins: %d %s Retry-After %q, want 429 TOOMANYREQUESTS with Retry-After 1-60", tries, st, code, retry)
	}
	before := metric(t, s, "ferry_auth_password_checks_total")
	// Registry requests with Basic credentials are limited the same way.
	req, _ := http.NewRequest("GET", s.URL+"/v2/", nil)
	req.SetBasicAuth("bob", "guess-7")
	if st, code, retry := do(t, attacker, req); st != 429 || code != "TOOMANYREQUESTS" || retry == "" {
		t.Errorf("GET /v2/ with Basic from the limited address: %d %s Retry-After %q", st, code, retry)
	}
	if after := metric(t, s, "ferry_auth_password_checks_total"); after != before {
		t.Errorf("limited logins still ran %v password checks", after-before)
	}
	// Other addresses are not affected, and alice's verified credentials
	// pass even from the limited address.
	if st, _, _ := login(t, bob, s, "bob", bobPW); st != 200 {
		t.Errorf("bob from another address: %d, want 200", st)
	}
	req, _ = http.NewRequest("GET", s.URL+"/v2/", nil)
	req.SetBasicAuth("alice", alicePW)
	if st, _, _ := do(t, attacker, req); st != 200 {
		t.Errorf("alice's verified credentials from the limited address: %d, want 200", st)
	}
	// So does a robot token: 256 random bits need no guessing limit.
	tok := strings.TrimSpace(mustUser(t, "", "token", "create", "bob", "--data-dir", s.DataDir))
	req, _ = http.NewRequest("GET", s.URL+"/v2/", nil)
	req.SetBasicAuth("bob", tok)
	if st, _, _ := do(t, attacker, req); st != 200 {
		t.Errorf("bob's robot token from the limited address: %d, want 200", st)
	}

	// bob's name from four addresses (twice the per-address limit), then
	// more if slow checks let tokens come back: the name is limited, bob
	// himself (verified above) is not.
	st, tries = 0, 0
	for st != 429 && tries < 20 {
		tries++
		st, code, retry = login(t, fromAddr("127.0.1."+strconv.Itoa(tries)), s, "bob", "guess-"+strconv.Itoa(tries))
		if st == 429 && tries <= 4 {
			t.Fatalf("failed login %d for bob refused within the limit of 4", tries)
		}
	}
	if st != 429 || code != "TOOMANYREQUESTS" || retry == "" {
		t.Errorf("after %d failed logins for bob from as many addresses: %d %s Retry-After %q, want 429", tries, st, code, retry)
	}
	if st, _, _ := login(t, bob, s, "bob", bobPW); st != 200 {
		t.Errorf("bob while his name is limited: %d, want 200", st)
	}
}

// TestFailedLoginLogsNoUnknownName: a password typed into the user field
// must not reach the log; a failed login of a real user names the user.
func TestFailedLoginLogsNoUnknownName(t *testing.T) {
	s := startProtected(t)
	const typedInUserField = "Tr0ub4dor-and-3"
	c := fromAddr("127.0.0.1")
	if st, _, _ := login(t, c, s, typedInUserField, "x"); st != 401 {
		t.Fatalf("login as an unknown user: %d", st)
	}
	req, _ := http.NewRequest("GET", s.URL+"/v2/", nil)
	req.SetBasicAuth(typedInUserField, "y")
	if st, _, _ := do(t, c, req); st != 401 {
		t.Fatalf("GET /v2/ as an unknown user: %d", st)
	}
	if st, _, _ := login(t, c, s, "alice", "not-her-password"); st != 401 {
		t.Fatalf("alice with a wrong password: %d", st)
	}
	// The log reaches the test through a pipe: wait for the three lines.
	log := s.Log.String()
	for end := time.Now().Add(10 * time.Second); strings.Count(log, `"msg":"authentication failed"`) < 3 && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		log = s.Log.String()
	}
	if strings.Contains(log, typedInUserField) {
		t.Errorf("the unknown user name is in the server log:\n%s", log)
	}
	if n := strings.Count(log, `"msg":"authentication failed"`); n != 3 {
		t.Errorf("%d failed logins logged, want 3:\n%s", n, log)
	}
	if !strings.Contains(log, `"user":"alice"`) {
		t.Errorf("alice's failed login does not name her:\n%s", log)
	}
}

// TestIdenticalLoginsShareOneCheck: 50 nodes logging in at once with one
// pull secret cost one bcrypt check.
func TestIdenticalLoginsShareOneCheck(t *testing.T) {
	s := startProtected(t)
	c := fromAddr("127.0.0.1")
	// Open 50 connections first so that the logins start together.
	warm(t, c, s, 50)
	before := metric(t, s, "ferry_auth_password_checks_total")
	start := make(chan struct{})
	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := range codes {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest("GET", s.URL+"/v2/token?service="+s.Host, nil)
			req.SetBasicAuth("alice", alicePW)
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	for i, st := range codes {
		if st != 200 {
			t.Fatalf("login %d: %d, want 200", i, st)
		}
	}
	if got := metric(t, s, "ferry_auth_password_checks_total") - before; got != 1 {
		t.Errorf("50 identical logins ran %v password checks, want 1", got)
	}
}

// warm opens n keep-alive connections from c to s.
func warm(t *testing.T, c *http.Client, s *testenv.Server, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := c.Get(s.URL + "/healthz?slow")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
}

// metric reads one unlabelled counter from /metrics.
func metric(t *testing.T, s *testenv.Server, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return f
		}
	}
	t.Fatalf("metric %s not on /metrics", name)
	return 0
}
