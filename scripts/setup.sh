#!/usr/bin/env bash
# Installs what the project needs and this machine lacks; safe to run again.
#
# usage: scripts/setup.sh run    what the run command needs (HAProxy, curl, grpcurl)
#        scripts/setup.sh test   that, plus what the tests drive (headless
#                                Chromium, and NSS's certutil, with
#                                which the browser tests trust the dev CA;
#                                dnsmasq, the DNS server of the host tests;
#                                HAProxy 3.0 and 3.2 beside the system's;
#                                Prometheus and promtool)
#
# HAProxy 3.x comes from Debian's archive (3.0 from Debian 13, 3.2 from
# Debian 14) into bin/, beside the system's 2.6: scripts/haproxy-debian.sh.
# The run command installs one when CODENAME_HAPROXY names it.
#
# Debian packages come from apt-get; Go tools are pinned and installed into
# bin/ of this repository, so nothing global changes but the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

packages=()
command -v haproxy >/dev/null || packages+=(haproxy)
# The run command's banner shows curl commands.
command -v curl >/dev/null || packages+=(curl)
if [[ $mode == test ]]; then
  command -v chromium >/dev/null || packages+=(chromium)
  command -v certutil >/dev/null || packages+=(libnss3-tools)
  command -v slowhttptest >/dev/null || packages+=(slowhttptest)
  command -v openssl >/dev/null || packages+=(openssl)
  command -v h2load >/dev/null || packages+=(nghttp2-client)
  command -v tcpdump >/dev/null || packages+=(tcpdump)
  command -v dnsmasq >/dev/null || packages+=(dnsmasq-base)
  command -v ethtool >/dev/null || packages+=(ethtool)
  command -v nginx >/dev/null || packages+=(nginx)
  command -v caddy >/dev/null || packages+=(caddy)
fi
if ((${#packages[@]})); then
  sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo)
  echo "setup: installing ${packages[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

haproxies=()
[[ $mode == test ]] && haproxies=(3.0:trixie 3.2:forky)
case ${CODENAME_HAPROXY:-} in
  *bin/haproxy-3.0) haproxies+=(3.0:trixie) ;;
  *bin/haproxy-3.2) haproxies+=(3.2:forky) ;;
esac
for h in "${haproxies[@]}"; do
  scripts/haproxy-debian.sh "${h%%:*}" "${h#*:}"
done

# Prometheus and promtool for the tests of deploy/prometheus/, unpacked
# into bin/ (apt-get install would start a service on :9090, the run
# command's gRPC port): scripts/prometheus-debian.sh.
if [[ $mode == test ]]; then
  scripts/prometheus-debian.sh
fi

# Go tools: each comes from its own module under tools/ (grpcurl, h2spec,
# and grpc-go's interop client and server for the conformance tests),
# whose go.mod and go.sum pin the tool and every one of its dependencies,
# so that a build is the same every time and looks no version up. Each
# tool package of tools/DIR becomes bin/NAME, NAME being the package's
# last element, prefixed with DIR- when they differ (interop-client). A
# module's tools are built again only when its go.mod, its go.sum or the
# Go version changed: the stamp beside them holds a checksum of the three.
gotools=(grpcurl)
[[ $mode == test ]] && gotools+=(h2spec interop)
mkdir -p bin
for dir in "${gotools[@]}"; do
  stamp=$( (cat "tools/$dir/go.mod" "tools/$dir/go.sum"; go env GOVERSION) | sha256sum | cut -d' ' -f1)
  pkgs=$(cd "tools/$dir" && go list tool)
  fresh=1
  for pkg in $pkgs; do
    name=${pkg##*/}
    [[ $name == "$dir" ]] || name=$dir-$name
    [[ -x bin/$name ]] || fresh=0
  done
  if ((fresh)) && [[ $(cat "bin/.$dir.version" 2>/dev/null) == "$stamp" ]]; then
    continue
  fi
  for pkg in $pkgs; do
    name=${pkg##*/}
    [[ $name == "$dir" ]] || name=$dir-$name
    echo "setup: building bin/$name from tools/$dir" >&2
    (cd "tools/$dir" && go build -o "../../bin/$name" "$pkg")
  done
  echo "$stamp" >"bin/.$dir.version"
done

# The Node clients of the tests (web/clients: connect-node's gRPC-Web
# transport, and protoc-gen-es, which scripts/generate.sh runs): exactly
# the versions package-lock.json pins, installed with npm ci; nothing is
# fetched after this. Again only when the lock file changed: the stamp in
# node_modules holds its checksum. They need Node 20 or later.
if [[ $mode == test ]]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    echo "setup: installing nodejs npm" >&2
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  if ((node_major < 20)); then
    echo "setup: web/clients needs Node 20 or later, and node is $(node --version)" >&2
    exit 1
  fi
  stamp=$(sha256sum web/clients/package-lock.json | cut -d' ' -f1)
  if [[ $(cat web/clients/node_modules/.setup-stamp 2>/dev/null) != "$stamp" ]]; then
    echo "setup: npm ci in web/clients" >&2
    (cd web/clients && npm ci --no-audit --no-fund --loglevel=error)
    echo "$stamp" >web/clients/node_modules/.setup-stamp
  fi
fi
