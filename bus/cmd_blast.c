/*  cmd_blast.c: `bulkhead blast`, what a compromised agent, key or
    provider can make happen (mediators/med_blast.h does the analysis).

    Output: text for a person, --json (one document, shape in README),
    --dot (Graphviz) or --png FILE (the same through Debian's `dot`);
    --all ranks every agent and provider.
*/
#include "cmd.h"
#include "bus_holds.h"
#include "med_blast.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *s_help_text =
    "usage: bulkhead blast --policy FILE [--data DIR] TARGET... [OPTIONS]\n"
    "       bulkhead blast --policy FILE [--data DIR] --all [--json]\n"
    "       bulkhead blast --diff OLD NEW [--json]\n"
    "       bulkhead blast --policy FILE --data DIR --log [--since 30d] [--json]\n\n"
    "If TARGET is compromised, what can it make happen? TARGET is an agent name,\n"
    "--key FP (the agent whose key or next_key has that fingerprint) or --provider P\n"
    "(every agent of provider P at once); several make one compromised set S.\n\n"
    "An agent delivered content from S may be steered, and send whatever its edges\n"
    "allow. Every hop is judged by the bus's own stages (identity, causes, reach,\n"
    "classify, scope, taint, hold) on the message an attacker would try; rate limits\n"
    "and mailbox caps bound a path and are shown.\n\n"
    "Prints the agents S steers by distance; for every privileged class and recipient\n"
    "of it the shortest path and up to K alternatives, each with its verdict (direct,\n"
    "taint dropped, approved in advance, needs approval, blocked) and what each hop\n"
    "met; the approvers S reaches or owns; the minimum cut of the unapproved paths;\n"
    "the edges on most shortest paths; the policy's score.\n\n"
    "  --policy FILE      the policy (required)\n"
    "  --data DIR         the bus's data directory, read-only (also beside a live bus):\n"
    "                     standing grants count, and the text ends with what the log\n"
    "                     says: edges never used, denied attempts, restricted content\n"
    "                     that went toward a privileged class and what stopped it\n"
    "  --since D          the log's window: 30d, 12h, 90m, 45s (default: all of it)\n"
    "  --log              only the log's findings (with --data)\n"
    "  --key FP           compromise the agent of this key fingerprint\n"
    "  --provider P       compromise every agent of provider P\n"
    "  --depth N          longest path listed (default 8; reach is not bounded)\n"
    "  -k N               alternatives per target (default 3)\n"
    "  --all              rank every agent and provider by what it reaches\n"
    "  --diff OLD NEW     what a policy change adds, removes or turns to another\n"
    "                     verdict, each agent compromised alone (+, -, ~ lines)\n"
    "  --json             one JSON document instead of text\n"
    "  --dot              a Graphviz graph instead of text\n"
    "  --png FILE         render that graph to FILE with graphviz `dot`\n"
    "  --targets N        recipients per class listed in full, worst first (default 20;\n"
    "                     0: all); the others get their best path and a count\n"
    "  --cuts N           minimum cuts for the first N unapproved targets (default 3), and\n"
    "                     one per class; 0: none\n"
    "  --stats            timings and sizes on stderr (bench/blast.sh)\n\n"
    "Exit 0 on success, 1 if the policy or data cannot be read, 2 on bad usage.\n";

static int
s_usage (bool ok)
{
    fputs (s_help_text, ok? stdout: stderr);
    return ok? 0: 2;
}

//  The policy's score (med_blast_score), or why there is none.
typedef struct {
    int rc;
    bus_error_t err;
    uint32_t direct [BUS_CLASS_MAX], approval [BUS_CLASS_MAX];
} s_score_t;

static void
s_score (med_graph_t *graph, s_score_t *score)
{
    score->rc = med_blast_score (graph, score->direct, score->approval, NULL, &score->err);
}

typedef struct {
    const bus_policy_t *policy;
    med_graph_t *graph;
    med_blast_t *blast;
    const char *path;
    uint32_t targets;                   //  listed in full per class
    const s_score_t *score;             //  computed already, or NULL
} s_ctx_t;

//  The score the output shows: the one computed already, else now in *mine.
static const s_score_t *
s_score_of (const s_ctx_t *ctx, s_score_t *mine)
{
    if (ctx->score) {
        return ctx->score;
    }
    s_score (ctx->graph, mine);
    return mine;
}

static const char *
s_name (const s_ctx_t *ctx, uint32_t agent)
{
    return ctx->policy->agents [agent].name;
}

static const char *
s_class (const s_ctx_t *ctx, int cls)
{
    return ctx->policy->classes [cls].name;
}

static void
s_when (char out [32], uint64_t us)
{
    time_t t = (time_t) (us / 1000000);
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (out, 32, "%Y-%m-%dT%H:%MZ", &tm);
}

//  --- text -------------------------------------------------------------------

static void
s_text_hop (const s_ctx_t *ctx, const med_blast_hop_t *hop)
{
    const bus_policy_t *policy = ctx->policy;
    const bus_edge_t *edge = &policy->edges [hop->edge];
    const bus_class_t *klass = &policy->classes [hop->cls];
    printf ("       %s -> %s %s (line %d)%s: ", s_name (ctx, hop->from), s_name (ctx, hop->to),
            klass->name, edge->line, hop->tainted? ", sender tainted": "");
    if (hop->hop.verdict == MED_REJECT) {
        printf ("blocked by %s, %s: ", hop->hop.stage, bus_errword (hop->hop.err.code));
        bus_print_line (stdout, hop->hop.err.text);
    }
    else
    if (hop->hop.verdict == MED_HOLD) {
        char approvers [256];
        bus_policy_join (klass->approvers, klass->approver_count, "any approver", approvers,
                         sizeof approvers);
        printf ("needs approval: quorum %u of %s, hold lives %u s%s", klass->quorum? klass->quorum: 1,
                approvers, klass->ttl_s, hop->quorum_inside? "; the quorum is inside S" : "");
        if (hop->hop.hold_required) {
            printf (" (");
            bus_print_line (stdout, hop->hop.err.text);
            printf (")");
        }
    }
    else
    if (hop->hop.grant) {
        char until [32];
        s_when (until, hop->hop.grant->expires_us);
        printf ("approved in advance by %s until %s (grant %s", hop->hop.grant->approver, until,
                hop->hop.grant->id);
        if (hop->hop.grant->counted) {
            printf (", %u messages left", hop->hop.grant->remaining);
        }
        printf (")");
    }
    else {
        printf ("%s", hop->hop.dropped? "taint dropped here (causal mode)": "passes");
        if (hop->hop.restricted) {
            printf (", restricted");
        }
    }
    if (hop->hop.action [0]) {
        printf ("; action ");
        bus_print_line (stdout, hop->hop.action);
    }
    //  Bounds, not stops.
    const bus_agent_t *from = &policy->agents [hop->from], *to = &policy->agents [hop->to];
    printf ("\n         bounds: %s sends ", from->name);
    if (from->rate) {
        printf ("at most %u/s", from->rate);
    }
    else {
        printf ("unlimited");
    }
    printf (", the mailbox of %s holds %u (%u%% from one sender)\n", to->name, to->max_backlog,
            policy->backlog_share);
}

static void
s_text_path (const s_ctx_t *ctx, size_t index, const med_blast_path_t *path)
{
    printf ("    %zu. %s", index + 1, s_name (ctx, path->hops [0].from));
    for (size_t h = 0; h < path->n_hops; h++) {
        printf (" -> %s", s_name (ctx, path->hops [h].to));
    }
    printf ("  [%s]\n", med_blast_verdict_name (path->verdict));
    if (path->revisits) {
        printf ("       (a walk that passes an agent twice: the bus keeps a sticky agent tainted, "
                "so it may be worse than shown)\n");
    }
    for (size_t h = 0; h < path->n_hops; h++) {
        s_text_hop (ctx, &path->hops [h]);
    }
}

static void
s_text_edge (const s_ctx_t *ctx, uint32_t e)
{
    const bus_edge_t *edge = &ctx->policy->edges [e];
    printf ("%s -> %s (line %d)", s_name (ctx, edge->from), s_name (ctx, edge->to), edge->line);
}

