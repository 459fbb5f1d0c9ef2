#!/bin/bash
#   fuzz.test.sh: each libFuzzer target in build/fuzz (tests/fuzz/fuzz_*.c)
#   for a few seconds, as part of `make check`: the committed corpus first,
#   with every crash ever saved in it (tests/fuzz/TARGET/crash-*,
#   regressions/), then a short search. One test per target.
#
#   Env: FUZZ_BUILD (default build/fuzz; `make check` builds it),
#   FUZZ_BRIEF_SECONDS (3). New inputs go to a temporary directory; what a
#   run finds is saved in tests/fuzz/TARGET/ (tests/fuzz/run.sh) and the
#   log's end is shown. Ends with "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_EACH=${FUZZ_BRIEF_SECONDS:-3}
export FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}

. "$ROOT/tests/lib.sh"
cd "$ROOT" || exit 2

test_dir fuzz

for src in tests/fuzz/fuzz_*.c; do
    target=$(basename "$src" .c)
    target=${target#fuzz_}
    name="fuzz $target"
    bin=$FUZZ_BUILD/fuzz/fuzz_$target
    if [ ! -x "$bin" ]; then
        fail "$name" "$bin is missing: make check builds it (or make fuzz-build)"
        continue
    fi
    log=$DIR/$target.log
    FUZZ_WORK=$DIR/$target timeout --kill-after=5 $((SECONDS_EACH + 60)) \
        tests/fuzz/run.sh "$target" "$SECONDS_EACH" -runs=500000 >"$log" 2>&1
    rc=$?
    runs=$(grep -aoE '^stat::number_of_executed_units: +[0-9]+' "$log" | grep -oE '[0-9]+$')
    speed=$(grep -aoE '^stat::average_exec_per_sec: +[0-9]+' "$log" | grep -oE '[0-9]+$')
    if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
        pass "$name: ${runs} runs, ${speed:-?}/s"
    else
        fail "$name (exit $rc)" "$(tail -40 "$log")"
    fi
done

finish
