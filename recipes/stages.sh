# Shared by the recipes: their options, and numbered stages whose work is marked done.
#
# A marker is a file named for what it marks and kept beside it, icefall's way: data under
# $DATA (e.g. $DATA/.done/manifest-dev-clean), a model under $EXP, a decoding in its own
# folder ($EXP/decode/beam-4-gram/test-clean/.done). It holds the options that produced the
# work, one KEY=VALUE a line, so a rerun with the same options skips it and one with other
# options does it again (run_stage), or stops where redoing would throw away costly work such
# as a trained model (run_stage_once). Two scripts that share an $EXP or a $DATA therefore
# share only the markers of the work they share.
#
# Source it from the repository root (every recipe cds there first), then call
# parse_options "$@" once the recipe's option variables are set.

# A recipe's local/*.py imports the same asr as its `python -m asr` commands: the one here.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

stage=1
stop_stage=100

parse_options() {  # parse_options "$@": --stage N, --stop-stage M and the recipe's own options
  # `--some-name VALUE` sets the variable some_name, which the recipe must have set (to its
  # default) before the call, and before setting any other lowercase variable but $usage:
  # each one is an option. An array variable collects every VALUE of a repeated option.
  # Anything else prints $usage.
  local _usage=${usage:-"usage: $0 [--stage N] [--stop-stage M]"} _name
  while [ $# -gt 0 ]; do
    _name=${1#--}
    _name=${_name//-/_}
    case "$1" in
      -h|--help) echo "$_usage"; exit 0 ;;
    esac
    if [[ $1 != --* || $1 == *_* || ! $_name =~ ^[a-z][a-z0-9_]*$ ]] || [ "$_name" = usage ] \
        || ! declare -p "$_name" >/dev/null 2>&1; then
      printf '%s: unknown option %s\n%s\n' "$0" "$1" "$_usage" >&2; exit 2
    fi
    [ $# -ge 2 ] || { printf '%s: %s needs a value\n%s\n' "$0" "$1" "$_usage" >&2; exit 2; }
    if [[ $(declare -p "$_name") == "declare -a"* ]]; then
      local -n _values=$_name
      _values+=("$2")
      unset -n _values
    else
      printf -v "$_name" '%s' "$2"
    fi
    shift 2
  done
  local _n
  for _n in stage stop_stage; do
    [[ ${!_n} =~ ^[0-9]+$ ]] || { echo "$0: --${_n//_/-} takes a stage number, got '${!_n}'" >&2; exit 2; }
  done
}

in_stages() {  # in_stages N: whether stage N is within --stage and --stop-stage
  [ "$1" -ge "$stage" ] && [ "$1" -le "$stop_stage" ]
}

options() {  # options KEY=VALUE...: the text a marker holds, one option a line
  printf '%s\n' "$@"
}

run_stage() {  # run_stage N "what" MARKER OPTIONS command...: runs the command unless MARKER says done
  _stage rerun "$@"
}

run_stage_once() {  # as run_stage, but other options than MARKER's stop the recipe instead of redoing
  # the work: for work too costly to throw away on a changed option, such as a trained model.
  _stage refuse "$@"
}

_stage() {
  # Its locals start with _: the command it runs sees them (bash scopes dynamically).
  local _on_change=$1 _n=$2 _what=$3 _marker=$4 _opts=$5
  shift 5
  in_stages "$_n" || return 0
  if [ -f "$_marker" ]; then
    local _before _was _now
    _before=$(cat "$_marker")
    if [ "$_before" = "$_opts" ]; then
      echo "stage $_n ($_what): done before, skipped"
      return 0
    fi
    _was=$(_only_in "$_before" "$_opts")
    _now=$(_only_in "$_opts" "$_before")
    if [ "$_on_change" = refuse ]; then
      echo "$0: stage $_n ($_what) was done with ${_was:-other options}, now ${_now:-without them}: give the" \
        "options it was done with, or another EXP; to do it again, delete $_marker and what it marks" >&2
      exit 2
    fi
    echo "stage $_n ($_what): done before with ${_was:-other options}, now ${_now:-without them}: running again"
    rm "$_marker"
  fi
  echo "=== stage $_n: $_what"
  local _start=$SECONDS
  "$@"
  echo "=== stage $_n finished in $((SECONDS - _start)) s"
  mkdir -p "$(dirname "$_marker")"
  printf '%s\n' "$_opts" > "$_marker.tmp"
  mv "$_marker.tmp" "$_marker"
}

_only_in() {  # _only_in A B: the lines of A that B lacks, joined by "; "
  local _line _joined=
  while IFS= read -r _line; do
    grep -Fxq -- "$_line" <<< "$2" || _joined+="${_joined:+; }$_line"
  done <<< "$1"
  echo "$_joined"
}
