/*  cmd_policy.c: what a policy grants, read by a person.

    check    is the policy valid; then what to look at: privileged edges with
             no scope, keys expired or about to expire (warnings), and the
             keys by age
    access   who has what: per agent its keys and their age, roles, trust,
             provider, and every edge from it with its classes and scopes;
             with --data, when each edge and each key was last used

    Every name, pattern and sentence here came from the policy file (or
    the log), so each goes through bus_print, even though the loader has
    checked names already: the printer is the one place that decides.
*/
#include "cmd.h"
#include "bus_policy.h"
#include "med_blast.h"
#include "med_chain.h"
#include "med_hold.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_DAY_US        (UINT64_C (86400) * 1000000)
#define S_WARN_DAYS     14      //  check warns this many days ahead of an expiry

static int
s_help (const char *text, bool ok)
{
    fputs (text, ok? stdout: stderr);
    return ok? 0: 2;
}

static uint64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

//  A time as the policy writes it: YYYY-MM-DD, with THH:MM:SSZ when it is
//  not midnight (UTC) or when full is asked for (times from the log).
static const char *
s_when (char out [32], uint64_t us, bool full)
{
    time_t secs = (time_t) (us / 1000000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    strftime (out, 32, full || secs % 86400? "%Y-%m-%dT%H:%M:%SZ": "%Y-%m-%d", &tm);
    return out;
}

//  A name or pattern from the file, escaped, into buf (for padding).
static const char *
s_escaped (char *buf, size_t cap, const char *text)
{
    bus_print_how_t how = { .flags = BUS_PRINT_LINE };
    bus_print_buf (buf, cap, &how, text, strlen (text), NULL);
    return buf;
}

//  ---------------------------------------------------------------------
//  A key's dates, as both commands tell them

typedef struct {
    const bus_agent_t *agent;
    int64_t age_days;           //  whole days since created; -1 if not said
    bool expires;               //  it has an expiry (its own or key_max_age's)
    bool expired;               //  ... which has passed: the bus refuses the key
    uint64_t days;              //  days until expiry (rounded up), or since it
    bool capped;                //  the expiry is created + key_max_age
} s_key_t;

static void
s_key_state (s_key_t *key, const bus_policy_t *policy, const bus_agent_t *agent, uint64_t now)
{
    memset (key, 0, sizeof *key);
    key->agent = agent;
    key->age_days = -1;
    if (agent->created_us) {
        key->age_days = now > agent->created_us? (int64_t) ((now - agent->created_us) / S_DAY_US): 0;
    }
    if (agent->expires_us) {
        key->expires = true;
        key->expired = now >= agent->expires_us;
        key->days = key->expired? (now - agent->expires_us) / S_DAY_US
                                : (agent->expires_us - now + S_DAY_US - 1) / S_DAY_US;
        key->capped = policy->key_max_age && agent->created_us
                   && agent->expires_us == agent->created_us + policy->key_max_age * S_DAY_US;
    }
}

//  Oldest first; a key whose age the policy does not say comes before
//  all others (nothing bounds it), then by name.
static int
s_key_compare (const void *a, const void *b)
{
    const s_key_t *x = a, *y = b;
    uint64_t cx = x->agent->created_us, cy = y->agent->created_us;
    if (cx != cy) {
        return !cx? -1: !cy? 1: cx < cy? -1: 1;
    }
    return strcmp (x->agent->name, y->agent->name);
}

static void
s_plural (char *buf, size_t cap, uint64_t n, const char *unit)
{
    snprintf (buf, cap, "%llu %s%s", (unsigned long long) n, unit, n == 1? "": "s");
}

//  The class names of mask (only the privileged ones if asked), joined.
static void
s_classes (char *buf, size_t cap, const bus_policy_t *policy, uint64_t mask,
           bool privileged_only)
{
    size_t len = 0;
    buf [0] = 0;
    for (size_t i = 0; i < policy->class_count && len < cap; i++) {
        if ((mask >> i & 1) && (!privileged_only || policy->classes [i].privileged)) {
            len += (size_t) snprintf (buf + len, cap - len, "%s%s", len? ", ": "",
                                      policy->classes [i].name);
        }
    }
}

//  True if the edge limits anything, on its own lines or for a class.
static bool
s_scoped (const bus_edge_t *edge)
{
    return !bus_scope_empty (bus_edge_scope (edge)) || edge->class_scope_count;
}

//  The privileged classes of the edge that no scope limits.
static uint64_t
s_unscoped_privileged (const bus_policy_t *policy, const bus_edge_t *edge)
{
    uint64_t mask = 0;
    for (size_t c = 0; c < policy->class_count; c++) {
        bus_scope_t scope;
        bus_policy_scope (edge, (int) c, &scope);
        if ((edge->classes >> c & 1) && policy->classes [c].privileged
        &&  bus_scope_empty (&scope)) {
            mask |= UINT64_C (1) << c;
        }
    }
    return mask;
}

//  ---------------------------------------------------------------------
//  check

typedef struct {
    int line;
    size_t order;               //  ties keep the order they were found in
    char text [1024];
} s_warning_t;

static int
s_warning_compare (const void *a, const void *b)
{
    const s_warning_t *x = a, *y = b;
    if (x->line != y->line) {
        return x->line < y->line? -1: 1;
    }
    return x->order < y->order? -1: x->order > y->order;
}

static s_warning_t *
s_warn (s_warning_t *list, size_t *n, int line)
{
    s_warning_t *w = &list [*n];
    w->line = line;
    w->order = (*n)++;
    return w;
}

//  Risky shapes the blast-radius analysis sees (mediators/med_blast.h).
//  The per-agent reach comes from the score (one pass over the condensed
//  graph, whatever the policy's size); the approvers and causal agents
//  from one analysis of all untrusted agents together.
static int
s_blast_warnings (const bus_policy_t *policy, s_warning_t *list, size_t *n)
{
    med_graph_t *graph;
    bus_error_t err;
    if (med_graph_new (&graph, policy, NULL, 0, 0, &err) != 0) {
        return -1;
    }
    size_t agents = policy->agent_count;
    uint64_t *masks = calloc (2 * agents + 1, sizeof *masks);
    uint32_t *set = calloc (agents + 1, sizeof *set);
    uint32_t direct [BUS_CLASS_MAX], approval [BUS_CLASS_MAX];
    if (!masks || !set || med_blast_score (graph, direct, approval, masks, &err) != 0) {
        free (masks), free (set);
        med_graph_destroy (&graph);
        return -1;
    }
    size_t n_untrusted = 0;
    for (size_t a = 0; a < agents; a++) {
        const bus_agent_t *agent = &policy->agents [a];
        if (!agent->untrusted) {
            continue;
        }
        set [n_untrusted++] = (uint32_t) a;
        uint64_t reach = masks [2 * a + 1];
        if (!reach) {
            continue;
        }
        char classes [256];
        s_classes (classes, sizeof classes, policy, reach, true);
        char without [300] = "";
        if (masks [2 * a]) {
            char names [256];
            s_classes (names, sizeof names, policy, masks [2 * a], true);
            snprintf (without, sizeof without, ", %s without a person", names);
        }
        snprintf (s_warn (list, n, agent->line)->text, sizeof list->text,
                  "untrusted agent '%s' has a path to privileged class %.300s that no stage blocks"
                  "%.300s; `bulkhead blast --policy FILE %s` shows the paths", agent->name, classes,
                  without, agent->name);
    }
    //  Held classes some edge carries: no quorum to be had, one approver,
    //  or all of them on one provider. A class is held where it says hold
    //  or restricted = hold, or where a scope of an edge carrying it says
    //  outside = hold (its approvers decide).
    uint64_t carried = 0, outside_hold = 0;
    int first_edge [BUS_CLASS_MAX] = { 0 };     //  the line of the first edge carrying it
    //  An edge carrying a class from an agent that may approve it: the
    //  hold stage never counts a sender's own vote, so its messages have
    //  one approver fewer (the first such edge per class).
    const bus_edge_t *own [BUS_CLASS_MAX] = { NULL };
    for (size_t e = 0; e < policy->edge_count; e++) {
        const bus_edge_t *edge = &policy->edges [e];
        const bus_agent_t *from = &policy->agents [edge->from];
        for (uint64_t bits = (from->roles & BUS_ROLE_APPROVER)? edge->classes: 0; bits;
             bits &= bits - 1) {
            int c = __builtin_ctzll (bits);
            const bus_class_t *klass = &policy->classes [c];
            bus_scope_t scope;
            bus_policy_scope (edge, c, &scope);
            bool held = klass->hold || (klass->privileged && klass->restricted_hold)
                     || scope.outside == BUS_OUTSIDE_HOLD;
            if (!own [c] && held && med_hold_may_approve (from, klass)) {
                own [c] = edge;
            }
        }
        for (uint64_t fresh = edge->classes & ~carried; fresh; fresh &= fresh - 1) {
            first_edge [__builtin_ctzll (fresh)] = edge->line;
        }
        carried |= edge->classes;
        for (size_t c = 0; (edge->scope || edge->class_scope_count) && c < policy->class_count; c++) {
            bus_scope_t scope;
            if (edge->classes & (UINT64_C (1) << c)) {
                bus_policy_scope (edge, (int) c, &scope);
                outside_hold |= (uint64_t) (scope.outside == BUS_OUTSIDE_HOLD) << c;
            }
        }
    }
    for (size_t c = 0; c < policy->class_count; c++) {
        const bus_class_t *klass = &policy->classes [c];
        //  restricted = hold holds only a privileged class's restricted
        //  messages (med_taint); another class passes them, marked.
        bool restricted_hold = klass->privileged && klass->restricted_hold;
        bool held = klass->hold || restricted_hold || (outside_hold & (UINT64_C (1) << c));
        if (!held || !(carried & (UINT64_C (1) << c))) {
            continue;
        }
        size_t eligible = 0, same = 0;
        const bus_agent_t *first = NULL;
        for (size_t a = 0; a < agents; a++) {
            const bus_agent_t *agent = &policy->agents [a];
            if (!med_hold_may_approve (agent, klass)) {
                continue;
            }
            if (!first) {
                first = agent;
            }
            eligible++;
            same += agent->provider [0] && strcmp (agent->provider, first->provider) == 0;
        }
        int line = klass->line? klass->line: first? first->line: first_edge [c];
        if (eligible < med_hold_quorum (klass)) {
            snprintf (s_warn (list, n, line)->text, sizeof list->text,
                      "what class %s holds%s can never be released: %u approval%s needed and "
                      "%zu agent%s may approve it (role = approver%s); each held message waits "
                      "its ttl (%u s) and expires", klass->name,
                      klass->hold || restricted_hold? "": " (a scope's outside = hold)",
                      med_hold_quorum (klass), med_hold_quorum (klass) == 1? " is": "s are",
                      eligible, eligible == 1? "": "s",
                      klass->approver_count? ", named in its approvers": "", klass->ttl_s);
            continue;
        }
        if (own [c] && eligible - 1 < med_hold_quorum (klass)) {
            const char *sender = policy->agents [own [c]->from].name;
            snprintf (s_warn (list, n, own [c]->line)->text, sizeof list->text,
                      "what class %s holds from %s can never be released: %u approval%s needed, "
                      "%s may not approve its own messages and %zu other agent%s may approve it "
                      "(role = approver%s); each waits its ttl (%u s) and expires", klass->name,
                      sender, med_hold_quorum (klass), med_hold_quorum (klass) == 1? " is": "s are",
                      sender, eligible - 1, eligible - 1 == 1? "": "s",
                      klass->approver_count? ", named in its approvers": "", klass->ttl_s);
        }
        if (!klass->privileged) {
            continue;
        }
        if (eligible == 1) {
            snprintf (s_warn (list, n, line)->text, sizeof list->text,
                      "privileged class %s has one approver (%s): whoever has that one key "
                      "approves every %s message; name a second approver", klass->name,
                      first->name, klass->name);
        }
        else
        if (eligible > 1 && same == eligible) {
            snprintf (s_warn (list, n, line)->text, sizeof list->text,
                      "every approver of %s is on provider %s: one provider's compromise "
                      "holds the whole quorum; add an approver elsewhere", klass->name,
                      first->provider);
        }
    }
    if (n_untrusted) {
        med_blast_options_t options;
        med_blast_options_default (&options);
        options.k = 0;
        options.cuts = 0;
        options.counted_paths = false;  //  the distances only
        med_blast_t *blast;
        if (med_blast_open (&blast, graph, set, n_untrusted, &options, &err) != 0) {
            free (masks), free (set);
            med_graph_destroy (&graph);
            return -1;
        }
        for (size_t a = 0; a < agents; a++) {
            const bus_agent_t *agent = &policy->agents [a];
            if (blast->inside [a] || blast->dist_approval [a] == UINT32_MAX) {
                continue;
            }
            if (agent->roles & BUS_ROLE_APPROVER) {
                snprintf (s_warn (list, n, agent->line)->text, sizeof list->text,
                          "approver '%s' receives content that starts at an untrusted agent "
                          "(%u hops%s): it can be steered; keep approvers off paths from "
                          "untrusted agents", agent->name, blast->dist_approval [a],
                          blast->dist_direct [a] == UINT32_MAX? ", after an approval": "");
            }
            if (agent->causal) {
                snprintf (s_warn (list, n, agent->line)->text, sizeof list->text,
                          "agent '%s' is taint = causal and receives content that starts at an "
                          "untrusted agent (%u hops): steered, it can omit the causes and drop "
                          "the restricted mark; make it sticky (the default)", agent->name,
                          blast->dist_approval [a]);
            }
        }
        med_blast_destroy (&blast);
    }
    free (masks);
    free (set);
    med_graph_destroy (&graph);
    return 0;
}

//  At most one warning per edge and one per agent: *out (caller frees)
//  gets them sorted by line; returns the count, or -1 out of memory.
static long
s_warnings (const bus_policy_t *policy, uint64_t now, s_warning_t **out)
{
    //  Per edge one, per agent three (its key, untrusted reach, causal
    //  downstream or approver steered), per class two.
    s_warning_t *list = calloc (policy->edge_count + 3 * policy->agent_count
                                + 2 * policy->class_count + 1, sizeof *list);
    if (!list) {
        return -1;
    }
    size_t n = 0;
    //  A privileged class on an edge with no allowlist: the edge carries
    //  every action of it, on every resource, with every tool.
    for (size_t i = 0; i < policy->edge_count; i++) {
        const bus_edge_t *edge = &policy->edges [i];
        char classes [512];
        s_classes (classes, sizeof classes, policy, s_unscoped_privileged (policy, edge), true);
        if (!classes [0]) {
            continue;
        }
        s_warning_t *w = &list [n];
        w->line = edge->line;
        w->order = n++;
        snprintf (w->text, sizeof w->text, "edge %s -> %s carries privileged class%s %s and has "
                  "no scope: it may carry any action of %s on any resource; list what it needs "
                  "under it (actions, tools, resources)", policy->agents [edge->from].name,
                  policy->agents [edge->to].name, strchr (classes, ',')? "es": "", classes,
                  strchr (classes, ',')? "them": "it");
    }
    for (size_t i = 0; i < policy->agent_count; i++) {
        const bus_agent_t *agent = &policy->agents [i];
        s_key_t key;
        s_key_state (&key, policy, agent, now);
        if (!key.expires || (!key.expired && key.days > S_WARN_DAYS)) {
            continue;
        }
        char date [32], created [32], days [32], why [128] = "", next [160];
        s_when (date, agent->expires_us, false);
        s_plural (days, sizeof days, key.days, "day");
        if (key.capped) {
            snprintf (why, sizeof why, " (bus.key_max_age %u days from created %s)",
                      policy->key_max_age, s_when (created, agent->created_us, false));
        }
        if (agent->next_key_z85 [0]) {
            snprintf (next, sizeof next, "finish the rotation to its next_key %s (make it the "
                      "key, set created, remove next_key, reload)", agent->next_key_fp);
        }
        else {
            snprintf (next, sizeof next, "give it a new key (bulkhead keygen %s --rotate)",
                      agent->name);
        }
        s_warning_t *w = &list [n];
        w->line = agent->line;
        w->order = n++;
        if (key.expired) {
            snprintf (w->text, sizeof w->text, "key %s of agent '%s' expired on %s%s, %s ago: "
                      "the bus refuses it as if it were removed; %s", agent->key_fp, agent->name,
                      date, why, days, next);
        }
        else {
            snprintf (w->text, sizeof w->text, "key %s of agent '%s' expires on %s%s, in %s: "
                      "%s before then", agent->key_fp, agent->name, date, why, days, next);
        }
    }
    if (s_blast_warnings (policy, list, &n) != 0) {
        free (list);
        return -1;
    }
    qsort (list, n, sizeof *list, s_warning_compare);
    *out = list;
    return (long) n;
}

//  The keys by age, oldest first, one line each.
static int
s_key_table (const bus_policy_t *policy, uint64_t now)
{
    s_key_t *keys = calloc (policy->agent_count + 1, sizeof *keys);
    if (!keys) {
        return -1;
    }
    int width = 5;
    for (size_t i = 0; i < policy->agent_count; i++) {
        s_key_state (&keys [i], policy, &policy->agents [i], now);
        int len = (int) strlen (policy->agents [i].name);
        width = len > width? len: width;
    }
    qsort (keys, policy->agent_count, sizeof *keys, s_key_compare);
    printf ("keys, oldest first (first those with no created date: nothing bounds their "
            "age):\n");
    printf ("%-*s  %-16s  %-10s  %5s  %s\n", width, "agent", "key", "created", "days", "expires");
    for (size_t i = 0; i < policy->agent_count; i++) {
        const s_key_t *key = &keys [i];
        const bus_agent_t *agent = key->agent;
        char name [BUS_NAME_MAX * 4 + 1], created [32] = "-", age [24] = "-", expires [32] = "never";
        if (agent->created_us) {
            s_when (created, agent->created_us, false);
            snprintf (age, sizeof age, "%lld", (long long) key->age_days);
        }
        if (key->expires) {
            s_when (expires, agent->expires_us, false);
        }
        printf ("%-*s  %-16s  %-10s  %5s  %s", width,
                s_escaped (name, sizeof name, agent->name), agent->key_fp, created, age, expires);
        if (key->expired) {
            printf (" (expired)");
        }
        else
        if (key->expires && key->days <= S_WARN_DAYS) {
            char days [32];
            s_plural (days, sizeof days, key->days, "day");
            printf (" (in %s)", days);
        }
        if (agent->next_key_z85 [0]) {
            printf ("  next_key %s", agent->next_key_fp);
        }
        printf ("\n");
    }
    free (keys);
    return 0;
}

static const char *s_check_help =
    "usage: bulkhead check FILE [--strict]\n\n"
    "Validates a policy. Errors name the file, the line, and what is known, e.g.\n"
    "  policy.cfg:12: unknown agent 'payments-v2' as recipient in edges (known: payments, planner)\n\n"
    "A valid policy gets \"FILE: ok: ...\", the stages of the chain, and then, on\n"
    "stderr, a line \"FILE:LINE: warning: ...\" for each of these:\n"
    "  - an edge that carries a privileged class and has no scope (no actions,\n"
    "    tools or resources under it): it carries every action of that class\n"
    "  - a key that has expired (its expires, or created + bus.key_max_age\n"
    "    days): the bus refuses it as if it were removed\n"
    "  - a key that expires within 14 days\n"
    "  - an untrusted agent with a path to a privileged class that no stage blocks\n"
    "  - a held class whose quorum no set of its approvers can meet (none at all,\n"
    "    or fewer than the quorum, or so for an approver's own messages): what it\n"
    "    holds can only expire\n"
    "  - a privileged held class with one approver, or all its approvers on one provider\n"
    "  - an approver that content from an untrusted agent reaches (it can be steered)\n"
    "  - a causal-mode agent downstream of an untrusted one (it can drop the taint)\n"
    "(bulkhead blast shows the paths behind the last four.)\n"
    "Then the keys by age, oldest first: agent, key fingerprint, created, age in\n"
    "days, expires, and next_key's fingerprint while a rotation is under way. A key\n"
    "with no created date comes first: nothing bounds its age.\n\n"
    "  --strict           every warning is a failure\n\n"
    "Exit 0 if the policy is valid (under --strict: and has no warning), 1 if not.\n";

int
cmd_check (int argc, char **argv)
{
    static const struct option options [] = {
        { "strict", no_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    bool strict = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
            case 's': strict = true; break;
            case 'h': return s_help (s_check_help, true);
            default: return s_help (s_check_help, false);
        }
    }
    if (optind != argc - 1) {
        return s_help (s_check_help, false);
    }
    const char *path = argv [optind];
    bus_policy_t *policy;
    bus_error_t err;
    if (bus_policy_load_max (&policy, path, BUS_POLICY_OFFLINE_MAX, &err) != 0) {
        return cmd_policy_error ("check", &err);
    }
    med_chain_t *chain;
    if (med_chain_open (&chain, policy, &err) != 0) {
        fprintf (stderr, "%s: ", path);
        bus_print_line (stderr, err.text);
        fputc ('\n', stderr);
        bus_policy_destroy (&policy);
        return 1;
    }
    med_chain_destroy (&chain);
    uint64_t now = s_now_us ();
    s_warning_t *warnings;
    long count = s_warnings (policy, now, &warnings);
    if (count < 0) {
        bus_policy_destroy (&policy);
        fprintf (stderr, "bulkhead check: NOMEM: out of memory\n");
        return 1;
    }
    //  stderr is unbuffered and bus_print_line writes a character at a
    //  time: a fleet's thousands of warnings were a system call a byte.
    //  They are written in memory first, then at once.
    char *text = NULL;
    size_t size = 0;
    FILE *mem = count? open_memstream (&text, &size): NULL;
    bool written = false;
    for (int pass = mem? 0: 1; pass < 2 && !written; pass++) {
        FILE *out = pass == 0? mem: stderr;
        for (long i = 0; i < count; i++) {
            fprintf (out, "%s:%d: warning: ", path, warnings [i].line);
            bus_print_line (out, warnings [i].text);
            fputc ('\n', out);
        }
        if (pass == 0) {
            written = fclose (mem) == 0 && fwrite (text, 1, size, stderr) == size;
        }
    }
    free (text);
    free (warnings);
    int rc = 0;
    if (strict && count) {
        fprintf (stderr, "%s: failed: %ld warning%s, and --strict makes each a failure\n", path,
                 count, count == 1? "": "s");
        rc = 1;
    }
    else {
        printf ("%s: ok: %zu agents, %zu edges, %zu classes, hash %.16s\n", path,
                policy->agent_count, policy->edge_count, policy->class_count, policy->hash);
        printf ("stages:");
        for (const med_stage_t *const *stage = med_chain_stages (); *stage; stage++) {
            printf (" %s", (*stage)->name);
        }
        printf ("\n");
        if (s_key_table (policy, now) != 0) {
            fprintf (stderr, "bulkhead check: NOMEM: out of memory\n");
            rc = 1;
        }
    }
    bus_policy_destroy (&policy);
    return rc;
}

//  ---------------------------------------------------------------------
//  access

//  What the log says about the policy's grants: the last time each was
//  used. Times are the records' time_us; 0 is never.
typedef struct {
    const bus_policy_t *policy;
    uint64_t *edge_last;        //  per edge: the last SEND along it delivered,
                                //  queued or held
    uint64_t *key_last;         //  per agent, two: key, next_key: the last record
                                //  of a message or session it authenticated
    uint64_t records;
    uint64_t last_seq;
} s_usage_t;

static void
s_latest (uint64_t *slot, uint64_t time_us)
{
    if (time_us > *slot) {
        *slot = time_us;
    }
}

static int
s_usage_record (void *arg, const Bulkhead__V1__Record *rec, const uint8_t *raw, size_t raw_len)
{
    (void) raw;
    (void) raw_len;
    s_usage_t *usage = arg;
    usage->records++;
    usage->last_seq = rec->seq;
    const bus_agent_t *from = rec->sender? bus_policy_agent (usage->policy, rec->sender): NULL;
    if (!from) {
        return 0;
    }
    bool release = rec->event && strcmp (rec->event, "release") == 0;
    size_t index = bus_policy_agent_index (usage->policy, from);
    //  A release is the approver's act, not the key's: it names the key
    //  the message came with, at the time it was approved.
    if (rec->key_fp && !release) {
        if (strcmp (rec->key_fp, from->key_fp) == 0) {
            s_latest (&usage->key_last [2 * index], rec->time_us);
        }
        else
        if (from->next_key_fp [0] && strcmp (rec->key_fp, from->next_key_fp) == 0) {
            s_latest (&usage->key_last [2 * index + 1], rec->time_us);
        }
    }
    if (rec->kind != BULKHEAD__V1__RECORD_KIND__RECORD_SEND || !rec->recipient
    ||  !rec->has_verdict) {
        return 0;
    }
    if (rec->verdict != BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
    &&  rec->verdict != BULKHEAD__V1__VERDICT__VERDICT_QUEUED
    &&  rec->verdict != BULKHEAD__V1__VERDICT__VERDICT_HELD) {
        return 0;
    }
    const bus_agent_t *to = bus_policy_agent (usage->policy, rec->recipient);
    const bus_edge_t *edge = to? bus_policy_edge (usage->policy, from, to): NULL;
    if (edge) {
        s_latest (&usage->edge_last [edge - usage->policy->edges], rec->time_us);
    }
    return 0;
}

//  A list of patterns: "a, b" on a line, or a JSON array (null if none).
static void
s_patterns (const bus_patterns_t *patterns, bool json)
{
    char **list = patterns->patterns;
    size_t count = patterns->count;
    if (json && !count) {
        printf ("null");
        return;
    }
    printf ("%s", json? "[": "");
    for (size_t i = 0; i < count; i++) {
        printf ("%s", i? (json? ",": ", "): "");
        if (json) {
            bus_print_json (stdout, list [i]);
        }
        else {
            bus_print_line (stdout, list [i]);
        }
    }
    printf ("%s", json? "]": "");
}

//  The lists and outside of a scope, as JSON members after "actions":.
static void
s_scope_json (const bus_scope_t *scope)
{
    s_patterns (&scope->actions, true);
    printf (",\"tools\":");
    s_patterns (&scope->tools, true);
    printf (",\"resources\":");
    s_patterns (&scope->resources, true);
    printf (",\"outside\":\"%s\"", scope->outside == BUS_OUTSIDE_HOLD? "hold": "deny");
}


static const char *s_role_names [] = { "agent", "approver", "operator" };

static void
s_access_json_time (const char *key, uint64_t time_us)
{
    char when [32];
    printf (",\"%s\":", key);
    if (time_us) {
        bus_print_json (stdout, s_when (when, time_us, true));
    }
    else {
        printf ("null");
    }
}

static void
s_access_json (const bus_policy_t *policy, const s_usage_t *usage, size_t index, uint64_t now)
{
    const bus_agent_t *agent = &policy->agents [index];
    s_key_t key;
    s_key_state (&key, policy, agent, now);
    char when [32];
    printf ("{\"agent\":");
    bus_print_json (stdout, agent->name);
    printf (",\"key_fp\":\"%s\",\"created\":", agent->key_fp);
    bus_print_json (stdout, agent->created_us? s_when (when, agent->created_us, false): NULL);
    if (key.age_days >= 0) {
        printf (",\"age_days\":%lld", (long long) key.age_days);
    }
    else {
        printf (",\"age_days\":null");
    }
    printf (",\"expires\":");
    bus_print_json (stdout, key.expires? s_when (when, agent->expires_us, false): NULL);
    printf (",\"expired\":%s,\"next_key_fp\":", key.expired? "true": "false");
    bus_print_json (stdout, agent->next_key_z85 [0]? agent->next_key_fp: NULL);
    if (usage) {
        s_access_json_time ("key_last_used", usage->key_last [2 * index]);
        if (agent->next_key_z85 [0]) {
            s_access_json_time ("next_key_last_used", usage->key_last [2 * index + 1]);
        }
    }
    printf (",\"roles\":[");
    bool first = true;
    for (unsigned r = 0; r < 3; r++) {
        if (agent->roles & (1u << r)) {
            printf ("%s\"%s\"", first? "": ",", s_role_names [r]);
            first = false;
        }
    }
    printf ("],\"trust\":\"%s\",\"provider\":", agent->untrusted? "untrusted": "trusted");
    bus_print_json (stdout, agent->provider [0]? agent->provider: NULL);
    printf (",\"edges\":[");
    first = true;
    for (size_t i = 0; i < policy->edge_count; i++) {
        const bus_edge_t *edge = &policy->edges [i];
        if (edge->from != index) {
            continue;
        }
        printf ("%s{\"to\":", first? "": ",");
        first = false;
        bus_print_json (stdout, policy->agents [edge->to].name);
        printf (",\"line\":%d,\"classes\":[", edge->line);
        bool first_class = true;
        for (size_t c = 0; c < policy->class_count; c++) {
            if (edge->classes >> c & 1) {
                printf ("%s", first_class? "": ",");
                bus_print_json (stdout, policy->classes [c].name);
                first_class = false;
            }
        }
        printf ("],\"privileged\":");
        char privileged [512];
        s_classes (privileged, sizeof privileged, policy, edge->classes, true);
        printf ("%s,\"scoped\":%s,\"actions\":", privileged [0]? "true": "false",
                s_scoped (edge)? "true": "false");
        s_scope_json (bus_edge_scope (edge));
        printf (",\"class_scopes\":[");
        for (size_t b = 0; b < edge->class_scope_count; b++) {
            bus_scope_t scope;
            bus_policy_scope (edge, edge->class_scopes [b].class_index, &scope);
            printf ("%s{\"class\":", b? ",": "");
            bus_print_json (stdout, policy->classes [scope.class_index].name);
            printf (",\"line\":%d,\"actions\":", scope.line);
            s_scope_json (&scope);
            printf ("}");
        }
        printf ("]");
        if (usage) {
            s_access_json_time ("last_used", usage->edge_last [i]);
        }
        printf ("}");
    }
    printf ("]}\n");
}

//  "; actions a, b; tools ...; outside hold" for one scope, on a line.
static void
s_scope_text (const bus_scope_t *scope)
{
    static const char *names [] = { "actions", "tools", "resources" };
    const bus_patterns_t *lists [] = { &scope->actions, &scope->tools, &scope->resources };
    for (int k = 0; k < 3; k++) {
        if (lists [k]->count) {
            printf ("; %s ", names [k]);
            s_patterns (lists [k], false);
        }
    }
    if (!bus_scope_empty (scope)) {
        printf ("; outside %s", scope->outside == BUS_OUTSIDE_HOLD? "hold": "deny");
    }
}

//  "; last used T" or "; last used never", with --data only.
static void
s_access_last (const s_usage_t *usage, uint64_t time_us)
{
    char when [32];
    if (usage) {
        printf ("; last used %s", time_us? s_when (when, time_us, true): "never");
    }
}

static void
s_access_text (const bus_policy_t *policy, const s_usage_t *usage, size_t index, uint64_t now)
{
    const bus_agent_t *agent = &policy->agents [index];
    s_key_t key;
    s_key_state (&key, policy, agent, now);
    char name [BUS_NAME_MAX * 4 + 1], when [32], days [32];
    printf ("\n%s\n", s_escaped (name, sizeof name, agent->name));
    printf ("    key       %s  ", agent->key_fp);
    if (agent->created_us) {
        s_plural (days, sizeof days, (uint64_t) key.age_days, "day");
        printf ("created %s (%s old)", s_when (when, agent->created_us, false), days);
    }
    else {
        printf ("created -, age unknown");
    }
    if (key.expires) {
        s_plural (days, sizeof days, key.days, "day");
        printf (", expires %s%s (%s %s%s)", s_when (when, agent->expires_us, false),
                key.capped? " by bus.key_max_age": "", key.expired? "expired": "in", days,
                key.expired? " ago: refused": "");
    }
    else {
        printf (", never expires");
    }
    s_access_last (usage, usage? usage->key_last [2 * index]: 0);
    printf ("\n");
    if (agent->next_key_z85 [0]) {
        printf ("    next_key  %s  rotation under way: both keys authenticate as ",
                agent->next_key_fp);
        bus_print_line (stdout, agent->name);
        s_access_last (usage, usage? usage->key_last [2 * index + 1]: 0);
        printf ("\n");
    }
    printf ("    roles     ");
    bool first = true;
    for (unsigned r = 0; r < 3; r++) {
        if (agent->roles & (1u << r)) {
            printf ("%s%s", first? "": ", ", s_role_names [r]);
            first = false;
        }
    }
    printf ("\n    trust     %s\n    provider  ", agent->untrusted? "untrusted": "trusted");
    bus_print_line (stdout, agent->provider [0]? agent->provider: NULL);
    printf ("\n");
    int width = 0;
    for (size_t i = 0; i < policy->edge_count; i++) {
        if (policy->edges [i].from == index) {
            int len = (int) strlen (s_escaped (name, sizeof name,
                                               policy->agents [policy->edges [i].to].name));
            width = len > width? len: width;
        }
    }
    if (!width) {
        printf ("    no edges from it\n");
    }
    for (size_t i = 0; i < policy->edge_count; i++) {
        const bus_edge_t *edge = &policy->edges [i];
        if (edge->from != index) {
            continue;
        }
        char classes [512];
        s_classes (classes, sizeof classes, policy, edge->classes, false);
        printf ("    -> %-*s  ", width, s_escaped (name, sizeof name, policy->agents [edge->to].name));
        bus_print_line (stdout, classes);
        if (!s_scoped (edge)) {
            printf ("; no scope");
        }
        s_scope_text (bus_edge_scope (edge));
        s_access_last (usage, usage? usage->edge_last [i]: 0);
        printf ("\n");
        for (size_t b = 0; b < edge->class_scope_count; b++) {
            bus_scope_t scope;
            bus_policy_scope (edge, edge->class_scopes [b].class_index, &scope);
            printf ("       %-*s  %s", width, "", policy->classes [scope.class_index].name);
            s_scope_text (&scope);
            printf ("\n");
        }
    }
}

static const char *s_access_help =
    "usage: bulkhead access --policy FILE [--data DIR] [--json]\n\n"
    "Who has what: per agent (by name), its key's fingerprint, created date, age\n"
    "and expiry (and next_key's fingerprint during a rotation), its roles, trust\n"
    "and provider, and every edge from it: the classes it carries and its scopes\n"
    "(actions, tools, resources, and what happens outside them). An edge with no\n"
    "scope carries every action of its classes.\n\n"
    "  --policy FILE      the policy (as bulkhead check reads it)\n"
    "  --data DIR         also read the bus's log (read-only, safe while the bus\n"
    "                     runs; it reads the whole log): when each edge was last\n"
    "                     used (its last message delivered, queued or held; a\n"
    "                     denied one is not a use) and each key (its last message\n"
    "                     or session), or never. Only what the current policy\n"
    "                     names is shown: an agent or edge it no longer has is not\n"
    "  --json             one JSON object per agent a line: agent, key_fp, created,\n"
    "                     age_days, expires, expired, next_key_fp, roles, trust,\n"
    "                     provider, edges [{to, line, classes, privileged, scoped,\n"
    "                     actions, tools, resources, outside}]; with --data also\n"
    "                     key_last_used, next_key_last_used and each edge's\n"
    "                     last_used (null: never); null where the policy says\n"
    "                     nothing\n";

int
cmd_access (int argc, char **argv)
{
    static const struct option options [] = {
        { "policy", required_argument, NULL, 'p' },
        { "data", required_argument, NULL, 'd' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *path = NULL;
    const char *dir = NULL;
    bool json = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
            case 'p': path = optarg; break;
            case 'd': dir = optarg; break;
            case 'j': json = true; break;
            case 'h': return s_help (s_access_help, true);
            default: return s_help (s_access_help, false);
        }
    }
    if (!path || optind != argc) {
        return s_help (s_access_help, false);
    }
    bus_policy_t *policy;
    bus_error_t err;
    if (bus_policy_load (&policy, path, &err) != 0) {
        return cmd_policy_error ("access", &err);
    }
    s_usage_t usage = { .policy = policy };
    int rc = 0;
    if (dir) {
        usage.edge_last = calloc (policy->edge_count + 1, sizeof *usage.edge_last);
        usage.key_last = calloc (2 * policy->agent_count + 1, sizeof *usage.key_last);
        bus_store_t *store = NULL;
        if (!usage.edge_last || !usage.key_last) {
            fprintf (stderr, "bulkhead access: NOMEM: out of memory\n");
            rc = 1;
        }
        else
        if (!(store = cmd_open_log (dir, "access"))) {
            rc = 1;
        }
        else
        if (bus_store_iterate (store, 1, s_usage_record, &usage, &err) < 0) {
            rc = cmd_error ("access", &err);
        }
        bus_store_destroy (&store);
    }
    if (rc == 0) {
        uint64_t now = s_now_us ();
        if (!json) {
            printf ("%s: %zu agents, %zu edges, hash %.16s", path, policy->agent_count,
                    policy->edge_count, policy->hash);
            if (dir) {
                printf ("; log %s: %llu records", dir, (unsigned long long) usage.records);
            }
            printf ("\n");
        }
        for (size_t i = 0; i < policy->agent_count; i++) {
            if (json) {
                s_access_json (policy, dir? &usage: NULL, i, now);
            }
            else {
                s_access_text (policy, dir? &usage: NULL, i, now);
            }
        }
    }
    free (usage.edge_last);
    free (usage.key_last);
    bus_policy_destroy (&policy);
    return rc;
}
