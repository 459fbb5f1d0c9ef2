/*  test_monitor.c: the detectors on a simulated clock (no sleeps).

    Each detector gets synthetic committed outcomes (med_event_t) and
    ticks of simulated time: it must fire on its anomaly within the delay
    README states, and stay quiet over a simulated week of steady traffic
    with jitter and a daily cycle (a false alarm fails the test). The
    random traffic has a seed, printed, and MONITOR_SEED replays one.
    Also: the policy's monitor section, deduplication while open, closing,
    acknowledging, quarantines, and the state surviving a save and a load
    (a restart) and a reconfigure (a reload).
*/
#include "check.h"
#include "bus_policy.h"
#include "med_monitor.h"

#include <stdlib.h>
#include <time.h>

#define KEY_PLANNER     "0sP+*eJu9)s.8C%G]?!3VaOc9?rsFf2]1Ehh9:/n"
#define KEY_WORKER      "cnvRMqE9%SEU<qYS<PT=/5t#&0U2$>e&=r}t4IV1"
#define KEY_PAYMENTS    "oibFqCy>*wQPReC=!vHI}VWSLcO^?Qq^KfWE#oI:"
#define KEY_WATCH       "Ac)t4OtSWa:Kx2g]-2mkas/uooJLXuC.q3AQ{4wG"

#define SEC     UINT64_C (1000000)
#define MINUTE  (60 * SEC)
#define HOUR    (60 * MINUTE)
#define DAY     (24 * HOUR)
//  Monday 2026-01-05 00:00 UTC
#define T0      (UINT64_C (1767571200) * SEC)

static const char *s_agents =
    "agents\n"
    "    planner\n"
    "        key = \"" KEY_PLANNER "\"\n"
    "    worker\n"
    "        key = \"" KEY_WORKER "\"\n"
    "    payments\n"
    "        key = \"" KEY_PAYMENTS "\"\n"
    "        class = finance\n"
    "    watch\n"
    "        key = \"" KEY_WATCH "\"\n"
    "        role = monitor\n"
    "edges\n"
    "    planner\n"
    "        worker = message\n"
    "        payments = finance\n"
    "        watch = message\n"
    "    worker\n"
    "        planner = message\n"
    "        watch = message\n"
    "    payments\n"
    "        planner = message\n";

static const char *s_monitor =
    "monitor\n"
    "    expect\n"
    "        worker-alive\n"
    "            agent = worker\n"
    "            intent = heartbeat\n"
    "            every = 90\n"
    "        payment-result\n"
    "            class = finance\n"
    "            to = payments\n"
    "            reply_within = 30\n";

typedef struct {
    bus_policy_t *policy;
    med_monitor_t *mon;
    uint64_t seq;
    uint64_t now;
    unsigned seed;
} fixture_t;

static fixture_t *
s_open (const char *extra)
{
    fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    char text [4096];
    snprintf (text, sizeof text, "%s%s", s_agents, extra? extra: s_monitor);
    bus_error_t err;
    CHECK_PASS (bus_policy_parse (&f->policy, text, strlen (text), "test.cfg", &err), err);
    f->mon = med_monitor_new (0);
    assert_non_null (f->mon);
    med_monitor_configure (f->mon, f->policy);
    f->now = T0;
    const char *env = getenv ("MONITOR_SEED");
    f->seed = env? (unsigned) strtoul (env, NULL, 10): 20261202;
    return f;
}

static void
s_close (fixture_t **f_p)
{
    fixture_t *f = *f_p;
    med_monitor_destroy (&f->mon);
    bus_policy_destroy (&f->policy);
    free (f);
    *f_p = NULL;
}

static double
s_rand (fixture_t *f)
{
    return (double) rand_r (&f->seed) / ((double) RAND_MAX + 1.0);
}

//  One committed outcome at f->now; returns its seq.
static uint64_t
s_send_full (fixture_t *f, const char *from, const char *to, const char *cls,
             const char *intent, med_verdict_t verdict, uint64_t cause, uint32_t payload_seed,
             size_t payload_size)
{
    med_event_t event = {
        .seq = ++f->seq, .time_us = f->now, .verdict = verdict,
        .code = verdict == MED_REJECT? BUS_EDENIED: BUS_OK, .stage = "",
        .sender = from, .recipient = to, .intent_class = cls, .action = "",
        .intent = intent, .payload_size = payload_size, .record_size = 200 + payload_size,
    };
    uint64_t causes [1] = { cause };
    if (cause) {
        event.causes = causes;
        event.n_causes = 1;
    }
    //  A digest that stands for the payload: equal seeds, equal payloads.
    for (int i = 0; i < 32; i++) {
        event.digest [i] = (uint8_t) ((payload_seed * 2654435761u) >> (i % 4 * 8)) ^ (uint8_t) i;
    }
    med_monitor_observe (f->mon, &event);
    return event.seq;
}

