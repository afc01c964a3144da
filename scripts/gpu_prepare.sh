#!/usr/bin/env bash
# Prepares scripts/gpu_check.sh for a GPU machine, on this (CPU) machine: run it once before
# the first device call. The GPU image has torch but not asr's audio packages, and cannot
# reach PyPI, so their wheels travel in .whl/ (git-ignored); a small synthetic corpus for
# the convergence check travels in data/gpu_check/corpus. Both together stay well under the
# 64 MiB a device call may carry.
#   usage: bash scripts/gpu_prepare.sh [--python-version 3.12]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
py_version=3.12  # the GPU image's Python (KINDS.md)
[ "${1:-}" = "--python-version" ] && py_version=$2

# asr's imports the GPU image lacks, and theirs; versions as installed here.
packages=(librosa audioread decorator pooch platformdirs soundfile cffi pycparser soxr jiwer rapidfuzz)
pins=$("$PYTHON" - "${packages[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
pins = []
for name in sys.argv[1:]:
    try:
        pins.append(f"{name}=={version(name)}")
    except PackageNotFoundError:
        pins.append(name)
print(" ".join(pins))
PY
)
rm -rf .whl && mkdir -p .whl
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
# shellcheck disable=SC2086
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$py_version" --implementation cp \
  "${platforms[@]}" -d .whl $pins 2> >(grep -v "^WARNING: Location" >&2)
echo "gpu_prepare: $(ls .whl | wc -l) wheels in .whl ($(du -sh .whl | cut -f1))"

# A corpus the demo model learns within two minutes on a GPU: generator sentences.
corpus=data/gpu_check/corpus
if [ ! -f "$corpus/synth.json" ]; then
  "$PYTHON" -m asr synth --out "$corpus" --text generator --train 800 --dev 60 --test 0 --test-indomain 0 --quiet
fi
echo "gpu_prepare: corpus in $corpus ($(du -sh "$corpus" | cut -f1)); now run on the GPU:"
echo '  run(command="bash scripts/gpu_check.sh --out $OUT", carry=[".whl", "data/gpu_check"], timeout_s=540)'
