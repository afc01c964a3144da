# Shared by the recipes' run.sh: numbered stages, each marked done under $EXP/.done/.
# Source it after setting $stage, $stop_stage and $EXP.

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
