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
# Stages (a rerun skips the work a marker says was done with the same options; see stages.sh):
#   1     corpus and manifests (run.sh stages 1-2, shared with run.sh under $DATA, marked there)
#   2     short (<= 3 s) and long (>= 10 s, joined) test sets ($DATA/.done/length-sets)
#   3-8   per variant: train ($EXP/VARIANT/.done/train), then greedy WER on dev, test,
#         test-short and test-long ($EXP/VARIANT/decode-SET/.done)
#   9     the table: $EXP/cells.md ($EXP/.done/cells)
# CONFIG, DATA, EXP and SYNTH_ARGS (for run.sh's corpus) come from the environment.
set -euo pipefail
cd "$(dirname "$0")/../.."

CONFIG=${CONFIG:-recipes/synthetic/conf/demo.toml}
DATA=${DATA:-data/synthetic}
EXP=${EXP:-exp/cells}
SYNTH_ARGS=${SYNTH_ARGS:-}
PYTHON=${PYTHON:-python3}
asr() { "$PYTHON" -m asr "$@"; }
source recipes/stages.sh
parse_options "$@"
corpus_opts=$(options "synth_args=$SYNTH_ARGS")
model_opts=$(options "config=$CONFIG" "synth_args=$SYNTH_ARGS")
SETS=(dev test test-short test-long)

corpus() {
  DATA=$DATA CONFIG=$CONFIG SYNTH_ARGS=$SYNTH_ARGS PYTHON=$PYTHON bash recipes/synthetic/run.sh --stop-stage 2
}
length_sets() { "$PYTHON" recipes/synthetic/local/length_sets.py "$DATA/manifests/test.jsonl" "$DATA/manifests"; }
train_variant() {  # train_variant DIR CELL BIDIRECTIONAL
  local resume=()
  [ -f "$1/last.pt" ] && resume=(--resume)
  asr train --config "$CONFIG" --exp-dir "$1" "${resume[@]}" \
    --set "model.cell=\"$2\"" --set "model.bidirectional=$3" \
    --set "data.train_manifests=[\"$DATA/manifests/train.jsonl\"]" --set "data.dev_manifest=\"$DATA/manifests/dev.jsonl\""
}
score() {  # score DIR SET
  asr evaluate --model "$1/best.pt" --manifest "$DATA/manifests/$2.jsonl" --out-dir "$1/decode-$2"
}

if in_stages 1; then  # run.sh marks its own work, under $DATA
  echo "=== stage 1: corpus and manifests (recipes/synthetic/run.sh --stop-stage 2)"
  corpus | sed 's/^/  /'
fi
run_stage 2 "short and long test sets" "$DATA/.done/length-sets" "$corpus_opts" length_sets
n=3
variants=()
for bidirectional in true false; do
  for cell in lstm gru rnn; do
    variant=$cell-$([ "$bidirectional" = true ] && echo bi || echo uni)
    run_stage_once $n "train $variant" "$EXP/$variant/.done/train" "$model_opts" \
      train_variant "$EXP/$variant" $cell $bidirectional
    for set in "${SETS[@]}"; do
      run_stage $n "score $variant on $set" "$EXP/$variant/decode-$set/.done" "$model_opts" score "$EXP/$variant" "$set"
    done
    [ -f "$EXP/$variant/.done/train" ] && variants+=("$variant")
    n=$((n + 1))
  done
done
# The table shows every variant trained so far: one more trained is a new table.
run_stage 9 "table" "$EXP/.done/cells" "$(options "$model_opts" "variants=${variants[*]}")" \
  "$PYTHON" recipes/synthetic/local/cells_table.py "$EXP"
