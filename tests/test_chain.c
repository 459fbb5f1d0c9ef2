/*  test_chain.c: the mediator chain (mediators/med_chain.c).

    med_chain_open_with runs a table of the test's own stages, which write
    down every call, to pin the loop down: the first stage that does not
    PASS decides and is named; a stage after the hold stage runs when a
    standing grant turns the hold into PASS (issue 9, finding 4); decide
    never calls observe (finding 5), med_chain_observe calls each observer
    once with the event; init failure calls fini for every stage whose init
    ran and leaks nothing (ASan checks at exit). Then the shipped table: its
    order, and a held finance message decided again through all of it.
*/
#include "check.h"
#include "stage.h"

#include <stdlib.h>

#include "bus_policy.h"
#include "med_chain.h"

#define KEY_PLANNER     "0sP+*eJu9)s.8C%G]?!3VaOc9?rsFf2]1Ehh9:/n"
#define KEY_PAYMENTS    "cnvRMqE9%SEU<qYS<PT=/5t#&0U2$>e&=r}t4IV1"
#define KEY_ALICE       "oibFqCy>*wQPReC=!vHI}VWSLcO^?Qq^KfWE#oI:"
#define KEY_BOB         "Ac)t4OtSWa:Kx2g]-2mkas/uooJLXuC.q3AQ{4wG"
#define KEY_READER      "M7Ug^.oyJ<)F3+[86*<@mnNi2AErL8OV5)e:</kk"

#define T0      UINT64_C (1700000000000000)
#define HOUR    UINT64_C (3600000000)

//  finance as shipped (privileged, held) with two approvers, quorum 1, and
//  restricted content sent to a person: the policy a message is held under.
//  The reload turns restricted finance content to deny. (Pasted together:
//  Z85 keys hold '%', so no printf.)
#define POLICY_CLASSES(restricted) \
    "classes\n" \
    "    finance\n" \
    "        approvers = alice, bob\n" \
    "        quorum = 1\n" \
    "        restricted = " restricted "\n"
#define POLICY_REST \
    "agents\n" \
    "    planner\n" \
    "        key = \"" KEY_PLANNER "\"\n" \
    "    payments\n" \
    "        key = \"" KEY_PAYMENTS "\"\n" \
    "        class = finance\n" \
    "    alice\n" \
    "        key = \"" KEY_ALICE "\"\n" \
    "        role = approver\n" \
    "    bob\n" \
    "        key = \"" KEY_BOB "\"\n" \
    "        role = approver\n" \
    "    reader\n" \
    "        key = \"" KEY_READER "\"\n" \
    "        trust = untrusted\n" \
    "edges\n" \
    "    planner\n" \
    "        payments = finance, message\n" \
    "    reader\n" \
    "        payments = finance\n"

static const char *s_policy_hold = POLICY_CLASSES ("hold") POLICY_REST;
static const char *s_policy_deny = POLICY_CLASSES ("deny") POLICY_REST;

//  ---------------------------------------------------------------------
//  Test stages: every call is written down.

typedef struct {
    const char *who;
    const char *what;                   //  "init", "fini", "decide", "observe"
    const void *arg;                    //  policy, envelope or event
    const void *state;
    bool saw_grant;                     //  decide: env->grant was set
} call_t;

#define CALLS_MAX 256
static call_t s_calls [CALLS_MAX];
static size_t s_ncalls;

static void
s_note (const char *who, const char *what, const void *arg, const void *state)
{
    assert_true (s_ncalls < CALLS_MAX);
    s_calls [s_ncalls++] = (call_t) { .who = who, .what = what, .arg = arg, .state = state };
}

static void
s_forget (void)
{
    memset (s_calls, 0, sizeof s_calls);
    s_ncalls = 0;
}

//  How many calls of `what` (NULL: any) `who` (NULL: anyone) got.
static size_t
s_count (const char *who, const char *what)
{
    size_t n = 0;
    for (size_t i = 0; i < s_ncalls; i++) {
        if ((!who || strcmp (s_calls [i].who, who) == 0)
        &&  (!what || strcmp (s_calls [i].what, what) == 0)) {
            n++;
        }
    }
    return n;
}

