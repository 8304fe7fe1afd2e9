#!/usr/bin/env bash
# Installs a newer HAProxy from Debian's archive beside the system's one,
# without touching the system: the package and every library it needs are
# unpacked into bin/debian-SUITE/, and the binary is pointed at that
# folder's own loader and libraries (its glibc is newer than this
# machine's). bin/haproxy-SERIES then runs it. Safe to run again: nothing
# is fetched while the installed binary is of the wanted series.
#
# usage: scripts/haproxy-debian.sh SERIES SUITE
#   SERIES  the HAProxy branch required, such as 3.0 or 3.2
#   SUITE   the Debian suite that ships it, such as trixie (Debian 13)
#
# The archive is the one apt already uses on this machine (see
# debian-archive.sh). Debian updates a suite's package in place, so the
# series is pinned, not the exact version; `bin/haproxy-SERIES -v` says
# which one was installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/debian-archive.sh
series=${1:?usage: $0 SERIES SUITE} suite=${2:?usage: $0 SERIES SUITE}
link=bin/haproxy-$series
root=$PWD/bin/debian-$suite

version() { "$1" -v 2>/dev/null | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p'; }
if [[ -x $link && $(version "$link") == "$series".* ]]; then
  exit 0
fi
echo "setup: installing HAProxy $series from Debian $suite into $root" >&2
command -v patchelf >/dev/null || {
  [[ $(id -u) == 0 ]] || sudo=sudo
  ${sudo:-} apt-get update -qq
  DEBIAN_FRONTEND=noninteractive ${sudo:-} apt-get install -y -qq --no-install-recommends patchelf >/dev/null
}

# The whole dependency closure: with an empty status, apt installs
# nothing and downloads everything haproxy needs.
private_apt "$suite"
apt-get "${apt_opts[@]}" install --download-only -y haproxy >/dev/null

rm -rf "$root"
mkdir -p "$root"
for deb in "$apt"/archives/*.deb; do
  dpkg-deb -x "$deb" "$root"
done
libs=$root/usr/lib/x86_64-linux-gnu
# DT_RPATH (not RUNPATH) applies to the libraries' own dependencies too.
patchelf --set-interpreter "$libs/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$libs:$root/lib/x86_64-linux-gnu" "$root/usr/sbin/haproxy"
ln -sfn "debian-$suite/usr/sbin/haproxy" "$link"
got=$(version "$link")
if [[ $got != "$series".* ]]; then
  echo "setup: Debian $suite ships HAProxy ${got:-(none that runs)}, not $series" >&2
  exit 1
fi
echo "setup: $link is HAProxy $got" >&2
