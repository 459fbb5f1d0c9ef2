/*  cmd_admin.c: serve, keygen, stats (check and access: cmd_policy.c; log: cmd_log.c;
    verify, prove, backup, migrate: cmd_audit.c). */
#include "cmd.h"
#include "bus_keys.h"
#include "bus_policy.h"
#include "bus_server.h"
#include "bus_store.h"

#include <czmq.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  Every command answers --help on stdout and bad usage on stderr with 2.
static int
s_help (const char *text, bool ok)
{
    fputs (text, ok? stdout: stderr);
    return ok? 0: 2;
}

static const char *s_serve_help =
    "usage: bulkhead serve --policy FILE --data DIR [options]\n\n"
    "Runs the bus: a ZeroMQ ROUTER with CURVE, the mediator chain, and the LMDB log\n"
    "in DIR. On first start it makes the bus key DIR/bus.key and DIR/bus.pub (give\n"
    "bus.pub to agents). SIGHUP reloads the policy; SIGINT/SIGTERM stop cleanly.\n\n"
    "It refuses to start when someone else may change what decides what it does: a\n"
    "data directory or policy file writable by group or others (or owned by a user\n"
    "other than the bus's own or root), or a bus key anyone but its owner may read.\n"
    "The message names the path and the command that fixes it.\n\n"
    "  --policy FILE      the policy (see bulkhead check)\n"
    "  --data DIR         log and state directory (created 0700)\n"
    "  --endpoint EP      where to listen (default tcp://127.0.0.1:7750; ipc://PATH works)\n"
    "  --key FILE         the bus's secret key (default DIR/bus.key)\n"
    "  --next-key FILE    rotating the bus's key: its next secret key (bulkhead keygen\n"
    "                     --bus --rotate), with which the bus also listens on\n"
    "  --next-endpoint EP   ...this endpoint, so agents move to the new key one by one\n"
    "  --map-max BYTES    largest the log may grow to (default 64 GiB)\n"
    "  --ready-fd N       write \"ready ENDPOINT\" to fd N once listening (supervisors)\n"
    "  --quiet            no event lines on stderr\n"
    "  --metrics [ADDR:]PORT  serve Prometheus metrics on http://ADDR:PORT/metrics\n"
    "                     (ADDR 127.0.0.1 unless given; loopback only, see below)\n"
    "  --metrics-public   allow a non-loopback metrics address (the page names every\n"
    "                     agent and edge: put it behind something that authenticates)\n\n"
    "Signed checkpoints of the log (see README, \"The log\"; both outside DIR):\n"
    "  --checkpoints CDIR write a signed checkpoint to CDIR every N records and every T\n"
    "                     seconds even when idle, and at start and stop; one that cannot\n"
    "                     be written stops the bus delivering (fail closed)\n"
    "  --sign-key FILE    the Ed25519 signing key (bulkhead keygen NAME --sign)\n"
    "  --next-sign-key F  during a rotation, the next key: checkpoints carry both signatures\n"
    "  --origin TEXT      the checkpoints' origin line (default bulkhead/<bus key fingerprint>)\n"
    "  --checkpoint-every N  records between checkpoints (default 10000)\n"
    "  --checkpoint-secs T   seconds between checkpoints, even idle (default 60)\n";

