# Shared by scripts/*.sh: package installation and build directories. Source it, don't run it.
# shellcheck shell=bash

RINGWAY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building and testing need, as Debian 12 package names.
RINGWAY_BUILD_PACKAGES=(g++ meson ninja-build pkg-config cmake liburing-dev libtomlplusplus-dev
  libmimalloc-dev libcli11-dev libfmt-dev libsystemd-dev libcpp-httplib-dev libgtest-dev
  libgmock-dev libbenchmark-dev libyaml-cpp-dev)
RINGWAY_TEST_PACKAGES=(clang-14 libclang-rt-14-dev iproute2 procps strace jq systemd
  systemd-container dbus haproxy openssl)
RINGWAY_RUN_PACKAGES=(netcat-openbsd curl)
# What scripts/bench.sh installs beyond its peers: perf for --profile.
RINGWAY_BENCH_PACKAGES=(linux-perf)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the named packages that are not installed yet (and only those), as root with apt-get.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${RINGWAY_APT_UPDATED:-}" ]; then
    apt-get update -q >/dev/null || die "apt-get update failed"
    RINGWAY_APT_UPDATED=1
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# meson setup DIR with the given options unless DIR is already configured, then build it.
build_dir() {
  local dir=$1; shift
  if [ ! -f "$RINGWAY_ROOT/$dir/build.ninja" ]; then
    say "configuring $dir ($*)"
    meson setup "$RINGWAY_ROOT/$dir" "$RINGWAY_ROOT" "$@" >"$RINGWAY_ROOT/$dir.setup.log" 2>&1 \
      || { cat "$RINGWAY_ROOT/$dir.setup.log" >&2; die "meson setup $dir failed"; }
    rm -f "$RINGWAY_ROOT/$dir.setup.log"
  fi
  say "building $dir"
  ninja -C "$RINGWAY_ROOT/$dir" >"$RINGWAY_ROOT/$dir.build.log" 2>&1 \
    || { tail -50 "$RINGWAY_ROOT/$dir.build.log" >&2; die "build of $dir failed"; }
  rm -f "$RINGWAY_ROOT/$dir.build.log"
}