static uint64_t
s_send (fixture_t *f, const char *from, const char *to, uint64_t cause)
{
    return s_send_full (f, from, to, "message", "message", MED_PASS, cause,
                        (uint32_t) f->seq + 7, 100);
}

//  Alerts opened since the last call, by kind (and printed, for a failure).
static unsigned
s_opened (fixture_t *f, unsigned counts [BUS_ALERT_KIND_COUNT], bool print)
{
    unsigned total = 0;
    med_alert_change_t change;
    med_alert_t *alert;
    while ((alert = med_monitor_next (f->mon, &change))) {
        if (change != MED_ALERT_OPENED) {
            continue;
        }
        if (counts) {
            counts [alert->kind]++;
        }
        total++;
        if (print) {
            print_message ("alert %s %s on %s at +%.1f s: %s\n", alert->id,
                           bus_alert_kinds [alert->kind], alert->subject,
                           (double) (alert->opened_us - T0) / 1e6, alert->text);
        }
    }
    return total;
}

//  The first alert of kind opened from now on, driving f through steps of
//  `step` with one message each time (send), for at most `limit`: how long
//  it took, or UINT64_MAX.
static uint64_t
s_time_to (fixture_t *f, bus_alert_kind_t kind, uint64_t step, uint64_t limit,
           void (*send) (fixture_t *f, void *arg), void *arg)
{
    uint64_t start = f->now;
    while (f->now - start <= limit) {
        if (send) {
            send (f, arg);
        }
        med_monitor_tick (f->mon, f->now);
        unsigned counts [BUS_ALERT_KIND_COUNT] = { 0 };
        s_opened (f, counts, false);
        if (counts [kind]) {
            return f->now - start;
        }
        f->now += step;
    }
    return UINT64_MAX;
}

//  ---------------------------------------------------------------------
//  Steady traffic: a week, a daily cycle, jitter

//  One simulated minute of the steady pattern: the planner asks the
//  worker 2..18 times a minute (a triangle over the day, Poisson-like jitter),
//  each answered within 2 s naming the request; a payment every 5 minutes
//  answered within 5 s; the worker's heartbeat every 60 +- 10 s; now and
//  then a denied attempt.
static void
s_steady_minute (fixture_t *f, uint64_t minute_start, uint64_t *next_heartbeat)
{
    //  A triangle over the day: 2 a minute at midnight, 18 at noon.
    double day = (double) ((minute_start - T0) % DAY) / (double) DAY;
    double rate = 2.0 + 16.0 * (day < 0.5? 2.0 * day: 2.0 * (1.0 - day));
    unsigned n = (unsigned) (rate + (s_rand (f) - 0.5) * (1.0 + rate / 2.0));
    uint64_t spacing = n? MINUTE / n: MINUTE;
    for (unsigned i = 0; i < n; i++) {
        f->now = minute_start + i * spacing + (uint64_t) (s_rand (f) * (double) spacing / 4);
        uint64_t ask = s_send (f, "planner", "worker", 0);
        f->now += (uint64_t) (s_rand (f) * 2.0 * SEC);
        s_send (f, "worker", "planner", ask);
        if (*next_heartbeat <= f->now) {
            s_send_full (f, "worker", "watch", "message", "heartbeat", MED_PASS, 0, 1, 8);
            *next_heartbeat = f->now + 50 * SEC + (uint64_t) (s_rand (f) * 20.0 * SEC);
        }
    }
    uint64_t minute = (minute_start - T0) / MINUTE;
    if (minute % 5 == 2) {
        f->now = minute_start + 55 * SEC;
        uint64_t pay = s_send_full (f, "planner", "payments", "finance", "finance", MED_PASS, 0,
                                    (uint32_t) f->seq, 300);
        f->now += 1 * SEC + (uint64_t) (s_rand (f) * 4.0 * SEC);
        s_send (f, "payments", "planner", pay);
    }
    if (minute % 60 == 17) {
        s_send_full (f, "worker", "payments", "", "finance", MED_REJECT, 0, 3, 50);
    }
    if (*next_heartbeat <= minute_start + MINUTE) {
        f->now = *next_heartbeat;
        s_send_full (f, "worker", "watch", "message", "heartbeat", MED_PASS, 0, 1, 8);
        *next_heartbeat = f->now + 50 * SEC + (uint64_t) (s_rand (f) * 20.0 * SEC);
    }
    f->now = minute_start + MINUTE;
    med_monitor_tick (f->mon, f->now);
}

