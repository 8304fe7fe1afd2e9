#!/usr/bin/env bash
# The test command: installs what is missing, then checks formatting, vet,
# and runs every test (unit, generated-code freshness, buf lint, and the
# end-to-end tests through a real HAProxy), then fuzzes each fuzz target
# briefly.
#
# The end-to-end suite runs on the system's HAProxy (2.6 on Debian 12)
# with everything else, then its client-facing tests again with the REST
# gateway co-located in the servers (about 2.5 minutes), then on each
# HAProxy 3.x that setup.sh installs from Debian's archive: the tests of
# what differs between versions and of the version-sensitive edge rules
# (about 2 minutes a version), or all of it on the versions -haproxy names
# (about 7 minutes a version).
#
# usage: scripts/test.sh [-fuzz-minutes N] [-haproxy VERSIONS] [go test flags...]
#   -fuzz-minutes N     fuzz each target for N minutes instead of 5 seconds
#   -haproxy VERSIONS   the 3.x versions to run the whole suite on,
#                       comma-separated (3.2, or 3.0,3.2 for both;
#                       default none)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=5s
full=
while (($#)); do
  case $1 in
    -fuzz-minutes) fuzztime=${2:?-fuzz-minutes needs a number}m; shift 2 ;;
    -haproxy) full=${2?-haproxy needs versions}; shift 2 ;;
    *) break ;;
  esac
done
# The tests that pin what differs between HAProxy versions, the config's
# check, and the tests of the edge rules that use version-dependent
# features (logs, trace ids, reason phrases, exporter metrics, reloads,
# stream forwarding, HTTP/2 conformance).
differs='^(TestHAProxyUnderTest|TestHAProxyConfigIsValid|TestHTTP3|TestHTTP3CountsAgainstTheSourceLimit|TestDepartureForwarded|TestHostileGlitchesCloseTheConnection|TestBackendKilledMidStream|TestBackendMisbehaves|TestHostileHalfOpenStreamsTimeOut|TestHostileRequestsDoNotHurtOthers|TestDuplicatedUpgradeRefused|TestHostVanishes|TestPerMethodRouting|TestContentTypeRouting|TestAPIKey|TestHTTPRFC|TestRequestIDEverywhere|TestRequestIDReplacesInvalidTraceparent|TestRequestIDKeepsValidTraceparent|TestCanonicalPaths|TestPrometheusScrapesTheStack|TestStatsForOperatorsOnly|TestLogLinesCannotBeForged|TestRateLimit|TestHitlessReloads|TestInteropThroughEdge|TestH2SpecEdge|TestServerSentEvents|TestWebSocketBidi|TestGRPCBidiStream|TestRESTStreamFullDuplex|TestUpgradeOnlyForTheWebSocket|TestConnectThroughHAProxy|TestConnectRefusals|TestConnectRefusalsWithoutOrigins)$'
# The tests of what a client sees, run again with the REST gateway inside
# the servers (CODENAME_GATEWAY_MODE=colocated; the main run is separate):
# REST, the NDJSON, WebSocket and SSE streams, the edge's policy (key,
# canonical paths, content-type routing, HTTP RFC answers, hostile requests,
# capacity and isolation), failures (a replica killed or drained), and the
# browser transports, within about 150 s. Left to the separate run: what
# only HAProxy's front end decides whatever the backend (rate limit, slow
# and idle clients, h2 glitches, hitless reloads, stream queues, broken
# fake backends), and the typed browser clients, whose Connect and gRPC-Web
# calls TestConnectThroughHAProxy and TestGRPCWebFromNode make here.
colocated='^(TestRESTUnary|TestRESTStreamFullDuplex|TestRESTBadInput|TestRESTStreamBadInput|TestGatewayServesHealthOpenAPIAndPage|TestWebSocketBidi|TestWebSocketRefusesOtherOrigins|TestWebSocketBadInput|TestServerSentEvents|TestCancellationReachesServer|TestDepartureForwarded|TestAPIKey|TestCanonicalPaths|TestContentTypeRouting|TestContentTypeReadWhole|TestHTTPRFC|TestPerMethodRouting|TestUpgradeOnlyForTheWebSocket|TestDuplicatedUpgradeRefused|TestHostileRequestsDoNotHurtOthers|TestHostileOversizedMessages|TestHostileHalfOpenStreams|TestHostileHalfOpenStreamsTimeOut|TestHostileClientStopsReading|TestFloodFromOtherAddresses|TestHeldRESTStreamsLeaveRoomForCalls|TestFailoverOnSIGKILL|TestReplicaDrainsOnSIGTERM|TestServerDrainsOnSIGTERM|TestRequestIDEverywhere|TestMetricsEndpoints|TestBrowserPage|TestConnectThroughHAProxy|TestConnectRefusals|TestConnectRefusalsWithoutOrigins|TestGRPCWebFromNode)$'
scripts/setup.sh test
# Installed and pinned, setup has nothing left to do: run again, it says
# nothing (no "setup:" step, no "go: finding module" or download).
again=$(scripts/setup.sh test 2>&1)
if [[ -n $again ]]; then
  echo "scripts/setup.sh test did more than nothing when run again:" >&2
  echo "$again" >&2
  exit 1
