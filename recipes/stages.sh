# Shared by the recipes' run.sh: numbered stages, each marked done under $EXP/.done/.
# Source it after setting $EXP; set $stage and $stop_stage before running stages (a script
# without options of its own calls parse_stage_range "$@").

mkdir -p "$EXP/.done"

run_stage() {  # run_stage N "description" command...: runs unless marked done or out of range
  local n=$1 what=$2; shift 2
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return 0; fi
  if [ -f "$EXP/.done/$n" ]; then echo "stage $n ($what): done before, skipped"; return 0; fi
  echo "=== stage $n: $what"
  local start=$SECONDS
  "$@"
  echo "=== stage $n finished in $((SECONDS - start)) s"
  touch "$EXP/.done/$n"
}

parse_stage_range() {  # parse_stage_range "$@": --stage N and --stop-stage M into $stage and $stop_stage
  stage=1
  stop_stage=100
  while [ $# -gt 0 ]; do
    case "$1" in
      --stage) stage=$2; shift 2 ;;
      --stop-stage) stop_stage=$2; shift 2 ;;
      *) echo "usage: $0 [--stage N] [--stop-stage M]" >&2; exit 2 ;;
    esac
  done
}
