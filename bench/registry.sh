#!/usr/bin/env bash
# Registry benchmark: ferry serve against CNCF distribution v3 (and nginx for
# the blob path, the practical limit of serving a file), in one run on this
# machine with the same client, and the ratios against the project targets:
#   manifest GET by tag   >= 1.5x  distribution v3 requests/s   (wrk)
#   blob GET (64 MiB)     >= 0.85x nginx MB/s                    (wrk)
#   monolithic push 256 MiB >= 1.0x distribution v3 MB/s        (curl, median)
# Everything listens on 127.0.0.1 on free ports and is removed on exit.
#
# Knobs (environment): BENCH_DURATION (wrk seconds, default 10),
# BENCH_CONNS (16), BENCH_THREADS (2), BLOB_MIB (64), PUSH_MIB (256),
# PUSH_REPS (5), FERRY_BIN (a prebuilt ferry; default: go build from this tree).
set -euo pipefail

DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-16}
THREADS=${BENCH_THREADS:-2}
BLOB_MIB=${BLOB_MIB:-64}
PUSH_MIB=${PUSH_MIB:-256}
PUSH_REPS=${PUSH_REPS:-5}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "registry.sh: $*" >&2; exit 1; }

tool() {
	local p
	p=$(command -v "$1" 2>/dev/null || true)
	[ -z "$p" ] && [ -x "$(go env GOPATH 2>/dev/null)/bin/$1" ] && p="$(go env GOPATH)/bin/$1"
	[ -n "$p" ] || die "$1 is not installed: run scripts/install-test-deps.sh"
	echo "$p"
}
WRK=$(tool wrk)
CURL=$(tool curl)
NGINX=$(tool nginx)
DIST=$(tool distribution-v3)

# free_port prints a loopback port nothing listens on.
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

wait_http() { # url name logfile
	for _ in $(seq 300); do
		if "$CURL" -fso /dev/null "$1"; then return; fi
		sleep 0.1
	done
	echo "--- $3" >&2
	tail -20 "$3" >&2 || true
	die "$2 did not answer $1 within 30 s"
}

# ---- servers -------------------------------------------------------------

if [ -n "${FERRY_BIN:-}" ]; then
	ferry=$FERRY_BIN
else
	ferry="$work/ferry"
	(cd "$root" && go build -o "$ferry" ./cmd/ferry) || die "go build ./cmd/ferry failed"
fi

ferry_port=$(free_port)
"$ferry" serve --plain-http --auth=off --listen "127.0.0.1:$ferry_port" --data-dir "$work/ferry-data" >"$work/ferry.log" 2>&1 &
pids+=($!)

dist_port=$(free_port)
mkdir -p "$work/dist"
cat >"$work/dist/config.yml" <<CONF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/dist/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$dist_port
  secret: ferry-bench-secret
CONF
OTEL_TRACES_EXPORTER=none "$DIST" serve "$work/dist/config.yml" >"$work/dist.log" 2>&1 &
pids+=($!)

nginx_port=$(free_port)
mkdir -p "$work/nginx/www" "$work/nginx/tmp"
# nginx workers drop to an unprivileged user when started as root.
chmod 0755 "$work" "$work/nginx" "$work/nginx/www"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
error_log $work/nginx/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/nginx/www;
  }
}
CONF

# ---- content ---------------------------------------------------------------

echo "preparing a ${BLOB_MIB} MiB blob and a ${PUSH_MIB} MiB push file in $work" >&2
head -c "$((BLOB_MIB << 20))" /dev/urandom >"$work/nginx/www/blob"
blob="$work/nginx/www/blob"
blob_digest="sha256:$(sha256sum "$blob" | cut -d' ' -f1)"
blob_size=$(stat -c %s "$blob")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$blob_digest" >"$work/config.json"
config_digest="sha256:$(sha256sum "$work/config.json" | cut -d' ' -f1)"
config_size=$(stat -c %s "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
	"$config_digest" "$config_size" "$blob_digest" "$blob_size" >"$work/manifest.json"
head -c "$((PUSH_MIB << 20))" /dev/urandom >"$work/push.bin"
push_digest="sha256:$(sha256sum "$work/push.bin" | cut -d' ' -f1)"

"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/nginx.log" 2>&1 &
pids+=($!)

wait_http "http://127.0.0.1:$ferry_port/v2/" ferry "$work/ferry.log"
wait_http "http://127.0.0.1:$dist_port/v2/" distribution-v3 "$work/dist.log"
wait_http "http://127.0.0.1:$nginx_port/blob" nginx "$work/nginx/error.log"

# upload_url base repo: starts an upload session and prints its absolute URL.
upload_url() {
	local loc
	loc=$("$CURL" -fsS -X POST -o /dev/null -D - "$1/v2/$2/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
	[ -n "$loc" ] || die "POST $1/v2/$2/blobs/uploads/ gave no Location"
	case $loc in http*) ;; *) loc="$1$loc" ;; esac
	echo "$loc"
}
sep() { case $1 in *\?*) echo "&" ;; *) echo "?" ;; esac; }

# push_blob base repo file digest: a monolithic POST + PUT; prints seconds.
push_blob() {
	local url
	url=$(upload_url "$1" "$2")
	# -T streams the file; --data-binary would read it all into memory first.
	"$CURL" -fsS -o /dev/null -w '%{time_total}\n' -H 'Content-Type: application/octet-stream' \
		-T "$3" "$url$(sep "$url")digest=$4"
}