static void
s_text_cuts (const s_ctx_t *ctx, const med_blast_t *blast, const char *who)
{
    bool any = false;
    for (size_t i = 0; i < blast->n_class_cuts; i++) {
        const med_blast_cut_t *cut = &blast->class_cuts [i];
        if (!any) {
            printf ("\nchoke points for %s (fewest edges whose removal cuts every unapproved path):\n", who);
            any = true;
        }
        printf ("  %s, all %zu recipient%s: ", s_class (ctx, cut->cls), cut->recipients,
                cut->recipients == 1? "": "s");
        if (!cut->n_cut) {
            printf ("no cut of %d edges or fewer\n", 64);
            continue;
        }
        for (size_t c = 0; c < cut->n_cut; c++) {
            printf ("%s", c? ", ": "");
            s_text_edge (ctx, cut->cut [c]);
        }
        printf ("\n");
    }
    for (size_t i = 0; i < blast->n_targets; i++) {
        const med_blast_target_t *target = &blast->targets [i];
        if (target->best > MED_BLAST_GRANTED || !target->cut) {
            continue;
        }
        if (!any) {
            printf ("\nchoke points for %s (fewest edges whose removal cuts every unapproved path):\n", who);
            any = true;
        }
        printf ("  %s at %s: ", s_class (ctx, target->cls), s_name (ctx, target->recipient));
        for (size_t c = 0; c < target->n_cut; c++) {
            printf ("%s", c? ", ": "");
            s_text_edge (ctx, target->cut [c]);
        }
        printf ("\n");
    }
}

static void
s_text_score (const s_ctx_t *ctx)
{
    s_score_t mine;
    const s_score_t *score = s_score_of (ctx, &mine);
    if (score->rc != 0) {
        cmd_error ("blast", &score->err);
        return;
    }
    const uint32_t *direct = score->direct, *approval = score->approval;
    size_t n = ctx->policy->agent_count;
    printf ("\nscore of the policy (share of agents that, compromised alone, trigger the class):\n");
    for (size_t c = 0; c < ctx->policy->class_count; c++) {
        if (!ctx->policy->classes [c].privileged) {
            continue;
        }
        printf ("  %-12s without a person %u of %zu (%.0f%%, %s); with approval %u (%.0f%%, %s)\n",
                ctx->policy->classes [c].name, direct [c], n, 100.0 * direct [c] / (double) n,
                med_blast_band (direct [c], n), approval [c], 100.0 * approval [c] / (double) n,
                med_blast_band (approval [c], n));
    }
}

static void
s_text (const s_ctx_t *ctx, const med_blast_t *untrusted)
{
    const med_blast_t *blast = ctx->blast;
    const bus_policy_t *policy = ctx->policy;
    printf ("blast radius in %s (policy %.16s)\ncompromised:", ctx->path, policy->hash);
    for (size_t i = 0; i < blast->n_set; i++) {
        const bus_agent_t *agent = &policy->agents [blast->set [i]];
        printf (" %s (%s%s%s)", agent->name, agent->untrusted? "untrusted": "trusted",
                agent->provider [0]? ", provider ": "", agent->provider);
    }
    printf ("\n\nsteered without a person, by distance:\n");
    uint32_t max = 0;
    for (size_t a = 0; a < blast->n_agents; a++) {
        if (blast->dist_direct [a] != UINT32_MAX && blast->dist_direct [a] > max) {
            max = blast->dist_direct [a];
        }
    }
    bool none = true;
    for (uint32_t d = 1; d <= max; d++) {
        printf ("  %u:", d);
        for (size_t a = 0; a < blast->n_agents; a++) {
            if (blast->dist_direct [a] == d && !blast->inside [a]) {
                printf (" %s", s_name (ctx, (uint32_t) a));
                none = false;
            }
        }
        printf ("\n");
    }
    if (none) {
        printf ("  none\n");
    }
    printf ("steered only after an approval:");
    none = true;
    for (size_t a = 0; a < blast->n_agents; a++) {
        if (blast->dist_direct [a] == UINT32_MAX && blast->dist_approval [a] != UINT32_MAX) {
            printf (" %s (%u)", s_name (ctx, (uint32_t) a), blast->dist_approval [a]);
            none = false;
        }
    }
    printf ("%s\n", none? " none": "");

    printf ("\nprivileged classes and recipients:\n");
    if (!blast->n_targets) {
        printf ("  none reachable\n");
    }
    for (size_t i = 0, rank = 0; i < blast->n_targets; i++, rank++) {
        const med_blast_target_t *target = &blast->targets [i];
        if (i && target->cls != blast->targets [i - 1].cls) {
            rank = 0;
        }
        if (ctx->targets && rank >= ctx->targets) {
            //  The rest of this class in one line, by verdict.
            size_t counts [MED_BLAST_BLOCKED + 1] = { 0 }, more = 0;
            size_t j = i;
            for (; j < blast->n_targets && blast->targets [j].cls == target->cls; j++) {
                counts [blast->targets [j].best]++;
                more++;
            }
            printf ("  ... and %zu more recipients of %s:", more, s_class (ctx, target->cls));
            for (int v = MED_BLAST_DIRECT; v <= MED_BLAST_BLOCKED; v++) {
                if (counts [v]) {
                    printf (" %zu %s", counts [v], med_blast_verdict_name ((med_blast_verdict_t) v));
                }
            }
            printf (" (--targets 0 lists all, --json has each)\n");
            i = j - 1;
            continue;
        }
        printf ("  %s at %s: %s, shortest %u hop%s", s_class (ctx, target->cls),
                s_name (ctx, target->recipient), med_blast_verdict_name (target->best),
                target->best_length, target->best_length == 1? "": "s");
        if (target->beyond_depth) {
            printf (" (%zu more beyond --depth)", target->beyond_depth);
        }
        printf ("\n");
        for (size_t p = 0; p < target->n_paths; p++) {
            s_text_path (ctx, p, &target->paths [p]);
        }
    }

    printf ("\napprovers:\n");
    if (!blast->n_approvers) {
        printf ("  none in the policy\n");
    }
    for (size_t i = 0; i < blast->n_approvers; i++) {
        const med_blast_approver_t *approver = &blast->approvers [i];
        printf ("  %-16s ", s_name (ctx, approver->agent));
        if (approver->inside) {
            printf ("inside S: compromised\n");
        }
        else
        if (approver->dist_direct != UINT32_MAX) {
            printf ("steered at distance %u\n", approver->dist_direct);
        }
        else
        if (approver->dist_approval != UINT32_MAX) {
            printf ("steered after an approval, distance %u\n", approver->dist_approval);
        }
        else {
            printf ("not reached\n");
        }
    }
    printf ("\nheld classes:\n");
    for (size_t i = 0; i < blast->n_holds; i++) {
        const med_blast_hold_t *hold = &blast->holds [i];
        printf ("  %-16s quorum %u of %u approvers: %u inside S, %u inside or steered%s%s\n",
                s_class (ctx, hold->cls), hold->quorum, hold->eligible, hold->owned,
                hold->reachable,
                hold->owned >= hold->quorum? "; S OWNS THE QUORUM":
                hold->reachable >= hold->quorum? "; S REACHES THE QUORUM": "",
                hold->floodable? "; S can make its approvers wait (Pending notices)": "");
    }
    s_text_cuts (ctx, blast, "S");
    if (untrusted) {
        s_text_cuts (ctx, untrusted, "all untrusted agents together");
    }
    if (blast->n_top_edges) {
        printf ("\nedges on most shortest paths:\n");
        for (size_t i = 0; i < blast->n_top_edges; i++) {
            printf ("  %u  ", blast->top_edges [i].count);
            s_text_edge (ctx, blast->top_edges [i].edge);
            printf ("\n");
        }
    }
    s_text_score (ctx);
}

//  --- json -------------------------------------------------------------------

static void
s_json_str (const char *key, const char *value, bool comma)
{
    printf ("%s\"%s\":", comma? ",": "", key);
    bus_print_json (stdout, value);
}

