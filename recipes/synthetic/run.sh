#!/usr/bin/env bash
# Synthetic-speech recipe: the corpus every machine can make (espeak-ng, festival, flite), end to end.
#
#   bash recipes/synthetic/run.sh [--stage N] [--stop-stage M]
#
# Stages (a rerun skips the work a marker says was done with the same options; see stages.sh):
#   1  synthesize the corpus (LibriSpeech layout, disjoint speakers; see asr/corpora/synthetic/corpus.py):
#        train/          WordNet sentences (and some generated ones)
#        dev/ test/      everyday English from the fortune files, a source training never reads,
#                        spoken by voices training never hears
#        test-indomain/  held-out sentences of training's own sources
#        test-engine/    test's sentences spoken by flite, a synthesizer training never hears
#                        (training hears espeak-ng and festival; SYNTH_ARGS must keep test-engine)
#      and beside each transcript the phones each utterance says (SPK-CHAP.phones.txt: espeak-ng's
#      as its accent speaks them; US English's for the other engines' voices)
#   2  prepare JSON-lines manifests (with each utterance's phones)
#   3  build the general-English 3-gram LM (WordNet's ~180,000 sentences less every sentence of
#      the test sets; IRSTLM, singletons pruned; needs asr[lm]): $DATA/lm/general.arpa
#   4  the units the config's [text] section names (asr/units.py): for phones, a lexicon of the
#      LM's words as espeak-ng says them in the corpus's accents, alone and in running speech
#      ($DATA/lexicon.txt); for word pieces, a sentencepiece model of the training text
#      ($DATA/bpe-SIZE.model); nothing for characters
#   5  train the BiLSTM-CTC model (exp/synthetic/best.pt)
#   6  evaluate the model alone on test, test-indomain and test-engine: greedy decoding, or for
#      a phone model the lexicon search its checkpoint carries, without an LM
#   7  transcribe one test file
#   8  tune the LM weight and word bonus on dev at beam width $TUNE_BEAM (default 64; stored
#      next to the model)
#   9  evaluate beam search + LM on the test sets at beam width $BEAM (default 128):
#      weights tuned at 64 hold from 128 to 512, while weights tuned at 16 lose accuracy past
#      128 (docs/benchmarks.md, "Beam width with a large LM")
# Outputs: data under $DATA, model and results under $EXP (both deletable and rebuilt).
# Markers: the corpus, its manifests, the LM and the units under $DATA/.done/ (corpus,
# manifest-SPLIT, lm-general, units-KIND), shared by every script using that $DATA; the model's under $EXP/.done/ (train,
# transcribe, tune-lm); each evaluation's in its folder ($EXP/decode-test-greedy/.done). Each
# holds the options it was made with: SYNTH_ARGS for data; also CONFIG for the model's.
set -euo pipefail
cd "$(dirname "$0")/../.."

CONFIG=${CONFIG:-recipes/synthetic/conf/demo.toml}
DATA=${DATA:-data/synthetic}
EXP=${EXP:-exp/synthetic}
SYNTH_ARGS=${SYNTH_ARGS:-}
TUNE_BEAM=${TUNE_BEAM:-64}
BEAM=${BEAM:-128}
PYTHON=${PYTHON:-python3}
asr() { "$PYTHON" -m asr "$@"; }
source recipes/stages.sh
parse_options "$@"
# The config's [text] units, and the file each kind of units is made into.
read -r UNITS BPE_SIZE < <("$PYTHON" - "$CONFIG" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    text = tomllib.load(f).get("text", {})
print(text.get("units", "chars"), text.get("bpe_size", 256))
PY
)
case $UNITS in
  phones) UNITS_FILE=$DATA/lexicon.txt; UNITS_SET=(--set "text.lexicon=\"$UNITS_FILE\"") ;;
  bpe) UNITS_FILE=$DATA/bpe-$BPE_SIZE.model; UNITS_SET=(--set "text.bpe_model=\"$UNITS_FILE\"") ;;
  *) UNITS_FILE=""; UNITS_SET=() ;;
