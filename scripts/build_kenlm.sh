#!/usr/bin/env bash
# Compile KenLM's build_binary (ARPA -> KenLM binary, for `asr lm binary`) from the kenlm
# source package on PyPI. Neither PyPI's kenlm (the Python module only) nor Debian ships the
# program, but the source package holds all of it; g++ with zlib, bzip2 and xz headers
# builds it in well under a minute, without CMake or Boost.
#
#   bash scripts/build_kenlm.sh [DEST]
#
# DEST: the folder to install build_binary into (default: this Python's scripts folder,
# where asr looks for it after $KENLM_BIN and PATH). KENLM_VERSION picks the source release
# (default: the installed kenlm module's version, else pip's newest).
set -euo pipefail
PYTHON=${PYTHON:-python3}
dest=${1:-$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')}
version=${KENLM_VERSION:-$("$PYTHON" -c 'from importlib.metadata import version; print(version("kenlm"))' 2>/dev/null || true)}
command -v g++ >/dev/null || { echo "build_kenlm: g++ is needed: sudo apt-get install g++" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# --no-build-isolation: reading the package's metadata then needs no build of its CMake requirement.
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --no-binary kenlm --no-build-isolation \
  -d "$work" "kenlm${version:+==$version}"
tar -xzf "$work"/kenlm-*.tar.gz -C "$work"
src=$(echo "$work"/kenlm-*/)

flags=(-O3 -DNDEBUG -DKENLM_MAX_ORDER=6 -DHAVE_CLOCKGETTIME -std=c++11 -w -I"$src")
libs=(-lrt)
# Compressed ARPA files (.gz, .bz2, .xz) are read where the library's headers are installed.
for lib in "ZLIB zlib.h z" "BZLIB bzlib.h bz2" "XZLIB lzma.h lzma"; do
  read -r name header so <<< "$lib"
  if echo "#include <$header>" | g++ -E -x c++ - >/dev/null 2>&1; then flags+=(-DHAVE_"$name"); libs+=(-l"$so"); fi
done
# The library sources setup.py compiles for the module, less tests, benchmarks and the module itself.
mapfile -t sources < <(cd "$src" && ls util/*.cc util/double-conversion/*.cc lm/*.cc | grep -v -e 'main\.cc$' -e 'test\.cc$')
mkdir -p "$work/obj"
export KENLM_SRC=$src KENLM_OBJ=$work/obj
printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -I{} sh -c \
  'g++ "$@" -c "$KENLM_SRC/$0" -o "$KENLM_OBJ/$(echo "$0" | tr / _).o"' {} "${flags[@]}"
g++ "${flags[@]}" "$src/lm/build_binary_main.cc" "$work"/obj/*.o -o "$work/build_binary" "${libs[@]}"
mkdir -p "$dest"
install -m 755 "$work/build_binary" "$dest/build_binary"
echo "build_kenlm: installed $dest/build_binary (kenlm ${version:-newest} source)"
