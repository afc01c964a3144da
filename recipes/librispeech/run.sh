#!/usr/bin/env bash
# LibriSpeech recipe: download, prepare, validate, train, average, decode, results.
#
#   bash recipes/librispeech/run.sh [--config FILE] [--stage N] [--stop-stage M] [options]
#
# Stages (each marked done in $EXP/.done/N, so a rerun skips finished work; every stage is
# also safe to run again by itself):
#   1  download LibriSpeech: the training set and dev-clean dev-other test-clean test-other
#   2  prepare manifests in $DATA/manifests/ (the training set speed-perturbed, nothing copied)
#   3  validate the manifests; any problem stops the recipe before training
#   4  download the LibriSpeech n-gram LMs (3-gram.pruned.1e-7, 3-gram, 4-gram; gzipped ARPA),
#      and convert those in --lms to KenLM binaries, $DATA/lm/NAME.bin, when KenLM's build_binary
#      is installed (bash scripts/build_kenlm.sh): stages 8-9 then load each LM in seconds
#      instead of minutes per process; without it they read the ARPA files
#   5  train: one process, or torchrun data-parallel with --ngpu N > 1 (multi-node: NNODES,
#      NODE_RANK, MASTER_ADDR, MASTER_PORT in the environment, run on every node). On N GPUs
#      the config's effective batch, lr and warm-up are kept (train.multi_gpu = keep-batch:
#      each GPU gets max_batch_seconds x grad_accum / N) or scaled (scale-lr: each GPU keeps
#      its budget, lr x sqrt(ratio)); training prints what the rule gave (asr/distributed.py)
#   6  average the last --avg epoch checkpoints into $EXP/avg-N.pt (default: train.keep_epochs)
#   7  greedy decoding of dev-clean dev-other test-clean test-other
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
#   --set SECTION.KEY=V    override a config value for training (repeatable)
# Outputs: downloads and manifests under $DATA (default data/librispeech, shared by all configs),
# the model and results under $EXP (default exp/librispeech/<config name>); both can be deleted
# and rebuilt. Relative paths (options, DATA, EXP) are taken from the repository root.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=1
stop_stage=100
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
sets=()
usage="usage: $0 [--config FILE] [--train-set NAME] [--stage N] [--stop-stage M] [--speed-perturb F,F,...]
  [--mirror M] [--lm-mirror M] [--checksums FILE] [--ngpu N] [--avg N] [--lms \"A B\"] [--tune-args \"...\"]
  [--tune-beam N] [--beam N] [--set SECTION.KEY=VALUE]... (see the top of this file)"
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
  case "$1" in
    --stage) stage=$2 ;;
    --stop-stage) stop_stage=$2 ;;
    --config) config=$2 ;;
    --train-set) train_set=$2 ;;
    --speed-perturb) speed_perturb=$2 ;;
    --mirror) mirror=$2 ;;
    --lm-mirror) lm_mirror=$2 ;;
    --checksums) checksums=$2 ;;
    --ngpu) ngpu=$2 ;;
    --avg) avg=$2 ;;
    --lms) lms=$2 ;;
    --tune-args) tune_args=$2 ;;
    --tune-beam) tune_beam=$2 ;;
    --beam) beam=$2 ;;
    --set) sets+=(--set "$2") ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift 2