//  Runs the steady pattern for `minutes`, failing on any alert.
static void
s_steady (fixture_t *f, uint64_t minutes)
{
    uint64_t next_heartbeat = f->now + 30 * SEC;
    uint64_t start = f->now;
    for (uint64_t m = 0; m < minutes; m++) {
        s_steady_minute (f, start + m * MINUTE, &next_heartbeat);
        unsigned counts [BUS_ALERT_KIND_COUNT] = { 0 };
        if (s_opened (f, counts, true) != 0) {
            fail_msg ("a false alarm after %llu simulated minutes (seed %u)",
                      (unsigned long long) m, f->seed);
        }
    }
}

static void
test_quiet_week (void **state)
{
    (void) state;
    fixture_t *f = s_open (NULL);
    print_message ("seed %u (MONITOR_SEED replays it)\n", f->seed);
    struct timespec t0, t1;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    s_steady (f, 7 * 24 * 60);
    clock_gettime (CLOCK_MONOTONIC, &t1);
    double ns = (double) (t1.tv_sec - t0.tv_sec) * 1e9 + (double) (t1.tv_nsec - t0.tv_nsec);
    //  What a message costs the detectors, traffic generation included.
    print_message ("a simulated week: %llu messages, %.0f ns each\n",
                   (unsigned long long) f->seq, ns / (double) f->seq);
    assert_true (f->seq > 200000);      //  the week was busy
    assert_int_equal (med_monitor_dropped (f->mon), 0);
    s_close (&f);
}

//  ---------------------------------------------------------------------
//  Loops

typedef struct {
    uint64_t last;
    int turn;
    bool same_payload;
} loop_t;

//  A and B answering each other forever, each naming the other's last.
static void
s_loop_step (fixture_t *f, void *arg)
{
    loop_t *loop = arg;
    const char *from = loop->turn % 2? "worker": "planner";
    const char *to = loop->turn % 2? "planner": "worker";
    loop->last = s_send_full (f, from, to, "message", "message", MED_PASS, loop->last,
                              loop->same_payload? 42: (uint32_t) f->seq + 1000, 200);
    loop->turn++;
}

static void
test_loop_fires_fast (void **state)
{
    (void) state;
    fixture_t *f = s_open (NULL);
    loop_t loop = { 0 };
    //  A message every 50 ms: loop_turns = 4 means the 7th message.
    uint64_t took = s_time_to (f, BUS_ALERT_LOOP, 50000, 10 * SEC, s_loop_step, &loop);
    assert_true (took <= 1 * SEC);
    print_message ("loop caught after %.2f s of simulated time, %d messages\n",
                   (double) took / 1e6, loop.turn);
    assert_int_equal (loop.turn, 7);
    //  Deduplicated while open: the loop goes on, no new alert is opened.
    for (int i = 0; i < 50; i++) {
        s_loop_step (f, &loop);
    }
    unsigned counts [BUS_ALERT_KIND_COUNT] = { 0 };
    s_opened (f, counts, false);
    assert_int_equal (counts [BUS_ALERT_LOOP], 0);
    assert_int_equal (counts [BUS_ALERT_DEPTH], 2);     //  it got deep, for both senders
    const med_alert_t *alerts [8];
    size_t n = med_monitor_alerts (f->mon, alerts, 8);
    const med_alert_t *found = NULL;
    for (size_t i = 0; i < n; i++) {
        found = alerts [i]->kind == BUS_ALERT_LOOP? alerts [i]: found;
    }
    assert_non_null (found);
    assert_string_equal (found->subject, "planner>worker");
    assert_true (found->n_evidence >= 4);
    assert_true (found->signs > 10);
    //  Quiet for `quiet` (300 s): it closes, once.
    f->now += 301 * SEC;
    med_monitor_tick (f->mon, f->now);
    med_alert_change_t change;
    med_alert_t *alert;
    unsigned closed = 0;
    while ((alert = med_monitor_next (f->mon, &change))) {
        closed += change == MED_ALERT_CLOSED;
    }
    assert_int_equal (closed, 3);
    s_close (&f);
}

