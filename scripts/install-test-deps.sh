#!/usr/bin/env bash
# Installs what the test suite and the benchmarks talk to: real registries and
# real clients. Idempotent; safe to rerun. Needs root (or sudo) for apt-get.
set -euo pipefail

GOPROXY="$(go env GOPROXY | cut -d, -f1)"
export GOPROXY
GOBIN="${GOBIN:-$(go env GOPATH)/bin}"
export GOBIN
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

# runc: podman's crun refuses hybrid cgroup hosts (a cgroup2 mount with
# controllers next to cgroup v1), which runc runs on; test/deploy uses it.
# systemd: systemd-analyze verify checks the unit ferry install writes.
# chromium: the web console's browser tests.
debs=(skopeo podman docker-registry nginx-light wrk gnupg uidmap fuse-overlayfs slirp4netns crun runc systemd postgresql time chromium)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubectl reads the cluster-resources folder offline (annotate --local) in
# the mirror tests; Debian ships it as kubernetes-client. A kubectl already
# on PATH (another package) is kept: the two packages conflict.
if ! command -v kubectl >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
fi

# Go tools, pinned so a run is repeatable.
goinst() { # binary-name module@version
  if [ ! -x "$GOBIN/$1" ]; then go install "$2"; fi
}
goinst crane github.com/google/go-containerregistry/cmd/crane@v0.22.1
goinst regctl github.com/regclient/regclient/cmd/regctl@v0.11.7
goinst oras oras.land/oras/cmd/oras@v1.3.6
# The Helm CLI the helm tests compare against: the same version as the SDK in go.mod.
goinst helm helm.sh/helm/v4/cmd/helm@v4.3.2
goinst registry github.com/distribution/distribution/v3/cmd/registry@v3.1.2
# MinIO, the S3 server of the HA tests: its releases are not semver tags, so
# pin the pseudo-version of the newest commit that installs.
goinst minio github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
if [ ! -x "$GOBIN/distribution-v3" ]; then cp "$GOBIN/registry" "$GOBIN/distribution-v3"; fi

# The OCI distribution-spec conformance suite is a test binary: build it with go test -c.
if [ ! -x "$GOBIN/oci-conformance" ]; then
  tmp="$(mktemp -d)"
  (
    cd "$tmp"
    go mod init conformance-build >/dev/null 2>&1
    go get github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111 >/dev/null 2>&1
    go test -c -o "$GOBIN/oci-conformance" github.com/opencontainers/distribution-spec/conformance
  )
  rm -rf "$tmp"
fi
echo "test dependencies installed in $GOBIN and by apt-get"