int
cmd_serve (int argc, char **argv)
{
    static const struct option options [] = {
        { "policy", required_argument, NULL, 'p' },
        { "data", required_argument, NULL, 'd' },
        { "endpoint", required_argument, NULL, 'e' },
        { "key", required_argument, NULL, 'k' },
        { "next-key", required_argument, NULL, 'K' },
        { "next-endpoint", required_argument, NULL, 'X' },
        { "map-max", required_argument, NULL, 'm' },
        { "ready-fd", required_argument, NULL, 'r' },
        { "quiet", no_argument, NULL, 'q' },
        { "checkpoints", required_argument, NULL, 'C' },
        { "sign-key", required_argument, NULL, 'S' },
        { "next-sign-key", required_argument, NULL, 'N' },
        { "origin", required_argument, NULL, 'O' },
        { "checkpoint-every", required_argument, NULL, 'V' },
        { "checkpoint-secs", required_argument, NULL, 'T' },
        { "metrics", required_argument, NULL, 'M' },
        { "metrics-public", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    bus_server_options_t o = { .ready_fd = -1 };
    unsigned long long n;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
            case 'p': o.policy_path = optarg; break;
            case 'd': o.data_dir = optarg; break;
            case 'e': o.endpoint = optarg; break;
            case 'k': o.key_path = optarg; break;
            case 'K': o.next_key_path = optarg; break;
            case 'X': o.next_endpoint = optarg; break;
            case 'q': o.quiet = 1; break;
            case 'C': o.checkpoints = optarg; break;
            case 'S': o.sign_key = optarg; break;
            case 'N': o.next_sign_key = optarg; break;
            case 'O': o.origin = optarg; break;
            case 'V':
                if (!cmd_number (optarg, 1, 1ULL << 40, &n)) {
                    fprintf (stderr, "bulkhead serve: --checkpoint-every takes a number of records, at least 1\n");
                    return 2;
                }
                o.checkpoint_every = n;
                break;
            case 'T':
                if (!cmd_number (optarg, 1, 86400, &n)) {
                    fprintf (stderr, "bulkhead serve: --checkpoint-secs takes seconds, 1 to 86400\n");
                    return 2;
                }
                o.checkpoint_secs = (uint32_t) n;
                break;
            case 'M': o.metrics = optarg; break;
            case 'P': o.metrics_public = true; break;
            case 'm':
                if (!cmd_number (optarg, 1 << 20, 1ULL << 46, &n)) {
                    fprintf (stderr, "bulkhead serve: --map-max takes bytes, 1 MiB to 64 TiB\n");
                    return 2;
                }
                o.map_max = (size_t) n;
                break;
            case 'r':
                if (!cmd_number (optarg, 0, 65535, &n)) {
                    fprintf (stderr, "bulkhead serve: --ready-fd takes a file descriptor number\n");
                    return 2;
                }
                o.ready_fd = (int) n;
                break;
            case 'h': return s_help (s_serve_help, true);
            default: return s_help (s_serve_help, false);
        }
    }
    if (!o.policy_path || !o.data_dir || optind != argc) {
        return s_help (s_serve_help, false);
    }
    //  Whoever may change the policy or the log decides what the bus does,
    //  and whoever may read the bus key can be the bus: all three are
    //  refused before the log is opened or made. The key goes through the
    //  bus_keys_load an agent's key goes through (the bus reads it again at
    //  start). A data directory that does not exist yet is made 0700.
    bus_error_t err;
    if (bus_keys_private (o.data_dir, 0700, &err) != 0
    ||  bus_keys_private (o.policy_path, 0, &err) != 0) {
        return cmd_error ("serve", &err);
    }
    char default_key [4096];
    snprintf (default_key, sizeof default_key, "%s/bus.key", o.data_dir);
    const char *key_path = o.key_path? o.key_path: default_key;
    if (o.key_path || access (key_path, F_OK) == 0) {
        bus_keypair_t pair;
        int rc = bus_keys_load (&pair, key_path, &err);
        sodium_memzero (&pair, sizeof pair);
        if (rc != 0) {
            return cmd_error ("serve", &err);
        }
    }
    if (!o.next_key_path != !o.next_endpoint) {
        fprintf (stderr, "bulkhead serve: --next-key and --next-endpoint go together: during a "
                 "rotation of the bus's key the next key listens on an endpoint of its own\n");
        return 2;
    }
    if (o.next_key_path) {
        bus_keypair_t pair;
        int rc = bus_keys_load (&pair, o.next_key_path, &err);
        sodium_memzero (&pair, sizeof pair);
        if (rc != 0) {
            return cmd_error ("serve", &err);
        }
    }
    if (bus_server_run (&o, &err) != 0) {
        return cmd_error ("serve", &err);
    }
    return 0;
}