seed() { # base
	push_blob "$1" bench/app "$blob" "$blob_digest" >/dev/null
	push_blob "$1" bench/app "$work/config.json" "$config_digest" >/dev/null
	"$CURL" -fsS -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		--data-binary "@$work/manifest.json" "$1/v2/bench/app/manifests/latest"
	# Same bytes on every server, or the comparison means nothing.
	local got
	got=$("$CURL" -fsS "$1/v2/bench/app/blobs/$blob_digest" | sha256sum | cut -d' ' -f1)
	[ "sha256:$got" = "$blob_digest" ] || die "$1 serves the blob with digest sha256:$got, pushed $blob_digest"
}
ferry_url="http://127.0.0.1:$ferry_port"
dist_url="http://127.0.0.1:$dist_port"
nginx_url="http://127.0.0.1:$nginx_port"
seed "$ferry_url"
seed "$dist_url"

# ---- measurements ------------------------------------------------------------

# to_mb converts a wrk size (e.g. 1.23GB, 512.00MB, 10KB) to MB (2^20 bytes).
to_mb() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "GB") n *= 1024; else if (u == "KB") n /= 1024; else if (u == "B") n /= 1048576
		printf "%.1f", n }'
}

# wrk_run name url [header]: prints "requests/s MB/s".
wrk_run() {
	local out rps tps args=(-t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 30s)
	[ -n "${3:-}" ] && args+=(-H "$3")
	out=$(timeout $((DURATION + 60)) "$WRK" "${args[@]}" "$2") || die "wrk $2 failed: $out"
	if grep -q 'Non-2xx' <<<"$out"; then
		echo "$out" >&2
		die "$1: wrk saw non-2xx responses from $2"
	fi
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	tps=$(awk '/^Transfer\/sec:/ {print $2}' <<<"$out")
	echo "$rps $(to_mb "$tps")"
}

accept='Accept: application/vnd.oci.image.manifest.v1+json'
echo "wrk: $THREADS threads, $CONNS connections, ${DURATION}s per run" >&2

read -r f_man_rps f_man_mbs < <(wrk_run "ferry manifest" "$ferry_url/v2/bench/app/manifests/latest" "$accept")
read -r d_man_rps d_man_mbs < <(wrk_run "distribution manifest" "$dist_url/v2/bench/app/manifests/latest" "$accept")
read -r f_blob_rps f_blob_mbs < <(wrk_run "ferry blob" "$ferry_url/v2/bench/app/blobs/$blob_digest")
read -r d_blob_rps d_blob_mbs < <(wrk_run "distribution blob" "$dist_url/v2/bench/app/blobs/$blob_digest")
read -r n_blob_rps n_blob_mbs < <(wrk_run "nginx blob" "$nginx_url/blob")

# median_push base: pushes the push file PUSH_REPS times to fresh
# repositories; prints the median MB/s.
median_push() {
	local secs=() i
	for i in $(seq "$PUSH_REPS"); do
		secs+=("$(push_blob "$1" "bench/push-$i" "$work/push.bin" "$push_digest")")
	done
	printf '%s\n' "${secs[@]}" | sort -n | awk -v mib="$PUSH_MIB" '{ a[NR] = $1 } END {
		m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "%.1f %.3f\n", mib / m, m }'
}
echo "push: ${PUSH_MIB} MiB monolithic (POST + PUT), $PUSH_REPS repetitions, median" >&2
read -r f_push_mbs f_push_s < <(median_push "$ferry_url")
read -r d_push_mbs d_push_s < <(median_push "$dist_url")

# ---- report ------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r + 0 >= t) ? "meets" : "BELOW" }'; }

r_man=$(ratio "$f_man_rps" "$d_man_rps")
r_blob=$(ratio "$f_blob_mbs" "$n_blob_mbs")
r_blob_d=$(ratio "$f_blob_mbs" "$d_blob_mbs")
r_push=$(ratio "$f_push_mbs" "$d_push_mbs")

echo
echo "Registry benchmark on $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%-34s %14s %14s %14s\n' "" "ferry" "distribution3" "nginx"
printf '%-34s %14s %14s %14s\n' "manifest GET by tag (requests/s)" "$f_man_rps" "$d_man_rps" "-"
printf '%-34s %14s %14s %14s\n' "blob GET ${BLOB_MIB} MiB (MB/s)" "$f_blob_mbs" "$d_blob_mbs" "$n_blob_mbs"
printf '%-34s %14s %14s %14s\n' "blob GET ${BLOB_MIB} MiB (requests/s)" "$f_blob_rps" "$d_blob_rps" "$n_blob_rps"
printf '%-34s %14s %14s %14s\n' "push ${PUSH_MIB} MiB median (MB/s)" "$f_push_mbs" "$d_push_mbs" "-"
printf '%-34s %14s %14s %14s\n' "push ${PUSH_MIB} MiB median (s)" "$f_push_s" "$d_push_s" "-"
echo
printf '%-40s %6sx  target >= %-5s %s\n' "manifest GET: ferry / distribution v3" "$r_man" "1.5" "$(verdict "$r_man" 1.5)"
printf '%-40s %6sx  target >= %-5s %s\n' "blob GET: ferry / nginx" "$r_blob" "0.85" "$(verdict "$r_blob" 0.85)"
printf '%-40s %6sx  (no target)\n' "blob GET: ferry / distribution v3" "$r_blob_d"
printf '%-40s %6sx  target >= %-5s %s\n' "push: ferry / distribution v3" "$r_push" "1.0" "$(verdict "$r_push" 1.0)"
