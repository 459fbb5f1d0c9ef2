/*  fuzz_policy.c: a policy file, parsed as `bulkhead serve` and `check`
    parse it (bus_policy_parse), and when it parses, the mediator chain
    built on it and run once per sample message.

    Checked on every input:
    - a refusal leaves *out untouched and says why, in one bounded sentence;
    - a policy that parses keeps the promises of bus_policy.h: valid names,
      agents sorted and found by name and by key, edges sorted, found, and
      naming only agents and classes that exist, approvers that are agents
      with the approver role, at most 64 classes;
    - bus_glob_match agrees with the textbook table matcher on the
      policy's own action patterns;
    - along every edge, with every class (carried or not, clean or
      restricted), and between a few agents no edge joins, the chain never
      lets through or holds a message the policy does not allow: a PASS or
      a HOLD has an edge that carries the decided class (an approval must
      not be able to send what no edge allows); a PASS is of a class that
      does not hold, and restricted content passes to no privileged class
      and no recipient that refuses it; a HOLD is of a class that holds
      (or restricted = hold), and restricted content of a privileged class
      is held only under restricted = hold, else denied.
    Mutants of med_hold, med_taint and med_classify that break one of
    these were each caught within a minute from the seeds.
*/
#include "bus_envelope.h"
#include "bus_policy.h"
#include "med_chain.h"
#include "oracle.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char
s_lower (char c)
{
    return c >= 'A' && c <= 'Z'? (char) (c - 'A' + 'a'): c;
}

//  '*' is any run of bytes; ASCII letters without regard to case. The
//  textbook table: row i says which prefixes of text the first i bytes
//  of pattern match. Quadratic, never exponential.
#define GLOB_MAX 128
static bool
s_glob (const char *pattern, const char *text)
{
    size_t m = strlen (pattern), n = strlen (text);
    bool row [GLOB_MAX + 1], next [GLOB_MAX + 1];
    row [0] = true;
    for (size_t j = 1; j <= n; j++) {
        row [j] = false;
    }
    for (size_t i = 1; i <= m; i++) {
        char p = pattern [i - 1];
        next [0] = p == '*' && row [0];
        for (size_t j = 1; j <= n; j++) {
            next [j] = p == '*'? row [j] || next [j - 1]
                               : row [j - 1] && s_lower (p) == s_lower (text [j - 1]);
        }
        memcpy (row, next, (n + 1) * sizeof row [0]);
    }
    return row [n];
}

static void
s_check_glob (const char *pattern, const char *text)
{
    bool got = bus_glob_match (pattern, text);
    if (strlen (pattern) <= GLOB_MAX && strlen (text) <= GLOB_MAX) {
        FUZZ_CHECK (got == s_glob (pattern, text), "bus_glob_match (\"%s\", \"%s\") = %d",
                    pattern, text, got);
    }
}

