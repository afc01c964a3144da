#!/usr/bin/env bash
# Train eight acoustic models on the synthetic corpus, the six recurrent variants (LSTM, GRU,
# vanilla tanh RNN; bi- and unidirectional), a Transformer and a Conformer, under two budgets,
# and tabulate what each achieves.
#
#   bash recipes/synthetic/compare_models.sh [--stage N] [--stop-stage M] [--budget updates|time|both]
#       [--variants "lstm-bi conformer ..."] [--train-seconds N]
#
# Variants and the config each trains with (config_of below):
#   lstm-bi gru-bi rnn-bi       $CONFIG (conf/demo.toml) with model.cell and model.bidirectional=true,
#                               in characters (text.units), as the attention configs are
#   lstm-uni gru-uni rnn-uni    the same with model.bidirectional=false: causal, so they can stream
#   transformer                 $TRANSFORMER_CONFIG (conf/transformer.toml)
#   conformer                   $CONFORMER_CONFIG (conf/conformer.toml)
# --variants trains only those named (default: all eight).
#
# Budgets (--budget, default both):
#   updates  each config's epochs with the same seed: the same batches in the same order, so the
#            same number of updates; wall time then differs by model, and the table reports it.
#            Models in $EXP/updates/VARIANT.
#   time     the same training-loop seconds for every variant (--train-seconds, default 470: the
#            demo's training time on the 2-core CPU machine): train.max_train_seconds, over which
#            the learning rate decays, with train.epochs=1000 only as a cap. Models in $EXP/time/VARIANT.
#
# Stages (a rerun skips the work a marker says was done with the same options; see stages.sh):
#   1      corpus and manifests (run.sh stages 1-2, shared with run.sh under $DATA, marked there)
#   2      short (<= 3 s) and long (>= 10 s, joined) sets from the general-English test set
#          ($DATA/.done/length-sets)
#   3-10   budget updates, one stage per variant in the order above (3 lstm-bi ... 10 conformer):
#          train ($EXP/updates/VARIANT/.done/train), then greedy WER on dev, test-indomain, test,
#          test-short and test-long ($EXP/updates/VARIANT/decode-SET/.done)
#   11-18  budget time, the same (11 lstm-bi ... 18 conformer) under $EXP/time/VARIANT
#   19     one table per budget, of every variant trained so far: $EXP/BUDGET/models.md
#          ($EXP/BUDGET/.done/table)
# A variant or budget left out by --variants or --budget skips its stages.
# CONFIG, TRANSFORMER_CONFIG, CONFORMER_CONFIG, DATA, EXP, SYNTH_ARGS (for run.sh's corpus)
# and PYTHON come from the environment.
set -euo pipefail
cd "$(dirname "$0")/../.."

CONFIG=${CONFIG:-recipes/synthetic/conf/demo.toml}
TRANSFORMER_CONFIG=${TRANSFORMER_CONFIG:-recipes/synthetic/conf/transformer.toml}
CONFORMER_CONFIG=${CONFORMER_CONFIG:-recipes/synthetic/conf/conformer.toml}
DATA=${DATA:-data/synthetic}
EXP=${EXP:-exp/models}
SYNTH_ARGS=${SYNTH_ARGS:-}
PYTHON=${PYTHON:-python3}
asr() { "$PYTHON" -m asr "$@"; }
source recipes/stages.sh
VARIANTS=(lstm-bi gru-bi rnn-bi lstm-uni gru-uni rnn-uni transformer conformer)
BUDGETS=(updates time)
SETS=(dev test-indomain test test-short test-long)
usage="usage: $0 [--stage N] [--stop-stage M] [--budget updates|time|both]
    [--variants \"VARIANT ...\"] [--train-seconds N]
  --budget         updates: each config's epochs; time: --train-seconds of training each; both (default)
  --variants       which to train, of: ${VARIANTS[*]} (default: all)
  --train-seconds  the time budget's training-loop seconds (default 470, the demo's on a 2-core CPU)
  stages: 1 corpus, 2 length sets, 3-10 budget updates and 11-18 budget time (one per variant, in
  the order above), 19 tables"