fi
export PATH="$PWD/bin:$PATH"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go'))
if [[ -n $unformatted ]]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
echo "== go vet"
go vet ./...
go -C bench vet ./...
echo "== go test (HAProxy $(haproxy -v | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p'))"
# The benchmark is a module of its own (bench/go.mod), which ./... does
# not reach: its smoke run and the tests of its harness run beside the
# main suite, as they did when they were one of its packages, so that they
# add no time of their own.
go -C bench test -race -count=1 -timeout 20m "$@" ./... &
bench=$!
main=0
go test -race -count=1 -timeout 20m "$@" ./... || main=$?
# Waited for even when the main suite failed, so that nothing is left running.
wait "$bench"
((main == 0)) || exit "$main"
# A renamed test would drop out of those lists silently: every name in
# them must still be a test.
for list in differs colocated; do
  named=$(tr '|' '\n' <<<"${!list}" | wc -l)
  found=$(go test -list "${!list}" ./e2e | grep -c '^Test')
  if ((found != named)); then
    echo "scripts/test.sh: $named tests named in \$$list, $found of them found in e2e" >&2
    exit 1
  fi
done
# The race detector watched the test code in the first run; the processes
# under test are built without it either way.
echo "== end-to-end tests of what a client sees, with the gateway co-located"
CODENAME_GATEWAY_MODE=colocated go test -count=1 -timeout 20m -run "$colocated" "$@" ./e2e
for version in 3.0 3.2; do
  if [[ ,$full, == *,$version,* ]]; then
    echo "== end-to-end tests on HAProxy $version"
    CODENAME_HAPROXY=$PWD/bin/haproxy-$version go test -count=1 -timeout 20m "$@" ./e2e
  else
    echo "== end-to-end tests of what differs, on HAProxy $version"
    CODENAME_HAPROXY=$PWD/bin/haproxy-$version go test -count=1 -timeout 20m -run "$differs" "$@" ./e2e
  fi
done

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
  corpus=$pkg/testdata/fuzz/$name
  before=$(ls "$corpus" 2>/dev/null || true)
  if ! out=$(go test "$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s 2>&1); then
    # Go 1.26's fuzzing coordinator can fail a target with a bare
    # "context deadline exceeded" as -fuzztime ends, having found nothing
    # (go.dev/issue/75804, fixed in Go 1.27). A real failure writes its
    # input into the corpus folder; only that one fails the run.
    if [[ $(ls "$corpus" 2>/dev/null || true) == "$before" ]] &&
      [[ $(grep -v '^fuzz: ' <<<"$out") == $'--- FAIL: '"$name"' ('*$')\n    context deadline exceeded\nFAIL\nexit status 1\nFAIL\t'* ]]; then
      echo "$name: the fuzzing coordinator's end-of-time race (go.dev/issue/75804), no failing input; not a failure"
      continue
    fi
    echo "$out"
    exit 1
  fi
  echo "$name: $(grep -o 'execs: [0-9]*' <<<"$out" | tail -n 1)"
  tail -n 1 <<<"$out"
done
