#!/usr/bin/env bash
# Synthetic-speech recipe: the corpus every machine can make (espeak-ng), end to end.
#
#   bash recipes/synthetic/run.sh [--stage N] [--stop-stage M]
#
# Stages (each marked done under $EXP/.done/, so a rerun skips finished work):
#   1  synthesize the corpus (LibriSpeech layout, disjoint speakers; see asr/synth.py):
#        train/          WordNet sentences (and some generated ones)
#        dev/ test/      everyday English from the fortune files, a source training never reads,
#                        spoken by voices training never hears
#        test-indomain/  held-out sentences of training's own sources
#   2  prepare JSON-lines manifests
#   3  train the BiLSTM-CTC model (exp/synthetic/best.pt)
#   4  evaluate greedy decoding on test and test-indomain
#   5  transcribe one test file
#   6  build the general-English 3-gram LM (WordNet's ~180,000 sentences less every test
#      sentence; IRSTLM, singletons pruned; needs asr[lm]): $DATA/lm/general.arpa
#   7  tune the LM weight and word bonus on dev (stored next to the model)
#   8  evaluate beam search + LM on test and test-indomain
# Outputs: data under $DATA, model and results under $EXP (both deletable and rebuilt).
set -euo pipefail
cd "$(dirname "$0")/../.."

CONFIG=${CONFIG:-recipes/synthetic/conf/demo.toml}
DATA=${DATA:-data/synthetic}
EXP=${EXP:-exp/synthetic}
SYNTH_ARGS=${SYNTH_ARGS:-}
PYTHON=${PYTHON:-python3}
asr() { "$PYTHON" -m asr "$@"; }
source recipes/stages.sh
parse_stage_range "$@"

TESTS=(test test-indomain)
prepare_all() {
  for split in train dev "${TESTS[@]}"; do
    asr prepare "$DATA/corpus/$split" --out "$DATA/manifests/$split.jsonl"
  done
}
train_model() {
  local resume=()
  # A run cut short left last.pt behind: continue it rather than start over.
  [ -f "$EXP/last.pt" ] && resume=(--resume)
  asr train --config "$CONFIG" --exp-dir "$EXP" "${resume[@]}" \
    --set "data.train_manifests=[\"$DATA/manifests/train.jsonl\"]" --set "data.dev_manifest=\"$DATA/manifests/dev.jsonl\""
}
evaluate_test() {
  for split in "${TESTS[@]}"; do
    echo "$split:"
    asr evaluate --model "$EXP/best.pt" --manifest "$DATA/manifests/$split.jsonl" --out-dir "$EXP/decode-$split-greedy" \
      | tee "$EXP/decode-$split-greedy.log"
  done
}
transcribe_one() {
  local files file
  # Every line is read: `find | sort | head -n 1` under pipefail fails when head exits
  # before sort has written everything (sort dies of SIGPIPE, exit 141).
  mapfile -t files < <(find "$DATA/corpus/test" -name '*.flac' | sort)
  [ ${#files[@]} -gt 0 ] || { echo "$0: no test audio under $DATA/corpus/test" >&2; return 1; }
  file=${files[0]}
  asr transcribe --model "$EXP/best.pt" "$file"
  echo "reference: $(grep "$(basename "$file" .flac)" "$(dirname "$file")"/*.trans.txt)"
}

LM=$DATA/lm/general.arpa
build_lm() {
  asr lm text --out "$DATA/lm/general.txt" --exclude "$DATA/manifests/test.jsonl" "$DATA/manifests/test-indomain.jsonl"
  asr lm build --text "$DATA/lm/general.txt" --order 3 --prune-singletons --out "$LM"
}
tune_lm() {
  asr tune-lm --model "$EXP/best.pt" --manifest "$DATA/manifests/dev.jsonl" --lm "$LM" --betas 0:6:0.5 --top 10 \
    | tee "$EXP/tune-lm.log"
}
evaluate_test_lm() {
  for split in "${TESTS[@]}"; do
    echo "$split:"
    asr evaluate --model "$EXP/best.pt" --manifest "$DATA/manifests/$split.jsonl" --lm "$LM" \
      --out-dir "$EXP/decode-$split-beam-lm" | tee "$EXP/decode-$split-beam-lm.log"
  done
}

run_stage 1 "synthesize corpus" asr synth --out "$DATA/corpus" $SYNTH_ARGS
run_stage 2 "prepare manifests" prepare_all
run_stage 3 "train" train_model
run_stage 4 "evaluate (greedy) on test and test-indomain" evaluate_test
run_stage 5 "transcribe a test file" transcribe_one
run_stage 6 "build the general-English 3-gram LM" build_lm
run_stage 7 "tune LM weight and word bonus on dev" tune_lm
run_stage 8 "evaluate beam search + LM on test and test-indomain" evaluate_test_lm
echo "model: $EXP/best.pt"