esac
corpus_opts=$(options "synth_args=$SYNTH_ARGS")
model_opts=$(options "config=$CONFIG" "synth_args=$SYNTH_ARGS")
tune_opts=$(options "config=$CONFIG" "synth_args=$SYNTH_ARGS" "tune_beam=$TUNE_BEAM")
beam_opts=$(options "config=$CONFIG" "synth_args=$SYNTH_ARGS" "tune_beam=$TUNE_BEAM" "beam=$BEAM")

TESTS=(test test-indomain test-engine)
train_model() {
  local resume=()
  # A run cut short left last.pt behind: continue it rather than start over.
  [ -f "$EXP/last.pt" ] && resume=(--resume)
  asr train --config "$CONFIG" --exp-dir "$EXP" "${resume[@]}" "${UNITS_SET[@]}" \
    --set "data.train_manifests=[\"$DATA/manifests/train.jsonl\"]" --set "data.dev_manifest=\"$DATA/manifests/dev.jsonl\""
}
evaluate_greedy() {  # evaluate_greedy SPLIT
  asr evaluate --model "$EXP/best.pt" --manifest "$DATA/manifests/$1.jsonl" --out-dir "$EXP/decode-$1-greedy" \
    | tee "$EXP/decode-$1-greedy.log"
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

make_units() {
  case $UNITS in
    phones) asr units lexicon --words "$DATA/lm/general.txt" --manifest "$DATA/manifests/train.jsonl" --out "$UNITS_FILE" ;;
    bpe) asr units bpe --manifest "$DATA/manifests/train.jsonl" --size "$BPE_SIZE" --out "$UNITS_FILE" ;;
  esac
}

LM=$DATA/lm/general.arpa
build_lm() {
  local split excluded=()
  # every test set, test-engine too: its sentences are test's, but the LM should not rely on that
  for split in "${TESTS[@]}"; do excluded+=("$DATA/manifests/$split.jsonl"); done
  asr lm text --out "$DATA/lm/general.txt" --exclude "${excluded[@]}"
  asr lm build --text "$DATA/lm/general.txt" --order 3 --prune-singletons --out "$LM"
}
tune_lm() {
  asr tune-lm --model "$EXP/best.pt" --manifest "$DATA/manifests/dev.jsonl" --lm "$LM" --betas 0:6:0.5 --top 10 \
    --beam-width "$TUNE_BEAM" \
    | tee "$EXP/tune-lm.log"
}
evaluate_lm() {  # evaluate_lm SPLIT
  asr evaluate --model "$EXP/best.pt" --manifest "$DATA/manifests/$1.jsonl" --lm "$LM" --beam-width "$BEAM" \
    --out-dir "$EXP/decode-$1-beam-lm" | tee "$EXP/decode-$1-beam-lm.log"
}

run_stage 1 "synthesize corpus" "$DATA/.done/corpus" "$corpus_opts" asr synth --out "$DATA/corpus" $SYNTH_ARGS
for split in train dev "${TESTS[@]}"; do
  run_stage 2 "prepare the $split manifest" "$DATA/.done/manifest-$split" "$corpus_opts" \
    asr prepare "$DATA/corpus/$split" --out "$DATA/manifests/$split.jsonl"
done
run_stage 3 "build the general-English 3-gram LM" "$DATA/.done/lm-general" "$corpus_opts" build_lm
if [ -n "$UNITS_FILE" ]; then
  run_stage 4 "make the $UNITS units" "$DATA/.done/units-$UNITS-$BPE_SIZE" "$corpus_opts" make_units
fi
run_stage_once 5 "train" "$EXP/.done/train" "$model_opts" train_model
for split in "${TESTS[@]}"; do
  run_stage 6 "evaluate (greedy) on $split" "$EXP/decode-$split-greedy/.done" "$model_opts" evaluate_greedy "$split"
done
run_stage 7 "transcribe a test file" "$EXP/.done/transcribe" "$model_opts" transcribe_one
run_stage 8 "tune LM weight and word bonus on dev" "$EXP/.done/tune-lm" "$tune_opts" tune_lm
for split in "${TESTS[@]}"; do
  run_stage 9 "evaluate beam search + LM on $split" "$EXP/decode-$split-beam-lm/.done" "$beam_opts" \
    evaluate_lm "$split"
done
[ "$stop_stage" -lt 5 ] || echo "model: $EXP/best.pt"