//  The stages that got `what`, in order, space-separated.
static const char *
s_trace (const char *what)
{
    static char trace [1024];
    trace [0] = 0;
    for (size_t i = 0; i < s_ncalls; i++) {
        if (strcmp (s_calls [i].what, what) == 0) {
            size_t used = strlen (trace);
            snprintf (trace + used, sizeof trace - used, "%s%s", used? " ": "", s_calls [i].who);
        }
    }
    return trace;
}

//  A stage that decides `verdict` (with `code`), and observes or not.
#define TEST_STAGE(id, verdict, code, observes) \
    static med_verdict_t \
    s_decide_##id (void *state, bus_envelope_t *env, bus_error_t *err) \
    { \
        s_note (#id, "decide", env, state); \
        s_calls [s_ncalls - 1].saw_grant = env->grant != NULL; \
        if ((verdict) != MED_PASS) { \
            bus_fail (err, (code), "%s says %s", #id, check_verdict_name (verdict)); \
        } \
        return (verdict); \
    } \
    static void \
    s_observe_##id (void *state, const med_event_t *event) \
    { \
        s_note (#id, "observe", event, state); \
    } \
    static const med_stage_t s_##id = { \
        .name = #id, \
        .state_size = 16, \
        .decide = s_decide_##id, \
        .observe = (observes)? s_observe_##id: NULL, \
    };

TEST_STAGE (pass_a,   MED_PASS,   BUS_OK,      true)
TEST_STAGE (pass_b,   MED_PASS,   BUS_OK,      false)
TEST_STAGE (recorder, MED_PASS,   BUS_OK,      false)
TEST_STAGE (hold_c,   MED_HOLD,   BUS_OK,      false)
TEST_STAGE (reject_d, MED_REJECT, BUS_EDENIED, true)

//  Stages with init and fini: one that allocates, one that allocates and
//  then fails (its fini must still clean), one after it that must never be
//  initialised, and one with no state at all.
typedef struct {
    char *buffer;
    int inits;
} owned_t;

static int
s_init_owner (void *state, const bus_policy_t *policy, bus_error_t *err)
{
    (void) err;
    owned_t *self = state;
    s_note ("owner", "init", policy, state);
    //  The chain hands over zeroed state.
    assert_null (self->buffer);
    assert_int_equal (self->inits, 0);
    self->inits++;
    self->buffer = malloc (100);
    return self->buffer? 0: bus_fail (err, BUS_ENOMEM, "owner: out of memory");
}

static void
s_fini_owner (void *state)
{
    owned_t *self = state;
    s_note ("owner", "fini", NULL, state);
    free (self->buffer);
    self->buffer = NULL;
}

static int
s_init_half (void *state, const bus_policy_t *policy, bus_error_t *err)
{
    owned_t *self = state;
    s_note ("half", "init", policy, state);
    self->buffer = malloc (200);
    return bus_fail (err, BUS_EPOLICY, "half: gave up after allocating");
}

static void
s_fini_half (void *state)
{
    owned_t *self = state;
    s_note ("half", "fini", NULL, state);
    free (self->buffer);
}

static int
s_init_never (void *state, const bus_policy_t *policy, bus_error_t *err)
{
    (void) err;
    s_note ("never", "init", policy, state);
    return 0;
}

static void
s_fini_never (void *state)
{
    s_note ("never", "fini", NULL, state);
}

static med_verdict_t
s_decide_owner (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) err;
    owned_t *self = state;
    s_note ("owner", "decide", env, state);
    assert_non_null (self->buffer);
    return MED_PASS;
}

static med_verdict_t
s_decide_stateless (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) err;
    s_note ("stateless", "decide", env, state);
    assert_non_null (state);            //  at least a byte, even for size 0
    return MED_PASS;
}

static const med_stage_t s_owner = {
    .name = "owner", .state_size = sizeof (owned_t),
    .init = s_init_owner, .fini = s_fini_owner, .decide = s_decide_owner,
};
static const med_stage_t s_half = {
    .name = "half", .state_size = sizeof (owned_t),
    .init = s_init_half, .fini = s_fini_half, .decide = s_decide_pass_b,
};
static const med_stage_t s_never = {
    .name = "never", .state_size = sizeof (owned_t),
    .init = s_init_never, .fini = s_fini_never, .decide = s_decide_pass_b,
};
static const med_stage_t s_stateless = {
    .name = "stateless", .state_size = 0, .decide = s_decide_stateless,
};

//  ---------------------------------------------------------------------
//  Fixture: two policies (as held, and after the reload), a Send and an
//  envelope as the core fills them.

