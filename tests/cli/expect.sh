#!/usr/bin/env bash
# expect.sh EXIT_CODE REGEX -- COMMAND [ARGS...]
# Runs COMMAND; passes when it exits with EXIT_CODE and its combined output matches REGEX
# (extended regex, matched against the output with newlines folded to spaces, so a pattern may
# span lines). A non-zero EXIT_CODE also requires exactly one line on stderr that mentions an
# error: errors are one line (progress lines of a run that failed midway may precede it).
set -u
want=$1 pattern=$2
shift 2
[ "$1" = "--" ] && shift
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
"$@" >"$out" 2>"$err"
got=$?
echo "--- command: $*"; echo "--- exit: $got (want $want)"
echo "--- stdout:"; cat "$out"; echo "--- stderr:"; cat "$err"
fail=0
[ "$got" -eq "$want" ] || { echo "FAIL: exit code $got, expected $want"; fail=1; }
if ! cat "$out" "$err" | tr '\n' ' ' | grep -Eq -- "$pattern"; then
  echo "FAIL: output does not match: $pattern"; fail=1
fi
if [ "$want" -ne 0 ] && ! grep -q "Usage:" "$err"; then
  lines=$(grep -ci 'error' "$err")
  [ "$lines" -eq 1 ] || { echo "FAIL: expected one line mentioning an error on stderr, got $lines"; fail=1; }
fi
exit $fail
