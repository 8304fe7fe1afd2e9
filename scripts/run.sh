#!/usr/bin/env bash
# The run command: installs what is missing, builds, and starts HAProxy, the
# gRPC server and the REST gateway together until Ctrl-C or SIGTERM.
# Every address can be changed through the environment (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
go build -o bin/ ./cmd/...
exec bin/codename-stack "$@"
