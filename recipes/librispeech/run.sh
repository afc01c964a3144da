#!/usr/bin/env bash
# LibriSpeech recipe: download, prepare, validate, train, average, decode, results.
#
#   bash recipes/librispeech/run.sh [--config FILE] [--stage N] [--stop-stage M] [options]
#
# Stages (a rerun skips the work whose marker says it was done with the same options, and
# redoes what a changed option touches; every stage is also safe to run again by itself):
#   1  download LibriSpeech: the training set and dev-clean dev-other test-clean test-other
#   2  prepare manifests in $DATA/manifests/ (the training set speed-perturbed, nothing copied)
#   3  validate the manifests; any problem stops the recipe before training
#   4  download the LibriSpeech n-gram LMs (3-gram.pruned.1e-7, 3-gram, 4-gram; gzipped ARPA),
#      and convert those in --lms to KenLM binaries, $DATA/lm/NAME.bin, when KenLM's build_binary
#      is installed (bash scripts/build_kenlm.sh): stages 8-9 then load each LM in seconds
#      instead of minutes per process; without it they read the ARPA files; then the units
#      --units names (asr/units.py), made from the training manifest: for bpe a sentencepiece
#      model of its transcripts, $DATA/units/TRAIN-bpeN.model; for phones an ARPAbet lexicon,
#      $DATA/units/TRAIN-lexicon.txt, of the words of its transcripts and of the LMs' vocabulary
#      (their 1-grams), from CMUdict and espeak-ng for words CMUdict lacks (asr/cmudict_lexicon.py);
#      nothing for chars. Test-set words outside the LM stay out, as they would for any decoder
#   5  train: one process, or torchrun data-parallel with --ngpu N > 1 (multi-node: NNODES,
#      NODE_RANK, MASTER_ADDR, MASTER_PORT in the environment, run on every node). On N GPUs
#      the config's effective batch, lr and warm-up are kept (train.multi_gpu = keep-batch:
#      each GPU gets max_batch_seconds x grad_accum / N) or scaled (scale-lr: each GPU keeps
#      its budget, lr x sqrt(ratio)); training prints what the rule gave (asr/distributed.py)
#   6  average the last --avg epoch checkpoints into $EXP/avg-N.pt (default: train.keep_epochs)
#   7  decoding without an LM of dev-clean dev-other test-clean test-other: greedy, or for a
#      phone model the lexicon search its checkpoint's lexicon makes possible ($EXP/decode/lexicon/)
#   8  tune the LM weight and word bonus of each LM in --lms on dev-clean + dev-other
#   9  beam search with each LM in --lms on the four sets (with the tuned weights)
#  10  write $EXP/RESULTS.md: one table per set, every decoding method, the exact commands
#
# Options:
#   --config FILE          experiment config (default conf/train_clean_100.toml)
#   --train-set NAME       train-clean-100, train-460 or train-960 (default: from the config's name)
#   --speed-perturb F,F,.. training speeds (default 0.9,1.0,1.1; "" for none)
#   --mirror M             us, eu, cn or a base URL serving the LibriSpeech tarballs (default openslr.org)
#   --lm-mirror M          where the LM files are (default: --mirror)
#   --checksums FILE       md5sum.txt replacing the built-in OpenSLR sums (a mirror with other files)
#   --ngpu N               processes (GPUs) per node for stage 5 (default: the GPUs nvidia-smi lists)
#   --avg N                epochs to average in stage 6 (0: decode best.pt)
#   --lms "A B"            LMs for stages 8-9, among 3-gram.pruned.1e-7 3-gram 4-gram (default 4-gram)
#   --tune-args "..."      extra asr tune-lm options, e.g. "--trials 30" or "--alphas 0:1.5:0.25"
#   --tune-beam N          beam width of stage 8's LM tuning (default 64)
#   --beam N               beam width of stage 9 (default 256). Weights tuned at 16 lose accuracy
#                          past 128; tuned at 64 they hold from 128 to 512 (docs/benchmarks.md,
#                          "Beam width with a large LM")
#   --units U              what the model emits: chars, bpe (word pieces) or phones (ARPAbet)
#                          (default: the config's [text] units, else chars); not --set text.units
#   --bpe-size N           word pieces of --units bpe (default: the config's [text] bpe_size, else 256)
#   --set SECTION.KEY=V    override a config value for training (repeatable)
# Outputs: downloads and manifests under $DATA (default data/librispeech, shared by all configs),
# the model and results under $EXP (default exp/librispeech/<config name>); both can be deleted
# and rebuilt. Relative paths (options, DATA, EXP) are taken from the repository root.
# Markers (stages.sh), each holding the options its work was done with:
#   $DATA/.done/download-SUBSET, download-lm-NAME, kenlm-NAME       stages 1 and 4
#   $DATA/.done/manifest-NAME, validate-NAME (NAME: a set, dev, or  stages 2 and 3
#     the training set with its speeds, e.g. train-clean-100-sp0.9_1.0_1.1)
#   $DATA/.done/units-TRAIN-bpeN, units-TRAIN-phones (TRAIN: as     stage 4
#     NAME; the units, --bpe-size, and the manifest and LMs they were made from)
#   $EXP/.done/train (--config, the training manifest, --set, and     stages 5 and 6
#     for bpe or phones the units and their file), avg-N
#   $EXP/decode/greedy/SET/.done (the model; lexicon/ for phones)        stage 7
#   $EXP/tune/LM/.done (the model, the LM file, --tune-beam, --tune-args) stage 8
#   $EXP/decode/beam-LM/SET/.done (as the tuning, and --beam)          stage 9
#   $EXP/.done/results (all of the above)                               stage 10
# A changed --lms, --avg, --tune-args, --tune-beam or --beam redoes the stages it touches; a
# changed --config, --train-set, --speed-perturb, --units, --bpe-size or --set with $EXP already
# trained stops the recipe at stage 5 rather than overwrite the model: give another EXP.
set -euo pipefail
cd "$(dirname "$0")/../.."