static void
s_check_policy (const bus_policy_t *p)
{
    FUZZ_CHECK (p->class_count >= 5 && p->class_count <= BUS_CLASS_MAX, "%zu classes", p->class_count);
    FUZZ_CHECK (strlen (p->hash) == BUS_HASH_HEX_LEN, "hash");
    for (size_t i = 0; i < p->class_count; i++) {
        const bus_class_t *c = &p->classes [i];
        FUZZ_CHECK (ref_name_valid (c->name, strlen (c->name)), "class name '%s'", c->name);
        FUZZ_CHECK (bus_policy_class (p, c->name) == (int) i, "class '%s' not found at %zu", c->name, i);
        FUZZ_CHECK (c->quorum >= 1, "class %s: quorum 0", c->name);
        FUZZ_CHECK (c->action_count == 0 || c->actions, "class %s: actions NULL", c->name);
        FUZZ_CHECK (c->approver_count == 0 || c->approvers, "class %s: approvers NULL", c->name);
        for (size_t a = 0; a < c->approver_count; a++) {
            const bus_agent_t *who = bus_policy_agent (p, c->approvers [a]);
            FUZZ_CHECK (who, "class %s: approver '%s' is no agent", c->name, c->approvers [a]);
            FUZZ_CHECK (who->roles & BUS_ROLE_APPROVER, "class %s: '%s' is not an approver",
                        c->name, c->approvers [a]);
        }
        for (size_t a = 0; a < c->action_count; a++) {
            FUZZ_CHECK (c->actions [a], "class %s: action %zu NULL", c->name, a);
        }
        //  Patterns against each other (a pattern read as text has stars
        //  of its own) and against a plain action; a few per class.
        for (size_t a = 0; a < c->action_count && a < 4; a++) {
            s_check_glob (c->actions [a], "transfer.create");
            for (size_t b = 0; b < c->action_count && b < 4; b++) {
                s_check_glob (c->actions [a], c->actions [b]);
            }
        }
    }
    for (size_t i = 0; i < p->agent_count; i++) {
        const bus_agent_t *a = &p->agents [i];
        FUZZ_CHECK (ref_name_valid (a->name, strlen (a->name)), "agent name '%s'", a->name);
        FUZZ_CHECK (i == 0 || strcmp (p->agents [i - 1].name, a->name) < 0, "agents not sorted at %zu", i);
        FUZZ_CHECK (bus_policy_agent (p, a->name) == a, "agent '%s' not found by name", a->name);
        FUZZ_CHECK (strlen (a->key_z85) == BUS_KEY_Z85_LEN, "agent %s: key of %zu chars",
                    a->name, strlen (a->key_z85));
        FUZZ_CHECK (bus_policy_agent_by_key (p, a->key_z85) == a,
                    "agent '%s' not found by its key (a key given twice?)", a->name);
        FUZZ_CHECK (a->class_index >= -1 && a->class_index < (int) p->class_count,
                    "agent %s: class %d", a->name, a->class_index);
        FUZZ_CHECK (a->roles != 0 && (a->roles & ~15u) == 0, "agent %s: roles %x", a->name, a->roles);
        FUZZ_CHECK (bus_policy_agent_index (p, a) == i, "index of %s", a->name);
    }
    FUZZ_CHECK (p->agent_count == 0 || bus_policy_agent (p, "") == NULL, "the empty name is an agent");
    //  The monitor section: settings in their ranges, expectations that
    //  name an agent of this policy, a class of it (or none), a time.
    const bus_monitor_policy_t *m = &p->monitor;
    FUZZ_CHECK (m->loop_turns >= 2 && m->factor >= 2 && m->min_volume >= 1 && m->quiet >= 1
                && m->cost_percent >= 1 && m->cost_percent <= 100 && m->probe >= 1,
                "monitor settings out of range");
    FUZZ_CHECK ((m->quarantine_on >> BUS_ALERT_KIND_COUNT) == 0, "quarantine_on %x", m->quarantine_on);
    FUZZ_CHECK (m->expect_count == 0 || m->expects, "expects NULL");
    for (size_t i = 0; i < m->expect_count; i++) {
        const bus_expect_t *x = &m->expects [i];
        FUZZ_CHECK (x->agent >= 0 && (size_t) x->agent < p->agent_count, "expect %s: agent %d",
                    x->name, x->agent);
        FUZZ_CHECK (x->class_index >= -1 && x->class_index < (int) p->class_count,
                    "expect %s: class %d", x->name, x->class_index);
        FUZZ_CHECK (x->seconds >= 1, "expect %s: 0 s", x->name);
        FUZZ_CHECK (ref_name_valid (x->name, strlen (x->name)), "expect name '%s'", x->name);
    }
    for (size_t i = 0; i < p->edge_count; i++) {
        const bus_edge_t *e = &p->edges [i];
        FUZZ_CHECK (e->from < p->agent_count && e->to < p->agent_count, "edge %zu: %u -> %u",
                    i, e->from, e->to);
        FUZZ_CHECK (p->class_count == 64 || (e->classes >> p->class_count) == 0,
                    "edge %zu carries a class that does not exist", i);
        if (i > 0) {
            const bus_edge_t *d = &p->edges [i - 1];
            FUZZ_CHECK (d->from < e->from || (d->from == e->from && d->to < e->to),
                        "edges not sorted (or given twice) at %zu", i);
        }
        FUZZ_CHECK (bus_policy_edge (p, &p->agents [e->from], &p->agents [e->to]) == e,
                    "edge %zu not found", i);
        //  Class blocks: each names a class the edge carries, once; every
        //  list it resolves to is a list the file gave (no dangling words).
        for (size_t b = 0; b < e->class_scope_count; b++) {
            int c = e->class_scopes [b].class_index;
            FUZZ_CHECK (c >= 0 && c < (int) p->class_count && (e->classes >> c & 1),
                        "edge %zu: block for class %d it does not carry", i, c);
            for (size_t d = 0; d < b; d++) {
                FUZZ_CHECK (e->class_scopes [d].class_index != c, "edge %zu: class %d twice", i, c);
            }
            bus_scope_t scope;
            bus_policy_scope (e, c, &scope);
            FUZZ_CHECK (scope.outside != BUS_OUTSIDE_UNSET, "edge %zu: outside unresolved", i);
            const bus_patterns_t *lists [] = { &scope.actions, &scope.tools, &scope.resources };
            for (int k = 0; k < 3; k++) {
                for (size_t w = 0; w < lists [k]->count; w++) {
                    FUZZ_CHECK (lists [k]->patterns [w] && *lists [k]->patterns [w],
                                "edge %zu: empty pattern", i);
                }
            }
        }
    }
}

