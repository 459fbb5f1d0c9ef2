#!/usr/bin/env python3
"""bench/report.py: turns the runs of one `make bench` into the table.

Reads PREFIX.jsonl (one JSON line per run, from bench/load.c,
bench/nats_load.c and bench/redis_load.c), and with --fleet the lines of
bench/fleet.sh, and writes PREFIX.json (every run and every aggregate),
PREFIX.md (the table, as it goes in the README), PREFIX-tput.dat and
PREFIX-lat.dat (for bench/plot.gp), and prints the table.

Every figure quoted is a ratio of two runs of the same round (the systems of
a round run back to back), then the median over rounds with min and max:
the machine is shared and noisy, an absolute time alone means little.
"""
import argparse
import json
import statistics
import sys

SYSTEMS = ["baseline", "bulkhead", "nats", "redis"]
#   The systems bulkhead is compared with, each a ratio column.
PEERS = ["baseline", "nats", "redis"]


def med(values):
    return statistics.median(values) if values else None


def span(values, fmt):
    """median [min-max] of values, formatted; '-' when there are none."""
    if not values:
        return "-"
    m = fmt(med(values))
    if len(values) == 1:
        return m
    return "%s [%s-%s]" % (m, fmt(min(values)), fmt(max(values)))


def kmsgs(v):
    return "%.0fk" % (v / 1000.0) if v >= 10000 else "%.1fk" % (v / 1000.0)


def ratio(v):
    return "%.2f" % v


def ms(v):
    return "%.2f" % (v / 1000.0)


def size_name(size):
    return "4 KiB" if size == 4096 else "%d B" % size


def paired(runs, a, b, field):
    """Per-round ratios a/b of `field` for the rounds that have both."""
    by_round = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["system"]] = r
    out = []
    for rnd in sorted(by_round):
        pair = by_round[rnd]
        if a in pair and b in pair and pair[b][field] > 0 and pair[a]["errors"] == 0 \
                and pair[b]["errors"] == 0:
            out.append(pair[a][field] / pair[b][field])
    return out


