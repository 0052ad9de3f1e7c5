#!/usr/bin/env bash
# Catalog at scale (issue #17): generates a file-based catalog shaped like
# Red Hat's (internal/fixtures WriteCatalog), then filters it as ferry
# mirror does, in a child process measured for time and peak RSS: the heads
# of every channel, and ten packages; the result is written out.
#
# Knobs (environment), small by default; issue #17's full size (about
# 500 MB of FBC) is CATALOG_PACKAGES=250 CATALOG_BUNDLES=8000:
# CATALOG_PACKAGES (25), CATALOG_BUNDLES (800), CATALOG_OBJECT_KIB (45),
# CATALOG_SEED (1). CATALOG_DIR keeps the generated catalog there for the
# next run. CATALOG_FILTER_PEER names a program that filters the same
# catalog with oc-mirror's catalog-filter, for the side-by-side (its
# interface: the package comment of bench/catalog).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GOPROXY=$(go env GOPROXY | cut -d, -f1) exec go test ./bench/catalog -run '^$' \
	-bench BenchmarkCatalogFilter -benchtime 1x -timeout 0
