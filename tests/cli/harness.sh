# The shared start of the command-line test scripts (sourced, after `set -u`): checks the one
# argument (the tinygrok binary) into BIN, makes a scratch directory TMP removed at exit, and
# defines the counting helpers. A script ends with `finish NAME`.
#   source "$(dirname "$0")/harness.sh" NAME "$@"
name=$1; shift
[ $# -eq 1 ] && [ -x "$1" ] || { echo "usage: $0 path/to/tinygrok" >&2; exit 2; }
BIN=$(realpath "$1")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tinygrok_test_$name.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

failures=0
checks=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
expect() {  # expect DESCRIPTION COMMAND...: the command must succeed
  local what=$1; shift
  if "$@"; then ok; else fail "$what"; fi
}
py() { python3 -c "$@"; }
finish() {  # the summary line, and the exit status: 0 when nothing failed
  echo "$1: $checks checks passed, $failures failed"
  [ $failures -eq 0 ]
}
