#!/usr/bin/env bash
# Install everything, then run the synthetic-speech recipe end to end:
# make the corpus, train, evaluate on the held-out test split, transcribe a file
# (recipe stages 1-5; stages 6-8 add an n-gram LM: `bash recipes/synthetic/run.sh --stage 6`).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${EXTRAS:-test} bash scripts/setup.sh
exec bash recipes/synthetic/run.sh --stop-stage 5 "$@"