static void
s_json_path (const s_ctx_t *ctx, const med_blast_path_t *path)
{
    printf ("{");
    s_json_str ("verdict", med_blast_verdict_name (path->verdict), false);
    printf (",\"revisits\":%s,\"reasons\":%s,\"hops\":[", path->revisits? "true": "false",
            path->light? "false": "true");
    for (size_t h = 0; h < path->n_hops; h++) {
        const med_blast_hop_t *hop = &path->hops [h];
        printf ("%s{", h? ",": "");
        s_json_str ("from", s_name (ctx, hop->from), false);
        s_json_str ("to", s_name (ctx, hop->to), true);
        s_json_str ("class", s_class (ctx, hop->cls), true);
        printf (",\"line\":%d,\"sender_tainted\":%s", ctx->policy->edges [hop->edge].line,
                hop->tainted? "true": "false");
        s_json_str ("verdict", hop->hop.verdict == MED_PASS? "pass":
                    hop->hop.verdict == MED_HOLD? "hold": "reject", true);
        s_json_str ("stage", hop->hop.stage, true);
        s_json_str ("code", hop->hop.verdict == MED_PASS? "OK": bus_errword (hop->hop.err.code), true);
        s_json_str ("reason", hop->hop.verdict == MED_PASS? "": hop->hop.err.text, true);
        s_json_str ("action", hop->hop.action, true);
        printf (",\"restricted\":%s,\"taint_dropped\":%s,\"quorum_inside\":%s",
                hop->hop.restricted? "true": "false", hop->hop.dropped? "true": "false",
                hop->quorum_inside? "true": "false");
        if (hop->hop.grant) {
            char until [32];
            s_when (until, hop->hop.grant->expires_us);
            printf (",\"grant\":{");
            s_json_str ("id", hop->hop.grant->id, false);
            s_json_str ("approver", hop->hop.grant->approver, true);
            s_json_str ("until", until, true);
            printf ("}");
        }
        printf (",\"sender_rate\":%u,\"recipient_backlog\":%u}",
                ctx->policy->agents [hop->from].rate, ctx->policy->agents [hop->to].max_backlog);
    }
    printf ("]}");
}

static void
s_json_cut (const s_ctx_t *ctx, const med_blast_target_t *target)
{
    printf (",\"cut\":[");
    for (size_t c = 0; c < target->n_cut; c++) {
        const bus_edge_t *edge = &ctx->policy->edges [target->cut [c]];
        printf ("%s{", c? ",": "");
        s_json_str ("from", s_name (ctx, edge->from), false);
        s_json_str ("to", s_name (ctx, edge->to), true);
        printf (",\"line\":%d}", edge->line);
    }
    printf ("]");
}

static void
s_json (const s_ctx_t *ctx)
{
    const med_blast_t *blast = ctx->blast;
    printf ("{");
    s_json_str ("policy", ctx->path, false);
    s_json_str ("policy_hash", ctx->policy->hash, true);
    printf (",\"compromised\":[");
    for (size_t i = 0; i < blast->n_set; i++) {
        printf ("%s", i? ",": "");
        bus_print_json (stdout, s_name (ctx, blast->set [i]));
    }
    printf ("],\"steered\":[");
    bool first = true;
    for (size_t a = 0; a < blast->n_agents; a++) {
        if (blast->inside [a] || blast->dist_approval [a] == UINT32_MAX) {
            continue;
        }
        printf ("%s{", first? "": ",");
        first = false;
        s_json_str ("agent", s_name (ctx, (uint32_t) a), false);
        if (blast->dist_direct [a] != UINT32_MAX) {
            printf (",\"distance\":%u", blast->dist_direct [a]);
        }
        else {
            printf (",\"distance\":null");
        }
        printf (",\"distance_with_approval\":%u}", blast->dist_approval [a]);
    }
    printf ("],\"targets\":[");
    for (size_t i = 0; i < blast->n_targets; i++) {
        const med_blast_target_t *target = &blast->targets [i];
        printf ("%s{", i? ",": "");
        s_json_str ("class", s_class (ctx, target->cls), false);
        s_json_str ("recipient", s_name (ctx, target->recipient), true);
        s_json_str ("best", med_blast_verdict_name (target->best), true);
        printf (",\"shortest\":%u,\"beyond_depth\":%zu,\"paths\":[", target->best_length,
                target->beyond_depth);
        for (size_t p = 0; p < target->n_paths; p++) {
            printf ("%s", p? ",": "");
            s_json_path (ctx, &target->paths [p]);
        }
        printf ("]");
        s_json_cut (ctx, target);
        printf ("}");
    }
    printf ("],\"approvers\":[");
    for (size_t i = 0; i < blast->n_approvers; i++) {
        const med_blast_approver_t *approver = &blast->approvers [i];
        printf ("%s{", i? ",": "");
        s_json_str ("agent", s_name (ctx, approver->agent), false);
        printf (",\"inside\":%s,\"steered\":%s,\"steered_with_approval\":%s}",
                approver->inside? "true": "false",
                approver->dist_direct != UINT32_MAX? "true": "false",
                approver->dist_approval != UINT32_MAX? "true": "false");
    }
    printf ("],\"holds\":[");
    for (size_t i = 0; i < blast->n_holds; i++) {
        const med_blast_hold_t *hold = &blast->holds [i];
        printf ("%s{", i? ",": "");
        s_json_str ("class", s_class (ctx, hold->cls), false);
        printf (",\"quorum\":%u,\"approvers\":%u,\"inside\":%u,\"reachable\":%u,"
                "\"quorum_owned\":%s,\"quorum_reachable\":%s,\"floodable\":%s}",
                hold->quorum, hold->eligible, hold->owned, hold->reachable,
                hold->owned >= hold->quorum? "true": "false",
                hold->reachable >= hold->quorum? "true": "false",
                hold->floodable? "true": "false");
    }
    printf ("],\"class_cuts\":[");
    for (size_t i = 0; i < blast->n_class_cuts; i++) {
        const med_blast_cut_t *cut = &blast->class_cuts [i];
        printf ("%s{", i? ",": "");
        s_json_str ("class", s_class (ctx, cut->cls), false);
        printf (",\"recipients\":%zu,\"cut\":[", cut->recipients);
        for (size_t c = 0; c < cut->n_cut; c++) {
            const bus_edge_t *edge = &ctx->policy->edges [cut->cut [c]];
            printf ("%s{", c? ",": "");
            s_json_str ("from", s_name (ctx, edge->from), false);
            s_json_str ("to", s_name (ctx, edge->to), true);
            printf (",\"line\":%d}", edge->line);
        }
        printf ("]}");
    }
    printf ("],\"top_edges\":[");
    for (size_t i = 0; i < blast->n_top_edges; i++) {
        const bus_edge_t *edge = &ctx->policy->edges [blast->top_edges [i].edge];
        printf ("%s{", i? ",": "");
        s_json_str ("from", s_name (ctx, edge->from), false);
        s_json_str ("to", s_name (ctx, edge->to), true);
        printf (",\"line\":%d,\"paths\":%u}", edge->line, blast->top_edges [i].count);
    }
    s_score_t mine;
    const s_score_t *score = s_score_of (ctx, &mine);
    const uint32_t *direct = score->direct, *approval = score->approval;
    printf ("],\"score\":{");
    if (score->rc == 0) {
        size_t n = ctx->policy->agent_count;
        bool comma = false;
        for (size_t c = 0; c < ctx->policy->class_count; c++) {
            if (!ctx->policy->classes [c].privileged) {
                continue;
            }
            printf ("%s\"%s\":{\"direct\":%u,\"approval\":%u,\"agents\":%zu", comma? ",": "",
                    ctx->policy->classes [c].name, direct [c], approval [c], n);
            s_json_str ("band", med_blast_band (direct [c], n), true);
            printf ("}");
            comma = true;
        }
    }
    printf ("}}\n");
}

//  --- dot --------------------------------------------------------------------

static const char *
s_colour (med_blast_verdict_t verdict)
{
    switch (verdict) {
        case MED_BLAST_DIRECT:   return "red";
        case MED_BLAST_DROPPED:  return "purple";
        case MED_BLAST_GRANTED:  return "darkorange";
        case MED_BLAST_APPROVAL: return "blue";
        case MED_BLAST_BLOCKED:  return "gray60";
    }
    return "black";
}