static const char *s_keygen_help =
    "usage: bulkhead keygen NAME [--rotate] [--dir DIR]\n"
    "       bulkhead keygen --bus [--rotate] [--dir DIR]\n"
    "       bulkhead keygen NAME --sign [--dir DIR]\n\n"
    "Makes a CURVE keypair for agent NAME: DIR/NAME.key (secret, mode 0600: give it\n"
    "to that agent only) and DIR/NAME.pub, and prints the lines to paste into the\n"
    "policy's agents section: the key and the day it was made (created, UTC), from\n"
    "which bus.key_max_age counts. One key per agent; never share one. Existing\n"
    "files are never overwritten.\n\n"
    "  --rotate           the agent's next key: DIR/NAME.next.key and NAME.next.pub,\n"
    "                     the next_key line to add beside its key (both keys then\n"
    "                     work), and the steps that end the rotation\n"
    "  --bus              the bus's own key instead: DIR/bus.key and bus.pub (the\n"
    "                     bus makes one in its data dir on first start); with\n"
    "                     --rotate its next key, DIR/bus.next.key and .pub, and the\n"
    "                     steps of the overlap (serve --next-key, --next-endpoint)\n"
    "  --sign             instead, the bus's checkpoint signing key (Ed25519):\n"
    "                     DIR/NAME.sign.key (secret, 0600; keep it outside the data dir)\n"
    "                     and DIR/NAME.sign.pub (for auditors: bulkhead verify --pub)\n"
    "  --dir DIR          where to write the files (default .; it must exist)\n";

//  Today, UTC, as the policy writes a date.
static void
s_today (char out [16])
{
    time_t now = time (NULL);
    struct tm tm;
    strftime (out, 16, "%Y-%m-%d", gmtime_r (&now, &tm));
}

//  The steps of a rotation, printed with the new pair: the overlap first,
//  then what ends it. An operator follows them days apart, so they say
//  what to check before each.
static void
s_rotate_steps (const char *name, const char *dir, const bus_keypair_t *pair,
                const char *today)
{
    printf ("# wrote %s/%s.next.key (secret, 0600) and %s/%s.next.pub\n"
            "#\n"
            "# 1. add under agent '%s' in the policy, beside its key, then reload\n"
            "#    (bulkhead reload, or SIGHUP): both keys authenticate as %s\n"
            "        next_key = \"%s\"\n"
            "#\n"
            "# 2. copy %s/%s.next.key to each process of %s (as its --key file) and\n"
            "#    restart them one by one; `bulkhead access --policy FILE --data DIR`\n"
            "#    shows when each key was last used\n"
            "#\n"
            "# 3. when every process of %s uses the new key, make it the key, set its\n"
            "#    created and remove next_key (and an old expires), then reload:\n"
            "#    connections still on the old key go offline at once\n"
            "        key = \"%s\"\n"
            "        created = %s\n"
            "#\n"
            "# 4. retire the old pair, so that the next rotation can start:\n"
            "#    mv %s/%s.next.key %s/%s.key; mv %s/%s.next.pub %s/%s.pub\n",
            dir, name, dir, name, name, name, pair->public_z85, dir, name, name, name,
            pair->public_z85, today, dir, name, dir, name, dir, name, dir, name);
}

//  The same for the bus's own key, which every agent pins: during the
//  overlap the bus listens with both keys, each on an endpoint of its own,
//  and agents move from the one to the other on their own days.
static void
s_rotate_bus_steps (const char *dir, const bus_keypair_t *pair)
{
    printf ("# wrote %s/bus.next.key (secret, 0600) and %s/bus.next.pub\n"
            "#\n"
            "# 1. restart the bus with the next key on an endpoint of its own, beside\n"
            "#    the old one (its key and endpoint unchanged):\n"
            "#    bulkhead serve ... --next-key %s/bus.next.key \\\n"
            "#        --next-endpoint tcp://127.0.0.1:7751\n"
            "#\n"
            "# 2. move each agent, one by one: it pins the new bus key (--bus-key\n"
            "#    %s/bus.next.pub, or the key below) and connects to the next\n"
            "#    endpoint; its HELLO records then say \"via the next bus key\"\n"
            "#        %s\n"
            "#\n"
            "# 3. when no agent says HELLO without it, make the new key the bus's\n"
            "#    key and its endpoint the bus's endpoint, and restart without the\n"
            "#    --next options: the old key no longer opens a session\n"
            "#    mv %s/bus.next.key %s/bus.key; mv %s/bus.next.pub %s/bus.pub\n"
            "#    bulkhead serve ... --endpoint tcp://127.0.0.1:7751\n",
            dir, dir, dir, dir, pair->public_z85, dir, dir, dir, dir);
}