//  One sample message through the chain; the default-deny promises. k
//  picks the action (the class's first pattern or none) and what the log
//  says of the sender and the causes.
static void
s_run_one (med_chain_t *chain, const bus_policy_t *p, const bus_agent_t *from,
           const bus_agent_t *to, const bus_class_t *cls, size_t k)
{
    char action [64] = "";
    if (cls->action_count) {
        snprintf (action, sizeof action, "%s", cls->actions [k % cls->action_count]);
        for (char *c = action; *c; c++) {
            *c = *c == '*'? 'x': *c;
        }
    }
    Bulkhead__V1__Send send;
    bulkhead__v1__send__init (&send);
    send.message_id = "m1";
    send.recipient = (char *) to->name;
    send.intent = (char *) cls->name;
    send.action = action [0] && k % 2 == 0? action: NULL;
    send.has_payload = true;
    send.payload.data = (uint8_t *) "hi";
    send.payload.len = 2;
    bus_envelope_t env;
    memset (&env, 0, sizeof env);
    env.policy = p;
    env.sender = from;
    env.sender_name = from->name;
    env.recipient = to;
    env.send = &send;
    env.now_us = 1700000000000000ULL + k;
    env.class_index = bus_policy_class (p, send.intent);
    env.sender_tainted = k & 1;
    env.taint_seq = k & 1;
    env.cause_restricted = k & 2;
    env.cause_seq = k & 2? 7: 0;

    const char *stage = NULL;
    bus_error_t err;
    memset (&err, 0, sizeof err);
    med_verdict_t v = med_chain_run (chain, &env, &stage, &err);
    FUZZ_CHECK (v == MED_PASS || v == MED_HOLD || v == MED_REJECT, "verdict %d", (int) v);
    FUZZ_CHECK (env.class_index >= -1 && env.class_index < (int) p->class_count,
                "class index %d", env.class_index);
    if (v != MED_PASS) {
        FUZZ_CHECK (stage && err.text [0], "a %s without a stage or a reason",
                    v == MED_HOLD? "hold": "rejection");
    }
    if (v == MED_HOLD) {
        //  Only a class that holds, restricted = hold, or an edge's
        //  `outside = hold` for a message outside its scope (any class the
        //  edge carries: an approver of that class decides) holds; and
        //  restricted content of a privileged class is held only when the
        //  class says restricted = hold (else it is denied).
        FUZZ_CHECK (env.class_index >= 0, "held %s -> %s with no class", from->name, to->name);
        const bus_class_t *held = &p->classes [env.class_index];
        const bus_edge_t *edge = bus_policy_edge (p, from, to);
        FUZZ_CHECK (edge && (edge->classes & (UINT64_C (1) << env.class_index)),
                    "held %s -> %s as %s, which no edge allows: an approval would send it",
                    from->name, to->name, held->name);
        bool outside = env.hold_required && strncmp (env.hold_why, "outside scope", 13) == 0;
        FUZZ_CHECK (held->hold || (env.restricted && held->restricted_hold) || outside,
                    "held %s -> %s as %s, which does not hold", from->name, to->name, held->name);
        FUZZ_CHECK (!(env.restricted && held->privileged) || held->restricted_hold,
                    "restricted %s -> %s held as privileged %s, which says restricted = deny",
                    from->name, to->name, held->name);
    }
    if (v != MED_PASS) {
        return;
    }
    FUZZ_CHECK (env.class_index >= 0, "passed %s -> %s with no class", from->name, to->name);
    const bus_class_t *decided = &p->classes [env.class_index];
    const bus_edge_t *edge = bus_policy_edge (p, from, to);
    FUZZ_CHECK (edge, "passed %s -> %s: no edge", from->name, to->name);
    FUZZ_CHECK (edge->classes & (UINT64_C (1) << env.class_index),
                "passed %s -> %s as %s: the edge does not carry it", from->name, to->name,
                decided->name);
    FUZZ_CHECK (!decided->hold, "passed %s -> %s as %s, a class that holds, with no grant",
                from->name, to->name, decided->name);
    FUZZ_CHECK (!(from->untrusted && !env.restricted), "untrusted %s sent unrestricted", from->name);
    if (env.restricted) {
        FUZZ_CHECK (!decided->privileged, "restricted %s -> %s passed as privileged %s",
                    from->name, to->name, decided->name);
        FUZZ_CHECK (to->accepts_restricted, "restricted to %s, which refuses it", to->name);
    }
}