static void
s_dot (const s_ctx_t *ctx, FILE *out)
{
    const med_blast_t *blast = ctx->blast;
    size_t n = blast->n_agents;
    uint8_t *shown = calloc (n + 1, 1);
    uint8_t *sink = calloc (n + 1, 1);
    //  Per edge the best verdict of a listed path that uses it (+1; 0 = none).
    uint8_t *used = calloc (ctx->policy->edge_count + 1, 1);
    const char **stops = calloc (ctx->policy->edge_count + 1, sizeof *stops);
    if (!shown || !sink || !used || !stops) {
        free (shown), free (sink), free (used), free (stops);
        return;
    }
    for (size_t i = 0; i < blast->n_set; i++) {
        shown [blast->set [i]] = 1;
    }
    for (size_t i = 0; i < blast->n_targets; i++) {
        const med_blast_target_t *target = &blast->targets [i];
        sink [target->recipient] = 1;
        for (size_t p = 0; p < target->n_paths; p++) {
            const med_blast_path_t *path = &target->paths [p];
            for (size_t h = 0; h < path->n_hops; h++) {
                shown [path->hops [h].from] = shown [path->hops [h].to] = 1;
                uint32_t e = path->hops [h].edge;
                if (path->hops [h].hop.verdict == MED_REJECT) {
                    stops [e] = path->hops [h].hop.stage;
                }
                uint8_t v = (uint8_t) (path->verdict + 1);
                if (!used [e] || v < used [e]) {
                    used [e] = v;
                }
            }
        }
    }
    fprintf (out, "digraph blast {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", shape=ellipse];\n"
                  "  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for (size_t a = 0; a < n; a++) {
        if (!shown [a]) {
            continue;
        }
        const bus_agent_t *agent = &ctx->policy->agents [a];
        fprintf (out, "  \"%s\" [", agent->name);
        if (blast->inside [a]) {
            fprintf (out, "style=filled, fillcolor=\"#ff8080\", ");
        }
        else
        if (blast->dist_direct [a] != UINT32_MAX) {
            fprintf (out, "style=filled, fillcolor=\"#ffe0b0\", ");
        }
        if (sink [a]) {
            fprintf (out, "shape=doubleoctagon, ");
        }
        if (agent->roles & BUS_ROLE_APPROVER) {
            fprintf (out, "shape=house, ");
        }
        fprintf (out, "label=\"%s%s%s\"];\n", agent->name, agent->untrusted? "\\nuntrusted": "",
                 agent->causal? "\\ncausal": "");
    }
    for (size_t e = 0; e < ctx->policy->edge_count; e++) {
        if (!used [e]) {
            continue;
        }
        const bus_edge_t *edge = &ctx->policy->edges [e];
        char classes [256] = "";
        size_t len = 0;
        for (size_t c = 0; c < ctx->policy->class_count && len < sizeof classes - 70; c++) {
            if (edge->classes & (UINT64_C (1) << c)) {
                len += (size_t) snprintf (classes + len, sizeof classes - len, "%s%s", len? ",": "",
                                          ctx->policy->classes [c].name);
            }
        }
        med_blast_verdict_t v = (med_blast_verdict_t) (used [e] - 1);
        fprintf (out, "  \"%s\" -> \"%s\" [color=%s, fontcolor=%s, label=\"%s%s%s\"%s];\n",
                 s_name (ctx, edge->from), s_name (ctx, edge->to), s_colour (v), s_colour (v),
                 classes, stops [e]? "\\nstopped by ": "", stops [e]? stops [e]: "",
                 v == MED_BLAST_BLOCKED? ", style=dashed": ", penwidth=2");
    }
    //  The key: one small node, each verdict in its colour.
    fprintf (out, "  key [shape=box, fontsize=10, label=<paths:");
    for (int v = MED_BLAST_DIRECT; v <= MED_BLAST_BLOCKED; v++) {
        fprintf (out, "<br/><font color=\"%s\">%s</font>", s_colour ((med_blast_verdict_t) v),
                 med_blast_verdict_name ((med_blast_verdict_t) v));
    }
    fprintf (out, "<br/>red: compromised<br/>orange: steered<br/>octagon: privileged recipient>];\n}\n");
    free (shown), free (sink), free (used), free (stops);
}

//  dot -Tpng -o FILE, the graph on its standard input; no shell.
static int
s_png (const s_ctx_t *ctx, const char *file)
{
    int fds [2];
    if (pipe (fds) != 0) {
        perror ("bulkhead blast: pipe");
        return 1;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        perror ("bulkhead blast: fork");
        return 1;
    }
    if (pid == 0) {
        dup2 (fds [0], 0);
        close (fds [0]);
        close (fds [1]);
        execlp ("dot", "dot", "-Tpng", "-o", file, (char *) NULL);
        perror ("bulkhead blast: dot (graphviz; scripts/install-deps installs it)");
        _exit (127);
    }
    close (fds [0]);
    FILE *out = fdopen (fds [1], "w");
    if (!out) {
        close (fds [1]);
        waitpid (pid, NULL, 0);
        return 1;
    }
    s_dot (ctx, out);
    fclose (out);
    int status = 0;
    waitpid (pid, &status, 0);
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        fprintf (stderr, "bulkhead blast: dot failed to render %s\n", file);
        return 1;
    }
    return 0;
}

//  --- --all ------------------------------------------------------------------

typedef struct {
    const char *name;
    bool provider;
    int direct, approval;               //  privileged classes
    uint64_t direct_mask, approval_mask;
    size_t steered;                     //  exact, for the top of the list
} s_rank_t;

static int
s_rank_compare (const void *a, const void *b)
{
    const s_rank_t *x = a, *y = b;
    if (x->direct != y->direct) {
        return y->direct - x->direct;
    }
    if (x->approval != y->approval) {
        return y->approval - x->approval;
    }
    if (x->steered != y->steered) {
        return x->steered < y->steered? 1: -1;
    }
    return strcmp (x->name, y->name);
}

static void
s_mask_names (const s_ctx_t *ctx, uint64_t mask, char *out, size_t size)
{
    size_t len = 0;
    out [0] = 0;
    for (size_t c = 0; c < ctx->policy->class_count && len + 70 < size; c++) {
        if (mask & (UINT64_C (1) << c)) {
            len += (size_t) snprintf (out + len, size - len, "%s%s", len? ",": "",
                                      ctx->policy->classes [c].name);
        }
    }
    if (!len) {
        snprintf (out, size, "-");
    }
}

#define S_RANK_EXACT 20

static size_t
s_steered (const med_blast_t *blast)
{
    size_t n = 0;
    for (size_t a = 0; a < blast->n_agents; a++) {
        n += !blast->inside [a] && blast->dist_direct [a] != UINT32_MAX;
    }
    return n;
}

