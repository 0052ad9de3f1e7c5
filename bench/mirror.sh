#!/bin/sh
# Mirror a release-sized synthetic image set (about 190 images, ~500 MB of
# unique blobs) m2m with ferry and with skopeo sync, from the same upstream
# into fresh Debian docker-registry instances, then m2d; prints times, the
# speedup, ferry's peak RSS and the archive's size over the unique blobs.
#   FERRY_BENCH_IMAGES=190 FERRY_BENCH_LAYER_KB=2200 bench/mirror.sh
set -eu
cd "$(dirname "$0")/.."
exec go test -run '^$' -bench '^BenchmarkMirrorRelease$' -benchtime 1x -timeout 30m ./test/mirror/
