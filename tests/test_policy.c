/*  test_policy.c: the policy reader and its look-ups.

    Most cases parse text from memory with origin "t.cfg", so an error must
    start with "t.cfg:LINE:". Keys are real CURVE public keys made once with
    zmq_curve_keypair; KEY_E and KEY_F contain '#', so they must be quoted.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "bus_policy.h"

#define KEY_A   "KJT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^"
#define KEY_B   "8+9rBMLy0r%7k}rmciW{.JwUzMOyfNKOz8G{{q+C"
#define KEY_C   "+YIY:*&Rg+pKfrUBVkua-yECBf{!OFG:b6fW%gy]"
#define KEY_D   "/.3M}j1.6Evbs<7n9bQ@O}P+6?[TZ1V{YmMzg@We"
#define KEY_E   "S9X2bxfLD#J5*A(4qho{rQ8py4HQyw<(^9Kc)[sK"
#define KEY_F   "l(P1tB4NS5bs#<AR=wHtQ?wT&z<l@X)uXTy}tw!H"

//  BLAKE2b-256 of zero bytes (RFC 7693 parameters, 32-byte digest)
#define EMPTY_HASH \
    "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"

//  An agent block: two lines, the key quoted
#define AGENT(name, key) "    " name "\n        key = \"" key "\"\n"

//  Agents a (line 2) and b (line 4), for cases that need some
#define AGENTS_AB "agents\n" AGENT ("a", KEY_A) AGENT ("b", KEY_B)

static const char *s_good =
    "# a good policy\n"                                         //  1
    "bus\n"                                                     //  2
    "    max_backlog = 500\n"                                   //  3
    "classes\n"                                                 //  4
    "    finance\n"                                             //  5
    "        approvers = alice, bob\n"                          //  6
    "        quorum = 2\n"                                      //  7
    "        actions = transfer.*, payment.*\n"                 //  8
    "    report                  # our own\n"                   //  9
    "        actions = \"report # daily, x\"   # quoted\n"     //  10
    "agents\n"                                                  //  11
    "    planner\n"                                             //  12
    "        key = \"" KEY_A "\"\n"                             //  13
    "        provider = anthropic\n"                            //  14
    "        role = agent, operator\n"                          //  15
    "        rate = 20\n"                                       //  16
    "    payments\n"                                            //  17
    "        key = " KEY_B "    # bare: no '#' in it\n"         //  18
    "        class = finance\n"                                 //  19
    "        accepts_restricted = no\n"                         //  20
    "        trust = untrusted\n"                               //  21
    "        taint = causal\n"                                  //  22
    "        max_backlog = 7\n"                                 //  23
    "\n"                                                        //  24
    "    alice\n"                                               //  25
    "        key = '" KEY_C "'\n"                               //  26
    "        role = approver\n"                                 //  27
    "    bob\n"                                                 //  28
    "        key = \"" KEY_E "\"\n"                             //  29
    "        role = approver\n"                                 //  30
    "edges\n"                                                   //  31
    "    planner\n"                                             //  32
    "        payments = finance, message\n"                     //  33
    "        alice = query\n"                                   //  34
    "    alice\n"                                               //  35
    "        alice = message     # a self-edge, written\n";     //  36

static bus_policy_t *
s_parse_ok (const char *text)
{
    bus_policy_t *policy = NULL;
    bus_error_t err = { 0 };
    if (bus_policy_parse (&policy, text, strlen (text), "t.cfg", &err)) {
        fail_msg ("parse failed: %s: %s", bus_errname (err.code), err.text);
    }
    assert_non_null (policy);
    return policy;
}

//  Parses text that must fail with BUS_EPOLICY at `line`, with `word` in
//  the message, leaving *out untouched.
static void
s_expect_error (const char *text, size_t len, int line, const char *word)
{
    bus_policy_t sentinel;
    bus_policy_t *policy = &sentinel;
    bus_error_t err = { 0 };
    int rc = bus_policy_parse (&policy, text, len, "t.cfg", &err);
    char prefix [32];
    snprintf (prefix, sizeof prefix, "t.cfg:%d: ", line);
    if (rc != -1 || err.code != BUS_EPOLICY
    ||  strncmp (err.text, prefix, strlen (prefix)) != 0
    ||  !strstr (err.text, word)) {
        fail_msg ("want EPOLICY '%s...%s'\n   got rc=%d %s '%s'\n   for:\n%s",
                  prefix, word, rc, bus_errname (err.code), err.text, text);
    }
    assert_ptr_equal (policy, &sentinel);
}

typedef struct {
    const char *text;
    int line;
    const char *word;
} s_case_t;

static void
s_expect_errors (const s_case_t *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        s_expect_error (cases [i].text, strlen (cases [i].text),
                        cases [i].line, cases [i].word);
    }
}

#define EXPECT_ERRORS(cases) \
    s_expect_errors (cases, sizeof cases / sizeof cases [0])


static void
test_good_policy (void **state)
{
    (void) state;
    bus_policy_t *policy = s_parse_ok (s_good);
    assert_string_equal (policy->path, "");
    assert_int_equal (policy->max_frame, 65536);
    assert_int_equal (policy->max_backlog, 500);
    assert_int_equal (policy->hold_cap_total, 1000);
    assert_int_equal (policy->hold_cap_sender, 100);

    //  Agents sorted by name, whatever the file's order
    assert_int_equal (policy->agent_count, 4);
    assert_string_equal (policy->agents [0].name, "alice");
    assert_string_equal (policy->agents [1].name, "bob");
    assert_string_equal (policy->agents [2].name, "payments");
    assert_string_equal (policy->agents [3].name, "planner");

    const bus_agent_t *planner = bus_policy_agent (policy, "planner");
    assert_ptr_equal (planner, &policy->agents [3]);
    assert_int_equal (planner->line, 12);
    assert_string_equal (planner->key_z85, KEY_A);
    assert_string_equal (planner->provider, "anthropic");
    assert_int_equal (planner->roles, BUS_ROLE_AGENT | BUS_ROLE_OPERATOR);
    assert_int_equal (planner->rate, 20);
    assert_int_equal (planner->max_backlog, 500);   //  the bus default
    assert_int_equal (planner->class_index, -1);
    assert_true (planner->accepts_restricted);
    assert_false (planner->untrusted);
    assert_false (planner->causal);

    const bus_agent_t *payments = bus_policy_agent (policy, "payments");
    assert_non_null (payments);
    assert_string_equal (payments->provider, "");
    assert_int_equal (payments->class_index, 2);
    assert_false (payments->accepts_restricted);
    assert_true (payments->untrusted);
    assert_true (payments->causal);
    assert_int_equal (payments->max_backlog, 7);
    assert_int_equal (payments->roles, BUS_ROLE_AGENT);
    assert_null (bus_policy_agent (policy, "nobody"));
    assert_null (bus_policy_agent (policy, "planne"));

    //  By key; the decoded bytes match what libzmq makes of the text
    const bus_agent_t *bob = bus_policy_agent_by_key (policy, KEY_E);
    assert_non_null (bob);
    assert_string_equal (bob->name, "bob");
    assert_int_equal (bob->roles, BUS_ROLE_APPROVER);
    assert_ptr_equal (bus_policy_agent_by_key (policy, KEY_B), payments);
    assert_ptr_equal (bus_policy_agent_by_key (policy, KEY_A), planner);
    assert_null (bus_policy_agent_by_key (policy, KEY_D));
    uint8_t key [32];
    assert_non_null (zmq_z85_decode (key, KEY_A));
    assert_memory_equal (planner->key, key, sizeof key);
    assert_int_equal (bus_policy_agent_index (policy, planner), 3);

    //  Classes: five built-ins, then the file's
    assert_int_equal (policy->class_count, 6);
    assert_int_equal (bus_policy_class (policy, "report"), 5);
    assert_int_equal (bus_policy_class (policy, "finance"), 2);
    assert_int_equal (bus_policy_class (policy, "nope"), -1);
    const bus_class_t *finance = &policy->classes [2];
    assert_int_equal (finance->line, 5);
    assert_int_equal (finance->quorum, 2);
    assert_int_equal (finance->approver_count, 2);
    assert_string_equal (finance->approvers [0], "alice");
    assert_string_equal (finance->approvers [1], "bob");
    assert_int_equal (finance->action_count, 2);
    assert_string_equal (finance->actions [1], "payment.*");
    assert_true (bus_glob_match (finance->actions [0], "transfer.wire"));
    assert_false (bus_glob_match (finance->actions [0], "refund.wire"));
    const bus_class_t *report = &policy->classes [5];
    assert_int_equal (report->action_count, 2);
    assert_string_equal (report->actions [0], "report # daily");
    assert_string_equal (report->actions [1], "x");
    assert_false (report->privileged);
    assert_false (report->hold);

    //  Edges sorted by (from, to), indices into the sorted agents
    const bus_agent_t *alice = bus_policy_agent (policy, "alice");
    assert_int_equal (policy->edge_count, 3);
    const bus_edge_t *edge = bus_policy_edge (policy, planner, payments);
    assert_non_null (edge);
    assert_int_equal (edge->from, 3);
    assert_int_equal (edge->to, 2);
    assert_int_equal (edge->line, 33);
    assert_true (edge->classes == ((UINT64_C (1) << 0) | (UINT64_C (1) << 2)));
    edge = bus_policy_edge (policy, planner, alice);
    assert_non_null (edge);
    assert_true (edge->classes == UINT64_C (1) << 1);
    assert_non_null (bus_policy_edge (policy, alice, alice));
    assert_null (bus_policy_edge (policy, payments, planner));
    assert_null (bus_policy_edge (policy, bob, bob));
    for (size_t i = 1; i < policy->edge_count; i++) {
        const bus_edge_t *a = &policy->edges [i - 1], *b = &policy->edges [i];
        assert_true (a->from < b->from || (a->from == b->from && a->to < b->to));
    }
    bus_policy_destroy (&policy);
    assert_null (policy);
    bus_policy_destroy (&policy);       //  idempotent
    bus_policy_destroy (NULL);
}

static void
test_builtin_classes (void **state)
{
    (void) state;
    bus_policy_t *policy = s_parse_ok ("");
    const char *names [] = { "message", "query", "finance", "deploy", "comms" };
    assert_int_equal (policy->class_count, 5);
    for (int i = 0; i < 5; i++) {
        const bus_class_t *class = &policy->classes [i];
        assert_string_equal (class->name, names [i]);
        assert_int_equal (class->privileged, i >= 2);
        assert_int_equal (class->hold, i >= 2);
        assert_int_equal (class->quorum, 1);
        assert_int_equal (class->ttl_s, 3600);
        assert_int_equal (class->line, 0);
        assert_int_equal (class->approver_count, 0);
        assert_int_equal (class->action_count, 0);
    }
    assert_int_equal (policy->agent_count, 0);
    assert_int_equal (policy->edge_count, 0);
    assert_string_equal (policy->hash, EMPTY_HASH);
    bus_policy_destroy (&policy);

    policy = s_parse_ok ("classes\n"
                         "    finance\n"
                         "        hold = false\n"
                         "        ttl = 60\n"
                         "    ops\n"
                         "        privileged = yes\n"
                         "    message\n"
                         "        hold = 1\n");
    assert_int_equal (policy->class_count, 6);
    assert_true (policy->classes [2].privileged);   //  kept
    assert_false (policy->classes [2].hold);        //  changed
    assert_int_equal (policy->classes [2].ttl_s, 60);
    assert_int_equal (policy->classes [2].line, 2);
    assert_true (policy->classes [0].hold);
    assert_false (policy->classes [0].privileged);
    assert_int_equal (policy->classes [3].line, 0);
    assert_string_equal (policy->classes [5].name, "ops");
    assert_true (policy->classes [5].privileged);
    assert_false (policy->classes [5].hold);
    assert_int_equal (policy->classes [5].quorum, 1);
    assert_int_equal (policy->classes [5].ttl_s, 3600);
    bus_policy_destroy (&policy);
}

static void
test_class_limit (void **state)
{
    (void) state;
    //  59 classes of our own + 5 built-ins fill the 64-bit mask; one more
    //  is refused on its own line
    char text [4096] = "classes\n";
    for (int i = 0; i < 60; i++) {
        snprintf (text + strlen (text), sizeof text - strlen (text),
                  "    c%d\n", i);
    }
    s_expect_error (text, strlen (text), 61, "too many classes");
    *strstr (text, "    c59\n") = 0;
    bus_policy_t *policy = s_parse_ok (text);
    assert_int_equal (policy->class_count, BUS_CLASS_MAX);
    assert_int_equal (bus_policy_class (policy, "c58"), 63);
    bus_policy_destroy (&policy);
}

static void
test_syntax_errors (void **state)
{
    (void) state;
    static const s_case_t cases [] = {
        { "agents\n\tplanner\n", 2, "tab in indentation" },
        { "agents\n    \tplanner\n", 2, "tab in indentation" },
        { "agents\n   planner\n", 2, "multiple of 4" },
        { "agents\n        planner\n", 2, "too deep" },
        { "    bus\n", 1, "too deep" },
        { "# comment\n\n   \t \nbus\n      max_frame = 1\n", 5, "multiple of 4" },
        { "bus\r\n\r\n    max_frame\t= 1 x\r\n        y\r\n", 4, "takes a value" },
        { AGENTS_AB "    c\n        key = \"abc\n", 7, "unterminated" },
        { "bus\n    max_frame = \"256\" x\n", 2, "after the closing quote" },
        { "bus\n    = 256\n", 2, "missing name" },
        { "bus\n    max_frame 256\n", 2, "expected '='" },
        { "bus\n    max_frame = 256\x01\n", 2, "control byte 0x01" },
        { "bus\n    max_frame = 2\r56\n", 2, "control byte 0x0d" },
    };
    EXPECT_ERRORS (cases);
}

static void
test_nul_in_name (void **state)
{
    (void) state;
    static const char text [] = "agents\n    pla\0nner\n        key = x\n";
    s_expect_error (text, sizeof text - 1, 2, "control byte 0x00");
    //  And a name check that sees raw bytes refuses it too
    assert_false (bus_name_valid ("pla\0nner", 8));

    //  No err and no origin: still refused, nothing written
    bus_policy_t *policy = NULL;
    assert_int_equal (bus_policy_parse (&policy, text, sizeof text - 1,
                                        NULL, NULL), -1);
    assert_null (policy);
}

static void
test_section_errors (void **state)
{
    (void) state;
    static const s_case_t cases [] = {
        { "bus\n\nfoo\n", 3, "unknown key 'foo' in the top level "
                             "(known: bus, classes, agents, edges, monitor)" },
        { "bus\nagents\nbus\n", 3, "given twice (first at line 1)" },
        { "agents = all\n", 1, "takes no value" },
        { "bus\n    max_frames = 1\n", 2, "unknown key 'max_frames' in bus "
          "(known: max_frame, max_backlog, hold_cap_total, hold_cap_sender, frames, bytes, "
          "connections, log_budget, backlog_share, key_max_age)" },
        { "bus\n    max_frame = 255\n", 2, "from 256 to 16777216, not '255'" },
        { "bus\n    max_frame = 16777217\n", 2, "from 256 to 16777216" },
        { "bus\n    max_frame = 0x1000\n", 2, "whole number" },
        { "bus\n    max_frame = +4096\n", 2, "whole number" },
        { "bus\n    max_frame = 4096.0\n", 2, "whole number" },
        { "bus\n    max_backlog = -1\n", 2, "whole number" },
        { "bus\n    max_backlog = 0\n", 2, "from 1 to" },
        { "bus\n    hold_cap_total = 99999999999\n", 2, "whole number" },
        { "bus\n    hold_cap_total = 4294967296\n", 2, "whole number" },
        { "bus\n    hold_cap_sender =\n", 2, "needs a value" },
        { "bus\n    hold_cap_total = 1025\n", 2, "hold_cap_total" },
        { "bus\n    hold_cap_sender = \"\"\n", 2, "needs a value" },
        { "bus\n    max_frame = 512\n    max_frame = 1024\n", 3, "twice" },
    };
    EXPECT_ERRORS (cases);

    bus_policy_t *policy = s_parse_ok ("bus\n"
                                       "    max_frame = 16777216\n"
                                       "    hold_cap_total = 1024\n"
                                       "    hold_cap_sender = 007\n");
    assert_int_equal (policy->max_frame, 16777216);
    assert_int_equal (policy->hold_cap_total, 1024);
    assert_int_equal (policy->hold_cap_sender, 7);
    bus_policy_destroy (&policy);
}

static void
test_class_errors (void **state)
{
    (void) state;
    static const s_case_t cases [] = {
        { "classes\n    finance\n        holds = true\n", 3,
          "unknown key 'holds' in class 'finance' (known: privileged, hold, "
          "actions, approvers, quorum, ttl, restricted)" },
        { "classes\n    finance\n        hold = maybe\n", 3, "true or false" },
        { "classes\n    finance\n        restricted = allow\n", 3, "unknown restricted 'allow' (known: deny, hold)" },
        { "classes\n    finance\n        ttl = 0\n", 3, "from 1 to" },
        { "classes\n    finance\n        quorum = 0\n", 3, "from 1 to" },
        { "classes\n    Finance\n", 2, "class name 'Finance' is not valid" },
        { "classes\n    ops\n    x\n    ops\n", 4, "given twice (first at line 2)" },
        { "classes\n    finance = yes\n", 2, "takes no value" },
        { "classes\n    ops\n        actions = a.*,, b\n", 3, "empty entry" },
        { "classes\n    ops\n        actions = a.*,\n", 3, "empty entry" },
        { "classes\n    ops\n        approvers = a, b, a\n", 3,
          "approver 'a' is listed twice" },
        //  Approvers are checked against agents defined further down
        { "classes\n"
          "    finance\n"
          "        approvers = a\n"
          "        quorum = 2\n"
          "agents\n" AGENT ("a", KEY_A), 4, "quorum 2 in class 'finance' "
          "exceeds its 1 approvers" },
        { "classes\n"
          "    finance\n"
          "        quorum = 1\n"
          "        approvers = carol\n"
          "agents\n"
          AGENT ("a", KEY_A) "        role = approver\n"
          AGENT ("b", KEY_B) "        role = operator, approver\n",
          4, "unknown agent 'carol' in approvers of class 'finance' "
          "(known approvers: a, b)" },
        { "classes\n"
          "    deploy\n"
          "        approvers = b\n"
          "agents\n"
          AGENT ("a", KEY_A) "        role = approver\n"
          AGENT ("b", KEY_B),
          3, "agent 'b' in approvers of class 'deploy' lacks the approver "
          "role; add role = approver to it (line 8)" },
    };
    EXPECT_ERRORS (cases);
}

static void
test_agent_errors (void **state)
{
    (void) state;
    static const s_case_t cases [] = {
        { "agents\n    Planner\n", 2, "agent name 'Planner' is not valid" },
        { "agents\n    -planner\n", 2, "is not valid" },
        { "agents\n    a = 1\n", 2, "agent 'a' takes no value" },
        { "agents\n    a\n        provider = x\n", 2, "agent 'a' has no key" },
        { "agents\n    a\n        key = \"abc\"\n", 3, "Z85" },
        { "agents\n    a\n        key = \"~" KEY_A "\"\n", 3, "Z85" },
        { "agents\n    a\n        key = "
          "\"~JT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^\"\n", 3, "Z85" },
        { "agents\n    a\n        key = "
          "\"########################################\"\n", 3, "Z85" },
        { "agents\n    a\n        key = \"" KEY_A "xxxxx\"\n", 3, "Z85" },
        //  Unquoted, a '#' in the key starts a comment and cuts the key
        { "agents\n    a\n        key = " KEY_E "\n", 3, "quote it" },
        { "agents\n    a\n        key = \"" KEY_A "\"\n"
          "        keys = x\n", 4, "unknown key 'keys' in agent 'a' (known: "
          "key, next_key, created, expires, provider, trust, taint, accepts_restricted, "
          "class, role, max_backlog, rate, frames, bytes, log_budget)" },
        { "agents\n    a\n        key = \"" KEY_A "\"\n"
          "        key = \"" KEY_B "\"\n", 4, "twice (first at line 3)" },
        { AGENTS_AB "    a\n        key = \"" KEY_C "\"\n", 6,
          "agent 'a' is given twice (lines 2 and 6)" },
        { AGENTS_AB AGENT ("c", KEY_D) AGENT ("d", KEY_A), 8,
          "agent 'd' has the same key as agent 'a' (line 2)" },
        { AGENTS_AB "        class = nope\n", 6, "unknown class 'nope' for "
          "agent 'b' (known: message, query, finance, deploy, comms)" },
        { AGENTS_AB "        trust = maybe\n", 6,
          "unknown trust 'maybe' (known: trusted, untrusted)" },
        { AGENTS_AB "        taint = none\n", 6,
          "unknown taint 'none' (known: sticky, causal)" },
        { AGENTS_AB "        role = agent, boss\n", 6,
          "unknown role 'boss' (known: agent, approver, operator, monitor)" },
        { AGENTS_AB "        accepts_restricted = nope\n", 6, "true or false" },
        { AGENTS_AB "        max_backlog = 0\n", 6, "from 1 to" },
        { AGENTS_AB "        rate = 1.5\n", 6, "whole number" },
        { AGENTS_AB "        provider = Big Co\n", 6, "provider 'Big Co'" },
    };
    EXPECT_ERRORS (cases);
}

static void
test_edge_errors (void **state)
{
    (void) state;
    static const s_case_t cases [] = {
        { AGENTS_AB "edges\n    ghost\n", 7, "unknown agent 'ghost' as sender "
          "in edges (known: a, b)" },
        { AGENTS_AB "edges\n    a\n        payments-v2 = message\n", 8,
          "unknown agent 'payments-v2' as recipient in edges (known: a, b)" },
        { AGENTS_AB "edges\n    a\n        b = message, nope\n", 8,
          "unknown class 'nope' in edge a -> b (known: message, query, "
          "finance, deploy, comms)" },
        { AGENTS_AB "edges\n    a\n        b = message\n        a = query\n"
          "        b = query\n", 10, "edge a -> b is given twice (first at "
          "line 8)" },
        { AGENTS_AB "edges\n    a\n        b = message\n    b\n"
          "        a = query\n    a\n        b = query\n", 12,
          "edge a -> b is given twice (first at line 8)" },
        { AGENTS_AB "edges\n    a\n        b\n", 8, "edge a -> b needs its classes" },
        { AGENTS_AB "edges\n    a = b\n", 7, "sender 'a' takes no value" },
        { AGENTS_AB "edges\n    a\n        b = message,\n", 8, "empty entry" },
    };
    EXPECT_ERRORS (cases);
}

static void
test_edge_indices (void **state)
{
    (void) state;
    //  Declared z, m, a: edges must point at the sorted positions
    bus_policy_t *policy = s_parse_ok ("agents\n"
                                       AGENT ("z", KEY_A)
                                       AGENT ("m", KEY_B)
                                       AGENT ("a", KEY_F)
                                       "edges\n"
                                       "    z\n"
                                       "        a = comms\n"
                                       "    m\n"
                                       "        z = query\n"
                                       "        m = query\n");
    const bus_agent_t *a = bus_policy_agent (policy, "a");
    const bus_agent_t *m = bus_policy_agent (policy, "m");
    const bus_agent_t *z = bus_policy_agent (policy, "z");
    assert_ptr_equal (a, &policy->agents [0]);
    assert_ptr_equal (m, &policy->agents [1]);
    assert_ptr_equal (z, &policy->agents [2]);
    assert_ptr_equal (bus_policy_agent_by_key (policy, KEY_F), a);
    const bus_edge_t *edge = bus_policy_edge (policy, z, a);
    assert_non_null (edge);
    assert_int_equal (edge->from, 2);
    assert_int_equal (edge->to, 0);
    assert_true (edge->classes == UINT64_C (1) << 4);
    assert_ptr_equal (edge, &policy->edges [2]);
    assert_int_equal (policy->edges [0].from, 1);
    assert_int_equal (policy->edges [0].to, 1);
    assert_int_equal (policy->edges [1].to, 2);
    assert_null (bus_policy_edge (policy, a, z));
    assert_null (bus_policy_edge (policy, z, z));
    bus_policy_destroy (&policy);
}

static void
test_hash (void **state)
{
    (void) state;
    bus_policy_t *one = s_parse_ok (s_good);
    bus_policy_t *two = s_parse_ok (s_good);
    assert_int_equal (strlen (one->hash), BUS_HASH_HEX_LEN);
    assert_int_equal (strspn (one->hash, "0123456789abcdef"), BUS_HASH_HEX_LEN);
    assert_string_equal (one->hash, two->hash);
    assert_string_not_equal (one->hash, EMPTY_HASH);
    bus_policy_destroy (&two);

    //  One byte of a comment changes nothing in the policy but the hash
    char *text = strdup (s_good);
    assert_non_null (text);
    text [2] = 'A';
    two = s_parse_ok (text);
    assert_string_not_equal (one->hash, two->hash);
    assert_int_equal (one->agent_count, two->agent_count);
    free (text);
    bus_policy_destroy (&one);
    bus_policy_destroy (&two);
}

//  tests/data next to this file, so the test runs from the repo root
static void
s_data_path (char *path, size_t size, const char *name)
{
    const char *slash = strrchr (__FILE__, '/');
    int dir = slash? (int) (slash - __FILE__): 1;
    snprintf (path, size, "%.*s/data/%s", dir, slash? __FILE__: ".", name);
}

static void
test_load (void **state)
{
    (void) state;
    char path [512];
    s_data_path (path, sizeof path, "policy_ok.cfg");
    bus_policy_t *policy = NULL;
    bus_error_t err = { 0 };
    if (bus_policy_load (&policy, path, &err)) {
        fail_msg ("%s", err.text);
    }
    assert_string_equal (policy->path, path);
    assert_int_equal (policy->agent_count, 4);
    assert_int_equal (policy->max_frame, 131072);
    const bus_agent_t *bob = bus_policy_agent (policy, "bob");
    assert_non_null (bob);
    assert_string_equal (bob->key_z85, KEY_E);
    assert_int_equal (policy->classes [2].quorum, 2);

    //  The hash is of the file's bytes, the same as parsing them
    FILE *file = fopen (path, "rb");
    assert_non_null (file);
    char text [4096];
    size_t len = fread (text, 1, sizeof text, file);
    fclose (file);
    bus_policy_t *parsed = NULL;
    assert_int_equal (bus_policy_parse (&parsed, text, len, "x", &err), 0);
    assert_string_equal (parsed->hash, policy->hash);
    assert_string_equal (parsed->path, "");
    bus_policy_destroy (&parsed);
    bus_policy_destroy (&policy);
}

static void
test_load_missing (void **state)
{
    (void) state;
    bus_policy_t sentinel;
    bus_policy_t *policy = &sentinel;
    bus_error_t err = { 0 };
    assert_int_equal (bus_policy_load (&policy, "/nonexistent/p.cfg", &err), -1);
    assert_int_equal (err.code, BUS_EIO);
    assert_string_equal (err.text, "/nonexistent/p.cfg: No such file or directory");
    assert_ptr_equal (policy, &sentinel);
}

static void
test_name_valid (void **state)
{
    (void) state;
    char longest [BUS_NAME_MAX + 2];
    memset (longest, 'a', sizeof longest);
    assert_true (bus_name_valid ("planner", 7));
    assert_true (bus_name_valid ("web-reader.v2_x", 15));
    assert_true (bus_name_valid ("9lives", 6));
    assert_true (bus_name_valid (longest, BUS_NAME_MAX));
    assert_false (bus_name_valid (longest, BUS_NAME_MAX + 1));
    assert_false (bus_name_valid ("", 0));
    assert_false (bus_name_valid (NULL, 3));
    assert_false (bus_name_valid ("Planner", 7));
    assert_false (bus_name_valid ("-planner", 8));
    assert_false (bus_name_valid (".planner", 8));
    assert_false (bus_name_valid ("plan ner", 8));
    assert_false (bus_name_valid ("plan/ner", 8));
    assert_false (bus_name_valid ("planner\0", 8));
    assert_false (bus_name_valid ("caf\xc3\xa9", 5));
}

static void
test_glob (void **state)
{
    (void) state;
    assert_true (bus_glob_match ("transfer.*", "transfer.wire"));
    assert_true (bus_glob_match ("transfer.*", "transfer."));
    assert_false (bus_glob_match ("transfer.*", "transfer"));
    assert_true (bus_glob_match ("*", ""));
    assert_true (bus_glob_match ("*", "anything"));
    assert_true (bus_glob_match ("", ""));
    assert_false (bus_glob_match ("", "x"));
    assert_true (bus_glob_match ("a*b*c", "aXXbYYc"));
    assert_true (bus_glob_match ("a*b*c", "abc"));
    assert_true (bus_glob_match ("*.wire", "x.wire.wire"));
    assert_false (bus_glob_match ("a*b*c", "aXXbYY"));
    assert_false (bus_glob_match ("a?c", "abc"));       //  '?' is a byte
    assert_true (bus_glob_match ("a?c", "a?c"));
    assert_true (bus_glob_match ("**x", "x"));
    assert_false (bus_glob_match ("pay", "payment"));
    assert_false (bus_glob_match (NULL, "x"));
}

//  A fleet large enough that two threads read its edges (more than 65,536):
//  F_AGENTS agents named a0..., each sending to F_FANOUT others. Faults
//  replace one line: at sender h's edge e (e = -1: the heading itself), the
//  text `with`. Returns the text; *line_of gets each fault's line.
#define F_AGENTS    300
#define F_FANOUT    250

typedef struct {
    int heading, edge;
    const char *with;
    int line;                           //  out
} s_fault_t;

static char *
s_fleet (s_fault_t *faults, size_t n_faults, int repeat_heading)
{
    size_t size = 64 + (size_t) F_AGENTS * 80 + (size_t) F_AGENTS * (F_FANOUT + 2) * 40;
    char *text = malloc (size);
    assert_non_null (text);
    size_t len = 0;
    int line = 0;
#define F_LINE(...) (len += (size_t) snprintf (text + len, size - len, __VA_ARGS__), line++)
    F_LINE ("agents\n");
    for (int a = 0; a < F_AGENTS; a++) {
        uint8_t key [32] = { (uint8_t) a, (uint8_t) (a >> 8), 7 };
        char z85 [41];
        assert_non_null (zmq_z85_encode (z85, key, 32));
        F_LINE ("    a%d\n", a);
        F_LINE ("        key = \"%s\"\n", z85);
    }
    F_LINE ("edges\n");
    for (int h = 0; h < F_AGENTS + (repeat_heading >= 0); h++) {
        int from = h < F_AGENTS? h: repeat_heading;
        const s_fault_t *fault = NULL;
        for (int e = -1; e < F_FANOUT; e++) {
            fault = NULL;
            for (size_t f = 0; f < n_faults; f++) {
                if (faults [f].heading == h && faults [f].edge == e) {
                    faults [f].line = line + 1;
                    fault = &faults [f];
                }
            }
            //  The repeated heading lists one edge its first one gave.
            if (h == F_AGENTS && e >= 1) {
                break;
            }
            if (fault) {
                F_LINE ("%s\n", fault->with);
            }
            else
            if (e < 0) {
                F_LINE ("    a%d\n", from);
            }
            else {
                F_LINE ("        a%d = %s\n", (from + 1 + e * 7) % F_AGENTS,
                        e % 3? "message": "query, message");
            }
        }
    }
#undef F_LINE
    return text;
}

//  The first error in the file is the one told, whichever share read it.
static void
s_fleet_error (s_fault_t *faults, size_t n_faults, size_t told, const char *word)
{
    char *text = s_fleet (faults, n_faults, -1);
    bus_policy_t *policy = NULL;
    bus_error_t err = { 0 };
    int rc = bus_policy_parse (&policy, text, strlen (text), "t.cfg", &err);
    char prefix [32];
    snprintf (prefix, sizeof prefix, "t.cfg:%d: ", faults [told].line);
    if (rc != -1 || err.code != BUS_EPOLICY || strncmp (err.text, prefix, strlen (prefix)) != 0
    ||  !strstr (err.text, word)) {
        fail_msg ("want '%s...%s', got rc=%d '%s'", prefix, word, rc, err.text);
    }
    assert_null (policy);
    free (text);
}

static void
test_fleet_edges (void **state)
{
    (void) state;
    char *text = s_fleet (NULL, 0, -1);
    bus_policy_t *policy = s_parse_ok (text);
    free (text);
    assert_int_equal (policy->edge_count, F_AGENTS * F_FANOUT);
    //  In (from, to) order, each where the file gave it.
    for (size_t i = 1; i < policy->edge_count; i++) {
        const bus_edge_t *a = &policy->edges [i - 1], *b = &policy->edges [i];
        assert_true (a->from < b->from || (a->from == b->from && a->to < b->to));
    }
    for (int from = 0; from < F_AGENTS; from += 37) {
        char name [16], to_name [16];
        snprintf (name, sizeof name, "a%d", from);
        for (int e = 0; e < F_FANOUT; e += 11) {
            snprintf (to_name, sizeof to_name, "a%d", (from + 1 + e * 7) % F_AGENTS);
            const bus_edge_t *edge = bus_policy_edge (policy, bus_policy_agent (policy, name),
                                                      bus_policy_agent (policy, to_name));
            assert_non_null (edge);
            assert_int_equal (edge->line, 2 + 2 * F_AGENTS + from * (F_FANOUT + 1) + e + 2);
            assert_true (edge->classes >> bus_policy_class (policy, "message") & 1);
            assert_int_equal (edge->classes >> bus_policy_class (policy, "query") & 1, e % 3 == 0);
        }
    }
    bus_policy_destroy (&policy);
}

//  A file of more than 4 MiB is hashed on a second thread, ahead of the
//  reader that cuts it: the hash is still that of the bytes as they were.
static void
test_fleet_hash (void **state)
{
    (void) state;
    char *fleet = s_fleet (NULL, 0, -1);
    size_t fleet_len = strlen (fleet), len = fleet_len + (5u << 20);
    char *text = malloc (len + 1);
    assert_non_null (text);
    memcpy (text, fleet, fleet_len);
    for (size_t at = fleet_len; at < len; at += 64) {
        memcpy (text + at, "# padding, with = and , that a reader would cut, ................\n", 64);
    }
    text [len] = 0;
    free (fleet);
    uint8_t hash [32];
    char hex [65];
    crypto_generichash (hash, sizeof hash, (const uint8_t *) text, len, NULL, 0);
    sodium_bin2hex (hex, sizeof hex, hash, sizeof hash);
    bus_policy_t *policy = NULL;
    bus_error_t err = { 0 };
    assert_int_equal (bus_policy_parse (&policy, text, len, "t.cfg", &err), 0);
    assert_string_equal (policy->hash, hex);
    bus_policy_destroy (&policy);
    free (text);
}

//  A fleet's keys are indexed on a second thread (8,192 agents or more):
//  look-ups by key and by next key find their agent, and a key given
//  twice is still told, at the later agent, naming the earlier.
#define K_AGENTS    9000

static char *
s_key_fleet (int twin, int self_rotation)
{
    size_t size = (size_t) K_AGENTS * 160 + 64, len = 0;
    char *text = malloc (size);
    assert_non_null (text);
    len += (size_t) snprintf (text + len, size - len, "agents\n");
    for (int a = 0; a < K_AGENTS; a++) {
        int k = a == twin? 17: a;
        uint8_t key [32] = { (uint8_t) k, (uint8_t) (k >> 8), 9 }, next [32] = { 0 };
        char z85 [41], next_z85 [41];
        assert_non_null (zmq_z85_encode (z85, key, 32));
        memcpy (next, key, 32);
        next [3] = a == self_rotation? 0: 1;
        assert_non_null (zmq_z85_encode (next_z85, next, 32));
        len += (size_t) snprintf (text + len, size - len, "    a%d\n        key = \"%s\"\n", a, z85);
        if (a % 100 == 0 || a == self_rotation) {
            len += (size_t) snprintf (text + len, size - len, "        next_key = \"%s\"\n",
                                      a == self_rotation? z85: next_z85);
        }
    }
    assert_true (len < size);
    return text;
}

static void
test_fleet_keys (void **state)
{
    (void) state;
    char *text = s_key_fleet (-1, -1);
    bus_policy_t *policy = NULL;
    bus_error_t err = { 0 };
    if (bus_policy_parse (&policy, text, strlen (text), "t.cfg", &err) != 0) {
        fail_msg ("%s", err.text);
    }
    free (text);
    assert_int_equal (policy->agent_count, K_AGENTS);
    for (int a = 0; a < K_AGENTS; a += 97) {
        char name [16];
        snprintf (name, sizeof name, "a%d", a);
        const bus_agent_t *agent = bus_policy_agent (policy, name);
        assert_non_null (agent);
        assert_ptr_equal (bus_policy_agent_by_key (policy, agent->key_z85), agent);
        if (agent->next_key_z85 [0]) {
            assert_ptr_equal (bus_policy_agent_by_key (policy, agent->next_key_z85), agent);
        }
    }
    assert_null (bus_policy_agent_by_key (policy, "0000000000000000000000000000000000000000"));
    bus_policy_destroy (&policy);

    //  a8500 has a17's key ...
    text = s_key_fleet (8500, -1);
    int rc = bus_policy_parse (&policy, text, strlen (text), "t.cfg", &err);
    free (text);
    assert_int_equal (rc, -1);
    assert_null (policy);
    if (!strstr (err.text, "agent 'a8500' has the same key as agent 'a17' (line ")) {
        fail_msg ("got '%s'", err.text);
    }
    //  ... and one whose next key is its key.
    text = s_key_fleet (-1, 8999);
    rc = bus_policy_parse (&policy, text, strlen (text), "t.cfg", &err);
    free (text);
    assert_int_equal (rc, -1);
    assert_null (policy);
    if (!strstr (err.text, "agent 'a8999' has the same key as key and as next_key")) {
        fail_msg ("got '%s'", err.text);
    }
}

static void
test_fleet_errors (void **state)
{
    (void) state;
    //  One in each half: the first half's is told.
    s_fault_t both [] = {
        { 40, 9, "        a9 = nonsense", 0 }, { 260, 3, "        nobody = message", 0 },
    };
    s_fleet_error (both, 2, 0, "unknown class 'nonsense'");
    //  Only the second half's.
    s_fleet_error (both + 1, 1, 0, "unknown agent 'nobody' as recipient");
    //  A heading that names no agent, after an edge error: the edge's.
    s_fault_t heading [] = {
        { 250, 0, "        a3 =", 0 }, { 280, -1, "    ghost", 0 },
    };
    s_fleet_error (heading, 2, 0, "needs its classes");
    //  And before one: the heading's, though edges after it are wrong too.
    s_fault_t first [] = {
        { 20, -1, "    ghost = 1", 0 }, { 200, 1, "        nobody = message", 0 },
    };
    s_fleet_error (first, 2, 0, "takes no value");
    //  A sender given under two headings: its edges are one run, and the
    //  edge the second repeats is told with both lines.
    char *text = s_fleet (NULL, 0, 123);
    bus_policy_t *policy = NULL;
    bus_error_t err = { 0 };
    assert_int_equal (bus_policy_parse (&policy, text, strlen (text), "t.cfg", &err), -1);
    char want [128];
    snprintf (want, sizeof want, "edge a123 -> a124 is given twice (first at line %d)",
              2 + 2 * F_AGENTS + 123 * (F_FANOUT + 1) + 2);
    if (!strstr (err.text, want)) {
        fail_msg ("want '%s', got '%s'", want, err.text);
    }
    free (text);
}

//  Agents sort by name and keys by key through their first 16 bytes; a
//  tie there is settled by the whole string.
static void
test_long_names_and_keys (void **state)
{
    (void) state;
    char z85 [3][41];
    for (int k = 0; k < 3; k++) {
        uint8_t key [32];
        memset (key, 0x5a, sizeof key);     //  the first 20 characters alike
        key [31] = (uint8_t) (3 - k);
        assert_non_null (zmq_z85_encode (z85 [k], key, 32));
    }
    assert_memory_equal (z85 [0], z85 [1], 20);
    char text [1024];
    snprintf (text, sizeof text, "agents\n"
              "    payments-executor-west-2\n        key = \"%s\"\n"
              "    payments-executor-west-10\n        key = \"%s\"\n"
              "    payments-executor-west\n        key = \"%s\"\n",
              z85 [0], z85 [1], z85 [2]);
    bus_policy_t *policy = s_parse_ok (text);
    assert_string_equal (policy->agents [0].name, "payments-executor-west");
    assert_string_equal (policy->agents [1].name, "payments-executor-west-10");
    assert_string_equal (policy->agents [2].name, "payments-executor-west-2");
    const char *names [3] = { "payments-executor-west-2", "payments-executor-west-10",
                              "payments-executor-west" };
    for (int k = 0; k < 3; k++) {
        const bus_agent_t *agent = bus_policy_agent_by_key (policy, z85 [k]);
        assert_non_null (agent);
        assert_string_equal (agent->name, names [k]);
        assert_ptr_equal (bus_policy_agent (policy, names [k]), agent);
    }
    assert_null (bus_policy_agent (policy, "payments-executor-west-3"));
    bus_policy_destroy (&policy);
    //  Twice the same long name, or the same key, is still told.
    snprintf (text, sizeof text, "agents\n"
              "    payments-executor-west-2\n        key = \"%s\"\n"
              "    payments-executor-west-1\n        key = \"%s\"\n"
              "    payments-executor-west-2\n        key = \"%s\"\n",
              z85 [0], z85 [1], z85 [2]);
    s_expect_error (text, strlen (text), 6, "given twice (lines 2 and 6)");
    snprintf (text, sizeof text, "agents\n"
              "    a\n        key = \"%s\"\n"
              "    b\n        key = \"%s\"\n"
              "    c\n        key = \"%s\"\n",
              z85 [0], z85 [1], z85 [0]);
    s_expect_error (text, strlen (text), 6, "same key as agent 'a' (line 2)");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_good_policy),
        cmocka_unit_test (test_builtin_classes),
        cmocka_unit_test (test_class_limit),
        cmocka_unit_test (test_syntax_errors),
        cmocka_unit_test (test_nul_in_name),
        cmocka_unit_test (test_section_errors),
        cmocka_unit_test (test_class_errors),
        cmocka_unit_test (test_agent_errors),
        cmocka_unit_test (test_edge_errors),
        cmocka_unit_test (test_edge_indices),
        cmocka_unit_test (test_fleet_edges),
        cmocka_unit_test (test_fleet_errors),
        cmocka_unit_test (test_fleet_hash),
        cmocka_unit_test (test_fleet_keys),
        cmocka_unit_test (test_long_names_and_keys),
        cmocka_unit_test (test_hash),
        cmocka_unit_test (test_load),
        cmocka_unit_test (test_load_missing),
        cmocka_unit_test (test_name_valid),
        cmocka_unit_test (test_glob),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
