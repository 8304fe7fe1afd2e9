# Sourced by the scripts that fetch packages from Debian's archive without
# installing them: private_apt SUITE sets up an apt of its own for SUITE
# in a temporary folder, $apt (removed when the script exits), with its
# own lists, cache and an empty status, so that nothing on the machine
# changes and apt resolves against nothing installed. apt_opts holds the
# options that point apt-get at it; the package lists are read already.
#
# The archive is the one apt already uses on this machine (the first URIs
# of /etc/apt/sources.list.d/debian.sources), and apt checks what it
# fetches against Debian's archive keyring.
private_apt() {
  local suite=$1 sources=/etc/apt/sources.list.d/debian.sources mirror
  mirror=$(awk '/^URIs:/ { print $2; exit }' "$sources" 2>/dev/null || true)
  [[ -n $mirror ]] || { echo "setup: no Debian archive found in $sources" >&2; exit 1; }
  apt=$(mktemp -d)
  trap 'rm -rf "$apt"' EXIT
  mkdir -p "$apt/sources" "$apt/lists/partial" "$apt/archives/partial"
  touch "$apt/status"
  cat >"$apt/sources/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt_opts=(
    -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/sources"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::State::status=$apt/status"
    -o "Dir::Cache::Archives=$apt/archives" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o APT::Install-Recommends=0 -qq
  )
  apt-get "${apt_opts[@]}" update || { echo "setup: cannot read Debian $suite's package lists from $mirror" >&2; exit 1; }
}
