// Package e2e tests `ferry serve` from the outside, as users meet it: real
// clients (skopeo, podman, crane, regctl, oras) against a real server
// process, and crash tests that kill -9 the server mid-upload.
//
// The tests run against the ferry binary built from this tree. To tell a
// test bug from a server bug, run the same tests against CNCF distribution
// v3: FERRY_E2E_REGISTRY=distribution-v3 go test ./test/e2e/
// Tests of Ferry-only features (referrers API, generated TLS) skip there,
// and two crash checks fail for known gaps of distribution v3: it ignores
// the body of a single-POST upload, and without a configured http.secret it
// forgets upload sessions across a restart.
package e2e