config=recipes/librispeech/conf/train_clean_100.toml
train_set=
speed_perturb=0.9,1.0,1.1
mirror=
lm_mirror=
checksums=
ngpu=${NGPU:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)}
avg=
lms="4-gram"
tune_args=
tune_beam=64
beam=256
units=
bpe_size=
set=()  # every --set, in order
usage="usage: $0 [--config FILE] [--train-set NAME] [--stage N] [--stop-stage M] [--speed-perturb F,F,...]
  [--mirror M] [--lm-mirror M] [--checksums FILE] [--ngpu N] [--avg N] [--lms \"A B\"] [--tune-args \"...\"]
  [--tune-beam N] [--beam N] [--units chars|bpe|phones] [--bpe-size N] [--set SECTION.KEY=VALUE]...
  (see the top of this file)"
source recipes/stages.sh
parse_options "$@"

[ -f "$config" ] || { echo "$0: $config: no such config file" >&2; exit 2; }
name=$(basename "$config" .toml)
if [ -z "$train_set" ]; then
  case "$name" in
    train_clean_100) train_set=train-clean-100 ;;
    train_460) train_set=train-460 ;;
    train_960) train_set=train-960 ;;
    *) echo "$0: cannot tell the training set from $config; give --train-set" >&2; exit 2 ;;
  esac
