#!/usr/bin/env bash
# guard_selftest.sh FIXTURE CASE: runs the guard fixture (tests/fixtures/guard) as CTest runs a
# discovered doctest entry and checks the guard's verdict for CASE:
#   split     --test-case=alpha (half of "alpha;beta" split at ';'): exit 3, "no test case ran"
#   zero      a test case with no assertion: exit 4, "made zero assertions"
#   skip      a test case that skips itself: exit 77 (CTest's SKIP_RETURN_CODE), "SKIPPED"
#   whole     the unsplit name: exit 0
#   all       every test case at once: exit 4 (the zero-assertion one), the skip listed
set -u
fixture=$1 case=$2
case $case in
  split) args=(--test-case=alpha) want=3 pattern="no test case ran" ;;
  zero) args=("--test-case=makes no assertion") want=4 pattern="test case 'makes no assertion' made zero assertions" ;;
  skip) args=("--test-case=skips itself") want=77 pattern="SKIPPED skips itself: fixture: an optional asset that is absent" ;;
  whole) args=("--test-case=alpha?beta") want=0 pattern="test cases: +1 \| +1 passed" ;;
  all) args=() want=4 pattern="SKIPPED skips itself.*made zero assertions" ;;
  *) echo "unknown case $case"; exit 2 ;;
esac
out=$("$fixture" "${args[@]}" 2>&1)
got=$?
# Echoed with doctest's summary reworded: the fixture's deliberate "test cases: 0" must not look
# like a real entry that ran nothing to whoever greps the CTest log for it.
echo "$out" | sed "s/test cases:/fixture test-case count:/"
echo "--- exit $got (want $want)"
[ "$got" -eq "$want" ] || { echo "FAIL: exit code"; exit 1; }
echo "$out" | tr '\n' ' ' | grep -Eq -- "$pattern" || { echo "FAIL: output does not match: $pattern"; exit 1; }
exit 0
