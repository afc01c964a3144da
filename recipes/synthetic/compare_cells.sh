#!/usr/bin/env bash
# Train the six recurrent variants (LSTM, GRU, vanilla tanh RNN; bi- and unidirectional)
# with the same budget on the synthetic corpus, and tabulate what each achieves.
#
#   bash recipes/synthetic/compare_cells.sh [--stage N] [--stop-stage M]
#
# Same budget = the same updates: every variant trains with conf/demo.toml (5 epochs, the
# same seed, so the same batches in the same order and the same learning-rate schedule);
# only model.cell and model.bidirectional change. Wall time then differs by cell, and the
# table reports it.
#
# Stages (each marked done under $EXP/.done/):
#   1     corpus and manifests (recipe stages 1-2, shared with run.sh under $DATA)
#   2     short (<= 3 s) and long (>= 10 s, joined) test sets
#   3-8   per variant: train, then greedy WER on dev, test, test-short and test-long
#   9     the table: $EXP/cells.md
set -euo pipefail
cd "$(dirname "$0")/../.."

CONFIG=${CONFIG:-recipes/synthetic/conf/demo.toml}
DATA=${DATA:-data/synthetic}
EXP=${EXP:-exp/cells}
PYTHON=${PYTHON:-python3}
asr() { "$PYTHON" -m asr "$@"; }
source recipes/stages.sh
parse_stage_range "$@"

corpus() { DATA=$DATA CONFIG=$CONFIG bash recipes/synthetic/run.sh --stop-stage 2; }
length_sets() { "$PYTHON" recipes/synthetic/local/length_sets.py "$DATA/manifests/test.jsonl" "$DATA/manifests"; }
variant() {  # variant CELL BIDIRECTIONAL
  local dir="$EXP/$1-$([ "$2" = true ] && echo bi || echo uni)" resume=()
  [ -f "$dir/last.pt" ] && resume=(--resume)
  asr train --config "$CONFIG" --exp-dir "$dir" "${resume[@]}" \
    --set "model.cell=\"$1\"" --set "model.bidirectional=$2" \
    --set "data.train_manifests=[\"$DATA/manifests/train.jsonl\"]" --set "data.dev_manifest=\"$DATA/manifests/dev.jsonl\""
  for set in dev test test-short test-long; do
    asr evaluate --model "$dir/best.pt" --manifest "$DATA/manifests/$set.jsonl" --out-dir "$dir/decode-$set"
  done
}

run_stage 1 "corpus and manifests" corpus
run_stage 2 "short and long test sets" length_sets
n=3
for bidirectional in true false; do
  for cell in lstm gru rnn; do
    run_stage $n "train and score $cell, bidirectional=$bidirectional" variant $cell $bidirectional
    n=$((n + 1))
  done
done
run_stage 9 "table" "$PYTHON" recipes/synthetic/local/cells_table.py "$EXP"