static void
s_run_chain (const bus_policy_t *p)
{
    med_chain_t *chain = NULL;
    bus_error_t err;
    memset (&err, 0, sizeof err);
    if (med_chain_open (&chain, p, &err) != 0) {
        FUZZ_CHECK (err.text [0], "the chain refused the policy without a reason");
        return;
    }
    //  Along the edges, with every class: those they carry (where holds,
    //  taint and refusals of restricted content decide), clean and then
    //  restricted (a tainted sender or cause), and those they do not.
    size_t runs = 0;
    for (size_t e = 0; e < p->edge_count && runs < 48; e++) {
        const bus_edge_t *edge = &p->edges [e];
        for (size_t c = 0; c < p->class_count && runs < 48; c++) {
            bool carried = edge->classes & (UINT64_C (1) << c);
            for (size_t taint = 0; taint < (carried? 2u: 1u); taint++) {
                s_run_one (chain, p, &p->agents [edge->from], &p->agents [edge->to],
                           &p->classes [c], 4 * runs + taint * (1 + runs % 2));
            }
            runs++;
        }
    }
    //  And anywhere: mostly where no edge goes.
    for (size_t k = 0; p->agent_count && k < 6; k++) {
        size_t n = p->agent_count;
        s_run_one (chain, p, &p->agents [k % n], &p->agents [(k * 7 + 1) % n],
                   &p->classes [(k * 3) % p->class_count], k);
    }
    med_chain_destroy (&chain);
    FUZZ_CHECK (chain == NULL, "med_chain_destroy");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static bus_policy_t untouched;
    bus_policy_t *p = &untouched;
    bus_error_t err;
    memset (&err, 0, sizeof err);
    //  No NUL after the text: the parser must stay inside len.
    int rc = bus_policy_parse (&p, (const char *) data, size, "fuzz.cfg", &err);
    if (rc != 0) {
        FUZZ_CHECK (p == &untouched, "a refused policy changed *out");
        FUZZ_CHECK (err.code == BUS_EPOLICY || err.code == BUS_ENOMEM, "code %d", (int) err.code);
        FUZZ_CHECK (memchr (err.text, 0, sizeof err.text) && strncmp (err.text, "fuzz.cfg", 8) == 0,
                    "error does not name the file: %s", err.text);
        return 0;
    }
    FUZZ_CHECK (p && p != &untouched, "parsed, but no policy");
    s_check_policy (p);
    s_run_chain (p);
    bus_policy_destroy (&p);
    FUZZ_CHECK (p == NULL, "bus_policy_destroy");
    return 0;
}