def fleet_table(fleet, out, targets):
    """The fleet runs (bench/fleet.sh): one row each, then the targets."""
    out("")
    out("**Fleet**: N idle agents, each its own key, from %d processes on one bus (TCP "
        "loopback); a live pair (256 B, 100 msgs/s, send to delivery, one synced LMDB "
        "commit each) alone on the bus first, then with the fleet connected. Bus CPU is "
        "utime + stime of every bus thread over a %.0f s window while the fleet is idle; "
        "\"machine\" is how many of the %d cores everything on the machine kept busy "
        "meanwhile (the bus included):" % (
            fleet[0]["procs"], fleet[0]["cpu_window_s"], fleet[0].get("cpus", 0)))
    out("")
    out("| agents | welcomed | all welcomed in | bus CPU idle | bus RSS | machine busy "
        "| pair alone p50 / p99 | pair with fleet p50 / p99 |")
    out("|---|---|---|---|---|---|---|---|")
    for r in fleet:
        out("| {:,} | {:,} | {:.1f} s | {:.1f}% of a core | {:.0f} MB | {:.2f} cores "
            "| {} / {} ms | {} / {} ms |".format(
                r["agents"], r["welcomed"], r["welcome_s"], r["idle_cpu_pct"],
                r["bus_rss_kb"] / 1024.0, r.get("idle_machine_cores") or 0,
                ms(r["quiet_p50_us"] or 0), ms(r["quiet_p99_us"] or 0),
                ms(r["busy_p50_us"] or 0), ms(r["busy_p99_us"] or 0)))
    out("")
    out("**Fleet targets** (set for 10,000 agents; a smaller fleet is only an indication):")
    out("")
    out("| target | measured | |")
    out("|---|---|---|")
    big = max(fleet, key=lambda r: r["agents"])
    n = "{:,} agents".format(big["agents"])

    def row(name, value, good, shown):
        if value is None:
            verdict = "-"
        elif big["agents"] < 10000:
            verdict = "(%s only)" % n
        else:
            verdict = "met" if good(value) else "MISSED"
        targets.append({"target": name, "agents": big["agents"], "value": value,
                        "verdict": verdict})
        out("| %s | %s | %s |" % (name, shown(value) if value is not None else "-", verdict))

    row("bus idle under 5%% of a core, %s" % n, big["idle_cpu_pct"],
        lambda v: v < 5, lambda v: "%.1f%%" % v)
    row("all welcomed within 30 s, %s" % n,
        big["welcome_s"] if big["missing"] == 0 else None,
        lambda v: v <= 30, lambda v: "%.1f s" % v)
    row("live pair p99 within 2 ms while connected, %s (alone: %s ms)" % (
            n, ms(big["quiet_p99_us"] or 0)),
        big["busy_p99_us"] if big["pair_errors"] == 0 else None,
        lambda v: v <= 2000, lambda v: "%s ms" % ms(v))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("raw")
    parser.add_argument("prefix")
    parser.add_argument("--command", default="make bench")
    parser.add_argument("--note", default="")
    parser.add_argument("--nats-version", default="nats-server")
    parser.add_argument("--redis-version", default="redis-server")
    parser.add_argument("--fleet", help="bench/fleet.sh lines (JSON), one per fleet run")
    args = parser.parse_args()

    runs = [json.loads(line) for line in open(args.raw) if line.strip()]
    fleet = [json.loads(line) for line in open(args.fleet) if line.strip()] if args.fleet else []
    if not runs and fleet:
        lines = ["Measured with `%s` (%s)." % (args.command, args.note)]
        fleet_table(fleet, lines.append, [])
        text = "\n".join(lines) + "\n"
        print(text)
        with open(args.prefix + ".md", "w") as f:
            f.write(text)
        return 0
    if not runs:
        print("bench: no runs to report", file=sys.stderr)
        return 1
    rounds = max(r["round"] for r in runs)
    failed = [r for r in runs if r["errors"]]

    groups = {}
    for r in runs:
        key = (r["mode"], r["size"], r["pairs"], int(r["rate"]))
        groups.setdefault(key, []).append(r)

    def ok(rs, system):
        return [r for r in rs if r["system"] == system and r["errors"] == 0]

    lines = []
    out = lines.append
    out("Measured with `%s` (%s; %d rounds, systems interleaved; median [min-max] over rounds)."
        % (args.command, args.note, rounds))
    out("")
    out("**Throughput**, closed loop (at most 1,000 unacknowledged sends per sender), "
        "messages/s delivered:")
    out("")
    #   Only the systems this run measured get columns (BENCH_SYSTEMS).
    present = [sy for sy in SYSTEMS if any(r["system"] == sy for r in runs)]
    peers = [sy for sy in PEERS if sy in present] if "bulkhead" in present else []
    out("| payload | pairs | %s | %s |" % (" | ".join(present),
                                         " | ".join("bulkhead / %s" % p for p in peers)))
    out("|---|---|%s" % ("---|" * (len(present) + len(peers))))
    aggregates = {"throughput": [], "latency": [], "resources": [], "targets": []}
    tput_dat = []
    for key in sorted(k for k in groups if k[0] == "tput"):
        rs = groups[key]
        _, size, pairs, _ = key
        cell = {s: [r["tput"] for r in ok(rs, s)] for s in SYSTEMS}
        ratios = {p: paired(rs, "bulkhead", p, "tput") for p in peers}
        out("| %s | %d | %s | %s |" % (
            size_name(size), pairs, " | ".join(span(cell[sy], kmsgs) for sy in present),
            " | ".join("**%s**" % span(ratios[p], ratio) for p in peers)))
        aggregates["throughput"].append({
            "size": size, "pairs": pairs,
            **{s: {"median": med(v), "min": min(v) if v else None, "max": max(v) if v else None}
               for s, v in cell.items()},
            **{"bulkhead_over_%s" % p: {"median": med(v), "all": v} for p, v in ratios.items()}})
        tput_dat.append((size, pairs, [cell[s] for s in SYSTEMS]))

    out("")
    out("**Latency**, send to delivery at a fixed offered rate (open loop), ms, "
        "p50 / p99 / p99.9 (median over rounds):")
    out("")
    out("| payload | pairs | rate/s | %s | %s |" % (
        " | ".join(present), " | ".join("bulkhead / %s p99" % p for p in peers)))
    out("|---|---|---|%s" % ("---|" * (len(present) + len(peers))))
    lat_dat = []
    for key in sorted((k for k in groups if k[0] == "lat"), key=lambda k: (k[3], k[1], k[2])):
        rs = groups[key]
        _, size, pairs, rate = key
        cells = []
        entry = {"size": size, "pairs": pairs, "rate": rate}
        pct = {}
        for s in SYSTEMS:
            rr = ok(rs, s)
            if not rr:
                if s in present:
                    cells.append("-")
                pct[s] = None
                continue
            p = [med([r[f] for r in rr]) for f in ("p50_us", "p99_us", "p999_us")]
            pct[s] = p
            cells.append("%s / %s / %s" % tuple(ms(v) for v in p))
            entry[s] = {"p50_us": p[0], "p99_us": p[1], "p999_us": p[2],
                        "p99_us_min": min(r["p99_us"] for r in rr),
                        "p99_us_max": max(r["p99_us"] for r in rr)}
        ratios = {p: paired(rs, "bulkhead", p, "p99_us") for p in peers}
        for p, v in ratios.items():
            entry["p99_bulkhead_over_%s" % p] = {"median": med(v), "all": v}
        aggregates["latency"].append(entry)
        out("| %s | %d | %s | %s | %s |" % (
            size_name(size), pairs, "{:,}".format(rate), " | ".join(cells),
            " | ".join(span(ratios[p], ratio) for p in peers)))
        lat_dat.append((size, pairs, rate, pct))

    out("")
    out("**Server resources** during the throughput runs (the bus's own process; the other "
        "servers for scale): CPU seconds per million messages delivered, peak RSS, and RssAnon "
        "(heap) from the start of the measured phase to its end. VmRSS also counts the pages of "
        "the LMDB log mapped by reads; they are page cache, grow with the log and are dropped "
        "when the map is resized:")
    out("")
    others = [sy for sy in present if sy != "bulkhead"]
    out("| payload | pairs | bulkhead CPU s / M | %s | bulkhead peak RSS "
        "| bulkhead heap start -> end |" % " | ".join("%s CPU s / M" % sy for sy in others))
    out("|---|---|---|%s---|---|" % ("---|" * len(others)))
    heap_growth = []
    for key in sorted(k for k in groups if k[0] == "tput"):
        rs = groups[key]
        _, size, pairs, _ = key
        cpu = {s: [r["cpu_s_per_M"] for r in ok(rs, s) if "cpu_s_per_M" in r] for s in SYSTEMS}
        bus = ok(rs, "bulkhead")
        hwm = [r["hwm_kb"] / 1024.0 for r in bus]
        heap = [(r["anon_kb"][0], r["anon_kb"][-1]) for r in bus if r.get("anon_kb")]
        #   Flat means no growth once warm (issue 17): after the first tenth
        #   of a run (samples are at 0%, 10%, ... 100%), which fills the
        #   in-flight windows, LMDB's dirty pages and malloc's arenas.
        heap_growth += [r["anon_kb"][-1] - r["anon_kb"][min(1, len(r["anon_kb"]) - 1)]
                        for r in bus if r.get("anon_kb")]
        heap_txt = "-"
        if heap:
            a = med([h[0] for h in heap]) / 1024.0
            b = med([h[1] for h in heap]) / 1024.0
            heap_txt = "%.1f -> %.1f MB" % (a, b)
        out("| %s | %d | %s | %s | %s | %s |" % (
            size_name(size), pairs, span(cpu["bulkhead"], lambda v: "%.1f" % v),
            " | ".join(span(cpu[sy], lambda v: "%.1f" % v) for sy in others),
            span(hwm, lambda v: "%.0f MB" % v), heap_txt))
        aggregates["resources"].append({
            "size": size, "pairs": pairs,
            "cpu_s_per_M": {s: med(v) for s, v in cpu.items()},
            "bulkhead_peak_rss_mb": med(hwm), "bulkhead_heap_kb": heap})

    #   Targets from the issue.
    def target(name, value, good, shown):
        verdict = "-" if value is None else ("met" if good(value) else "MISSED")
        aggregates["targets"].append({"target": name, "value": value, "verdict": verdict})
        out("| %s | %s | %s |" % (name, shown(value) if value is not None else "-", verdict))

    tp = {(a["size"], a["pairs"]): a for a in aggregates["throughput"]}
    lt = {(a["size"], a["pairs"], a["rate"]): a for a in aggregates["latency"]}
    out("")
    out("**Targets**:")
    out("")
    out("| target | measured | |")
    out("|---|---|---|")
    t = tp.get((256, 4)) or {}
    target("throughput bulkhead / baseline, 256 B, 4 pairs >= 0.80",
           t.get("bulkhead_over_baseline", {}).get("median"), lambda v: v >= 0.80, ratio)
    target("throughput bulkhead / nats, 256 B, 4 pairs >= 1.5",
           t.get("bulkhead_over_nats", {}).get("median"), lambda v: v >= 1.5, ratio)
    #   CPU per message against the bare hop, worst workload (issue 17).
    cpu_ratio = [a["cpu_s_per_M"]["bulkhead"] / a["cpu_s_per_M"]["baseline"]
                 for a in aggregates["resources"]
                 if a["cpu_s_per_M"].get("bulkhead") and a["cpu_s_per_M"].get("baseline")]
    target("bus CPU per message <= 1.5x the bare hop's, worst workload",
           max(cpu_ratio) if cpu_ratio else None, lambda v: v <= 1.5, lambda v: "%.2fx" % v)
    worst = [lt[k]["bulkhead"]["p99_us"] for k in lt if k[2] == 1000 and "bulkhead" in lt[k]]
    target("bulkhead p99 at 1,000 msgs/s <= 2 ms (synced log), worst workload",
           max(worst) if worst else None, lambda v: v <= 2000, lambda v: "%.2f ms" % (v / 1000))
    #   At 10,000 msgs/s no worse than NATS: the worst bulkhead / nats p99.
    vs_nats = [lt[k]["p99_bulkhead_over_nats"]["median"] for k in lt
               if k[2] == 10000 and lt[k].get("p99_bulkhead_over_nats", {}).get("median")]
    target("p99 at 10,000 msgs/s no worse than NATS (bulkhead / nats p99, worst workload)",
           max(vs_nats) if vs_nats else None, lambda v: v <= 1.0, ratio)
    target("bulkhead heap flat: RssAnon growth after the first 10% of a run < 1 MB (worst run; "
           "issue 17 judges BENCH_FULL=1)",
           max(heap_growth) / 1024.0 if heap_growth else None, lambda v: v < 1,
           lambda v: "%+.1f MB" % v)
    aggregates["fleet"] = fleet
    if fleet:
        fleet_table(fleet, out, aggregates["targets"])
    out("")
    out("NATS is %s with JetStream file storage: it acknowledges a publish once "
        "the message is written to its store file, without an fsync (2.9 syncs every 2 minutes "
        "and cannot be told to sync each write); the bus fsyncs every batch before any ACK or "
        "delivery. The baseline has no policy, no log and no ZAP check." % args.nats_version)
    if "redis" in present:
        out("")
        out("Redis is %s, Redis Streams with `appendonly yes` and `appendfsync always`: "
            "every write (XADD, and the consumer-group state that XREADGROUP and XACK change) "
            "is fsynced to the append-only file before Redis answers, so, like the bus, it "
            "syncs before the ACK and before the delivery (one fsync per event-loop pass: a "
            "group commit too). One stream per recipient, a consumer group, an ACL user per "
            "agent (a sender may only XADD to its recipient's stream, a recipient only read, "
            "acknowledge and trim its own); the driver checks the ACLs before every run. "
            "Unlike the bus it keeps no record of refusals and no log once an entry is "
            "acknowledged and trimmed." % args.redis_version)
    if failed:
        out("")
        out("%d run(s) reported errors and are left out of the figures above: %s" % (
            len(failed), ", ".join("%s/%s/%dB/x%d/r%d" % (r["system"], r["mode"], r["size"],
                                                         r["pairs"], r["round"]) for r in failed)))

    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.prefix + ".md", "w") as f:
        f.write(text)
    with open(args.prefix + ".json", "w") as f:
        json.dump({"command": args.command, "note": args.note, "rounds": rounds,
                   "aggregates": aggregates, "runs": runs}, f, indent=1)
    #   Plot data: throughput by pairs, one block per payload size.
    with open(args.prefix + "-tput.dat", "w") as f:
        for size in sorted({d[0] for d in tput_dat}):
            f.write("# size %d: pairs baseline bulkhead nats redis (median msgs/s)\n" % size)
            for s, pairs, vals in tput_dat:
                if s == size:
                    f.write("%d %s\n" % (pairs, " ".join(
                        "%.0f" % med(v) if v else "NaN" for v in vals)))
            f.write("\n\n")
    with open(args.prefix + "-lat.dat", "w") as f:
        f.write("# label baseline(p50 p99 p999) bulkhead(...) nats(...) redis(...) in ms\n")
        for size, pairs, rate, pct in lat_dat:
            label = "%s x%d, %dk/s" % ("256B" if size == 256 else "4KiB", pairs, rate // 1000)
            vals = []
            for s in SYSTEMS:
                p = pct[s]
                vals += ["%.3f" % (v / 1000.0) for v in p] if p else ["NaN"] * 3
            f.write('"%s" %s\n' % (label, " ".join(vals)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