static void
test_request_reply_is_not_a_loop (void **state)
{
    (void) state;
    fixture_t *f = s_open (NULL);
    //  Three rounds of ask and answer along one chain: below loop_turns.
    uint64_t last = 0;
    for (int i = 0; i < 3; i++) {
        last = s_send (f, "planner", "worker", last);
        last = s_send (f, "worker", "planner", last);
    }
    med_monitor_tick (f->mon, f->now);
    assert_int_equal (s_opened (f, NULL, true), 0);
    s_close (&f);
}

static void
test_bounce (void **state)
{
    (void) state;
    fixture_t *f = s_open ("monitor\n    loop_turns = 100\n");
    //  One payload passed on and on, with no causes named (so no cycle of
    //  causes can see it): the digest does.
    uint64_t took = UINT64_MAX;
    for (int i = 0; i < 10 && took == UINT64_MAX; i++) {
        const char *from = i % 2? "worker": "planner";
        const char *to = i % 2? "planner": "worker";
        s_send_full (f, from, to, "message", "message", MED_PASS, 0, 77, 500);
        unsigned counts [BUS_ALERT_KIND_COUNT] = { 0 };
        s_opened (f, counts, false);
        if (counts [BUS_ALERT_BOUNCE]) {
            took = (uint64_t) i;
        }
        f->now += SEC;
    }
    assert_int_equal (took, 3);         //  the 4th message: 3 forwards
    s_close (&f);
}

static void
s_burst_step (fixture_t *f, void *arg)
{
    (void) arg;
    uint64_t ask = s_send (f, "planner", "worker", 0);
    s_send (f, "worker", "planner", ask);
}

static void
test_pingpong_and_volume (void **state)
{
    (void) state;
    fixture_t *f = s_open (NULL);
    s_steady (f, 24 * 60);
    //  Then the pair goes wild: 20 exchanges a second.
    uint64_t took = s_time_to (f, BUS_ALERT_PINGPONG, 50000, 60 * SEC, s_burst_step, NULL);
    print_message ("pingpong caught after %.2f s\n", (double) took / 1e6);
    assert_true (took <= 10 * SEC);
    s_close (&f);

    //  One agent alone, to many: volume of the agent.
    f = s_open (NULL);
    s_steady (f, 24 * 60);
    uint64_t start = f->now;
    unsigned counts [BUS_ALERT_KIND_COUNT] = { 0 };
    while (!counts [BUS_ALERT_VOLUME] && f->now - start < 60 * SEC) {
        s_send (f, "planner", "watch", 0);
        f->now += 20000;
        s_opened (f, counts, false);
    }
    print_message ("volume caught after %.2f s\n", (double) (f->now - start) / 1e6);
    assert_true (counts [BUS_ALERT_VOLUME] >= 1);
    assert_true (f->now - start <= 10 * SEC);
    s_close (&f);
}

//  ---------------------------------------------------------------------
//  Absence

static void
test_heartbeat_missed (void **state)
{
    (void) state;
    fixture_t *f = s_open (NULL);
    med_monitor_tick (f->mon, f->now);  //  starts waiting
    s_send_full (f, "worker", "watch", "message", "heartbeat", MED_PASS, 0, 1, 8);
    //  Other messages are no heartbeat.
    uint64_t took = s_time_to (f, BUS_ALERT_HEARTBEAT, SEC, 5 * MINUTE, NULL, NULL);
    print_message ("missing heartbeat caught %.0f s after the last one\n", (double) took / 1e6);
    assert_true (took > 90 * SEC && took <= 92 * SEC);
    //  It stays open while missing, and closes when one comes.
    f->now += 10 * MINUTE;
    med_monitor_tick (f->mon, f->now);
    med_alert_change_t change;
    assert_null (med_monitor_next (f->mon, &change));
    s_send_full (f, "worker", "watch", "message", "heartbeat", MED_PASS, 0, 1, 8);
    med_alert_t *alert = med_monitor_next (f->mon, &change);
    assert_non_null (alert);
    assert_int_equal (change, MED_ALERT_CLOSED);
    assert_string_equal (alert->subject, "worker:worker-alive");
    s_close (&f);
}

