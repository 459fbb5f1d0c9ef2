#!/bin/bash
#   blast.sh: `bulkhead blast` and `check` at scale (issue 13).
#
#   Generates a layered fleet with bench/blast_gen (AGENTS, EDGES; default
#   100,000 and 1,000,000), then times: check (load + warnings), blast of
#   one ingester (text and --json, and with --cuts 0), blast --all. Prints
#   one line per run with wall and CPU seconds and the peak RSS, and the
#   analysis's own figures (--stats: CPU ms per phase, graph bytes).
#
#   Env: BUILD (default build/release), BLAST_AGENTS, BLAST_EDGES, OUT
#   (a directory for the policy; default a temporary one, removed after).
set -u
BUILD=${BUILD:-build/release}
AGENTS=${BLAST_AGENTS:-100000}
EDGES=${BLAST_EDGES:-1000000}
BIN=$BUILD/bulkhead
GEN=$BUILD/bench/blast_gen
for f in "$BIN" "$GEN"; do
    [ -x "$f" ] || { echo "blast.sh: $f is missing (make BUILD=$BUILD all $GEN)" >&2; exit 2; }
done
DIR=${OUT:-$(mktemp -d /tmp/bulkhead-blast-bench-XXXXXX)}
[ -n "${OUT:-}" ] || trap 'rm -rf "$DIR"' EXIT
P=$DIR/fleet.cfg

"$GEN" "$AGENTS" "$EDGES" 1 >"$P" 2>"$DIR/gen.err" || { cat "$DIR/gen.err"; exit 1; }
echo "policy: $(cat "$DIR/gen.err" | sed 's/^blast_gen: //'), $(stat -c %s "$P") bytes"

measure () {    # name, command...
    local name=$1; shift
    /usr/bin/time -f "%e %U %M" -o "$DIR/time" "$@" >"$DIR/out" 2>"$DIR/err"
    local rc=$?
    read -r wall cpu rss <"$DIR/time"
    printf '%-28s exit %d  wall %6.2f s  cpu %6.2f s  rss %7d KB  %s\n' "$name" "$rc" "$wall" "$cpu" \
        "$rss" "$(grep -o 'blast-stats: .*' "$DIR/err" | sed 's/blast-stats: //')"
}

measure "check" "$BIN" check "$P"
echo "check warnings: $(grep -c ': warning: ' "$DIR/err")"
measure "blast ing-5 (text)" "$BIN" blast --policy "$P" ing-5 --stats
measure "blast ing-5 --json" "$BIN" blast --policy "$P" ing-5 --json --stats
measure "blast ing-5 --json --cuts 0" "$BIN" blast --policy "$P" ing-5 --json --cuts 0 --stats
measure "blast wrk-7 --json" "$BIN" blast --policy "$P" wrk-7 --json --stats
measure "blast --all" "$BIN" blast --policy "$P" --all
head -4 "$DIR/out"
