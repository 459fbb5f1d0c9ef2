/*  mon_cost.c: what one message costs the detectors, in-process.

    The detectors (mediators/med_monitor.h) fed synthetic committed
    outcomes like bench/monitor.sh's traffic (N senders, each to its own
    recipient, every recipient expected to answer, every sender expected to
    beat), on a simulated clock, with the bus's timer tick every 200 ms of
    it. Prints one JSON line: events, and ns per event for the detectors
    alone (med_monitor_observe and its share of the ticks). The copy the
    core makes of each outcome for them is not in it; bench/monitor.sh
    measures the whole bus.

    usage: mon_cost [--events N] [--pairs N] [--rate MSGS_PER_S]
*/
#include "bus_policy.h"
#include "med_monitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
main (int argc, char **argv)
{
    unsigned long events = 2000000, pairs = 4, rate = 20000;
    for (int i = 1; i + 1 < argc; i += 2) {
        unsigned long value = strtoul (argv [i + 1], NULL, 10);
        if (strcmp (argv [i], "--events") == 0) {
            events = value;
        }
        else
        if (strcmp (argv [i], "--pairs") == 0 && value >= 1 && value <= 64) {
            pairs = value;
        }
        else
        if (strcmp (argv [i], "--rate") == 0 && value >= 1) {
            rate = value;
        }
        else {
            fprintf (stderr, "usage: %s [--events N] [--pairs 1..64] [--rate MSGS_PER_S]\n",
                     argv [0]);
            return 2;
        }
    }
    //  A policy of the bench's shape, with keys of its own (never used).
    char text [16384] = "agents\n";
    for (size_t i = 0; i < 2 * pairs; i++) {
        char public [41], secret [41];
        zmq_curve_keypair (public, secret);
        size_t len = strlen (text);
        snprintf (text + len, sizeof text - len, "    %c%zu\n        key = \"%s\"\n",
                  i < pairs? 's': 'r', i % pairs + 1, public);
    }
    strcat (text, "edges\n");
    for (size_t k = 1; k <= pairs; k++) {
        size_t len = strlen (text);
        snprintf (text + len, sizeof text - len, "    s%zu\n        r%zu = message\n", k, k);
    }
    strcat (text, "monitor\n    expect\n");
    for (size_t k = 1; k <= pairs; k++) {
        size_t len = strlen (text);
        snprintf (text + len, sizeof text - len, "        r%zu-answers\n            to = r%zu\n"
                  "            reply_within = 3600\n        s%zu-alive\n            agent = s%zu\n"
                  "            every = 3600\n", k, k, k, k);
    }
    bus_policy_t *policy;
    bus_error_t err;
    if (bus_policy_parse (&policy, text, strlen (text), "mon_cost", &err) != 0) {
        fprintf (stderr, "mon_cost: %s\n", err.text);
        return 1;
    }
    med_monitor_t *mon = med_monitor_new (0);
    med_monitor_configure (mon, policy);
    char names [128][16];
    for (size_t k = 0; k < pairs; k++) {
        snprintf (names [2 * k], 16, "s%zu", k + 1);
        snprintf (names [2 * k + 1], 16, "r%zu", k + 1);
    }
    uint64_t t = UINT64_C (1767571200000000);
    uint64_t step = 1000000 / rate;
    uint64_t next_tick = t;
    double start = s_now ();
    for (unsigned long i = 0; i < events; i++) {
        size_t k = i % pairs;
        med_event_t event = {
            .seq = i + 1, .time_us = t, .verdict = MED_PASS, .code = BUS_OK, .stage = "",
            .sender = names [2 * k], .recipient = names [2 * k + 1], .intent_class = "message",
            .action = "", .intent = "message", .payload_size = 256, .record_size = 400,
        };
        memcpy (event.digest, &i, sizeof i);
        event.digest [31] = 1;
        med_monitor_observe (mon, &event);
        t += step;
        if (t >= next_tick) {
            med_monitor_tick (mon, t);
            next_tick = t + 200000;
            med_alert_change_t change;
            while (med_monitor_next (mon, &change)) {
            }
        }
    }
    double seconds = s_now () - start;
    printf ("{\"events\":%lu,\"pairs\":%lu,\"rate\":%lu,\"ns_per_event\":%.0f,\"alerts\":%llu,"
            "\"dropped\":%llu}\n", events, pairs, rate, seconds * 1e9 / (double) events,
            (unsigned long long) med_monitor_opened (mon, BUS_ALERT_VOLUME),
            (unsigned long long) med_monitor_dropped (mon));
    med_monitor_destroy (&mon);
    bus_policy_destroy (&policy);
    return 0;
}
