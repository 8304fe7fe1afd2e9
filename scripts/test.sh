#!/usr/bin/env bash
# The test command: installs what is missing, then checks formatting, vet,
# and runs every test (unit, generated-code freshness, buf lint, and the
# end-to-end tests through a real HAProxy), then fuzzes each fuzz target
# briefly.
#
# usage: scripts/test.sh [-fuzz-minutes N] [go test flags...]
#   -fuzz-minutes N   fuzz each target for N minutes instead of 5 seconds
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=5s
if [[ ${1:-} == -fuzz-minutes ]]; then
  fuzztime=${2:?-fuzz-minutes needs a number}m
  shift 2
fi
scripts/setup.sh test
export PATH="$PWD/bin:$PATH"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go'))
if [[ -n $unformatted ]]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
echo "== go vet"
go vet ./...
echo "== go test"
go test -race -count=1 -timeout 20m "$@" ./...

echo "== fuzz ($fuzztime each)"
for target in \
  ./server/codename:FuzzParse \
  ./server:FuzzGRPCRequest \
  ./gateway:FuzzUnaryJSON \
  ./gateway:FuzzUnaryQuery \
  ./gateway:FuzzUnaryHeader \
  ./gateway:FuzzStreamJSON \
  ./gateway:FuzzWebSocketMessage \
  ./gateway:FuzzSSEQuery; do
  pkg=${target%%:*} name=${target#*:}
  if ! out=$(go test "$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s 2>&1); then
    echo "$out"
    exit 1
  fi
  echo "$name: $(grep -o 'execs: [0-9]*' <<<"$out" | tail -n 1)"
  tail -n 1 <<<"$out"
done
