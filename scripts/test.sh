#!/usr/bin/env bash
# Install everything, then run the whole test suite (offline, CPU, a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests of asr serve's page drive Debian's headless chromium.
ASR_APT_EXTRA="${ASR_APT_EXTRA-chromium chromium-driver}" bash scripts/setup.sh
exec "${PYTHON:-python3}" -m pytest -q "$@"
