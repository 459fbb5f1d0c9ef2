#!/bin/bash
#   run.sh TARGET SECONDS [LIBFUZZER-OPTION...]: runs one fuzz target
#   ($FUZZ_BUILD/fuzz/fuzz_TARGET, default build/fuzz) for SECONDS over its
#   seed corpus tests/fuzz/TARGET/ (all of it, subdirectories included, so
#   regressions/ and every crash-* saved there are replayed first).
#
#   New inputs go to $FUZZ_WORK (default $FUZZ_BUILD/corpus/TARGET), never
#   into the tree. A crash, leak, timeout or OOM is written into the seed
#   directory itself (tests/fuzz/TARGET/crash-<sha1>, leak-..., ...): from
#   then on every run, `make check`'s included, replays it and fails until
#   it is fixed. Commit it (or move it to regressions/ once fixed).
#   Exits as libFuzzer does: 0 when nothing was found.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
target=$1
seconds=$2
shift 2
build=${FUZZ_BUILD:-build/fuzz}
bin=$build/fuzz/fuzz_$target
seeds=tests/fuzz/$target
work=${FUZZ_WORK:-$build/corpus/$target}
if [ ! -x "$bin" ]; then
    echo "run.sh: $bin is missing; make fuzz-build builds it" >&2
    exit 2
fi
mkdir -p "$work" "$seeds"

#   Frames and records: a few KiB is every field with room; a policy is
#   text of a few KiB too. Longer inputs only slow the search.
case $target in
    policy) max_len=16384 ;;
    *)      max_len=8192 ;;
esac
opts=(-max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048
      -print_final_stats=1 -artifact_prefix="$seeds/")
if [ -f "tests/fuzz/$target.dict" ]; then
    opts+=(-dict="tests/fuzz/$target.dict")
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$bin" "${opts[@]}" "$@" "$work" "$seeds"