typedef struct {
    bus_policy_t *policy;
    bus_policy_t *deny;
    Bulkhead__V1__Send send;
    bus_envelope_t env;
    bus_hold_t hold;
    bus_grant_t grant;
    bus_error_t err;
} fixture_t;

static int
s_setup (void **state)
{
    s_forget ();
    fixture_t *f = calloc (1, sizeof *f);
    if (!f) {
        return -1;
    }
    bus_error_t err;
    if (bus_policy_parse (&f->policy, s_policy_hold, strlen (s_policy_hold), "hold.cfg", &err)
    ||  bus_policy_parse (&f->deny, s_policy_deny, strlen (s_policy_deny), "deny.cfg", &err)) {
        fprintf (stderr, "policy: %s: %s\n", bus_errname (err.code), err.text);
        bus_policy_destroy (&f->policy);
        free (f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    bus_policy_destroy (&f->deny);
    bus_policy_destroy (&f->policy);
    free (f);
    s_forget ();
    return 0;
}

//  What bus_intake_envelope fills, with an empty log and queue.
static bus_envelope_t *
s_envelope (fixture_t *f, const bus_policy_t *policy, const char *from, const char *intent)
{
    Bulkhead__V1__Send *send = &f->send;
    bulkhead__v1__send__init (send);
    send->message_id = "m1";
    send->recipient = "payments";
    send->intent = (char *) intent;
    send->action = "transfer.create";
    bus_envelope_t *env = &f->env;
    memset (env, 0, sizeof *env);
    env->policy = policy;
    env->sender = bus_policy_agent (policy, from);
    env->sender_name = from;
    env->recipient = bus_policy_agent (policy, "payments");
    env->send = send;
    env->now_us = T0;
    env->class_index = bus_policy_class (policy, intent);
    memset (&f->err, 0, sizeof f->err);
    return env;
}

//  Alice's standing grant for planner -> payments finance transfer.create.
static void
s_with_grant (fixture_t *f)
{
    bus_grant_t *grant = &f->grant;
    memset (grant, 0, sizeof *grant);
    snprintf (grant->id, sizeof grant->id, "g-1");
    snprintf (grant->approver, sizeof grant->approver, "alice");
    snprintf (grant->sender, sizeof grant->sender, "planner");
    snprintf (grant->recipient, sizeof grant->recipient, "payments");
    snprintf (grant->intent_class, sizeof grant->intent_class, "finance");
    snprintf (grant->action, sizeof grant->action, "transfer.create");
    grant->created_us = T0 - HOUR;
    grant->expires_us = T0 + HOUR;
    f->env.grants = grant;
    f->env.n_grants = 1;
}

//  Makes the envelope a resume of the hold, with this mark and votes.
static void
s_resume (fixture_t *f, bool restricted, const char *const *votes)
{
    bus_hold_t *hold = &f->hold;
    memset (hold, 0, sizeof *hold);
    snprintf (hold->id, sizeof hold->id, "h-1");
    hold->seq = 5;
    snprintf (hold->sender, sizeof hold->sender, "%s", f->env.sender_name);
    snprintf (hold->recipient, sizeof hold->recipient, "payments");
    snprintf (hold->intent_class, sizeof hold->intent_class, "finance");
    hold->restricted = restricted;
    hold->quorum = 1;
    hold->created_us = T0 - HOUR;
    hold->expires_us = T0 + HOUR;
    for (size_t i = 0; votes && votes [i]; i++) {
        snprintf (hold->votes [hold->n_votes++], sizeof hold->votes [0], "%s", votes [i]);
    }
    f->env.resume = hold;
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_all_pass (void **state)
{
    fixture_t *f = *state;
    const med_stage_t *table [] = { &s_pass_a, &s_pass_b, &s_recorder, NULL };
    med_chain_t *chain = NULL;
    bus_error_t err;
    CHECK_PASS (med_chain_open_with (&chain, table, f->policy, &err), err);
    s_envelope (f, f->policy, "planner", "message");
    const char *stage = "untouched";
    f->err.code = BUS_EIO;
    CHECK_VERDICT (med_chain_run (chain, &f->env, &stage, &f->err), MED_PASS);
    assert_string_equal (stage, "untouched");
    CHECK_CODE (f->err, BUS_EIO);       //  nobody failed: err is as it was
    assert_string_equal (s_trace ("decide"), "pass_a pass_b recorder");
    //  Each got the envelope and a state of its own.
    for (size_t i = 0; i < s_ncalls; i++) {
        assert_ptr_equal (s_calls [i].arg, &f->env);
        for (size_t j = 0; j < i; j++) {
            assert_ptr_not_equal (s_calls [i].state, s_calls [j].state);
        }
    }
    //  A stage's state lives as long as the chain.
    const void *first = s_calls [0].state;
    s_forget ();
    CHECK_VERDICT (med_chain_run (chain, &f->env, NULL, &f->err), MED_PASS);
    assert_ptr_equal (s_calls [0].state, first);
    med_chain_destroy (&chain);
    assert_null (chain);
    med_chain_destroy (&chain);
    med_chain_destroy (NULL);
}

static void
test_first_non_pass_decides (void **state)
{
    fixture_t *f = *state;
    med_chain_t *chain = NULL;
    bus_error_t err;
    const char *stage = NULL;

    const med_stage_t *holds [] = { &s_pass_a, &s_hold_c, &s_reject_d, &s_recorder, NULL };
    CHECK_PASS (med_chain_open_with (&chain, holds, f->policy, &err), err);
    s_envelope (f, f->policy, "planner", "message");
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err, MED_HOLD, BUS_OK);
    assert_string_equal (stage, "hold_c");
    assert_string_equal (f->err.text, "hold_c says MED_HOLD");
    assert_string_equal (s_trace ("decide"), "pass_a hold_c");
    med_chain_destroy (&chain);

    s_forget ();
    const med_stage_t *rejects [] = { &s_pass_a, &s_reject_d, &s_hold_c, NULL };
    CHECK_PASS (med_chain_open_with (&chain, rejects, f->policy, &err), err);
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err,
                  MED_REJECT, BUS_EDENIED);
    assert_string_equal (stage, "reject_d");
    assert_string_equal (s_trace ("decide"), "pass_a reject_d");
    //  stage may be NULL.
    s_forget ();
    CHECK_DECIDE (med_chain_run (chain, &f->env, NULL, &f->err), f->err,
                  MED_REJECT, BUS_EDENIED);
    assert_string_equal (s_trace ("decide"), "pass_a reject_d");
    med_chain_destroy (&chain);

    s_forget ();
    const med_stage_t *first [] = { &s_reject_d, &s_pass_a, NULL };
    CHECK_PASS (med_chain_open_with (&chain, first, f->policy, &err), err);
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err,
                  MED_REJECT, BUS_EDENIED);
    assert_string_equal (stage, "reject_d");
    assert_string_equal (s_trace ("decide"), "reject_d");
    med_chain_destroy (&chain);
}

