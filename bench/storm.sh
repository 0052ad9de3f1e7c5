#!/usr/bin/env bash
# Pull storm (issue #17): an upgrade's nodes pulling one release at once.
# STORM_CLIENTS clients (one Go load generator) each log in with one shared
# pull secret and pull every manifest then every blob, over TLS, from ferry
# serve (auth on), CNCF distribution v3 (htpasswd), nginx (the ceiling),
# and three ferry replicas on PostgreSQL + MinIO without and with
# --blob-redirect. Prints throughput, manifest p99, token figures and
# errors side by side, with ferry's ratios to its peers.
#
# Knobs (environment): STORM_CLIENTS (200), STORM_IMAGES (20),
# STORM_LAYER_KIB (256; two layers an image),
# STORM_TARGETS (ferry,distribution,nginx,ha,ha-redirect).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GOPROXY=$(go env GOPROXY | cut -d, -f1) exec go test ./bench/storm -run '^$' \
	-bench BenchmarkPullStorm -benchtime 1x -timeout 0
