#!/usr/bin/env bash
# Installs what the project needs and this machine lacks; safe to run again.
#
# usage: scripts/setup.sh run    what the run command needs (HAProxy, grpcurl)
#        scripts/setup.sh test   that, plus what the tests drive (curl,
#                                headless Chromium, and NSS's certutil, with
#                                which the browser tests trust the dev CA)
#
# Debian packages come from apt-get; Go tools are pinned and installed into
# bin/ of this repository, so nothing global changes but the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

packages=()
command -v haproxy >/dev/null || packages+=(haproxy)
if [[ $mode == test ]]; then
  command -v curl >/dev/null || packages+=(curl)
  command -v chromium >/dev/null || packages+=(chromium)
  command -v certutil >/dev/null || packages+=(libnss3-tools)
fi
if ((${#packages[@]})); then
  sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo)
  echo "setup: installing ${packages[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# name=module@version of each Go tool; a tool is installed again only when
# the version recorded beside it differs.
tools=(
  grpcurl=github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
)
mkdir -p bin
for t in "${tools[@]}"; do
  name=${t%%=*} pkg=${t#*=}
  if [[ -x bin/$name && $(cat "bin/.$name.version" 2>/dev/null) == "$pkg" ]]; then
    continue
  fi
  echo "setup: go install $pkg" >&2
  GOBIN="$PWD/bin" go install "$pkg"
  echo "$pkg" >"bin/.$name.version"
done
