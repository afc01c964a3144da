#!/usr/bin/env bash
# Synthetic-speech recipe: the corpus every machine can make (espeak-ng), end to end.
#
#   bash recipes/synthetic/run.sh [--stage N] [--stop-stage M]
#
# Stages (each marked done under $EXP/.done/, so a rerun skips finished work):
#   1  synthesize the corpus (LibriSpeech layout: train/ dev/ test/, disjoint speakers)
#   2  prepare JSON-lines manifests
#   3  train the BiLSTM-CTC model (exp/synthetic/best.pt)
#   4  evaluate greedy decoding on the held-out test split
#   5  transcribe one test file
#   6  build a 3-gram word LM from the training transcripts (IRSTLM; needs asr[lm])
#   7  tune the LM weight and word bonus on dev (stored next to the model)
#   8  evaluate beam search + LM on the held-out test split
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

prepare_all() {
  for split in train dev test; do
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
  asr evaluate --model "$EXP/best.pt" --manifest "$DATA/manifests/test.jsonl" --out-dir "$EXP/decode-test-greedy" \
    | tee "$EXP/decode-test-greedy.log"
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

build_lm() {
  "$PYTHON" -c 'import json, sys
for line in open(sys.argv[1]):
    print(json.loads(line)["text"])' "$DATA/manifests/train.jsonl" > "$DATA/lm_train.txt"
  asr lm build --text "$DATA/lm_train.txt" --order 3 --out "$DATA/lm_3gram.arpa"
}
tune_lm() {
  asr tune-lm --model "$EXP/best.pt" --manifest "$DATA/manifests/dev.jsonl" --lm "$DATA/lm_3gram.arpa" --top 10 \
    | tee "$EXP/tune-lm.log"
}
evaluate_test_lm() {
  asr evaluate --model "$EXP/best.pt" --manifest "$DATA/manifests/test.jsonl" --lm "$DATA/lm_3gram.arpa" \
    --out-dir "$EXP/decode-test-beam-lm" | tee "$EXP/decode-test-beam-lm.log"
}

run_stage 1 "synthesize corpus" asr synth --out "$DATA/corpus" $SYNTH_ARGS
run_stage 2 "prepare manifests" prepare_all
run_stage 3 "train" train_model
run_stage 4 "evaluate (greedy) on test" evaluate_test
run_stage 5 "transcribe a test file" transcribe_one
run_stage 6 "build a 3-gram LM from the training text" build_lm
run_stage 7 "tune LM weight and word bonus on dev" tune_lm
run_stage 8 "evaluate beam search + LM on test" evaluate_test_lm
echo "model: $EXP/best.pt"