int
cmd_keygen (int argc, char **argv)
{
    static const struct option options [] = {
        { "dir", required_argument, NULL, 'd' },
        { "rotate", no_argument, NULL, 'r' },
        { "bus", no_argument, NULL, 'b' },
        { "sign", no_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *dir = ".";
    bool rotate = false;
    bool bus = false;
    bool sign = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
            case 'd': dir = optarg; break;
            case 'r': rotate = true; break;
            case 'b': bus = true; break;
            case 's': sign = true; break;
            case 'h': return s_help (s_keygen_help, true);
            default: return s_help (s_keygen_help, false);
        }
    }
    if (optind != argc - (bus? 0: 1)) {
        return s_help (s_keygen_help, false);
    }
    const char *name = bus? "bus": argv [optind];
    //  The directory is not made here: a mistyped one would be a new place
    //  holding a secret key that nobody looks after.
    struct stat st;
    if (stat (dir, &st) != 0 || !S_ISDIR (st.st_mode)) {
        bus_error_t err;
        bus_fail (&err, BUS_EIO, "%s/%s%s.key: %s is not a directory; make it first "
                  "(mkdir -m 700 %s)", dir, name, sign? ".sign": rotate? ".next": "", dir, dir);
        return cmd_error ("keygen", &err);
    }
    if (sign) {
        //  A signing key is not a CURVE key: neither rotated here nor the bus's.
        return rotate || bus? s_help (s_keygen_help, false): cmd_keygen_sign (name, dir);
    }
    const char *suffix = rotate? ".next": "";
    bus_keypair_t pair;
    bus_error_t err;
    //  The name is checked before it becomes part of a path.
    if (bus_keys_generate (&pair, name, &err) != 0) {
        return cmd_error ("keygen", &err);
    }
    char secret [4096], public [4096];
    snprintf (secret, sizeof secret, "%s/%s%s.key", dir, name, suffix);
    snprintf (public, sizeof public, "%s/%s%s.pub", dir, name, suffix);
    //  A next key on disk means a rotation is under way: a second one
    //  would leave the operator two new keys and one line in the policy.
    if (rotate && (access (secret, F_OK) == 0 || access (public, F_OK) == 0)) {
        sodium_memzero (&pair, sizeof pair);
        bus_fail (&err, BUS_EIO, "%s: already exists: a rotation of '%s' is under way; finish "
                  "it (make the new key its key, then move %s.next.key and .pub over %s.key "
                  "and .pub) or, to start over, remove both and the policy's next_key",
                  access (secret, F_OK) == 0? secret: public, name, name, name);
        return cmd_error ("keygen", &err);
    }
    if (bus_keys_save (&pair, secret, public, &err) != 0) {
        sodium_memzero (&pair, sizeof pair);
        return cmd_error ("keygen", &err);
    }
    char today [16];
    s_today (today);
    if (bus && rotate) {
        s_rotate_bus_steps (dir, &pair);
    }
    else
    if (bus) {
        printf ("# wrote %s (secret, 0600) and %s\n"
                "# the bus reads it with serve --key %s; agents pin %s\n", secret, public,
                secret, public);
    }
    else
    if (rotate) {
        s_rotate_steps (name, dir, &pair, today);
    }
    else {
        printf ("# wrote %s (secret, 0600) and %s\n"
                "# paste under 'agents' in the policy:\n"
                "    %s\n        key = \"%s\"\n        created = %s\n", secret, public, name,
                pair.public_z85, today);
    }
    sodium_memzero (&pair, sizeof pair);
    return 0;
}

//  ---------------------------------------------------------------------
//  log (the command itself: cmd_log.c)

bus_store_t *
cmd_open_log (const char *dir, const char *prog)
{
    bus_store_options_t options = { .read_only = true };
    bus_store_t *store;
    bus_error_t err;
    if (bus_store_open (&store, dir, &options, &err) != 0) {
        cmd_error (prog, &err);
        return NULL;
    }
    return store;
}

//  ---------------------------------------------------------------------
//  stats

//  What one sender caused in the window. The name is the record's sender
//  field: an agent, a peer address (refused before authentication), or
//  NULL for the bus's own records.
typedef struct {
    char *name;
    uint64_t records;
    uint64_t bytes;
    uint64_t sent;              //  SEND records that are not releases of a hold
    uint64_t delivered;         //  SEND verdicts, releases included
    uint64_t queued;
    uint64_t held;
    uint64_t denied;
    uint64_t refusals;          //  ERROR records: their count, else 1 each
    uint64_t alerts;            //  monitoring alerts opened about it (ALERT records)
} stats_row_t;

