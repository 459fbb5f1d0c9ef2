#!/bin/bash
#   codes.test.sh: README's table of code words and record kinds names
#   every code of bus/bus_error.h and every kind of schemas/record.proto,
#   and nothing that is not one: the one place users look stays true.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib.sh"
test_dir codes

codes=$(sed -n 's/^ *X (\([A-Z]*\), .*/\1/p' "$ROOT/bus/bus_error.h" | sed 's/^E//')
kinds=$(sed -n 's/^ *RECORD_\([A-Z_]*\) = [1-9][0-9]*;.*/\1/p' "$ROOT/schemas/record.proto" \
        | tr 'A-Z_' 'a-z-')
table=$(sed -n '/^## Code words, record kinds and exit codes/,/^## /p' "$ROOT/README.md")
words=$(printf '%s\n' "$table" | sed -n 's/^| `\([A-Z]*\)` |.*/\1/p')
listed=$(printf '%s\n' "$table" | sed -n 's/^| `\([a-z-]*\)` |.*/\1/p')

missing=""
for c in $codes; do
    printf '%s\n' "$words" | grep -qx "$c" || missing="$missing $c"
done
if [ -n "$codes" ] && [ -z "$missing" ]; then
    pass "README names every code word of bus_error.h ($(echo $codes | wc -w))"
else
    fail "README names every code word of bus_error.h" "missing:$missing"
fi
extra=""
for w in $words; do
    printf '%s\n' "$codes" | grep -qx "$w" || extra="$extra $w"
done
if [ -z "$extra" ]; then
    pass "README's code words are all real codes"
else
    fail "README's code words are all real codes" "not in bus_error.h:$extra"
fi
missing=""
for k in $kinds; do
    printf '%s\n' "$listed" | grep -qx "$k" || missing="$missing $k"
done
if [ -n "$kinds" ] && [ -z "$missing" ]; then
    pass "README names every record kind of record.proto ($(echo $kinds | wc -w))"
else
    fail "README names every record kind of record.proto" "missing:$missing"
fi
finish
