#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's archive into bin/, without
# apt-get install: Debian's package would also start a Prometheus service
# on :9090, which is the run command's gRPC port. The two packages are
# fetched at one pinned version and unpacked into bin/prometheus-debian/;
# bin/prometheus and bin/promtool point into it. Debian 13's build needs
# only libc (2.34 or newer), so it runs on Debian 12 as it is. Safe to run
# again: nothing is fetched while both binaries report the pinned version.
#
# usage: scripts/prometheus-debian.sh
#
# The archive is the one apt already uses on this machine (see
# debian-archive.sh). If Debian replaces the pinned
# version in the suite, the download fails with apt's message: change the
# pin below (and check `promtool test rules` still passes) then.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/debian-archive.sh
suite=trixie
version=2.53.3+ds1-2
root=$PWD/bin/prometheus-debian

# Debian's builds say "revision: <package version>" in --version.
installed() { [[ -x bin/$1 ]] && bin/$1 --version 2>&1 | grep -qF "revision: $version)"; }
if installed prometheus && installed promtool; then
  exit 0
fi
echo "setup: installing Prometheus and promtool $version from Debian $suite into $root" >&2

# `apt-get download` fetches exactly the two packages.
private_apt "$suite"
mkdir -p "$apt/debs"
(cd "$apt/debs" && apt-get "${apt_opts[@]}" download "prometheus=$version" "promtool=$version") || {
  echo "setup: Debian $suite does not offer prometheus and promtool $version (any more?): see scripts/prometheus-debian.sh" >&2
  exit 1
}

# Only the binaries: the packages' documentation holds Go source files,
# which `go build ./...` in this repository would take for its own.
rm -rf "$root"
mkdir -p "$root"
for deb in "$apt"/debs/*.deb; do
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$root" --wildcards './usr/bin/*'
done
for tool in prometheus promtool; do
  ln -sfn "prometheus-debian/usr/bin/$tool" "bin/$tool"
  if ! installed "$tool"; then
    echo "setup: bin/$tool does not run or is not $version: $(bin/$tool --version 2>&1 | head -1)" >&2
    exit 1
  fi
done
echo "setup: bin/prometheus and bin/promtool are $version" >&2
