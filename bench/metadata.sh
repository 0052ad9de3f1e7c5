#!/usr/bin/env bash
# Metadata at scale (issue #17): fills a SQLite and a PostgreSQL metadata
# store through the store API, then measures manifest GET and tag-list
# latency (p50, p99), _catalog pagination and a `ferry gc` over the store
# (time and peak RSS), each engine side by side with the issue's target.
#
# Knobs (environment), small by default; issue #17's full size is
#   SCALE_MANIFESTS=1000000 SCALE_REPOS=100000 SCALE_TAGS=50000 SCALE_BLOBS=200000
# SCALE_MANIFESTS (20000), SCALE_REPOS (2000), SCALE_TAGS (5000),
# SCALE_BLOBS (20000, blob files for gc to walk), SCALE_SAMPLES (5000),
# SCALE_ENGINES (sqlite,postgres).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GOPROXY=$(go env GOPROXY | cut -d, -f1) exec go test ./bench/metadata -run '^$' \
	-bench BenchmarkMetadataScale -benchtime 1x -timeout 0