//  Issue 9, finding 4: the hold stage is not the end of the chain. When a
//  standing grant stands in for the hold, it passes, and what comes after
//  it decides too.
static void
test_stage_after_hold_runs_under_grant (void **state)
{
    fixture_t *f = *state;
    const med_stage_t *hold = stage_find ("hold");
    assert_non_null (hold);
    const med_stage_t *table [] = { hold, &s_recorder, NULL };
    med_chain_t *chain = NULL;
    bus_error_t err;
    CHECK_PASS (med_chain_open_with (&chain, table, f->policy, &err), err);
    const char *stage = NULL;

    s_envelope (f, f->policy, "planner", "finance");
    s_with_grant (f);
    CHECK_VERDICT (med_chain_run (chain, &f->env, &stage, &f->err), MED_PASS);
    assert_null (stage);
    assert_ptr_equal (f->env.grant, &f->grant);
    assert_int_equal (s_count ("recorder", "decide"), 1);
    assert_true (s_calls [0].saw_grant);        //  it saw the grant the hold stage took

    //  Without the grant the hold stage holds, and nothing after it runs.
    s_forget ();
    s_envelope (f, f->policy, "planner", "finance");
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err, MED_HOLD, BUS_OK);
    assert_string_equal (stage, "hold");
    assert_int_equal (s_count ("recorder", "decide"), 0);

    //  A later stage can still refuse what a grant let past the hold.
    med_chain_destroy (&chain);
    const med_stage_t *refusing [] = { hold, &s_reject_d, NULL };
    CHECK_PASS (med_chain_open_with (&chain, refusing, f->policy, &err), err);
    s_envelope (f, f->policy, "planner", "finance");
    s_with_grant (f);
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err,
                  MED_REJECT, BUS_EDENIED);
    assert_string_equal (stage, "reject_d");
    med_chain_destroy (&chain);
}