typedef struct {
    uint64_t since_us;          //  records with time_us >= this count
    zhashx_t *rows;             //  name -> stats_row_t
    stats_row_t bus;            //  records with no sender
    stats_row_t total;
    uint64_t first_seq;         //  of the window; 0 if none
    uint64_t last_seq;
    bool failed;                //  out of memory
} stats_t;

static void
s_row_free (void **item)
{
    stats_row_t *row = *item;
    if (row) {
        free (row->name);
        free (row);
        *item = NULL;
    }
}

static void
s_row_add (stats_row_t *row, const Bulkhead__V1__Record *rec, size_t raw_len)
{
    row->records++;
    row->bytes += raw_len;
    if (rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_SEND) {
        bool release = rec->event && strcmp (rec->event, "release") == 0;
        row->sent += !release;
        switch (rec->has_verdict? rec->verdict: 0) {
            case BULKHEAD__V1__VERDICT__VERDICT_DELIVERED: row->delivered++; break;
            case BULKHEAD__V1__VERDICT__VERDICT_QUEUED: row->queued++; break;
            case BULKHEAD__V1__VERDICT__VERDICT_HELD: row->held++; break;
            case BULKHEAD__V1__VERDICT__VERDICT_DENIED: row->denied++; break;
            default: break;
        }
    }
    else
    if (rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_ERROR) {
        row->refusals += rec->has_count? rec->count: 1;
    }
    else
    if (rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_ALERT) {
        row->alerts += rec->event && strcmp (rec->event, "opened") == 0;
    }
}

static int
s_stats_record (void *arg, const Bulkhead__V1__Record *rec, const uint8_t *raw, size_t raw_len)
{
    (void) raw;
    stats_t *stats = arg;
    if (rec->time_us < stats->since_us) {
        return 0;
    }
    if (!stats->first_seq) {
        stats->first_seq = rec->seq;
    }
    stats->last_seq = rec->seq;
    stats_row_t *row = &stats->bus;
    if (rec->sender) {
        row = zhashx_lookup (stats->rows, rec->sender);
        if (!row) {
            row = calloc (1, sizeof *row);
            if (!row || !(row->name = strdup (rec->sender))) {
                free (row);
                stats->failed = true;
                return 1;
            }
            zhashx_insert (stats->rows, row->name, row);
        }
    }
    s_row_add (row, rec, raw_len);
    s_row_add (&stats->total, rec, raw_len);
    return 0;
}

//  Largest first; the same bytes by more records, then by name.
static int
s_row_compare (const void *a, const void *b)
{
    const stats_row_t *x = *(const stats_row_t *const *) a;
    const stats_row_t *y = *(const stats_row_t *const *) b;
    if (x->bytes != y->bytes) {
        return x->bytes > y->bytes? -1: 1;
    }
    if (x->records != y->records) {
        return x->records > y->records? -1: 1;
    }
    if (!x->name || !y->name) {
        return x->name? -1: (y->name? 1: 0);
    }
    return strcmp (x->name, y->name);
}

