#!/usr/bin/env bash
# Installs what is missing, builds a release build, and starts Ringway in the foreground on
# conf/ringway.toml (or the file given with -c). The default config forwards 127.0.0.1:8000 to
# an echo backend on 127.0.0.1:9000; when nothing listens there, this script starts the bundled
# one (`ringway-load serve --mode echo`) and stops it when Ringway exits. Try it with:
#   printf hi | nc -N 127.0.0.1 8000
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$RINGWAY_ROOT"

config=conf/ringway.toml
while [ $# -gt 0 ]; do
  case "$1" in
    -c|--config) config=$2; shift 2 ;;
    *) die "unknown option $1 (allowed: -c FILE)" ;;
  esac
done

ensure_packages "${RINGWAY_BUILD_PACKAGES[@]}" "${RINGWAY_RUN_PACKAGES[@]}"
build_dir build-release --buildtype=release

bin=build-release/src/ringway
"$bin" --check -c "$config" || die "$config is not valid (see above)"

echo_pid=
cleanup() { [ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null; true; }
trap cleanup EXIT
if [ "$config" = conf/ringway.toml ] && ! ss -Hltn 'sport = :9000' | grep -q .; then
  say "starting the bundled echo backend on 127.0.0.1:9000"
  build-release/bench/load/ringway-load serve --mode echo --listen 127.0.0.1:9000 &
  echo_pid=$!
fi

say "starting ringway on $config (stop with Ctrl-C); try: printf hi | nc -N 127.0.0.1 8000"
"$bin" -c "$config" &
ringway_pid=$!
# Forward Ctrl-C / SIGTERM to ringway so it drains, then wait for it.
trap 'kill -TERM "$ringway_pid" 2>/dev/null' INT TERM
status=0
wait "$ringway_pid" || status=$?
# wait returns early when a trapped signal arrives; wait again for the drain to finish.
if kill -0 "$ringway_pid" 2>/dev/null; then wait "$ringway_pid" || status=$?; fi
exit "$status"
