#!/usr/bin/env bash
# Install what asr needs on a fresh Debian/Ubuntu machine, into the active virtualenv (or the
# Python that $PYTHON names).
#   system: espeak-ng, festival (with festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts
#           voices) and flite (synthetic corpus), wordnet-base + fortunes (its text), sox + flac
#           (audio tools), wamerican (word list), libsndfile1 (audio I/O), irstlm (n-gram LMs)
#           and whatever $ASR_APT_EXTRA names (the tests add chromium and chromium-driver)
#   python: torch (2.13.0 CPU wheel first when the index has it), then asr with the extras
#           named in $EXTRAS (default "test,lm,onnx,serve,lhotse"; kenlm, in "lm", compiles for about a
#           minute; with "lm", KenLM's build_binary too: scripts/build_kenlm.sh)
# Every step that needs the network says so, and a failed step ends in one line naming the
# package and the log that holds the installer's output.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-test,lm,onnx,serve,lhotse}
log=$(mktemp "${TMPDIR:-/tmp}/asr-setup.XXXXXX.log")

fail() {  # fail STEP: one line, the log's last lines, and where the rest is
  echo "setup: $1 failed; the installer's last lines (whole output: $log):" >&2
  tail -n 5 "$log" | sed 's/^/    /' >&2
  exit 1
}

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null \
  || { echo "setup: asr needs Python >= 3.11; $PYTHON is $("$PYTHON" --version 2>&1)" >&2; exit 1; }
# Debian's and Ubuntu's own Python refuses pip installs (PEP 668): say so before trying.
if "$PYTHON" - <<'EOF'
import sys, sysconfig, pathlib
in_venv = sys.prefix != sys.base_prefix
managed = (pathlib.Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").exists()
sys.exit(0 if managed and not in_venv else 1)
EOF
then
  echo "setup: $PYTHON is the system's Python, which pip may not change: make a virtualenv first," \
       "python3 -m venv ~/asr-venv && . ~/asr-venv/bin/activate" >&2
  exit 1
fi

packages=(espeak-ng festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite wordnet-base fortunes sox flac
          wamerican libsndfile1 irstlm ${ASR_APT_EXTRA:-})
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing system packages from Debian's archive (network): ${missing[*]}"
    $SUDO apt-get update -qq >>"$log" 2>&1 || fail "apt-get update (network: the Debian archive)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >>"$log" 2>&1 \
      || fail "apt-get install ${missing[*]} (network: the Debian archive)"
  else
    echo "setup: please install these system packages yourself: ${missing[*]}" >&2
  fi
fi

pip_install() {  # pip_install WHAT ARGS...: WHAT names the step in an error line
  local what=$1; shift
  "$PYTHON" -m pip install -q --disable-pip-version-check "$@" >>"$log" 2>&1 || fail "pip install $what (network: PyPI)"
}
# A plain "torch" would pull a multi-GB CUDA build; the pinned CPU wheel is preferred where it exists.
if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
  if ! "$PYTHON" -m pip install -q --disable-pip-version-check "torch==2.13.0" >>"$log" 2>&1; then
    echo "setup: torch 2.13.0 not available here; letting pip choose a torch>=2.4 (network: PyPI)"
  fi
fi
echo "setup: installing asr[$EXTRAS] and its dependencies (network: PyPI)"
pip_install "asr[$EXTRAS]" -e ".[$EXTRAS]"
# KenLM's build_binary (asr lm binary) is in no package, PyPI's or Debian's: it compiles from
# the kenlm source package in about 20 s.
if [[ ",$EXTRAS," == *,lm,* ]] \
    && ! "$PYTHON" -c 'from asr.lm.build import find_build_binary; find_build_binary()' >/dev/null 2>&1; then
  PYTHON=$PYTHON bash scripts/build_kenlm.sh >>"$log" 2>&1 \
    || echo "setup: could not build KenLM's build_binary (network: the kenlm source package on PyPI; log: $log);" \
            "asr lm binary will not work (the ARPA LMs do)" >&2
fi
# One consistent environment: pip's own check of every installed package's requirements (the
# test suite asserts it; here a conflict left by something else in this environment is reported).
if ! "$PYTHON" -m pip check >"$log.check" 2>&1; then
  echo "setup: warning: pip check finds conflicting requirements in this environment:" >&2
  sed 's/^/    /' "$log.check" >&2
fi
rm -f "$log" "$log.check"
echo "setup: done ($("$PYTHON" -c 'import torch, asr; print("asr", asr.__version__, "torch", torch.__version__)'))"