static void
test_result_missed_and_denied (void **state)
{
    (void) state;
    fixture_t *f = s_open (NULL);
    uint64_t pay = s_send_full (f, "planner", "payments", "finance", "finance", MED_PASS, 0, 5,
                                100);
    uint64_t took = s_time_to (f, BUS_ALERT_RESULT, SEC, 5 * MINUTE, NULL, NULL);
    assert_true (took >= 30 * SEC && took <= 31 * SEC);
    const med_alert_t *alerts [4];
    assert_int_equal (med_monitor_alerts (f->mon, alerts, 4), 1);
    assert_int_equal (alerts [0]->evidence [0], pay);
    assert_string_equal (alerts [0]->subject, "payments>planner");

    //  A held message expects nothing until its hold releases it; the
    //  answer that comes back denied is an alert at once.
    s_send_full (f, "planner", "payments", "finance", "finance", MED_HOLD, 0, 6, 100);
    f->now += 10 * SEC;
    med_event_t release = {
        .seq = ++f->seq, .time_us = f->now, .verdict = MED_PASS, .hold_closed = true,
        .stage = "", .sender = "planner", .recipient = "payments", .intent_class = "finance",
        .action = "", .intent = "finance", .code = BUS_OK,
    };
    med_monitor_observe (f->mon, &release);
    f->now += 2 * SEC;
    s_send_full (f, "payments", "planner", "message", "message", MED_REJECT, release.seq, 9, 20);
    unsigned counts [BUS_ALERT_KIND_COUNT] = { 0 };
    s_opened (f, counts, false);
    assert_int_equal (counts [BUS_ALERT_RESULT_DENIED], 1);
    //  ... and it is not missed on top of that.
    f->now += 60 * SEC;
    med_monitor_tick (f->mon, f->now);
    memset (counts, 0, sizeof counts);
    s_opened (f, counts, false);
    assert_int_equal (counts [BUS_ALERT_RESULT], 0);
    s_close (&f);
}

//  Thousands of messages waiting for their results, answered in any order:
//  each reply frees exactly the one it names, wherever it sits (they are
//  found by seq, not by a walk of all), a reply from another agent or a
//  second one frees nothing, the index comes back after a restart, and the
//  ones never answered still come due.
static void
test_many_results_waiting (void **state)
{
    (void) state;
    fixture_t *f = s_open (NULL);
    enum { N = MED_MON_PENDING };
    uint64_t *seqs = calloc (N, sizeof *seqs);
    //  Gaps between the seqs, as other traffic leaves them: the index then
    //  meets its collisions.
    enum { GAP = 64 };
    bool *answered = calloc ((size_t) (GAP + 2) * (N + 16) * 2, sizeof *answered);
    assert_true (seqs && answered);
    for (uint32_t i = 0; i < N; i++) {
        f->seq += (uint64_t) (s_rand (f) * GAP);
        seqs [i] = s_send_full (f, "planner", "payments", "finance", "finance", MED_PASS, 0, i,
                                100);
    }
    assert_int_equal (med_monitor_dropped (f->mon), 0);
    s_send_full (f, "planner", "payments", "finance", "finance", MED_PASS, 0, 1, 100);
    assert_int_equal (med_monitor_dropped (f->mon), 1);
    for (uint32_t i = N - 1; i > 0; i--) {
        uint32_t j = (uint32_t) (s_rand (f) * (i + 1));
        uint64_t t = seqs [i];
        seqs [i] = seqs [j];
        seqs [j] = t;
    }
    //  Not the recipient's reply: nothing freed.
    s_send_full (f, "worker", "planner", "message", "message", MED_PASS, seqs [0], 2, 20);
    for (uint32_t i = 0; i < N / 2; i++) {
        if (i == N / 4) {
            uint8_t *data;
            size_t size;
            assert_int_equal (med_monitor_save (f->mon, &data, &size), 0);
            med_monitor_t *again = med_monitor_new (0);
            assert_non_null (again);
            med_monitor_configure (again, f->policy);
            assert_int_equal (med_monitor_load (again, data, size), 0);
            free (data);
            med_monitor_destroy (&f->mon);
            f->mon = again;
        }
        s_send_full (f, "payments", "planner", "message", "message", MED_PASS, seqs [i], 3, 20);
        answered [seqs [i]] = true;
    }
    //  Answered twice: the second frees nothing.
    for (uint32_t i = 0; i < N / 2; i++) {
        s_send_full (f, "payments", "planner", "message", "message", MED_PASS, seqs [i], 4, 20);
    }
    //  Exactly N / 2 places are free again.
    uint64_t dropped = med_monitor_dropped (f->mon);
    for (uint32_t i = 0; i < N / 2; i++) {
        s_send_full (f, "planner", "payments", "finance", "finance", MED_PASS, 0, 5, 100);
    }
    assert_int_equal (med_monitor_dropped (f->mon), dropped);
    s_send_full (f, "planner", "payments", "finance", "finance", MED_PASS, 0, 6, 100);
    assert_int_equal (med_monitor_dropped (f->mon), dropped + 1);
    //  Due: the alert's evidence is of those never answered.
    s_opened (f, NULL, false);
    f->now += 31 * SEC;
    med_monitor_tick (f->mon, f->now);
    const med_alert_t *alerts [8];
    size_t n = med_monitor_alerts (f->mon, alerts, 8);
    bool found = false;
    for (size_t a = 0; a < n; a++) {
        if (alerts [a]->kind != BUS_ALERT_RESULT) {
            continue;
        }
        found = true;
        assert_true (alerts [a]->n_evidence > 0);
        for (uint32_t e = 0; e < alerts [a]->n_evidence; e++) {
            assert_false (answered [alerts [a]->evidence [e]]);
        }
    }
    assert_true (found);
    free (seqs);
    free (answered);
    s_close (&f);
}

