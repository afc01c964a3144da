#!/usr/bin/env bash
# Install what asr needs on a fresh Debian/Ubuntu machine (or an activated virtualenv).
#   system: espeak-ng (synthetic corpus), wordnet-base + fortunes (its text), sox + flac
#           (audio tools), wamerican (word list), libsndfile1 (audio I/O), irstlm (n-gram LMs)
#           and whatever $ASR_APT_EXTRA names (the tests add chromium and chromium-driver)
#   python: torch (2.13.0 CPU wheel first when the index has it), then asr with the extras
#           named in $EXTRAS (default "test,lm,onnx,serve"; kenlm, in "lm", compiles for about a
#           minute; with "lm", KenLM's build_binary too: scripts/build_kenlm.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

packages=(espeak-ng wordnet-base fortunes sox flac wamerican libsndfile1 irstlm ${ASR_APT_EXTRA:-})
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install these system packages yourself: ${missing[*]}" >&2
  fi
fi

pip_install() { "$PYTHON" -m pip install -q --disable-pip-version-check "$@"; }
# A plain "torch" would pull a multi-GB CUDA build; the pinned CPU wheel is preferred where it exists.
if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
  pip_install "torch==2.13.0" || echo "setup: torch 2.13.0 not available here; letting pip choose a torch>=2.4"
fi
pip_install -e ".[${EXTRAS:-test,lm,onnx,serve}]"
# KenLM's build_binary (asr lm binary) is in no package, PyPI's or Debian's: it compiles from
# the kenlm source package in about 20 s.
if [[ ",${EXTRAS:-test,lm,onnx,serve}," == *,lm,* ]] \
    && ! "$PYTHON" -c 'from asr.lm import find_build_binary; find_build_binary()' >/dev/null 2>&1; then
  PYTHON=$PYTHON bash scripts/build_kenlm.sh \
    || echo "setup: could not build KenLM's build_binary; asr lm binary will not work (the ARPA LMs do)" >&2
fi
echo "setup: done ($("$PYTHON" -c 'import torch, asr; print("asr", asr.__version__, "torch", torch.__version__)'))"