budget=both
variants="${VARIANTS[*]}"
train_seconds=470
parse_options "$@"
case $budget in
  updates|time|both) ;;
  *) printf '%s: --budget takes updates, time or both, got %s\n%s\n' "$0" "'$budget'" "$usage" >&2; exit 2 ;;
esac
for variant in $variants; do
  [[ " ${VARIANTS[*]} " == *" $variant "* ]] \
    || { echo "$0: unknown variant '$variant' in --variants: choose from ${VARIANTS[*]}" >&2; exit 2; }
done
[[ $train_seconds =~ ^[1-9][0-9]*$ ]] \
  || { echo "$0: --train-seconds takes a whole number of seconds, got '$train_seconds'" >&2; exit 2; }
corpus_opts=$(options "synth_args=$SYNTH_ARGS")

config_of() {  # config_of VARIANT: the experiment config it trains with
  case $1 in
    transformer) echo "$TRANSFORMER_CONFIG" ;;
    conformer) echo "$CONFORMER_CONFIG" ;;
    *) echo "$CONFIG" ;;
  esac
}
selected() {  # selected BUDGET VARIANT: whether --budget and --variants ask for it
  [[ $budget == both || $budget == "$1" ]] && [[ " $variants " == *" $2 "* ]]
}
model_opts() {  # model_opts BUDGET VARIANT: the options its markers hold
  options "config=$(config_of "$2")" "synth_args=$SYNTH_ARGS"
  [ "$1" = updates ] || options "train_seconds=$train_seconds"
}

corpus() {
  DATA=$DATA CONFIG=$CONFIG SYNTH_ARGS=$SYNTH_ARGS PYTHON=$PYTHON bash recipes/synthetic/run.sh --stop-stage 2
}
length_sets() { "$PYTHON" recipes/synthetic/local/length_sets.py "$DATA/manifests/test.jsonl" "$DATA/manifests"; }
train_variant() {  # train_variant DIR BUDGET VARIANT
  local sets=() resume=()
  case $3 in
    *-bi) sets=(--set "model.cell=\"${3%-bi}\"" --set model.bidirectional=true --set 'text.units="chars"') ;;
    *-uni) sets=(--set "model.cell=\"${3%-uni}\"" --set model.bidirectional=false --set 'text.units="chars"') ;;
  esac
  [ "$2" = updates ] || sets+=(--set "train.max_train_seconds=$train_seconds" --set train.epochs=1000)
  [ -f "$1/last.pt" ] && resume=(--resume)
  asr train --config "$(config_of "$3")" --exp-dir "$1" "${resume[@]}" "${sets[@]}" \
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
for b in "${BUDGETS[@]}"; do
  for variant in "${VARIANTS[@]}"; do
    if selected "$b" "$variant"; then
      dir=$EXP/$b/$variant
      opts=$(model_opts "$b" "$variant")
      run_stage_once $n "train $variant (budget $b)" "$dir/.done/train" "$opts" train_variant "$dir" "$b" "$variant"
      for set in "${SETS[@]}"; do
        run_stage $n "score $variant (budget $b) on $set" "$dir/decode-$set/.done" "$opts" score "$dir" "$set"
      done
    fi
    n=$((n + 1))
  done
done
# A table shows every variant of its budget trained so far: one more trained is a new table.
for b in "${BUDGETS[@]}"; do
  [[ $budget == both || $budget == "$b" ]] || continue
  trained=()
  table_opts=$(options "synth_args=$SYNTH_ARGS")
  [ "$b" = updates ] || table_opts=$(options "$table_opts" "train_seconds=$train_seconds")
  for variant in "${VARIANTS[@]}"; do
    if [ -f "$EXP/$b/$variant/.done/train" ]; then
      trained+=("$variant")
      table_opts=$(options "$table_opts" "$variant=$(config_of "$variant")")
    fi
  done
  run_stage $n "table (budget $b)" "$EXP/$b/.done/table" "$table_opts" \
    "$PYTHON" recipes/synthetic/local/models_table.py "$EXP/$b" "${trained[@]}"
done
