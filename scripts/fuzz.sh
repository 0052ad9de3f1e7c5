#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a bounded time each
# (FUZZTIME, default 2s), after go test has run their seed corpora.
# A failure leaves the crashing input under the package's
# testdata/fuzz/<Target>/ for `go test -run <Target>/<file>` to replay.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-2s}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
passed=0
failed=0
while IFS=: read -r file _ line; do
  target="$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")"
  pkg="./$(dirname "$file")"
  echo "fuzz $pkg $target ($fuzztime)"
  if go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" >"$log" 2>&1; then
    passed=$((passed + 1))
  else
    cat "$log"
    status=1
    failed=$((failed + 1))
  fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' internal cmd | sort)
echo "fuzz: $passed passed, $failed failed"
exit "$status"
