#!/usr/bin/env bash
# The run command: installs what is missing, builds, and starts HAProxy, the
# gRPC server and the REST gateway together until Ctrl-C or SIGTERM.
# Every address can be changed through the environment (see README).
#
# It works from any folder: it runs in the repository that holds it, so
# relative paths in the environment (CODENAME_HAPROXY=bin/haproxy-3.2,
# CODENAME_STATE_DIR) are relative to the repository, and the banner's
# commands are written for the folder it was started from.
set -euo pipefail
here=$PWD
self=$(readlink -f "${BASH_SOURCE[0]}")
root=$(dirname "$(dirname "$self")")
# Before anything is written: a copy of this script outside its
# repository would otherwise make .state/ and bin/ wherever it lies.
for f in go.mod haproxy/haproxy.cfg cmd/codename-stack scripts/setup.sh; do
  if [[ ! -e $root/$f ]]; then
    echo "run.sh: $root/$f is missing: run the run.sh of a checkout of the repository (its scripts/run.sh)" >&2
    exit 1
  fi
done
cd "$root"
scripts/setup.sh run
go build -o bin/ ./cmd/...
CODENAME_USER_DIR=${CODENAME_USER_DIR:-$here} exec bin/codename-stack "$@"