//  ---------------------------------------------------------------------
//  Destinations, timing, cost

static void
test_new_edge_and_probe (void **state)
{
    (void) state;
    fixture_t *f = s_open (NULL);
    s_steady (f, 26 * 60);              //  past learn_hours = 24
    f->now += SEC;
    s_send (f, "payments", "planner", 0);   //  used: not new
    s_send (f, "worker", "watch", 0);
    unsigned counts [BUS_ALERT_KIND_COUNT] = { 0 };
    assert_int_equal (s_opened (f, counts, true), 0);
    //  planner -> watch is allowed and was never used.
    s_send (f, "planner", "watch", 0);
    s_opened (f, counts, false);
    assert_int_equal (counts [BUS_ALERT_NEW_EDGE], 1);
    //  Ten denied attempts in a minute: probing.
    uint64_t start = f->now;
    for (int i = 0; i < 10; i++) {
        f->now += 3 * SEC;
        s_send_full (f, "worker", "payments", "", "finance", MED_REJECT, 0, 3, 10);
    }
    s_opened (f, counts, false);
    assert_int_equal (counts [BUS_ALERT_PROBE], 1);
    assert_true (f->now - start <= 60 * SEC);
    s_close (&f);
}

static void
test_timing (void **state)
{
    (void) state;
    fixture_t *f = s_open ("monitor\n    learn_hours = 1\n");
    //  Four days of office hours, 09:00-17:00 UTC, every two minutes.
    for (int day = 0; day < 4; day++) {
        for (uint64_t t = 9 * HOUR; t < 17 * HOUR; t += 2 * MINUTE) {
            f->now = T0 + (uint64_t) day * DAY + t;
            s_send (f, "planner", "worker", 0);
        }
    }
    assert_int_equal (s_opened (f, NULL, true), 0);
    //  Day five, 03:10.
    f->now = T0 + 4 * DAY + 3 * HOUR + 10 * MINUTE;
    s_send (f, "planner", "worker", 0);
    unsigned counts [BUS_ALERT_KIND_COUNT] = { 0 };
    s_opened (f, counts, true);
    assert_int_equal (counts [BUS_ALERT_TIMING], 1);
    //  At 10:00 it is business as usual.
    f->now = T0 + 4 * DAY + 10 * HOUR;
    s_send (f, "worker", "planner", 0);
    s_send (f, "planner", "worker", 0);
    memset (counts, 0, sizeof counts);
    s_opened (f, counts, false);
    assert_int_equal (counts [BUS_ALERT_TIMING], 0);
    s_close (&f);
}

