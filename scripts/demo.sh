#!/usr/bin/env bash
# Install everything, then run the synthetic-speech recipe end to end: make the corpus,
# train, evaluate greedy decoding on the general-English and in-domain test sets, transcribe
# a file, build the general-English LM, tune it on dev and evaluate beam search + LM.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${EXTRAS:-test,lm} bash scripts/setup.sh
exec bash recipes/synthetic/run.sh "$@"