static int
s_all (const s_ctx_t *ctx, bool json)
{
    const bus_policy_t *policy = ctx->policy;
    size_t n = policy->agent_count;
    uint64_t *masks = calloc (2 * n + 1, sizeof *masks);
    uint32_t direct [BUS_CLASS_MAX], approval [BUS_CLASS_MAX];
    //  Agents, then one row per provider.
    s_rank_t *rows = calloc (2 * n + 1, sizeof *rows);
    bus_error_t err;
    if (!masks || !rows || med_blast_score (ctx->graph, direct, approval, masks, &err) != 0) {
        free (masks), free (rows);
        fprintf (stderr, "bulkhead blast: NOMEM: out of memory\n");
        return 1;
    }
    size_t count = 0;
    for (size_t a = 0; a < n; a++) {
        rows [count++] = (s_rank_t) { policy->agents [a].name, false,
                                      __builtin_popcountll (masks [2 * a]),
                                      __builtin_popcountll (masks [2 * a + 1]),
                                      masks [2 * a], masks [2 * a + 1], 0 };
    }
    //  A provider: the union of its agents' reach (one analysis each).
    med_blast_options_t options;
    med_blast_options_default (&options);
    options.k = 0;
    options.cuts = 0;
    options.counted_paths = false;      //  the classes and steering only
    uint32_t *set = calloc (n + 1, sizeof *set);
    for (size_t a = 0; set && a < n; a++) {
        const char *provider = policy->agents [a].provider;
        bool seen = !provider [0];
        for (size_t b = 0; b < a && !seen; b++) {
            seen = strcmp (policy->agents [b].provider, provider) == 0;
        }
        if (seen) {
            continue;
        }
        size_t k = 0;
        for (size_t b = a; b < n; b++) {
            if (strcmp (policy->agents [b].provider, provider) == 0) {
                set [k++] = (uint32_t) b;
            }
        }
        med_blast_t *blast;
        if (med_blast_open (&blast, ctx->graph, set, k, &options, &err) == 0) {
            rows [count++] = (s_rank_t) { provider, true,
                                          __builtin_popcountll (blast->classes_direct),
                                          __builtin_popcountll (blast->classes_approval),
                                          blast->classes_direct, blast->classes_approval,
                                          s_steered (blast) };
            med_blast_destroy (&blast);
        }
    }
    qsort (rows, count, sizeof *rows, s_rank_compare);
    //  Exact steering counts for the top agents (one search each).
    for (size_t i = 0; set && i < count && i < S_RANK_EXACT; i++) {
        if (rows [i].provider) {
            continue;
        }
        set [0] = bus_policy_agent_index (policy, bus_policy_agent (policy, rows [i].name));
        med_blast_t *blast;
        if (med_blast_open (&blast, ctx->graph, set, 1, &options, &err) == 0) {
            rows [i].steered = s_steered (blast);
            med_blast_destroy (&blast);
        }
    }
    size_t shown = count < S_RANK_EXACT? count: S_RANK_EXACT;
    qsort (rows, shown, sizeof *rows, s_rank_compare);
    char dm [512], am [512];
    if (json) {
        printf ("{\"ranking\":[");
        for (size_t i = 0; i < count; i++) {
            s_mask_names (ctx, rows [i].direct_mask, dm, sizeof dm);
            s_mask_names (ctx, rows [i].approval_mask, am, sizeof am);
            printf ("%s{", i? ",": "");
            s_json_str (rows [i].provider? "provider": "agent", rows [i].name, false);
            s_json_str ("direct", dm, true);
            s_json_str ("with_approval", am, true);
            if (i < shown || rows [i].provider) {
                printf (",\"steered\":%zu", rows [i].steered);
            }
            printf ("}");
        }
        printf ("]}\n");
    }
    else {
        printf ("where a compromise hurts most (%zu agents; privileged classes triggered\n"
                "without a person, then with approval; agents steered, exact for the top %d):\n",
                n, S_RANK_EXACT);
        for (size_t i = 0; i < count && i < 50; i++) {
            s_mask_names (ctx, rows [i].direct_mask, dm, sizeof dm);
            s_mask_names (ctx, rows [i].approval_mask, am, sizeof am);
            printf ("  %3zu. %-9s %-24s direct: %-24s with approval: %-24s", i + 1,
                    rows [i].provider? "provider": "agent", rows [i].name, dm, am);
            if (i < shown || rows [i].provider) {
                printf (" steers %zu", rows [i].steered);
            }
            printf ("\n");
        }
        if (count > 50) {
            printf ("  ... %zu more\n", count - 50);
        }
        s_text_score (ctx);
    }
    free (set);
    free (masks);
    free (rows);
    return 0;
}

static double
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

//  --- --diff -----------------------------------------------------------------

//  One agent's answers in one policy, as "class recipient" -> verdict.
typedef struct {
    char key [2 * BUS_NAME_MAX + 2];
    med_blast_verdict_t verdict;
    uint32_t length;
    char path [512];
} s_answer_t;

static int
s_answer_compare (const void *a, const void *b)
{
    return strcmp (((const s_answer_t *) a)->key, ((const s_answer_t *) b)->key);
}

//  The targets of agent name alone as S in graph, sorted by key; *n of them.
static s_answer_t *
s_answers (med_graph_t *graph, const char *name, size_t *n)
{
    const bus_policy_t *policy = med_graph_policy (graph);
    *n = 0;
    const bus_agent_t *agent = bus_policy_agent (policy, name);
    if (!agent) {
        return calloc (1, sizeof (s_answer_t));
    }
    uint32_t set = bus_policy_agent_index (policy, agent);
    med_blast_options_t options;
    med_blast_options_default (&options);
    options.k = 0;
    options.cuts = 0;
    options.targets = 1;
    med_blast_t *blast;
    bus_error_t err;
    if (med_blast_open (&blast, graph, &set, 1, &options, &err) != 0) {
        return NULL;
    }
    s_answer_t *list = calloc (blast->n_targets + 1, sizeof *list);
    for (size_t i = 0; list && i < blast->n_targets; i++) {
        const med_blast_target_t *target = &blast->targets [i];
        s_answer_t *answer = &list [(*n)++];
        snprintf (answer->key, sizeof answer->key, "%s %s", policy->classes [target->cls].name,
                  policy->agents [target->recipient].name);
        answer->verdict = target->best;
        answer->length = target->best_length;
        if (target->n_paths) {
            const med_blast_path_t *path = &target->paths [0];
            size_t used = (size_t) snprintf (answer->path, sizeof answer->path, "%s",
                                             policy->agents [path->hops [0].from].name);
            for (size_t h = 0; h < path->n_hops && used < sizeof answer->path; h++) {
                used += (size_t) snprintf (answer->path + used, sizeof answer->path - used,
                                           " -> %s", policy->agents [path->hops [h].to].name);
            }
        }
    }
    med_blast_destroy (&blast);
    if (list) {
        qsort (list, *n, sizeof *list, s_answer_compare);
    }
    return list;
}

static void
s_diff_print (const char *mark, const char *agent, const s_answer_t *answer,
              const s_answer_t *before, bool json, bool *first)
{
    char cls [BUS_NAME_MAX + 1], recipient [BUS_NAME_MAX + 1];
    sscanf (answer->key, "%64s %64s", cls, recipient);
    if (json) {
        printf ("%s{", *first? "": ",");
        s_json_str ("change", mark [0] == '+'? "added": mark [0] == '-'? "removed": "changed", false);
        s_json_str ("agent", agent, true);
        s_json_str ("class", cls, true);
        s_json_str ("recipient", recipient, true);
        if (before) {
            s_json_str ("was", med_blast_verdict_name (before->verdict), true);
        }
        s_json_str (mark [0] == '-'? "was": "now", med_blast_verdict_name (answer->verdict), true);
        s_json_str ("path", answer->path, true);
        printf ("}");
    }
    else {
        printf ("%s %s: %s at %s: ", mark, agent, cls, recipient);
        if (before) {
            printf ("%s -> ", med_blast_verdict_name (before->verdict));
        }
        printf ("%s%s (%s)\n", mark [0] == '-'? "was ": "", med_blast_verdict_name (answer->verdict),
                answer->path [0]? answer->path: "beyond --depth");
    }
    *first = false;
}

//  Every agent alone as S in both policies; what a change adds, removes or
//  turns to another verdict. O(agents x edges): for code review of a
//  policy, not for a fleet of 100,000 (use --all on each there).
static int
s_diff (const char *old_path, const char *new_path, bool json)
{
    bus_policy_t *policies [2] = { NULL, NULL };
    med_graph_t *graphs [2] = { NULL, NULL };
    const char *paths [2] = { old_path, new_path };
    bus_error_t err;
    int rc = 1;
    for (int i = 0; i < 2; i++) {
        if (bus_policy_load_max (&policies [i], paths [i], BUS_POLICY_OFFLINE_MAX, &err) != 0) {
            cmd_policy_error ("blast", &err);
            goto done;
        }
        if (med_graph_new (&graphs [i], policies [i], NULL, 0, 0, &err) != 0) {
            cmd_error ("blast", &err);
            goto done;
        }
    }
    size_t changes = 0;
    bool first = true;
    if (json) {
        printf ("{\"old\":");
        bus_print_json (stdout, old_path);
        printf (",\"new\":");
        bus_print_json (stdout, new_path);
        printf (",\"changes\":[");
    }
    //  Agents of the new policy, then those only the old one has.
    for (int side = 1; side >= 0; side--) {
        const bus_policy_t *policy = policies [side];
        for (size_t a = 0; a < policy->agent_count; a++) {
            const char *name = policy->agents [a].name;
            if (side == 0 && bus_policy_agent (policies [1], name)) {
                continue;
            }
            size_t n_old, n_new;
            s_answer_t *was = s_answers (graphs [0], name, &n_old);
            s_answer_t *now = s_answers (graphs [1], name, &n_new);
            if (!was || !now) {
                free (was), free (now);
                fprintf (stderr, "bulkhead blast: NOMEM: out of memory\n");
                goto done;
            }
            size_t i = 0, j = 0;
            while (i < n_old || j < n_new) {
                int order = i == n_old? 1: j == n_new? -1: strcmp (was [i].key, now [j].key);
                if (order < 0) {
                    s_diff_print ("-", name, &was [i++], NULL, json, &first);
                    changes++;
                }
                else
                if (order > 0) {
                    s_diff_print ("+", name, &now [j++], NULL, json, &first);
                    changes++;
                }
                else {
                    if (was [i].verdict != now [j].verdict) {
                        s_diff_print ("~", name, &now [j], &was [i], json, &first);
                        changes++;
                    }
                    i++, j++;
                }
            }
            free (was);
            free (now);
        }
    }
    if (json) {
        printf ("]}\n");
    }
    else {
        printf ("%zu change%s of blast radius from %s to %s (each agent compromised alone)\n",
                changes, changes == 1? "": "s", old_path, new_path);
    }
    rc = 0;
done:
    for (int i = 0; i < 2; i++) {
        med_graph_destroy (&graphs [i]);
        bus_policy_destroy (&policies [i]);
    }
    return rc;
}