static void
test_cost (void **state)
{
    (void) state;
    fixture_t *f = s_open ("monitor\n    budget_messages = 100\n");
    for (int i = 0; i < 100; i++) {
        f->now += 30 * SEC;             //  100 in 50 minutes: within
        s_send (f, "planner", "worker", 0);
    }
    unsigned counts [BUS_ALERT_KIND_COUNT] = { 0 };
    s_opened (f, counts, false);
    assert_int_equal (counts [BUS_ALERT_COST], 0);
    f->now += 30 * SEC;
    s_send (f, "planner", "worker", 0);
    s_opened (f, counts, false);
    assert_int_equal (counts [BUS_ALERT_COST], 1);
    s_close (&f);

    //  The log budget (the hostile-agent issue's: KiB per hour) warns at
    //  80% of it, before a single denial.
    const char *policy =
        "agents\n"
        "    planner\n"
        "        key = \"" KEY_PLANNER "\"\n"
        "        log_budget = 100\n"
        "    worker\n"
        "        key = \"" KEY_WORKER "\"\n"
        "edges\n"
        "    planner\n"
        "        worker = message\n";
    bus_policy_t *p;
    bus_error_t err;
    CHECK_PASS (bus_policy_parse (&p, policy, strlen (policy), "cost.cfg", &err), err);
    med_monitor_t *mon = med_monitor_new (0);
    med_monitor_configure (mon, p);
    uint64_t spent = 0;
    bool fired = false;
    for (uint64_t seq = 1; !fired && seq < 1000; seq++) {
        med_event_t event = {
            .seq = seq, .time_us = T0 + seq * SEC, .verdict = MED_PASS, .stage = "",
            .sender = "planner", .recipient = "worker", .intent_class = "message",
            .action = "", .intent = "message", .payload_size = 900, .record_size = 1024,
        };
        med_monitor_observe (mon, &event);
        spent += 1024;
        med_alert_change_t change;
        med_alert_t *alert;
        while ((alert = med_monitor_next (mon, &change))) {
            fired |= alert->kind == BUS_ALERT_COST;
        }
    }
    assert_true (fired);
    assert_int_equal (spent, 80 * 1024);  //  at 80 KiB of the 100
    med_monitor_destroy (&mon);
    bus_policy_destroy (&p);
}

//  ---------------------------------------------------------------------
//  State: restart, reload, ack, quarantine, off

static void
test_survives_restart_and_reload (void **state)
{
    (void) state;
    fixture_t *f = s_open (NULL);
    s_steady (f, 26 * 60);
    uint8_t *data;
    size_t size;
    assert_int_equal (med_monitor_save (f->mon, &data, &size), 0);
    assert_false (med_monitor_dirty (f->mon));
    //  A restart: a new monitor from the saved bytes.
    med_monitor_t *again = med_monitor_new (0);
    med_monitor_configure (again, f->policy);
    assert_int_equal (med_monitor_load (again, data, size), 0);
    //  Bytes of another shape are refused, the state untouched.
    assert_int_equal (med_monitor_load (again, data, size - 1), -1);
    free (data);
    med_monitor_destroy (&f->mon);
    f->mon = again;
    //  The baselines came along: a known edge is not new, and a burst is
    //  seen at once (no hour of learning again).
    f->now += SEC;
    s_send (f, "worker", "planner", 0);
    assert_int_equal (s_opened (f, NULL, true), 0);
    //  A reload: the same monitor, configured again.
    bus_policy_t *reloaded;
    bus_error_t err;
    char text [4096];
    snprintf (text, sizeof text, "%s%s", s_agents, s_monitor);
    CHECK_PASS (bus_policy_parse (&reloaded, text, strlen (text), "test.cfg", &err), err);
    med_monitor_configure (f->mon, reloaded);
    bus_policy_destroy (&f->policy);
    f->policy = reloaded;
    uint64_t took = s_time_to (f, BUS_ALERT_PINGPONG, 50000, 60 * SEC, s_burst_step, NULL);
    assert_true (took <= 10 * SEC);
    //  The heartbeat clock came along too: still quiet.
    s_close (&f);
}

static void
test_ack_and_quarantine (void **state)
{
    (void) state;
    fixture_t *f = s_open ("monitor\n    quarantine_on = loop, probe\n");
    loop_t loop = { 0 };
    assert_true (s_time_to (f, BUS_ALERT_LOOP, 50000, 10 * SEC, s_loop_step, &loop) < 10 * SEC);
    const med_alert_t *which;
    const char *agent = med_monitor_next_quarantine (f->mon, &which);
    assert_non_null (agent);
    assert_string_equal (agent, "planner");     //  the one that sent the 7th
    assert_int_equal (which->kind, BUS_ALERT_LOOP);
    assert_null (med_monitor_next_quarantine (f->mon, &which));
    assert_int_equal (med_monitor_quarantine (f->mon, agent, "bus", which->text, f->now), 0);
    assert_int_equal (med_monitor_quarantine (f->mon, agent, "bus", "again", f->now), -1);
    assert_non_null (med_monitor_quarantined (f->mon, "planner"));
    assert_null (med_monitor_quarantined (f->mon, "worker"));
    //  Saved with the rest.
    uint8_t *data;
    size_t size;
    assert_int_equal (med_monitor_save (f->mon, &data, &size), 0);
    med_monitor_t *again = med_monitor_new (0);
    med_monitor_configure (again, f->policy);
    assert_int_equal (med_monitor_load (again, data, size), 0);
    free (data);
    assert_non_null (med_monitor_quarantined (again, "planner"));
    assert_int_equal (med_monitor_release (again, "planner"), 0);
    assert_int_equal (med_monitor_release (again, "planner"), -1);
    const med_alert_t *alerts [4];
    assert_true (med_monitor_alerts (again, alerts, 4) >= 1);
    char id [24];
    snprintf (id, sizeof id, "%s", alerts [0]->id);
    assert_int_equal (med_monitor_ack (again, id, "watch", f->now), 0);
    assert_int_equal (med_monitor_ack (again, "a-nope", "watch", f->now), -1);
    med_alert_change_t change;
    med_alert_t *acked = NULL, *alert;
    while ((alert = med_monitor_next (again, &change))) {
        acked = change == MED_ALERT_ACKED? alert: acked;
    }
    assert_non_null (acked);
    assert_string_equal (acked->acked_by, "watch");
    med_monitor_destroy (&again);
    s_close (&f);
}