fi
PYTHON=${PYTHON:-python3}
DATA=${DATA:-data/librispeech}
EXP=${EXP:-exp/librispeech/$name}
eval_sets=(dev-clean dev-other test-clean test-other)
lm_names=(3-gram.pruned.1e-7 3-gram 4-gram)
train_name=$train_set
[ -n "$speed_perturb" ] && train_name=$train_set-sp${speed_perturb//,/_}
train_manifest=$DATA/manifests/$train_name.jsonl
mirror_args=()
[ -n "$mirror" ] && mirror_args+=(--mirror "$mirror")
[ -n "$checksums" ] && mirror_args+=(--checksums "$checksums")
lm_mirror_args=()
[ -n "${lm_mirror:-$mirror}" ] && lm_mirror_args+=(--mirror "${lm_mirror:-$mirror}")
[ -n "$checksums" ] && lm_mirror_args+=(--checksums "$checksums")
[ -n "$avg" ] || avg=$("$PYTHON" recipes/librispeech/local/keep_epochs.py "$config")  # as many as training keeps
[[ $avg =~ ^[0-9]+$ ]] || { echo "$0: --avg takes a number of epochs, got '$avg'" >&2; exit 2; }
model=$EXP/best.pt
[ "$avg" -gt 0 ] && model=$EXP/avg-$avg.pt
config_units=$("$PYTHON" recipes/librispeech/local/text_units.py "$config")
read -r config_units config_bpe_size <<< "$config_units"
units=${units:-$config_units}
bpe_size=${bpe_size:-$config_bpe_size}
case $units in
  chars|bpe|phones) ;;
  *) echo "$0: --units takes chars, bpe or phones, got '$units'" >&2; exit 2 ;;
esac
[[ $bpe_size =~ ^[0-9]+$ ]] && [ "$bpe_size" -ge 8 ] \
  || { echo "$0: --bpe-size takes a number of word pieces, 8 or more, got '$bpe_size'" >&2; exit 2; }
for override in "${set[@]}"; do
  # The recipe makes the units file the units need; a --set would train without it.
  [[ $override == text.units=* ]] && { echo "$0: give --units ${override#text.units=}, not --set $override" >&2; exit 2; }
done
# The units' file (made in stage 4) and what training is told of it.
units_set=(--set "text.units=\"$units\"")
units_file=
case $units in
  bpe) units_file=$DATA/units/$train_name-bpe$bpe_size.model
       units_set+=(--set "text.bpe_model=\"$units_file\"" --set "text.bpe_size=$bpe_size") ;;
  phones) units_file=$DATA/units/$train_name-lexicon.txt
          units_set+=(--set "text.lexicon=\"$units_file\"") ;;
esac
lm_arpas=("${lm_names[@]/#/$DATA/lm/}")
lm_arpas=("${lm_arpas[@]/%/.arpa.gz}")
# What the markers of $EXP record: the model's options, then each stage's own. Files are named
# within $DATA or $EXP, so either folder can move without its markers going stale.
train_opts=$(options "config=$config" "train_manifest=$train_name.jsonl" "set=${set[*]}")
# A characters model's marker reads as it did before units existed, so models trained then
# are not refused at stage 5.
[ "$units" = chars ] || train_opts=$(options "$train_opts" "units=$units" "units_file=${units_file##*/}")
model_opts=$(options "$train_opts" "model=${model##*/}")

asr() { "$PYTHON" -m asr "$@"; }
lm_file() {  # the LM called $1: a KenLM binary beside the ARPA file loads in seconds, so it wins
  if [ -f "$DATA/lm/$1.bin" ]; then echo "$DATA/lm/$1.bin"; else echo "$DATA/lm/$1.arpa.gz"; fi
}
tune_opts() {  # tune_opts LM: what stage 8's tuning of LM depends on (and so stage 9's decoding)
  local lm
  lm=$(lm_file "$1")
  options "$model_opts" "lm=${lm##*/}" "tune_beam=$tune_beam" "tune_args=$tune_args"
}
quoted() {  # the arguments as one shell command line, quoted only where needed
  local arg out=()
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then out+=("$arg"); else out+=("$(printf '%q' "$arg")"); fi
  done
  echo "${out[*]}"
}

