#!/bin/sh
# meson install step: put the default config in place unless one is already there, so an
# upgrade never overwrites an operator's edits. Honours DESTDIR.
set -eu
src=$1
dest="${DESTDIR:-}$2"
mkdir -p "$dest"
if [ -e "$dest/ringway.toml" ]; then
  echo "keeping existing $dest/ringway.toml"
else
  install -m 0644 "$src" "$dest/ringway.toml"
fi