static void
test_off (void **state)
{
    (void) state;
    fixture_t *f = s_open ("monitor\n    on = false\n");
    loop_t loop = { 0 };
    assert_int_equal (s_time_to (f, BUS_ALERT_LOOP, 50000, 5 * SEC, s_loop_step, &loop),
                      UINT64_MAX);
    s_close (&f);
}

//  ---------------------------------------------------------------------
//  The policy's monitor section

static void
s_bad (const char *monitor, const char *needle)
{
    char text [4096];
    snprintf (text, sizeof text, "%s%s", s_agents, monitor);
    bus_policy_t *p = NULL;
    bus_error_t err;
    CHECK_FAIL (bus_policy_parse (&p, text, strlen (text), "bad.cfg", &err), err, BUS_EPOLICY);
    CHECK_CONTAINS (err.text, needle);
}

static void
test_policy (void **state)
{
    (void) state;
    fixture_t *f = s_open (NULL);
    const bus_monitor_policy_t *m = &f->policy->monitor;
    assert_true (m->on);
    assert_int_equal (m->loop_turns, 4);
    assert_int_equal (m->factor, 8);
    assert_int_equal (m->min_volume, 60);
    assert_int_equal (m->cost_percent, 80);
    assert_int_equal (m->expect_count, 2);
    assert_false (m->expects [0].reply);
    assert_string_equal (m->expects [0].intent, "heartbeat");
    assert_int_equal (m->expects [0].seconds, 90);
    assert_true (m->expects [1].reply);
    assert_int_equal (m->expects [1].seconds, 30);
    const bus_agent_t *watch = bus_policy_agent (f->policy, "watch");
    assert_true (watch->roles & BUS_ROLE_MONITOR);
    s_close (&f);

    //  Lines: the agents text is 21 lines, so monitor starts at 22.
    s_bad ("monitor\n    factor = 1\n", "bad.cfg:23: 'factor' must be a whole number from 2");
    s_bad ("monitor\n    quarantine_on = loop, sneeze\n",
           "bad.cfg:23: unknown alert kind 'sneeze' (known: loop, depth");
    s_bad ("monitor\n    expect\n        x\n            agent = nobody\n            every = 5\n",
           "bad.cfg:25: unknown agent 'nobody' in expect 'x'");
    s_bad ("monitor\n    expect\n        x\n            agent = worker\n            to = worker\n",
           "bad.cfg:24: expect 'x' must be a heartbeat");
    s_bad ("monitor\n    expect\n        x\n            to = worker\n",
           "needs to = NAME and reply_within = SECONDS");
    s_bad ("monitor\n    sneeze = 1\n", "unknown key 'sneeze' in monitor (known: on, loop_turns");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_policy),
        cmocka_unit_test (test_loop_fires_fast),
        cmocka_unit_test (test_request_reply_is_not_a_loop),
        cmocka_unit_test (test_bounce),
        cmocka_unit_test (test_pingpong_and_volume),
        cmocka_unit_test (test_heartbeat_missed),
        cmocka_unit_test (test_result_missed_and_denied),
        cmocka_unit_test (test_many_results_waiting),
        cmocka_unit_test (test_new_edge_and_probe),
        cmocka_unit_test (test_timing),
        cmocka_unit_test (test_cost),
        cmocka_unit_test (test_survives_restart_and_reload),
        cmocka_unit_test (test_ack_and_quarantine),
        cmocka_unit_test (test_off),
        cmocka_unit_test (test_quiet_week),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