prepare_train_manifest() {
  local perturb=()
  [ -n "$speed_perturb" ] && perturb=(--speed-perturb "$speed_perturb")
  asr prepare "${train_subsets[@]/#/$DATA/LibriSpeech/}" --out "$train_manifest" "${perturb[@]}"
}
dev_manifest() {
  # Tuning sees both dev conditions, so one alpha/beta serves clean and other speech.
  cat "$DATA/manifests/dev-clean.jsonl" "$DATA/manifests/dev-other.jsonl" > "$DATA/manifests/dev.jsonl"
}
make_units() {
  case $units in
    bpe) asr units bpe --manifest "$train_manifest" --size "$bpe_size" --out "$units_file" ;;
    phones) asr units lexicon --cmudict --words "$train_manifest" "${lm_arpas[@]}" --out "$units_file" ;;
  esac
}
train_model() {
  local resume=() args override
  # A run cut short left last.pt behind: continue it rather than start over.
  [ -f "$EXP/last.pt" ] && resume=(--resume)
  args=(train --config "$config" --exp-dir "$EXP" "${resume[@]}" "${units_set[@]}"
        --set "data.train_manifests=[\"$train_manifest\"]" --set "data.dev_manifest=\"$DATA/manifests/dev-clean.jsonl\"")
  for override in "${set[@]}"; do args+=(--set "$override"); done
  if [ "$ngpu" -gt 1 ] || [ "${NNODES:-1}" -gt 1 ]; then
    "$PYTHON" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
      --nproc_per_node="$((ngpu > 0 ? ngpu : 1))" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
      --master_port="${MASTER_PORT:-29500}" -m asr "${args[@]}"
  else
    asr "${args[@]}"
  fi
}
decode() {  # decode METHOD SET [asr evaluate options...]: scores into $EXP/decode/METHOD/SET/
  local method=$1 subset=$2; shift 2
  local dir=$EXP/decode/$method/$subset
  local cmd=(asr evaluate --model "$model" --manifest "$DATA/manifests/$subset.jsonl" --out-dir "$dir" "$@" --json)
  mkdir -p "$dir"
  quoted "${cmd[@]}" > "$dir/command.txt"
  # result.json holds the scores and the decoding settings; stderr, kept in decode.log, says
  # where alpha and beta came from.
  "${cmd[@]}" 2> "$dir/decode.log" > "$dir/result.json" || { cat "$dir/decode.log" >&2; return 1; }
  "$PYTHON" recipes/librispeech/local/score_line.py "$dir/result.json" "$subset $method"
}
tune_lm() {  # tune_lm LM
  local dir=$EXP/tune/$1 cmd
  mkdir -p "$dir"
  # shellcheck disable=SC2206  # --tune-args is a list of options
  cmd=(asr tune-lm --model "$model" --manifest "$DATA/manifests/dev.jsonl" --lm "$(lm_file "$1")" --beam-width "$tune_beam" --quiet $tune_args)
  quoted "${cmd[@]}" > "$dir/command.txt"
  "${cmd[@]}" | tee "$dir/tune.log"
}
write_results() {
  "$PYTHON" recipes/librispeech/local/results.py --exp "$EXP" --config "$config" --train-set "$train_set" \
    --speed-perturb "$speed_perturb" --model "$model" --avg "$avg" --sets "${eval_sets[@]}" > "$EXP/RESULTS.md.tmp"
  mv "$EXP/RESULTS.md.tmp" "$EXP/RESULTS.md"
  echo "wrote $EXP/RESULTS.md"
}

# Data, under $DATA and shared by every config: each piece is done once.
train_subsets=()  # what $train_set is made of (train-960: three subsets)
if in_stages 1 || in_stages 2; then
  subsets=$("$PYTHON" recipes/librispeech/local/subsets.py "$train_set")
  mapfile -t train_subsets <<< "$subsets"
fi
for subset in "${train_subsets[@]}" "${eval_sets[@]}"; do
  run_stage 1 "download LibriSpeech $subset" "$DATA/.done/download-$subset" "" \
    asr download librispeech --subsets "$subset" --dest "$DATA" "${mirror_args[@]}"
done
for subset in "${eval_sets[@]}"; do
  run_stage 2 "prepare the $subset manifest" "$DATA/.done/manifest-$subset" "" \
    asr prepare "$DATA/LibriSpeech/$subset" --out "$DATA/manifests/$subset.jsonl"