//  Issue 9, finding 5: deciding is not observing. Observers see only what
//  the core hands to med_chain_observe, after the commit, once each.
static void
test_run_never_observes (void **state)
{
    fixture_t *f = *state;
    med_chain_t *chain = NULL;
    bus_error_t err;

    const med_stage_t *passes [] = { &s_pass_a, &s_pass_b, &s_reject_d, NULL };
    const med_stage_t *holds [] = { &s_pass_a, &s_hold_c, &s_reject_d, NULL };
    const med_stage_t *const *tables [] = { passes, holds };
    size_t decides [] = { 5 * 3, 5 * 2 };
    for (size_t t = 0; t < 2; t++) {
        s_forget ();
        CHECK_PASS (med_chain_open_with (&chain, tables [t], f->policy, &err), err);
        for (int i = 0; i < 5; i++) {
            s_envelope (f, f->policy, "planner", "message");
            med_chain_run (chain, &f->env, NULL, &f->err);
        }
        assert_int_equal (s_count (NULL, "decide"), decides [t]);
        assert_int_equal (s_count (NULL, "observe"), 0);
        med_chain_destroy (&chain);
    }

    //  med_chain_observe: each observer once, in order, with the event.
    s_forget ();
    const med_stage_t *table [] = { &s_pass_a, &s_pass_b, &s_hold_c, &s_reject_d, NULL };
    CHECK_PASS (med_chain_open_with (&chain, table, f->policy, &err), err);
    uint64_t causes [] = { 3, 4 };
    med_event_t event = {
        .seq = 42, .time_us = T0, .verdict = MED_REJECT, .code = BUS_EDENIED,
        .stage = "reject_d", .sender = "planner", .recipient = "payments",
        .intent_class = "message", .action = "", .causes = causes, .n_causes = 2,
    };
    med_chain_observe (chain, &event);
    assert_int_equal (s_ncalls, 2);
    assert_string_equal (s_trace ("observe"), "pass_a reject_d");
    assert_ptr_equal (s_calls [0].arg, &event);
    assert_ptr_equal (s_calls [1].arg, &event);
    assert_int_equal (s_count (NULL, "decide"), 0);
    //  Each observer's own state, the one its decide gets.
    const void *observed_state = s_calls [0].state;
    s_envelope (f, f->policy, "planner", "message");
    med_chain_run (chain, &f->env, NULL, &f->err);
    assert_ptr_equal (s_calls [2].state, observed_state);
    med_chain_destroy (&chain);
}

static void
test_observed (void **state)
{
    fixture_t *f = *state;
    med_chain_t *chain = NULL;
    bus_error_t err;

    const med_stage_t *none [] = { &s_pass_b, &s_hold_c, NULL };
    CHECK_PASS (med_chain_open_with (&chain, none, f->policy, &err), err);
    assert_false (med_chain_observed (chain));
    med_chain_observe (chain, &(med_event_t) { .seq = 1 });        //  a no-op
    assert_int_equal (s_ncalls, 0);
    med_chain_destroy (&chain);

    const med_stage_t *one [] = { &s_pass_b, &s_reject_d, NULL };
    CHECK_PASS (med_chain_open_with (&chain, one, f->policy, &err), err);
    assert_true (med_chain_observed (chain));
    med_chain_destroy (&chain);

    const med_stage_t *empty [] = { NULL };
    CHECK_PASS (med_chain_open_with (&chain, empty, f->policy, &err), err);
    assert_false (med_chain_observed (chain));
    s_envelope (f, f->policy, "planner", "message");
    CHECK_VERDICT (med_chain_run (chain, &f->env, NULL, &f->err), MED_PASS);
    med_chain_destroy (&chain);

    //  The shipped chain is observed exactly when some shipped stage observes.
    bool any = false;
    for (const med_stage_t *const *stage = med_chain_stages (); *stage; stage++) {
        any |= (*stage)->observe != NULL;
    }
    CHECK_PASS (med_chain_open (&chain, f->policy, &err), err);
    assert_int_equal (med_chain_observed (chain), any);
    med_chain_destroy (&chain);
}