//  --- --data: what the log says ----------------------------------------------
//
//  Read-only, like `bulkhead log` (a reader transaction beside a live bus).
//  Per edge whether it carried a message in the window; denied attempts per
//  (sender, recipient, code); restricted messages toward a privileged class
//  with the chain of causes back to where the restriction came from.

#define S_LOG_KEYS_MAX   4096           //  distinct attempts / crossings kept
#define S_LOG_CHAIN_MAX  8

typedef struct {
    char sender [BUS_NAME_MAX + 1];
    char recipient [BUS_NAME_MAX + 1];
    char what [BUS_NAME_MAX + 1];       //  the code, or the class
    char chain [512];                   //  crossings: agents from the origin
    char stop [96];                     //  crossings: verdict and code
    uint64_t count, first_us, last_us;
} s_finding_t;

typedef struct {
    uint64_t seq;
    char sender [BUS_NAME_MAX + 1];
    uint64_t cause;                     //  first cause, 0 if none
} s_link_t;

typedef struct {
    const bus_policy_t *policy;
    uint64_t since_us;
    uint8_t *used;                      //  per edge
    s_finding_t *attempts;
    size_t n_attempts;
    s_finding_t *crossings;
    size_t n_crossings;
    s_link_t *links;                    //  restricted SEND records, by seq (ascending)
    size_t n_links, cap_links;
    uint64_t records, sends;
} s_log_t;

static s_finding_t *
s_finding (s_finding_t *list, size_t *n, const char *sender, const char *recipient,
           const char *what, const char *chain)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp (list [i].sender, sender) == 0 && strcmp (list [i].recipient, recipient) == 0
        &&  strcmp (list [i].what, what) == 0 && strcmp (list [i].chain, chain) == 0) {
            return &list [i];
        }
    }
    if (*n == S_LOG_KEYS_MAX) {
        return NULL;                    //  counted no further; said in the output
    }
    s_finding_t *f = &list [(*n)++];
    memset (f, 0, sizeof *f);
    snprintf (f->sender, sizeof f->sender, "%s", sender);
    snprintf (f->recipient, sizeof f->recipient, "%s", recipient);
    snprintf (f->what, sizeof f->what, "%s", what);
    snprintf (f->chain, sizeof f->chain, "%s", chain);
    return f;
}

static void
s_count (s_finding_t *f, uint64_t time_us)
{
    if (!f) {
        return;
    }
    if (!f->count || time_us < f->first_us) {
        f->first_us = time_us;
    }
    if (time_us > f->last_us) {
        f->last_us = time_us;
    }
    f->count++;
}

static const s_link_t *
s_link (const s_log_t *log, uint64_t seq)
{
    size_t lo = 0, hi = log->n_links;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (log->links [mid].seq < seq) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo < log->n_links && log->links [lo].seq == seq? &log->links [lo]: NULL;
}

static int
s_log_record (void *arg, const Bulkhead__V1__Record *rec, const uint8_t *raw, size_t raw_len)
{
    (void) raw;
    (void) raw_len;
    s_log_t *log = arg;
    log->records++;
    if (rec->kind != BULKHEAD__V1__RECORD_KIND__RECORD_SEND || !rec->sender || !rec->recipient
    ||  !rec->has_verdict) {
        return 0;
    }
    //  Restricted records are kept as links for the chains, whatever their time.
    if (rec->has_restricted && rec->restricted) {
        if (log->n_links == log->cap_links) {
            size_t cap = log->cap_links? log->cap_links * 2: 256;
            s_link_t *more = realloc (log->links, cap * sizeof *more);
            if (!more) {
                return -1;
            }
            log->links = more;
            log->cap_links = cap;
        }
        s_link_t *link = &log->links [log->n_links++];
        link->seq = rec->seq;
        snprintf (link->sender, sizeof link->sender, "%s", rec->sender);
        link->cause = rec->n_causes? rec->causes [0]: 0;
    }
    if (rec->time_us < log->since_us) {
        return 0;
    }
    log->sends++;
    const bus_policy_t *policy = log->policy;
    const bus_agent_t *from = bus_policy_agent (policy, rec->sender);
    const bus_agent_t *to = bus_policy_agent (policy, rec->recipient);
    const bus_edge_t *edge = from && to? bus_policy_edge (policy, from, to): NULL;
    bool accepted = rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
                 || rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_QUEUED
                 || rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_HELD;
    if (edge && accepted) {
        log->used [edge - policy->edges] = 1;
    }
    if (rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_DENIED) {
        s_count (s_finding (log->attempts, &log->n_attempts, rec->sender, rec->recipient,
                            rec->code? rec->code: "?", ""), rec->time_us);
    }
    int cls = rec->intent_class? bus_policy_class (policy, rec->intent_class): -1;
    if (rec->has_restricted && rec->restricted && cls >= 0 && policy->classes [cls].privileged) {
        //  Back along the first causes to where the restriction began.
        char chain [512];
        const char *names [S_LOG_CHAIN_MAX];
        size_t n = 0;
        uint64_t cause = rec->n_causes? rec->causes [0]: 0;
        while (cause && n < S_LOG_CHAIN_MAX) {
            const s_link_t *link = s_link (log, cause);
            if (!link) {
                break;
            }
            names [n++] = link->sender;
            cause = link->cause;
        }
        size_t used = 0;
        chain [0] = 0;
        for (size_t i = n; i > 0 && used < sizeof chain; i--) {
            used += (size_t) snprintf (chain + used, sizeof chain - used, "%s -> ", names [i - 1]);
        }
        if (used < sizeof chain) {
            snprintf (chain + used, sizeof chain - used, "%s -> %s", rec->sender, rec->recipient);
        }
        s_finding_t *f = s_finding (log->crossings, &log->n_crossings, rec->sender, rec->recipient,
                                    rec->intent_class, chain);
        if (f) {
            snprintf (f->stop, sizeof f->stop, "%s%s%s",
                      rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_DENIED? "denied":
                      rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_HELD? "held": "delivered",
                      rec->code? " ": "", rec->code? rec->code: "");
        }
        s_count (f, rec->time_us);
    }
    return 0;
}

//  "30d", "12h", "90m", "45s": *us; false if it is not one.
static bool
s_duration (const char *text, uint64_t *us)
{
    char *end = NULL;
    unsigned long long n = strtoull (text, &end, 10);
    if (!end || end == text || end [0] == 0 || end [1] != 0) {
        return false;
    }
    uint64_t unit = end [0] == 's'? 1: end [0] == 'm'? 60: end [0] == 'h'? 3600:
                    end [0] == 'd'? 86400: 0;
    if (!unit || n > 36500ull * 86400 / unit) {
        return false;
    }
    *us = (uint64_t) n * unit * 1000000;
    return true;
}

