/*  cmd_log.c: `bulkhead log`: filters answered from the indexes, threads,
    JSON on jansson, OCSF, and --follow for shippers. */
#include "cmd.h"
#include "bus_export.h"
#include "bus_query.h"

#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int
s_help (const char *text, bool ok)
{
    fputs (text, ok? stdout: stderr);
    return ok? 0: 2;
}

static const char *s_verdict_names [] = { "-", "delivered", "queued", "held", "denied" };

static uint64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

bool
cmd_time (const char *text, uint64_t now_us, uint64_t *out)
{
    //  A duration back from now: 90s, 30m, 1h, 7d, 2w; a number alone is seconds.
    size_t digits = strspn (text, "0123456789");
    if (digits > 0 && digits <= 9 && strlen (text) <= digits + 1) {
        static const char units [] = "smhdw";
        static const uint64_t scale [] = { 1, 60, 3600, 86400, 604800 };
        const char *unit = text [digits]? strchr (units, text [digits]): units;
        char number [16];
        memcpy (number, text, digits);
        number [digits] = 0;
        unsigned long long n;
        if (!unit || !*unit || !cmd_number (number, 0, 999999999, &n)) {
            return false;
        }
        uint64_t back = (uint64_t) n * scale [unit - units] * 1000000u;
        *out = back > now_us? 0: now_us - back;
        return true;
    }
    //  ISO 8601: a date, or a date and time with a fraction and Z or an offset.
    struct tm tm = { 0 };
    int used = 0;
    const char *rest;
    if (sscanf (text, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &used) != 3
    ||  used != 10) {
        return false;
    }
    rest = text + used;
    uint64_t micros = 0;
    long offset = 0;
    if (*rest == 'T' || *rest == ' ') {
        used = 0;
        if (sscanf (rest + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 3
        ||  used != 8) {
            return false;
        }
        rest += 1 + used;
        if (*rest == '.') {
            size_t frac = strspn (++rest, "0123456789");
            if (frac == 0 || frac > 9) {
                return false;
            }
            for (size_t i = 0; i < 6; i++) {
                micros = micros * 10 + (i < frac? (uint64_t) (rest [i] - '0'): 0);
            }
            rest += frac;
        }
        if (*rest == '+' || *rest == '-') {
            int hours, minutes;
            used = 0;
            if (sscanf (rest + 1, "%2d:%2d%n", &hours, &minutes, &used) != 2 || used != 5
            ||  hours > 23 || minutes > 59) {
                return false;
            }
            offset = (*rest == '+'? 1: -1) * (hours * 3600L + minutes * 60L);
            rest += 1 + used;
        }
        else if (*rest == 'Z') {
            rest++;
        }
        else {
            return false;               //  a time without a zone is a guess
        }
    }
    if (*rest || tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1
    ||  tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        return false;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t secs = timegm (&tm) - offset;
    if (secs < 0) {
        return false;
    }
    *out = (uint64_t) secs * 1000000u + micros;
    return true;
}

typedef enum { S_TEXT, S_JSON, S_OCSF } s_format_t;

typedef struct {
    s_format_t format;
    bool payload;
    bool failed;                //  a write failed (a closed pipe): stop
} s_out_t;

//  One field of a text line: prefix, then value escaped to stay on it.
static void
s_field (const char *prefix, const char *value)
{
    fputs (prefix, stdout);
    bus_print_line (stdout, value);
}

//  A sentence between double quotes: a quote inside is escaped too.
static void
s_quoted (const char *value)
{
    fputs (" \"", stdout);
    bus_print_text (stdout, value, BUS_PRINT_LINE | BUS_PRINT_QUOTE, "");
    fputs ("\"", stdout);
}

static void
s_text (const Bulkhead__V1__Record *rec)
{
    const char *kind = (size_t) rec->kind < bus_record_kind_count? bus_record_kinds [rec->kind]
                                                                 : "?";
    const char *verdict = rec->has_verdict && rec->verdict < 5? s_verdict_names [rec->verdict]: NULL;
    char when [40];
    time_t secs = (time_t) (rec->time_us / 1000000);
    struct tm tm;
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%S", gmtime_r (&secs, &tm));
    printf ("%6llu %s %-8s", (unsigned long long) rec->seq, when, kind);
    if (rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_SEND) {
        s_field (" ", rec->sender? rec->sender: "?");
        s_field (" -> ", rec->recipient? rec->recipient: "?");
        s_field (" ", rec->intent? rec->intent: "?");
        if (rec->intent_class && (!rec->intent || strcmp (rec->intent, rec->intent_class) != 0)) {
            s_field ("/", rec->intent_class);
        }
        printf (" %s", verdict? verdict: "?");
        if (rec->code && strcmp (rec->code, "OK") != 0) {
            s_field (" ", rec->code);
        }
        if (rec->has_restricted && rec->restricted) {
            printf (" RESTRICTED");
        }
        s_field (" id=", rec->message_id? rec->message_id: "-");
        if (rec->action) {
            s_field (" action=", rec->action);
        }
        if (rec->n_causes) {
            printf (" causes=");
            for (size_t i = 0; i < rec->n_causes; i++) {
                printf ("%s%llu", i? ",": "", (unsigned long long) rec->causes [i]);
            }
        }
        if (rec->has_payload_purged_us) {
            printf (" payload-purged");
        }
        if (rec->code && strcmp (rec->code, "OK") != 0 && rec->reason) {
            s_quoted (rec->reason);
        }
    }
    else {
        if (rec->sender) {
            s_field (" ", rec->sender);
        }
        if (rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_HOLD && rec->recipient) {
            s_field (" -> ", rec->recipient);
        }
        if (rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_ALERT) {
            s_field (" ", rec->alert_id? rec->alert_id: "?");
            s_field (" ", rec->alert_kind? rec->alert_kind: "?");
            s_field (" on ", rec->alert_subject? rec->alert_subject: "?");
            for (size_t i = 0; i < rec->n_evidence; i++) {
                printf ("%s%llu", i? ",": " evidence=", (unsigned long long) rec->evidence [i]);
            }
        }
        if (rec->actor && (!rec->sender || strcmp (rec->actor, rec->sender) != 0)) {
            s_field (" by=", rec->actor);
        }
        if (rec->has_votes && rec->has_quorum) {
            printf (" votes=%u/%u", rec->votes, rec->quorum);
        }
        if (rec->code && strcmp (rec->code, "OK") != 0) {
            s_field (" ", rec->code);
        }
        if (rec->event) {
            s_field (" ", rec->event);
        }
        if (rec->has_ref_seq) {
            printf (" ref=%llu", (unsigned long long) rec->ref_seq);
        }
        if (rec->reason) {
            s_quoted (rec->reason);
        }
    }
    printf ("\n");
}

static int
s_print (void *arg, const Bulkhead__V1__Record *rec, size_t raw_len)
{
    s_out_t *out = arg;
    if (out->format == S_TEXT) {
        s_text (rec);
    }
    else {
        json_t *obj = out->format == S_JSON? bus_export_json (rec, raw_len, out->payload)
                                           : bus_export_ocsf (rec, raw_len);
        if (!obj || bus_export_write (stdout, obj) != 0) {
            out->failed = true;
        }
        json_decref (obj);
    }
    if (ferror (stdout)) {
        out->failed = true;
    }
    return out->failed? 1: 0;
}

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static const char *s_log_help =
    "usage: bulkhead log --data DIR [filters] [--json | --ocsf] [--follow]\n\n"
    "Prints the log, oldest first. Safe while the bus runs (a read-only snapshot).\n"
    "Filters combine (all must hold) and are answered from indexes written with\n"
    "each record, so a query costs what it answers, not the size of the log.\n\n"
    "  --data DIR         the bus's data directory\n"
    "  --agent NAME       records where NAME is sender, recipient or the acting\n"
    "                     approver or operator\n"
    "  --kind KIND        send, session, policy, delivery-ack, control, error, bus, hold,\n"
    "                     alert, checkpoint\n"
    "  --class CLASS      messages the bus classified as CLASS\n"
    "  --verdict V        delivered, queued, held, denied\n"
    "  --code WORD        records with this code word (DENIED, RATE, OK, ...)\n"
    "  --restricted       restricted messages only\n"
    "  --id MSGID         records of this message id (any sender)\n"
    "  --since WHEN       time_us >= WHEN; --until WHEN: time_us <= WHEN. WHEN is a\n"
    "                     duration back from now (90s, 30m, 1h, 7d, 2w) or ISO 8601:\n"
    "                     2026-12-01, 2026-12-01T21:33:57Z, 2026-12-01T22:33:57.5+01:00\n"
    "  --from SEQ         start at this sequence\n"
    "  --thread SEQ       the records connected to SEQ by causes, both ways: what\n"
    "                     caused it, what it caused, and so on (other filters apply)\n"
    "  --json             one JSON object per line (record_bytes: its stored size)\n"
    "  --payload          with --json, include payloads (base64)\n"
    "  --ocsf             one OCSF 1.3.0 event per line (API Activity 6003 for\n"
    "                     messages, Authentication 3002 for sessions; see README)\n"
    "  --follow           after the log so far, print new records as they commit\n"
    "                     (polls a short read-only snapshot every --interval MS,\n"
    "                     default 200) until interrupted; for shippers\n"
    "  --explain          say on stderr how the query was answered and what it read\n\n"
    "Text lines never show payloads. What agents wrote (names, ids, actions,\n"
    "reasons) is escaped so it stays on its line: control bytes and bytes that are\n"
    "not UTF-8 as \\xHH, C1, bidi and invisible characters as \\uXXXX, newline and\n"
    "tab as \\n \\t, a backslash as \\\\, a quote inside a quoted reason as \\\".\n"
    "--json and --ocsf lines are ASCII, so always valid UTF-8: every other\n"
    "character as a \\u escape, a byte that is not UTF-8 as \\ufffd (the payload,\n"
    "in base64, is exact).\n";

static int
s_lookup (const char *const *names, size_t n, const char *text)
{
    for (size_t i = 1; i < n; i++) {
        if (strcmp (names [i], text) == 0) {
            return (int) i;
        }
    }
    return 0;
}

//  Bad usage (exit 2): what, the value given, then what is known: the
//  text after it, or the n - 1 names of a table after its first.
static int
s_bad (const char *what, const char *value, const char *known, const char *const *names,
       size_t n)
{
    fprintf (stderr, "bulkhead log: INVAL: %s '", what);
    bus_print_line (stderr, value);
    fprintf (stderr, "'%s", known);
    for (size_t i = 1; i < n; i++) {
        fprintf (stderr, "%s%s%s", i == 1? " (known: ": ", ", names [i], i + 1 == n? ")": "");
    }
    fputc ('\n', stderr);
    return 2;
}

static void
s_explain (const bus_query_plan_t *plan, const char *what)
{
    fprintf (stderr, "bulkhead log: %s: %s, %zu index list%s, seq %llu..%llu, %llu matched, "
             "%llu reads (%llu of them records past the index, not yet in it)\n", what,
             plan->indexed? "indexed": "walked (no index yet)",
             plan->lists, plan->lists == 1? "": "s", (unsigned long long) plan->lo,
             (unsigned long long) plan->hi, (unsigned long long) plan->matched,
             (unsigned long long) plan->reads, (unsigned long long) plan->past);
}

int
cmd_log (int argc, char **argv)
{
    enum { VERDICT = 1, CODE, ID, SINCE, UNTIL, THREAD, OCSF, FOLLOW, INTERVAL, EXPLAIN };
    static const struct option options [] = {
        { "data", required_argument, NULL, 'd' },
        { "agent", required_argument, NULL, 'a' },
        { "kind", required_argument, NULL, 'k' },
        { "class", required_argument, NULL, 'c' },
        { "verdict", required_argument, NULL, VERDICT },
        { "code", required_argument, NULL, CODE },
        { "id", required_argument, NULL, ID },
        { "since", required_argument, NULL, SINCE },
        { "until", required_argument, NULL, UNTIL },
        { "restricted", no_argument, NULL, 'r' },
        { "from", required_argument, NULL, 'f' },
        { "thread", required_argument, NULL, THREAD },
        { "json", no_argument, NULL, 'j' },
        { "ocsf", no_argument, NULL, OCSF },
        { "payload", no_argument, NULL, 'p' },
        { "follow", no_argument, NULL, FOLLOW },
        { "interval", required_argument, NULL, INTERVAL },
        { "explain", no_argument, NULL, EXPLAIN },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    bus_query_t q = { 0 };
    s_out_t out = { S_TEXT, false, false };
    const char *dir = NULL;
    unsigned long long n, thread = 0, interval = 200;
    bool follow = false, explain = false, json = false, ocsf = false;
    uint64_t now = s_now_us ();
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
            case 'd': dir = optarg; break;
            case 'a': q.agent = optarg; break;
            case 'c': q.intent_class = optarg; break;
            case CODE: q.code = optarg; break;
            case ID: q.message_id = optarg; break;
            case 'r': q.restricted = true; break;
            case 'j': json = true; break;
            case OCSF: ocsf = true; break;
            case 'p': out.payload = true; break;
            case FOLLOW: follow = true; break;
            case EXPLAIN: explain = true; break;
            case 'k':
                q.kind = s_lookup (bus_record_kinds, bus_record_kind_count,
                                   optarg);
                if (!q.kind) {
                    return s_bad ("unknown kind", optarg, "", bus_record_kinds,
                                  bus_record_kind_count);
                }
                break;
            case VERDICT:
                q.verdict = s_lookup (s_verdict_names, 5, optarg);
                if (!q.verdict) {
                    return s_bad ("unknown verdict", optarg, "", s_verdict_names,
                                  sizeof s_verdict_names / sizeof s_verdict_names [0]);
                }
                break;
            case SINCE:
            case UNTIL:
                if (!cmd_time (optarg, now, opt == SINCE? &q.since_us: &q.until_us)) {
                    return s_bad (opt == SINCE? "--since takes a duration (30m, 7d) or an "
                                  "ISO 8601 time, not": "--until takes a duration (30m, 7d) "
                                  "or an ISO 8601 time, not", optarg,
                                  " (e.g. 2026-12-01T21:33:57Z)", NULL, 0);
                }
                *(opt == SINCE? &q.has_since: &q.has_until) = true;
                break;
            case 'f':
                if (!cmd_number (optarg, 1, UINT64_MAX, &n)) {
                    fprintf (stderr, "bulkhead log: --from takes a sequence number\n");
                    return 2;
                }
                q.from_seq = n;
                break;
            case THREAD:
                if (!cmd_number (optarg, 1, UINT64_MAX, &thread)) {
                    fprintf (stderr, "bulkhead log: --thread takes a sequence number\n");
                    return 2;
                }
                break;
            case INTERVAL:
                if (!cmd_number (optarg, 10, 60000, &interval)) {
                    fprintf (stderr, "bulkhead log: --interval takes milliseconds, 10 to 60000\n");
                    return 2;
                }
                break;
            case 'h': return s_help (s_log_help, true);
            default: return s_help (s_log_help, false);
        }
    }
    if (!dir || optind != argc) {
        return s_help (s_log_help, false);
    }
    if (json && ocsf) {
        fprintf (stderr, "bulkhead log: --json or --ocsf, not both\n");
        return 2;
    }
    if (thread && follow) {
        fprintf (stderr, "bulkhead log: --thread shows one thread as it is; it does not --follow\n");
        return 2;
    }
    out.format = json? S_JSON: ocsf? S_OCSF: S_TEXT;
    bus_store_t *store = cmd_open_log (dir, "log");
    if (!store) {
        return 1;
    }
    bus_error_t err;
    bus_query_plan_t plan;
    int rc = thread? bus_query_thread (store, thread, &q, s_print, &out, &plan, &err)
                   : bus_query_run (store, &q, s_print, &out, &plan, &err);
    if (explain && rc >= 0) {
        s_explain (&plan, thread? "thread": "query");
    }
    if (follow && rc >= 0 && !out.failed) {
        //  A shipper reads line by line: each record goes out as it is printed.
        fflush (stdout);
        setvbuf (stdout, NULL, _IOLBF, 0);
        signal (SIGINT, s_on_signal);
        signal (SIGTERM, s_on_signal);
        uint64_t seen = bus_store_last_seq (store);
        struct timespec pause = { (time_t) (interval / 1000), (long) (interval % 1000) * 1000000L };
        while (!s_stop && rc >= 0 && !out.failed) {
            nanosleep (&pause, NULL);
            if (s_stop) {
                break;
            }
            rc = bus_store_refresh (store, &err);
            if (rc == 0 && bus_store_last_seq (store) > seen) {
                bus_query_t next = q;
                next.from_seq = seen + 1 > q.from_seq? seen + 1: q.from_seq;
                rc = bus_query_run (store, &next, s_print, &out, &plan, &err);
                seen = bus_store_last_seq (store);
            }
        }
    }
    bus_store_destroy (&store);
    if (rc < 0) {
        return cmd_error ("log", &err);
    }
    if (fflush (stdout) != 0 || out.failed) {
        fprintf (stderr, "bulkhead log: cannot write the output\n");
        return 1;
    }
    return 0;
}