static void
test_init_and_fini (void **state)
{
    fixture_t *f = *state;
    const med_stage_t *table [] = { &s_owner, &s_stateless, &s_never, NULL };
    med_chain_t *chain = NULL;
    bus_error_t err;
    CHECK_PASS (med_chain_open_with (&chain, table, f->policy, &err), err);
    assert_string_equal (s_trace ("init"), "owner never");
    assert_ptr_equal (s_calls [0].arg, f->policy);
    s_envelope (f, f->policy, "planner", "message");
    CHECK_VERDICT (med_chain_run (chain, &f->env, NULL, &f->err), MED_PASS);
    assert_string_equal (s_trace ("decide"), "owner stateless pass_b");   //  never decides as pass_b
    assert_int_equal (s_count (NULL, "fini"), 0);
    med_chain_destroy (&chain);
    assert_int_equal (s_count ("owner", "fini"), 1);
    assert_int_equal (s_count ("never", "fini"), 1);
}

//  init fails half-way: fini runs for every stage whose init was called,
//  the failing one included (whatever its init left, its fini cleans), and
//  for none after it. The leak checker at exit proves the rest.
static void
test_init_failure (void **state)
{
    fixture_t *f = *state;
    const med_stage_t *table [] = { &s_owner, &s_half, &s_never, NULL };
    med_chain_t *chain = NULL;
    bus_error_t err = { 0 };
    CHECK_FAIL (med_chain_open_with (&chain, table, f->policy, &err), err, BUS_EPOLICY);
    assert_string_equal (err.text, "half: gave up after allocating");
    assert_null (chain);
    assert_string_equal (s_trace ("init"), "owner half");
    assert_int_equal (s_count ("owner", "fini"), 1);
    assert_int_equal (s_count ("half", "fini"), 1);
    assert_int_equal (s_count ("never", NULL), 0);
    assert_int_equal (s_count (NULL, "decide"), 0);

    //  The first stage failing: its own fini, nobody else's.
    s_forget ();
    const med_stage_t *first [] = { &s_half, &s_owner, NULL };
    CHECK_FAIL (med_chain_open_with (&chain, first, f->policy, &err), err, BUS_EPOLICY);
    assert_null (chain);
    assert_string_equal (s_trace ("init"), "half");
    assert_string_equal (s_trace ("fini"), "half");
}

static void
test_table_size (void **state)
{
    fixture_t *f = *state;
    const med_stage_t *table [MED_CHAIN_MAX + 2];
    for (size_t i = 0; i < MED_CHAIN_MAX + 1; i++) {
        table [i] = &s_pass_b;
    }
    table [MED_CHAIN_MAX + 1] = NULL;
    med_chain_t *chain = NULL;
    bus_error_t err = { 0 };
    CHECK_FAIL (med_chain_open_with (&chain, table, f->policy, &err), err, BUS_EINVAL);
    assert_null (chain);
    CHECK_CONTAINS (err.text, "more than 32 stages");

    table [MED_CHAIN_MAX] = NULL;
    CHECK_PASS (med_chain_open_with (&chain, table, f->policy, &err), err);
    s_envelope (f, f->policy, "planner", "message");
    CHECK_VERDICT (med_chain_run (chain, &f->env, NULL, &f->err), MED_PASS);
    assert_int_equal (s_count ("pass_b", "decide"), MED_CHAIN_MAX);
    med_chain_destroy (&chain);
}

static void
test_shipped_order (void **state)
{
    fixture_t *f = *state;
    const char *order [] = {
        "identity", "causes", "reach", "classify", "scope", "taint", "limits", "backlog",
        "quarantine", "hold", NULL
    };
    const med_stage_t *const *stages = med_chain_stages ();
    for (size_t i = 0; order [i]; i++) {
        assert_non_null (stages [i]);
        assert_string_equal (stages [i]->name, order [i]);
        assert_non_null (stages [i]->decide);
    }
    assert_null (stages [10]);
    med_chain_t *chain = NULL;
    bus_error_t err;
    CHECK_PASS (med_chain_open (&chain, f->policy, &err), err);
    med_chain_destroy (&chain);
}