//  A duration (90s, 30m, 1h, 7d; a number alone is seconds) or a UTC
//  time as the log prints it (2026-12-01T21:33:57Z, a fraction allowed):
//  the window's start in microseconds since the epoch, or 0 if neither.
static uint64_t
s_since (const char *text, uint64_t now_us)
{
    unsigned long long n;
    size_t digits = strspn (text, "0123456789");
    if (digits > 0 && digits <= 9 && strlen (text) <= digits + 1) {
        char number [16];
        memcpy (number, text, digits);
        number [digits] = 0;
        static const char units [] = "smhdw";
        static const uint64_t scale [] = { 1, 60, 3600, 86400, 604800 };
        const char *unit = text [digits]? strchr (units, text [digits]): units;
        if (!unit || !*unit || !cmd_number (number, 1, 999999999, &n)) {
            return 0;
        }
        uint64_t per = scale [unit - units] * 1000000u;
        if ((uint64_t) n > now_us / per) {
            return 1;                   //  before the epoch: all of it
        }
        return now_us - (uint64_t) n * per;
    }
    struct tm tm = { 0 };
    int used = 0;
    if (sscanf (text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 || used != 19) {
        return 0;
    }
    const char *rest = text + used;
    uint64_t micros = 0;
    if (*rest == '.') {
        size_t frac = strspn (++rest, "0123456789");
        if (frac == 0 || frac > 6) {
            return 0;
        }
        for (size_t i = 0; i < 6; i++) {
            micros = micros * 10 + (i < frac? (uint64_t) (rest [i] - '0'): 0);
        }
        rest += frac;
    }
    if (strcmp (rest, "Z") != 0 || tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12
    ||  tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        return 0;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t secs = timegm (&tm);
    if (secs < 0) {
        return 0;
    }
    return (uint64_t) secs * 1000000u + micros + (secs == 0 && micros == 0);
}

static void
s_stats_json (const stats_row_t *row)
{
    printf ("{\"agent\":");
    bus_print_json (stdout, row->name);
    printf (",\"records\":%llu,\"bytes\":%llu,\"sent\":%llu,\"delivered\":%llu,\"queued\":%llu,"
            "\"held\":%llu,\"denied\":%llu,\"refusals\":%llu,\"alerts\":%llu}\n",
            (unsigned long long) row->records, (unsigned long long) row->bytes,
            (unsigned long long) row->sent, (unsigned long long) row->delivered,
            (unsigned long long) row->queued, (unsigned long long) row->held,
            (unsigned long long) row->denied, (unsigned long long) row->refusals,
            (unsigned long long) row->alerts);
}

//  Names as they are shown: escaped, at most this many columns wide.
#define CMD_STATS_NAME_MAX  72

static void
s_stats_text (const stats_row_t *row, const char *name, int width, uint64_t total_bytes)
{
    double share = total_bytes? 100.0 * (double) row->bytes / (double) total_bytes: 0;
    printf ("%-*s %9llu %12llu %6.1f%% %7llu %9llu %7llu %6llu %7llu %9llu\n", width, name,
            (unsigned long long) row->records, (unsigned long long) row->bytes, share,
            (unsigned long long) row->sent, (unsigned long long) row->delivered,
            (unsigned long long) row->queued, (unsigned long long) row->held,
            (unsigned long long) row->denied, (unsigned long long) row->refusals);
}

//  The text table: a line for the window, a header, a row per sender.
static int
s_stats_table (const stats_t *stats, stats_row_t **rows, size_t n, const char *dir,
               const char *since)
{
    //  Each name escaped first, so the columns line up around it.
    char (*names) [CMD_STATS_NAME_MAX + 1] = calloc (n + 1, sizeof *names);
    if (!names) {
        fprintf (stderr, "bulkhead stats: NOMEM: out of memory\n");
        return -1;
    }
    int width = 5;
    for (size_t i = 0; i < n; i++) {
        bus_print_how_t how = { .flags = BUS_PRINT_LINE };
        if (!rows [i]->name) {
            snprintf (names [i], sizeof names [i], "(bus)");
        }
        else
        if (bus_print_buf (names [i], sizeof names [i], &how, rows [i]->name,
                           strlen (rows [i]->name), NULL) >= sizeof names [i]) {
            //  Cut: say so at the end, without splitting an escape.
            bus_print_buf (names [i], sizeof names [i] - 3, &how, rows [i]->name,
                           strlen (rows [i]->name), NULL);
            strcat (names [i], "...");
        }
        int len = (int) strlen (names [i]);
        width = len > width? len: width;
    }
    char when [40] = "the start";
    if (since) {
        time_t secs = (time_t) (stats->since_us / 1000000);
        struct tm tm;
        size_t len = strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%S", gmtime_r (&secs, &tm));
        unsigned micros = (unsigned) (stats->since_us % 1000000);
        if (strchr (since, '.')) {
            snprintf (when + len, sizeof when - len, ".%06uZ", micros);
        }
        else {
            snprintf (when + len, sizeof when - len, "Z");
        }
    }
    if (stats->first_seq) {
        printf ("%s: since %s: %llu records (seq %llu..%llu), %llu bytes, from %zu sender%s\n",
                dir, when, (unsigned long long) stats->total.records,
                (unsigned long long) stats->first_seq, (unsigned long long) stats->last_seq,
                (unsigned long long) stats->total.bytes, n, n == 1? "": "s");
    }
    else {
        printf ("%s: since %s: no records\n", dir, when);
    }
    if (n) {
        printf ("%-*s %9s %12s %7s %7s %9s %7s %6s %7s %9s\n", width, "agent", "records",
                "bytes", "share", "sent", "delivered", "queued", "held", "denied", "refusals");
    }
    for (size_t i = 0; i < n; i++) {
        s_stats_text (rows [i], names [i], width, stats->total.bytes);
    }
    free (names);
    return 0;
}

static const char *s_stats_help =
    "usage: bulkhead stats --data DIR [--since WHEN] [--json]\n\n"
    "Who uses how much of the log: per sender, what it caused in the window, the\n"
    "largest first. Safe while the bus runs (a read-only snapshot); it reads the\n"
    "whole log.\n\n"
    "  records, bytes     the log records whose sender is that agent (its messages,\n"
    "                     sessions, acknowledgements, commands, holds of its\n"
    "                     messages, refusals counted against it) and their stored\n"
    "                     size; share: of all the window's bytes\n"
    "  sent               messages it sent\n"
    "  delivered, queued, held, denied\n"
    "                     their verdicts: handed to a live session, put in the\n"
    "                     mailbox, held for approval, refused; a held message that\n"
    "                     is released counts again as delivered or queued\n"
    "  refusals           frames refused for form or load (RATE, DUPLICATE, TOOBIG,\n"
    "                     ...), each merged record counting as many as it merged;\n"
    "                     refusals of the last second may not be in the log yet\n"
    "  alerts             (--json) monitoring alerts opened about it (bulkhead alerts)\n\n"
    "For a live view of rates, holds, alerts and sessions: bulkhead top.\n"
    "Refusals before authentication are under the peer's address; the bus's own\n"
    "records (start, stop, policy) under (bus).\n\n"
    "  --data DIR         the bus's data directory\n"
    "  --since WHEN       only records since then: a duration back from now (90s,\n"
    "                     30m, 1h, 7d, 2w; a number alone is seconds) or a UTC time\n"
    "                     as the log shows it, 2026-12-01T21:33:57Z (a fraction of a\n"
    "                     second allowed); default the whole log\n"
    "  --json             one JSON object per sender a line, the same order (agent\n"
    "                     null for the bus's own records)\n";

int
cmd_stats (int argc, char **argv)
{
    static const struct option options [] = {
        { "data", required_argument, NULL, 'd' },
        { "since", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *dir = NULL;
    const char *since = NULL;
    bool json = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
            case 'd': dir = optarg; break;
            case 's': since = optarg; break;
            case 'j': json = true; break;
            case 'h': return s_help (s_stats_help, true);
            default: return s_help (s_stats_help, false);
        }
    }
    if (!dir || optind != argc) {
        return s_help (s_stats_help, false);
    }
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    uint64_t now_us = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
    stats_t stats = { 0 };
    if (since && !(stats.since_us = s_since (since, now_us))) {
        fputs ("bulkhead stats: --since takes a duration such as 90s, 30m, 1h, 7d, or a UTC "
               "time such as 2026-12-01T21:33:57Z, not '", stderr);
        bus_print_line (stderr, since);
        fputs ("'\n", stderr);
        return 2;
    }
    bus_store_t *store = cmd_open_log (dir, "stats");
    if (!store) {
        return 1;
    }
    stats.rows = zhashx_new ();
    if (!stats.rows) {
        bus_store_destroy (&store);
        fprintf (stderr, "bulkhead stats: NOMEM: out of memory\n");
        return 1;
    }
    zhashx_set_destructor (stats.rows, s_row_free);
    bus_error_t err;
    int rc = bus_store_iterate (store, 1, s_stats_record, &stats, &err);
    bus_store_destroy (&store);
    size_t count = zhashx_size (stats.rows) + (stats.bus.records? 1: 0);
    stats_row_t **rows = stats.failed || rc < 0? NULL: calloc (count + 1, sizeof *rows);
    if (!rows) {
        zhashx_destroy (&stats.rows);
        if (rc < 0 && !stats.failed) {
            return cmd_error ("stats", &err);
        }
        fprintf (stderr, "bulkhead stats: NOMEM: out of memory reading the log\n");
        return 1;
    }
    size_t n = 0;
    for (stats_row_t *row = zhashx_first (stats.rows); row; row = zhashx_next (stats.rows)) {
        rows [n++] = row;
    }
    if (stats.bus.records) {
        rows [n++] = &stats.bus;
    }
    qsort (rows, n, sizeof *rows, s_row_compare);
    if (json) {
        for (size_t i = 0; i < n; i++) {
            s_stats_json (rows [i]);
        }
    }
    else
    if (s_stats_table (&stats, rows, n, dir, since) != 0) {
        rc = -1;
    }
    free (rows);
    zhashx_destroy (&stats.rows);
    return rc < 0? 1: 0;
}
