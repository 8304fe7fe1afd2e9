#!/usr/bin/env bash
# Installs what the project needs and this machine lacks; safe to run again.
#
# usage: scripts/setup.sh run    what the run command needs (HAProxy, grpcurl)
#        scripts/setup.sh test   that, plus what the tests drive (curl,
#                                headless Chromium, and NSS's certutil, with
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
if [[ $mode == test ]]; then
  command -v curl >/dev/null || packages+=(curl)
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

# name=module@version of each Go tool; a tool is installed again only when
# the version recorded beside it differs.
tools=(
  grpcurl=github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
)
if [[ $mode == test ]]; then
  tools+=(h2spec=github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible)
fi
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

# grpc-go's interop client and server, for the conformance tests. They are
# main packages of the grpc module, built in a scratch module so that their
# dependencies stay out of this project's go.mod.
interop=google.golang.org/grpc@v1.85.0
if [[ $mode == test && ( ! -x bin/interop-client || ! -x bin/interop-server || $(cat bin/.interop.version 2>/dev/null) != "$interop" ) ]]; then
  echo "setup: building grpc-go's interop client and server ($interop)" >&2
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  (
    cd "$scratch"
    go mod init interop >/dev/null 2>&1
    go get "google.golang.org/grpc/interop/client@${interop#*@}" "google.golang.org/grpc/interop/server@${interop#*@}" >/dev/null 2>&1
    go build -o "$OLDPWD/bin/interop-client" google.golang.org/grpc/interop/client
    go build -o "$OLDPWD/bin/interop-server" google.golang.org/grpc/interop/server
  )
  echo "$interop" >bin/.interop.version
fi
