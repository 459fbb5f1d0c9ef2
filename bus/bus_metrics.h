/*  bus_metrics.h: `serve --metrics ADDR:PORT`, Prometheus text format.

    The bus thread counts (after each commit, from the same committed
    outcomes the observers see) and renders the whole page once a second
    into a buffer; libmicrohttpd's own thread serves that buffer, under a
    mutex, to GET /metrics. So a scrape never touches the bus's state and
    never waits for the loop, and what it shows is at most a second old.

    Series (names follow Prometheus's rules: bulkhead_ prefix, base units,
    _total for counters, _bytes / _seconds):

      bulkhead_messages_total{sender,recipient,class,verdict}   counter
      bulkhead_holds_waiting                                   gauge
      bulkhead_alerts_opened_total{kind}                       counter
      bulkhead_alerts_open                                     gauge
      bulkhead_quarantined_agents                              gauge
      bulkhead_commit_duration_seconds                         histogram
      bulkhead_log_records                                     gauge (last seq)
      bulkhead_log_bytes                                       gauge (data.mdb on disk)
      bulkhead_sessions_online                                 gauge
      bulkhead_metrics_series_dropped_total                    counter
      bulkhead_monitor_dropped_total                           counter

    Cardinality is bounded: label values are only agent names of the live
    policy (anything else, and a recipient with no edge from the sender, is
    "other"), class names, verdict words, alert
    kinds; at most BUS_METRICS_SERIES message series, and a message that
    would need one more is counted in bulkhead_metrics_series_dropped_total.

    Only loopback addresses unless the operator says otherwise
    (serve --metrics-public): the page names every agent and edge.
*/
#ifndef BUS_METRICS_H
#define BUS_METRICS_H

#include "bus_core.h"

#define BUS_METRICS_SERIES  4096

typedef struct bus_metrics bus_metrics_t;

//  Parses "PORT", "127.0.0.1:PORT" or "[::1]:PORT" and starts serving.
//  A non-loopback address is refused unless public. 0, or -1 with err.
int
    bus_metrics_open (bus_metrics_t **out, const char *listen, bool public, bus_error_t *err);

void
    bus_metrics_destroy (bus_metrics_t **self_p);

//  The port it listens on (for "--metrics 127.0.0.1:0").
unsigned
    bus_metrics_port (const bus_metrics_t *self);

//  One committed outcome.
void
    bus_metrics_count (bus_metrics_t *self, const bus_core_t *core, const med_event_t *event);

//  One commit took this long.
void
    bus_metrics_commit (bus_metrics_t *self, uint64_t micros);

//  Renders the page from the counters and core's live state.
void
    bus_metrics_render (bus_metrics_t *self, bus_core_t *core);

#endif