static int
s_log_findings (const bus_policy_t *policy, const char *dir, uint64_t since_us, bool json)
{
    bus_store_t *store = cmd_open_log (dir, "blast");
    if (!store) {
        return 1;
    }
    s_log_t log = { .policy = policy, .since_us = since_us };
    log.used = calloc (policy->edge_count + 1, 1);
    log.attempts = calloc (S_LOG_KEYS_MAX, sizeof *log.attempts);
    log.crossings = calloc (S_LOG_KEYS_MAX, sizeof *log.crossings);
    bus_error_t err;
    int rc = 0;
    if (!log.used || !log.attempts || !log.crossings) {
        fprintf (stderr, "bulkhead blast: NOMEM: out of memory\n");
        rc = 1;
    }
    else
    if (bus_store_iterate (store, 1, s_log_record, &log, &err) < 0) {
        cmd_error ("blast", &err);
        rc = 1;
    }
    bus_store_destroy (&store);
    if (rc == 0 && json) {
        printf ("{\"records\":%llu,\"sends_in_window\":%llu,\"unused_edges\":[",
                (unsigned long long) log.records, (unsigned long long) log.sends);
        bool first = true;
        for (size_t e = 0; e < policy->edge_count; e++) {
            if (!log.used [e]) {
                const bus_edge_t *edge = &policy->edges [e];
                printf ("%s{\"from\":\"%s\",\"to\":\"%s\",\"line\":%d}", first? "": ",",
                        policy->agents [edge->from].name, policy->agents [edge->to].name,
                        edge->line);
                first = false;
            }
        }
        printf ("],\"denied_attempts\":[");
        for (size_t i = 0; i < log.n_attempts; i++) {
            s_finding_t *f = &log.attempts [i];
            printf ("%s{", i? ",": "");
            s_json_str ("sender", f->sender, false);
            s_json_str ("recipient", f->recipient, true);
            s_json_str ("code", f->what, true);
            printf (",\"count\":%llu}", (unsigned long long) f->count);
        }
        printf ("],\"crossings\":[");
        for (size_t i = 0; i < log.n_crossings; i++) {
            s_finding_t *f = &log.crossings [i];
            printf ("%s{", i? ",": "");
            s_json_str ("chain", f->chain, false);
            s_json_str ("class", f->what, true);
            s_json_str ("outcome", f->stop, true);
            printf (",\"count\":%llu}", (unsigned long long) f->count);
        }
        printf ("]}\n");
    }
    else
    if (rc == 0) {
        char when [32];
        printf ("\nthe log (%llu records, %llu messages in the window", (unsigned long long) log.records,
                (unsigned long long) log.sends);
        if (since_us) {
            s_when (when, since_us);
            printf (" since %s", when);
        }
        printf ("):\n  edges allowed but never used (least privilege: remove the line):\n");
        size_t unused = 0;
        for (size_t e = 0; e < policy->edge_count; e++) {
            if (!log.used [e] && unused++ < 50) {
                printf ("    ");
                s_text_edge (&(s_ctx_t) { .policy = policy }, (uint32_t) e);
                printf ("\n");
            }
        }
        printf ("    %s%zu of %zu\n", unused > 50? "... ": "", unused, policy->edge_count);
        printf ("  denied but attempted (probing?):\n");
        for (size_t i = 0; i < log.n_attempts; i++) {
            s_finding_t *f = &log.attempts [i];
            char first [32], last [32];
            s_when (first, f->first_us);
            s_when (last, f->last_us);
            printf ("    %s -> ", f->sender);
            bus_print_line (stdout, f->recipient);
            printf (": %s x%llu (%s .. %s)\n", f->what, (unsigned long long) f->count, first, last);
        }
        if (!log.n_attempts) {
            printf ("    none\n");
        }
        printf ("  restricted content that went toward a privileged class (what stopped it):\n");
        for (size_t i = 0; i < log.n_crossings; i++) {
            s_finding_t *f = &log.crossings [i];
            printf ("    %s [%s]: %s x%llu\n", f->chain, f->what, f->stop, (unsigned long long) f->count);
        }
        if (!log.n_crossings) {
            printf ("    none\n");
        }
        if (log.n_attempts == S_LOG_KEYS_MAX || log.n_crossings == S_LOG_KEYS_MAX) {
            printf ("  (only the first %d distinct of each are counted)\n", S_LOG_KEYS_MAX);
        }
    }
    free (log.used);
    free (log.attempts);
    free (log.crossings);
    free (log.links);
    return rc;
}

//  --- main -------------------------------------------------------------------

//  Standing grants from the data directory, read-only beside a live bus.
static int
s_grants (const char *dir, bus_grant_t **out, uint32_t *n)
{
    *out = NULL;
    *n = 0;
    bus_store_t *store = cmd_open_log (dir, "blast");
    if (!store) {
        return -1;
    }
    bus_holds_t *holds;
    bus_error_t err;
    if (bus_holds_open (&holds, store, &err) != 0) {
        cmd_error ("blast", &err);
        bus_store_destroy (&store);
        return -1;
    }
    uint32_t count = bus_holds_grant_count (holds);
    *out = calloc (count + 1, sizeof **out);
    for (uint32_t i = 0; *out && i < count; i++) {
        (*out) [i] = *bus_holds_grant_at (holds, i);
    }
    *n = *out? count: 0;
    bus_holds_destroy (&holds);
    bus_store_destroy (&store);
    return *out? 0: -1;
}

//  What the output needs beside S's own analysis that does not depend on
//  S: all untrusted agents together (the text's second set of choke
//  points) and, for --json, the score. On a shared graph (med_graph_share)
//  it runs on a thread of its own while the caller analyses S, and the
//  text's score, on the caller's thread after S's analysis.
typedef struct {
    med_graph_t *graph;
    med_blast_options_t options;
    const uint32_t *set;                //  the untrusted agents
    size_t n_set;                       //  0: not wanted
    bool score_it;
    med_blast_t *untrusted;             //  out
    int rc;
    bus_error_t err;
    s_score_t score;
} s_side_t;

static void *
s_side (void *arg)
{
    s_side_t *side = arg;
    side->rc = 0;
    if (side->n_set) {
        side->rc = med_blast_open (&side->untrusted, side->graph, side->set, side->n_set,
                                   &side->options, &side->err);
    }
    if (side->rc == 0 && side->score_it) {
        s_score (side->graph, &side->score);
    }
    return NULL;
}

