#!/usr/bin/env bash
# The test command: installs what is missing, then checks formatting, vet,
# and runs every test (unit, generated-code freshness, buf lint, and the
# end-to-end tests through a real HAProxy). Extra arguments go to go test.
set -euo pipefail
cd "$(dirname "$0")/.."
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