//  The whole shipped chain on a held finance message: the first pass holds
//  it; decided again with a vote that counts, it passes; after a reload
//  that makes restricted finance content deny, the restricted mark it was
//  held with denies it (taint, ERESTRICTED), and a clean one still passes.
static void
test_full_chain_resume (void **state)
{
    fixture_t *f = *state;
    med_chain_t *chain = NULL;
    bus_error_t err;
    const char *stage = NULL;
    CHECK_PASS (med_chain_open (&chain, f->policy, &err), err);

    //  First pass: a payment labelled "message" is finance, and held.
    s_envelope (f, f->policy, "planner", "message");
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err, MED_HOLD, BUS_OK);
    assert_string_equal (stage, "hold");
    assert_string_equal (f->env.policy->classes [f->env.class_index].name, "finance");
    assert_false (f->env.restricted);

    //  Decided again: alice's vote meets the quorum of 1.
    s_envelope (f, f->policy, "planner", "message");
    s_resume (f, false, (const char *[]) { "alice", NULL });
    stage = NULL;
    CHECK_VERDICT (med_chain_run (chain, &f->env, &stage, &f->err), MED_PASS);
    assert_null (stage);
    assert_int_equal (f->env.n_approvers, 1);
    assert_string_equal (f->env.approvers [0], "alice");
    assert_null (f->env.grant);

    //  No vote yet: still held.
    s_envelope (f, f->policy, "planner", "message");
    s_resume (f, false, NULL);
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err, MED_HOLD, BUS_OK);
    assert_string_equal (stage, "hold");

    //  Held restricted under restricted = hold: released by a vote, and
    //  released marked.
    s_envelope (f, f->policy, "planner", "message");
    s_resume (f, true, NULL);
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err,
                  MED_HOLD, BUS_ERESTRICTED);
    assert_string_equal (stage, "hold");
    s_envelope (f, f->policy, "planner", "message");
    s_resume (f, true, (const char *[]) { "bob", NULL });
    stage = NULL;
    CHECK_VERDICT (med_chain_run (chain, &f->env, &stage, &f->err), MED_PASS);
    assert_true (f->env.restricted);
    assert_int_equal (f->env.n_approvers, 1);
    med_chain_destroy (&chain);

    //  The reload: restricted finance content is denied now.
    CHECK_PASS (med_chain_open (&chain, f->deny, &err), err);
    s_envelope (f, f->deny, "planner", "message");
    s_resume (f, true, (const char *[]) { "alice", NULL });
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err,
                  MED_REJECT, BUS_ERESTRICTED);
    assert_string_equal (stage, "taint");
    CHECK_CONTAINS (f->err.text, "restricted when held at seq 5");
    //  A clean hold with its vote is still released.
    s_envelope (f, f->deny, "planner", "message");
    s_resume (f, false, (const char *[]) { "alice", NULL });
    stage = NULL;
    CHECK_VERDICT (med_chain_run (chain, &f->env, &stage, &f->err), MED_PASS);
    assert_null (stage);
    //  A sender that left the policy: its held message goes nowhere.
    s_envelope (f, f->deny, "ghost", "message");
    s_resume (f, false, (const char *[]) { "alice", NULL });
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err,
                  MED_REJECT, BUS_EUNKNOWN);
    assert_string_equal (stage, "identity");
    med_chain_destroy (&chain);
}

//  First pass through the shipped chain: a standing grant lets a clean
//  message through, never a restricted one.
static void
test_full_chain_grant (void **state)
{
    fixture_t *f = *state;
    med_chain_t *chain = NULL;
    bus_error_t err;
    const char *stage = NULL;
    CHECK_PASS (med_chain_open (&chain, f->policy, &err), err);

    s_envelope (f, f->policy, "planner", "finance");
    s_with_grant (f);
    CHECK_VERDICT (med_chain_run (chain, &f->env, &stage, &f->err), MED_PASS);
    assert_ptr_equal (f->env.grant, &f->grant);
    assert_string_equal (f->env.approvers [0], "alice");

    //  Restricted by a cause: a person looks, grant or not.
    s_envelope (f, f->policy, "planner", "finance");
    s_with_grant (f);
    f->env.cause_restricted = true;
    f->env.cause_seq = 2;
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err,
                  MED_HOLD, BUS_ERESTRICTED);
    assert_string_equal (stage, "hold");
    assert_null (f->env.grant);
    med_chain_destroy (&chain);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_all_pass, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_first_non_pass_decides, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stage_after_hold_runs_under_grant, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_run_never_observes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_observed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_init_and_fini, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_init_failure, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_table_size, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_shipped_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_full_chain_resume, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_full_chain_grant, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