int
cmd_blast (int argc, char **argv)
{
    enum { O_KEY = 1, O_PROVIDER, O_DEPTH, O_ALL, O_JSON, O_DOT, O_PNG, O_POLICY, O_DATA, O_STATS, O_CUTS, O_TARGETS, O_DIFF, O_SINCE, O_LOG };
    static const struct option options [] = {
        { "policy", required_argument, NULL, O_POLICY },
        { "data", required_argument, NULL, O_DATA },
        { "key", required_argument, NULL, O_KEY },
        { "provider", required_argument, NULL, O_PROVIDER },
        { "depth", required_argument, NULL, O_DEPTH },
        { "all", no_argument, NULL, O_ALL },
        { "diff", no_argument, NULL, O_DIFF },
        { "since", required_argument, NULL, O_SINCE },
        { "log", no_argument, NULL, O_LOG },
        { "json", no_argument, NULL, O_JSON },
        { "dot", no_argument, NULL, O_DOT },
        { "png", required_argument, NULL, O_PNG },
        { "stats", no_argument, NULL, O_STATS },
        { "cuts", required_argument, NULL, O_CUTS },
        { "targets", required_argument, NULL, O_TARGETS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *policy_path = NULL, *data = NULL, *png = NULL;
    const char *keys [64], *providers [64];
    size_t n_keys = 0, n_providers = 0;
    bool all = false, json = false, dot = false, stats = false, diff = false, log_only = false;
    uint64_t since = 0;
    double t_start = s_now_ms ();
    med_blast_options_t analysis;
    med_blast_options_default (&analysis);
    unsigned long long number;
    int opt;
    while ((opt = getopt_long (argc, argv, "hk:", options, NULL)) != -1) {
        switch (opt) {
            case O_POLICY: policy_path = optarg; break;
            case O_DATA: data = optarg; break;
            case O_KEY:
                if (n_keys == 64) {
                    return s_usage (false);
                }
                keys [n_keys++] = optarg;
                break;
            case O_PROVIDER:
                if (n_providers == 64) {
                    return s_usage (false);
                }
                providers [n_providers++] = optarg;
                break;
            case O_DEPTH:
                if (!cmd_number (optarg, 1, 64, &number)) {
                    fprintf (stderr, "bulkhead blast: --depth takes 1 to 64 hops\n");
                    return 2;
                }
                analysis.depth = (uint32_t) number;
                break;
            case 'k':
                if (!cmd_number (optarg, 0, 32, &number)) {
                    fprintf (stderr, "bulkhead blast: -k takes 0 to 32 alternatives\n");
                    return 2;
                }
                analysis.k = (uint32_t) number;
                break;
            case O_ALL: all = true; break;
            case O_DIFF: diff = true; break;
            case O_LOG: log_only = true; break;
            case O_SINCE:
                if (!s_duration (optarg, &since)) {
                    fprintf (stderr, "bulkhead blast: --since takes a duration: 30d, 12h, 90m, 45s\n");
                    return 2;
                }
                break;
            case O_JSON: json = true; break;
            case O_DOT: dot = true; break;
            case O_PNG: png = optarg; break;
            case O_STATS: stats = true; break;
            case O_CUTS:
                if (!cmd_number (optarg, 0, 100000, &number)) {
                    fprintf (stderr, "bulkhead blast: --cuts takes 0 to 100000 targets\n");
                    return 2;
                }
                analysis.cuts = (uint32_t) number;
                break;
            case O_TARGETS:
                if (!cmd_number (optarg, 0, 100000000, &number)) {
                    fprintf (stderr, "bulkhead blast: --targets takes a count (0: all)\n");
                    return 2;
                }
                analysis.targets = (uint32_t) number;
                break;
            case 'h': return s_usage (true);
            default: return s_usage (false);
        }
    }
    size_t n_names = (size_t) (argc - optind);
    if (diff) {
        if (n_names != 2 || policy_path || all || dot || png || n_keys || n_providers) {
            return s_usage (false);
        }
        return s_diff (argv [optind], argv [optind + 1], json);
    }
    if (!policy_path || (json && dot) || (all && (dot || png)) || (log_only && !data)
    ||  (!all && !log_only && n_names + n_keys + n_providers == 0)) {
        return s_usage (false);
    }
    bus_policy_t *policy;
    bus_error_t err;
    if (bus_policy_load_max (&policy, policy_path, BUS_POLICY_OFFLINE_MAX, &err) != 0) {
        return cmd_policy_error ("blast", &err);
    }
    double t_loaded = s_now_ms ();
    int rc = 1;
    bus_grant_t *grants = NULL;
    uint32_t n_grants = 0;
    med_graph_t *graph = NULL;
    med_blast_t *blast = NULL, *untrusted = NULL;
    uint32_t *set = calloc (policy->agent_count + 1, sizeof *set);
    uint32_t *untrusted_set = calloc (policy->agent_count + 1, sizeof *untrusted_set);
    uint8_t *pick = calloc (policy->agent_count + 1, 1);
    size_t n_set = 0;
    if (!set || !untrusted_set || !pick) {
        fprintf (stderr, "bulkhead blast: out of memory for %zu agents\n", policy->agent_count);
        goto done;
    }
    if (data && s_grants (data, &grants, &n_grants) != 0) {
        goto done;
    }
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    if (med_graph_new (&graph, policy, grants, n_grants,
                       (uint64_t) now.tv_sec * 1000000 + (uint64_t) now.tv_nsec / 1000, &err) != 0) {
        cmd_error ("blast", &err);
        goto done;
    }
    s_ctx_t ctx = { policy, graph, NULL, policy_path, analysis.targets, NULL };
    uint64_t since_us = since && (uint64_t) now.tv_sec * 1000000 > since?
                        (uint64_t) now.tv_sec * 1000000 - since: 0;
    if (log_only) {
        rc = data? s_log_findings (policy, data, since_us, json): s_usage (false);
        goto done;
    }
    if (all) {
        rc = s_all (&ctx, json);
        goto done;
    }
    //  The compromised set: names, keys, providers; each must name something.
    for (size_t i = 0; i < n_names; i++) {
        const bus_agent_t *agent = bus_policy_agent (policy, argv [optind + i]);
        if (!agent) {
            fprintf (stderr, "bulkhead blast: %s: no agent '", policy_path);
            bus_print_line (stderr, argv [optind + i]);
            fprintf (stderr, "' in the policy\n");
            rc = 2;
            goto done;
        }
        pick [bus_policy_agent_index (policy, agent)] = 1;
    }
    for (size_t i = 0; i < n_keys; i++) {
        size_t found = 0;
        for (size_t a = 0; a < policy->agent_count; a++) {
            const bus_agent_t *agent = &policy->agents [a];
            if (strcmp (agent->key_fp, keys [i]) == 0 || strcmp (agent->key_z85, keys [i]) == 0
            ||  (agent->next_key_fp [0] && strcmp (agent->next_key_fp, keys [i]) == 0)) {
                pick [a] = 1;
                found++;
            }
        }
        if (!found) {
            fprintf (stderr, "bulkhead blast: %s: no agent has key '", policy_path);
            bus_print_line (stderr, keys [i]);
            fprintf (stderr, "' (a fingerprint as `bulkhead check` lists them)\n");
            rc = 2;
            goto done;
        }
    }
    for (size_t i = 0; i < n_providers; i++) {
        size_t found = 0;
        for (size_t a = 0; a < policy->agent_count; a++) {
            if (strcmp (policy->agents [a].provider, providers [i]) == 0) {
                pick [a] = 1;
                found++;
            }
        }
        if (!found) {
            fprintf (stderr, "bulkhead blast: %s: no agent has provider '", policy_path);
            bus_print_line (stderr, providers [i]);
            fprintf (stderr, "'\n");
            rc = 2;
            goto done;
        }
    }
    for (size_t a = 0; a < policy->agent_count; a++) {
        if (pick [a]) {
            set [n_set++] = (uint32_t) a;
        }
    }
    //  The text lists only the first targets of each class; of the others
    //  it shows the verdicts, and needs no paths.
    analysis.counted_paths = json || dot || png;
    //  Beside S: all untrusted agents together, of whom the text shows only
    //  the cuts (no alternatives), and the score; see s_side.
    bool text = !json && !dot && !png;
    s_side_t side = { .graph = graph, .options = analysis, .score_it = json && !png };
    side.options.k = 0;
    if (text) {
        for (size_t a = 0; a < policy->agent_count; a++) {
            if (policy->agents [a].untrusted) {
                untrusted_set [side.n_set++] = (uint32_t) a;
            }
        }
        side.set = untrusted_set;
    }
    pthread_t thread;
    bool threaded = (side.n_set || side.score_it) && med_graph_share (graph)
                 && pthread_create (&thread, NULL, s_side, &side) == 0;
    int open_rc = med_blast_open (&blast, graph, set, n_set, &analysis, &err);
    s_score_t score;
    if (open_rc == 0 && text) {
        s_score (graph, &score);
        ctx.score = &score;
    }
    if (threaded) {
        pthread_join (thread, NULL);
    }
    else
    if (open_rc == 0) {
        s_side (&side);
    }
    untrusted = side.untrusted;
    if (open_rc != 0) {
        cmd_error ("blast", &err);
        goto done;
    }
    if (side.score_it) {
        ctx.score = &side.score;        //  the side ran: S's analysis did not fail
    }
    ctx.blast = blast;
    if (stats) {
        //  To stderr: the figures README quotes (bench/blast.sh).
        size_t runs, hits;
        med_graph_counts (graph, &runs, &hits);
        fprintf (stderr, "blast-stats: agents=%zu edges=%zu load_ms=%.0f search_ms=%.1f "
                 "targets_ms=%.1f cuts_ms=%.1f graph_bytes=%zu targets=%zu chain_runs=%zu "
                 "memo_hits=%zu\n",
                 policy->agent_count, policy->edge_count, t_loaded - t_start, blast->ms_search,
                 blast->ms_targets, blast->ms_cuts, med_graph_bytes (graph), blast->n_targets,
                 runs, hits);
    }
    if (side.rc != 0) {
        cmd_error ("blast", &side.err);
        goto done;
    }
    if (png) {
        rc = s_png (&ctx, png);
        goto done;
    }
    if (dot) {
        s_dot (&ctx, stdout);
    }
    else
    if (json) {
        s_json (&ctx);
    }
    else {
        s_text (&ctx, untrusted);
        if (data && s_log_findings (policy, data, since_us, false) != 0) {
            goto done;
        }
    }
    rc = 0;
done:
    med_blast_destroy (&untrusted);
    med_blast_destroy (&blast);
    med_graph_destroy (&graph);
    free (grants);
    free (set);
    free (untrusted_set);
    free (pick);
    bus_policy_destroy (&policy);
    return rc;
}
