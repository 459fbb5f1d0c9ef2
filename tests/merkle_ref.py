#!/usr/bin/python3
"""merkle_ref.py: an independent reference for `bulkhead prove`.

Usage: merkle_ref.py RECORDS PROOF

RECORDS holds every stored record of a log, hex, one a line (in sequence
order); PROOF is what `bulkhead prove` printed. Recomputes, from RFC 9162's
definitions (section 2.1) and nothing of bulkhead's code, the leaf hashes
(BLAKE2b-256 of 0x00 || the record without fields 19 and 42), the root of
the tree the proof's checkpoint names, and the proof itself, and compares
them with the proof's. Exit 0 if all agree.
"""
import base64
import hashlib
import sys


def h(data):
    return hashlib.blake2b(data, digest_size=32).digest()


def varint(b, i):
    shift = value = 0
    while True:
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        if not c & 0x80:
            return value, i
        shift += 7


def leaf_hash(record):
    kept = bytearray()
    i = 0
    while i < len(record):
        start = i
        tag, i = varint(record, i)
        wire = tag & 7
        if wire == 0:
            _, i = varint(record, i)
        elif wire == 2:
            n, i = varint(record, i)
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError("wire type %d" % wire)
        if tag >> 3 not in (19, 42):
            kept += record[start:i]
    return h(b"\x00" + bytes(kept))


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d):
    if len(d) == 0:
        return h(b"")
    if len(d) == 1:
        return d[0]
    k = split(len(d))
    return h(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m, d):
    if len(d) <= 1:
        return []
    k = split(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, b):
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = split(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def main():
    records = [bytes.fromhex(line.strip()) for line in open(sys.argv[1]) if line.strip()]
    leaves = [leaf_hash(r) for r in records]
    lines = open(sys.argv[2]).read().split("\n")
    fields = {}
    proof = []
    roots = []
    for i, line in enumerate(lines):
        if line == "checkpoint":
            roots.append((int(lines[i + 2]), base64.b64decode(lines[i + 3])))
        key, _, value = line.partition(" ")
        if key == "path":
            proof.append(base64.b64decode(value))
        elif key in ("seq", "leaf", "size", "first", "second", "record") and not roots:
            fields[key] = value
    problems = []
    for size, root in roots:
        if mth(leaves[:size]) != root:
            problems.append("checkpoint root of size %d is not MTH of the log" % size)
    if lines[0] == "bulkhead inclusion proof":
        m, size = int(fields["leaf"]), int(fields["size"])
        if base64.b64decode(fields["record"]) != records[m]:
            problems.append("the record is not record %d of the log" % (m + 1))
        want = path(m, leaves[:size])
    else:
        first, second = int(fields["first"]), int(fields["second"])
        want = subproof(first, leaves[:second], True)
    if want != proof:
        problems.append("proof differs: want %d hashes, got %d" % (len(want), len(proof)))
    for p in problems:
        print("ref: " + p)
    print("ref: %s (%d hashes)" % ("agrees" if not problems else "DISAGREES", len(proof)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