done
run_stage 2 "prepare the dev manifest (dev-clean + dev-other)" "$DATA/.done/manifest-dev" "" dev_manifest
run_stage 2 "prepare the $train_name manifest" "$DATA/.done/manifest-$train_name" "" prepare_train_manifest
for manifest in "$train_name" "${eval_sets[@]}"; do
  run_stage 3 "validate the $manifest manifest" "$DATA/.done/validate-$manifest" "" \
    asr validate "$DATA/manifests/$manifest.jsonl"
done
for lm in "${lm_names[@]}"; do
  run_stage 4 "download the $lm LM" "$DATA/.done/download-lm-$lm" "" \
    asr download librispeech-lm --names "$lm.arpa.gz" --dest "$DATA/lm" "${lm_mirror_args[@]}"
done
if in_stages 4; then
  if "$PYTHON" recipes/librispeech/local/has_build_binary.py; then
    for lm in $lms; do
      run_stage 4 "KenLM binary of the $lm LM" "$DATA/.done/kenlm-$lm" "" \
        asr lm binary --arpa "$DATA/lm/$lm.arpa.gz" --out "$DATA/lm/$lm.bin"
    done
  else
    echo "stage 4: KenLM's build_binary is not installed (bash scripts/build_kenlm.sh makes it): stages 8-9" \
      "read the ARPA files of $lms, which takes minutes and GBs of memory in every decoding process"
  fi
fi
case $units in
  bpe) run_stage 4 "$bpe_size word pieces of the $train_name transcripts" "$DATA/.done/units-$train_name-bpe$bpe_size" \
         "$(options "units=bpe" "bpe_size=$bpe_size" "manifest=$train_name.jsonl")" make_units ;;
  phones) run_stage 4 "the ARPAbet lexicon of the $train_name transcripts and the LMs" "$DATA/.done/units-$train_name-phones" \
            "$(options "units=phones" "lexicon=cmudict" "words=$train_name.jsonl ${lm_names[*]}")" make_units ;;
esac

# The experiment, under $EXP.
run_stage_once 5 "train ($config, $([ "$ngpu" -gt 1 ] && echo "$ngpu processes" || echo "one process"))" \
  "$EXP/.done/train" "$train_opts" train_model
if [ "$avg" -gt 0 ]; then
  run_stage 6 "average the last $avg epochs" "$EXP/.done/avg-$avg" "$train_opts" \
    asr average --exp-dir "$EXP" --last "$avg" --out "$model"
elif in_stages 6; then
  echo "stage 6: --avg 0, nothing to average: stages 7-9 decode $model"
fi
# Greedy output of a phone model is phones: its words come from a lexicon search without an LM.
plain=greedy
[ "$units" = phones ] && plain=lexicon
for subset in "${eval_sets[@]}"; do
  run_stage 7 "$plain decoding of $subset" "$EXP/decode/$plain/$subset/.done" "$model_opts" decode "$plain" "$subset"
done
for lm in $lms; do
  run_stage 8 "tune the $lm LM's weight and word bonus on dev-clean + dev-other" "$EXP/tune/$lm/.done" \
    "$(tune_opts "$lm")" tune_lm "$lm"
done
for lm in $lms; do
  for subset in "${eval_sets[@]}"; do
    run_stage 9 "beam search with $lm on $subset" "$EXP/decode/beam-$lm/$subset/.done" \
      "$(options "$(tune_opts "$lm")" "beam=$beam")" \
      decode "beam-$lm" "$subset" --decoder beam --lm "$(lm_file "$lm")" --beam-width "$beam"
  done
done
# RESULTS.md is made from the decodings of the model with the LMs of --lms: it changes with them.
lm_files=()
for lm in $lms; do lm_files+=("$(basename "$(lm_file "$lm")")"); done
run_stage 10 "results" "$EXP/.done/results" \
  "$(options "$model_opts" "lms=${lm_files[*]}" "tune_beam=$tune_beam" "tune_args=$tune_args" "beam=$beam")" \
  write_results