done
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
train_manifest=$DATA/manifests/$train_set.jsonl
[ -n "$speed_perturb" ] && train_manifest=$DATA/manifests/$train_set-sp${speed_perturb//,/_}.jsonl
mirror_args=()
[ -n "$mirror" ] && mirror_args+=(--mirror "$mirror")
[ -n "$checksums" ] && mirror_args+=(--checksums "$checksums")
lm_mirror_args=()
[ -n "${lm_mirror:-$mirror}" ] && lm_mirror_args+=(--mirror "${lm_mirror:-$mirror}")
[ -n "$checksums" ] && lm_mirror_args+=(--checksums "$checksums")
if [ -z "$avg" ]; then  # as many epochs as training keeps
  avg=$("$PYTHON" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb")).get("train", {}).get("keep_epochs", 0))' "$config")
fi
model=$EXP/best.pt
[ "$avg" -gt 0 ] && model=$EXP/avg-$avg.pt

asr() { "$PYTHON" -m asr "$@"; }
lm_file() {  # the LM called $1: a KenLM binary beside the ARPA file loads in seconds, so it wins
  if [ -f "$DATA/lm/$1.bin" ]; then echo "$DATA/lm/$1.bin"; else echo "$DATA/lm/$1.arpa.gz"; fi
}
quoted() {  # the arguments as one shell command line, quoted only where needed
  local arg out=()
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then out+=("$arg"); else out+=("$(printf '%q' "$arg")"); fi
  done
  echo "${out[*]}"
}
source recipes/stages.sh

download_corpus() {
  asr download librispeech --subsets "$train_set" "${eval_sets[@]}" --dest "$DATA" "${mirror_args[@]}"
}
prepare_manifests() {
  local subset subsets perturb=()
  for subset in "${eval_sets[@]}"; do
    [ -f "$DATA/manifests/$subset.jsonl" ] || \
      asr prepare "$DATA/LibriSpeech/$subset" --out "$DATA/manifests/$subset.jsonl"
  done
  # Tuning sees both dev conditions, so one alpha/beta serves clean and other speech.
  cat "$DATA/manifests/dev-clean.jsonl" "$DATA/manifests/dev-other.jsonl" > "$DATA/manifests/dev.jsonl"
  if [ ! -f "$train_manifest" ]; then
    subsets=$("$PYTHON" -c 'import sys; from asr.download import expand_subsets; print(*expand_subsets(sys.argv[1:]))' "$train_set")
    [ -n "$speed_perturb" ] && perturb=(--speed-perturb "$speed_perturb")
    # shellcheck disable=SC2086  # subset names hold no spaces
    asr prepare $(printf "$DATA/LibriSpeech/%s " $subsets) --out "$train_manifest" "${perturb[@]}"
  fi
}
validate_manifests() {
  local set manifests=("$train_manifest")
  for set in "${eval_sets[@]}"; do manifests+=("$DATA/manifests/$set.jsonl"); done
  asr validate "${manifests[@]}"
}
download_lms() {
  local lm
  asr download librispeech-lm --names "${lm_names[@]/%/.arpa.gz}" --dest "$DATA/lm" "${lm_mirror_args[@]}"
  if ! "$PYTHON" -c 'from asr.lm import find_build_binary; find_build_binary()' 2>/dev/null; then
    echo "KenLM's build_binary is not installed (bash scripts/build_kenlm.sh makes it): stages 8-9 read" \
      "the ARPA files of $lms, which takes minutes and GBs of memory in every decoding process"
    return 0
  fi
  for lm in $lms; do
    [ -f "$DATA/lm/$lm.bin" ] || asr lm binary --arpa "$DATA/lm/$lm.arpa.gz" --out "$DATA/lm/$lm.bin"
  done
}
train_model() {
  local resume=() args
  # A run cut short left last.pt behind: continue it rather than start over.
  [ -f "$EXP/last.pt" ] && resume=(--resume)
  args=(train --config "$config" --exp-dir "$EXP" "${resume[@]}"
        --set "data.train_manifests=[\"$train_manifest\"]" --set "data.dev_manifest=\"$DATA/manifests/dev-clean.jsonl\""
        "${sets[@]}")
  if [ "$ngpu" -gt 1 ] || [ "${NNODES:-1}" -gt 1 ]; then
    "$PYTHON" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
      --nproc_per_node="$((ngpu > 0 ? ngpu : 1))" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
      --master_port="${MASTER_PORT:-29500}" -m asr "${args[@]}"
  else
    asr "${args[@]}"
  fi
}
average_model() {
  if [ "$avg" -gt 0 ]; then
    asr average --exp-dir "$EXP" --last "$avg" --out "$model"
  else
    echo "--avg 0: decoding $model"
  fi
}
decode() {  # decode METHOD SET [asr evaluate options...]: scores into $EXP/decode/METHOD/SET/
  local method=$1 set=$2; shift 2
  local dir=$EXP/decode/$method/$set
  local cmd=(asr evaluate --model "$model" --manifest "$DATA/manifests/$set.jsonl" --out-dir "$dir" "$@" --json)
  mkdir -p "$dir"
  quoted "${cmd[@]}" > "$dir/command.txt"
  # stderr holds the note saying which alpha and beta were used; RESULTS.md quotes it.
  "${cmd[@]}" 2> "$dir/decode.log" > "$dir/result.json" || { cat "$dir/decode.log" >&2; return 1; }
  "$PYTHON" -c 'import json, sys; r = json.load(open(sys.argv[1])); print("%s: WER %.2f%%, CER %.2f%%" % (sys.argv[2], 100 * r["wer"], 100 * r["cer"]))' \
    "$dir/result.json" "$set $method"
}
decode_greedy() {
  local set
  for set in "${eval_sets[@]}"; do decode greedy "$set"; done
}
tune_lms() {
  local lm dir cmd
  for lm in $lms; do
    dir=$EXP/tune/$lm
    mkdir -p "$dir"
    # shellcheck disable=SC2206  # --tune-args is a list of options
    cmd=(asr tune-lm --model "$model" --manifest "$DATA/manifests/dev.jsonl" --lm "$(lm_file "$lm")" --beam-width "$tune_beam" --quiet $tune_args)
    quoted "${cmd[@]}" > "$dir/command.txt"
    "${cmd[@]}" | tee "$dir/tune.log"
  done
}
decode_lms() {
  local lm set
  for lm in $lms; do
    for set in "${eval_sets[@]}"; do decode "beam-$lm" "$set" --decoder beam --lm "$(lm_file "$lm")" --beam-width "$beam"; done
  done
}
write_results() {
  "$PYTHON" recipes/librispeech/local/results.py --exp "$EXP" --config "$config" --train-set "$train_set" \
    --speed-perturb "$speed_perturb" --model "$model" --avg "$avg" --sets "${eval_sets[@]}" > "$EXP/RESULTS.md.tmp"
  mv "$EXP/RESULTS.md.tmp" "$EXP/RESULTS.md"
  echo "wrote $EXP/RESULTS.md"
}

run_stage 1 "download LibriSpeech ($train_set, ${eval_sets[*]})" download_corpus
run_stage 2 "prepare manifests" prepare_manifests
run_stage 3 "validate manifests" validate_manifests
run_stage 4 "download LMs (${lm_names[*]}); KenLM binaries of $lms" download_lms
run_stage 5 "train ($config, $([ "$ngpu" -gt 1 ] && echo "$ngpu processes" || echo "one process"))" train_model
run_stage 6 "average the last $avg epochs" average_model
run_stage 7 "greedy decoding" decode_greedy
run_stage 8 "tune LM weights on dev-clean + dev-other ($lms)" tune_lms
run_stage 9 "beam search with $lms" decode_lms
run_stage 10 "results" write_results
