/*  bus_metrics.c: counters and the page, see bus_metrics.h. */
#include "bus_metrics.h"
#include "bus_hash.h"
#include "bus_session.h"
#include "med_monitor.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_BUCKETS   12

//  Upper bounds of the commit histogram, in microseconds (an fsync is
//  typically between 0.5 and 20 ms).
static const uint64_t s_bounds [S_BUCKETS] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000
};

typedef struct {
    char key [4 * (BUS_NAME_MAX + 1) + 16];     //  sender\trecipient\tclass\tverdict
    uint64_t count;
} s_series_t;

struct bus_metrics {
    struct MHD_Daemon *daemon;
    unsigned port;
    bool public;                        //  --metrics-public: any Host header
    s_series_t *series;                 //  open addressing, BUS_METRICS_SERIES * 2 slots
    size_t n_series;
    uint64_t dropped;
    uint64_t commits [S_BUCKETS + 1];   //  the last: +Inf
    uint64_t commit_sum_us;
    uint64_t commit_count;
    //  The page, rendered by the bus thread, served by MHD's.
    pthread_mutex_t lock;
    char *page;
    size_t page_len;
    size_t page_cap;
    //  Building the next page.
    char *buf;
    size_t len, cap;
};

static uint64_t
s_hash (const char *s)
{
    return bus_fnv1a_str (BUS_FNV_OFFSET, s, NULL);
}

//  On loopback, the Host header must name a loopback host: a page in a
//  browser on this machine whose name was rebound to 127.0.0.1 (DNS
//  rebinding) sends its own name, and is refused. No Host (HTTP/1.0) is
//  no browser.
static bool
s_host_ok (const bus_metrics_t *self, struct MHD_Connection *connection)
{
    const char *host = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Host");
    if (self->public || !host) {
        return true;
    }
    size_t len = strcspn (host, ":");
    if (host [0] == '[') {
        return strncmp (host, "[::1]", 5) == 0 && (host [5] == 0 || host [5] == ':');
    }
    return (len == 9 && strncmp (host, "localhost", 9) == 0)
        || (len >= 7 && len <= 15 && strncmp (host, "127.", 4) == 0
            && strspn (host, "0123456789.") == len);
}

static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    (void) upload_data;
    (void) con_cls;
    bus_metrics_t *self = cls;
    struct MHD_Response *response;
    unsigned status = MHD_HTTP_OK;
    if (!s_host_ok (self, connection)) {
        static const char host [] = "the Host header must name a loopback address\n";
        response = MHD_create_response_from_buffer (sizeof host - 1, (void *) host,
                                                    MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_FORBIDDEN;
    }
    else
    if (strcmp (method, "GET") != 0 || *upload_data_size) {
        static const char no [] = "only GET /metrics\n";
        response = MHD_create_response_from_buffer (sizeof no - 1, (void *) no,
                                                    MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    }
    else
    if (strcmp (url, "/metrics") != 0) {
        static const char nothing [] = "see /metrics\n";
        response = MHD_create_response_from_buffer (sizeof nothing - 1, (void *) nothing,
                                                    MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_NOT_FOUND;
    }
    else {
        pthread_mutex_lock (&self->lock);
        response = MHD_create_response_from_buffer (self->page_len, self->page? self->page: "",
                                                    MHD_RESPMEM_MUST_COPY);
        pthread_mutex_unlock (&self->lock);
    }
    if (!response) {
        return MHD_NO;
    }
    MHD_add_response_header (response, "Content-Type", status == MHD_HTTP_OK
                             ? "text/plain; version=0.0.4; charset=utf-8": "text/plain");
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

int
bus_metrics_open (bus_metrics_t **out, const char *listen, bool public, bus_error_t *err)
{
    //  "PORT" or "HOST:PORT"; HOST an IPv4 or a bracketed IPv6 address.
    char host [64] = "127.0.0.1";
    const char *port_text = listen;
    const char *colon = strrchr (listen, ':');
    if (colon) {
        size_t len = (size_t) (colon - listen);
        if (len >= 2 && listen [0] == '[' && listen [len - 1] == ']') {
            listen++;
            len -= 2;
        }
        if (len == 0 || len >= sizeof host) {
            return bus_fail (err, BUS_EINVAL, "--metrics %s: give PORT or ADDRESS:PORT", listen);
        }
        memcpy (host, listen, len);
        host [len] = 0;
        port_text = colon + 1;
    }
    char *end;
    unsigned long port = strtoul (port_text, &end, 10);
    if (!*port_text || *end || port > 65535) {
        return bus_fail (err, BUS_EINVAL, "--metrics: '%s' is not a port (0-65535)", port_text);
    }
    struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    struct sockaddr_in6 v6 = { .sin6_family = AF_INET6, .sin6_port = htons ((uint16_t) port) };
    bool is6 = strchr (host, ':') != NULL;
    if (is6? inet_pton (AF_INET6, host, &v6.sin6_addr) != 1
           : inet_pton (AF_INET, host, &v4.sin_addr) != 1) {
        return bus_fail (err, BUS_EINVAL, "--metrics: '%s' is not an IP address", host);
    }
    bool loopback = is6? IN6_IS_ADDR_LOOPBACK (&v6.sin6_addr)
                       : (ntohl (v4.sin_addr.s_addr) >> 24) == 127;
    if (!loopback && !public) {
        return bus_fail (err, BUS_EPERM, "--metrics %s: not a loopback address; the page names "
                         "every agent and edge. Serve it on 127.0.0.1 (and scrape through a "
                         "tunnel or proxy), or add --metrics-public", host);
    }
    bus_metrics_t *self = calloc (1, sizeof *self);
    if (!self || !(self->series = calloc (2 * BUS_METRICS_SERIES, sizeof *self->series))) {
        free (self);
        return bus_fail (err, BUS_ENOMEM, "out of memory for metrics");
    }
    pthread_mutex_init (&self->lock, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | (is6? MHD_USE_IPv6: 0);
    self->daemon = MHD_start_daemon (flags, (uint16_t) port, NULL, NULL, s_answer, self,
                                     MHD_OPTION_SOCK_ADDR,
                                     is6? (struct sockaddr *) &v6: (struct sockaddr *) &v4,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned) 16,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10,
                                     MHD_OPTION_END);
    if (!self->daemon) {
        bus_metrics_destroy (&self);
        return bus_fail (err, BUS_EIO, "--metrics: cannot listen on %s:%lu (in use?)", host, port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon,
                                                            MHD_DAEMON_INFO_BIND_PORT);
    self->port = info? info->port: (unsigned) port;
    self->public = public;
    *out = self;
    return 0;
}

void
bus_metrics_destroy (bus_metrics_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    bus_metrics_t *self = *self_p;
    if (self->daemon) {
        MHD_stop_daemon (self->daemon);
    }
    pthread_mutex_destroy (&self->lock);
    free (self->series);
    free (self->page);
    free (self->buf);
    free (self);
    *self_p = NULL;
}

unsigned
bus_metrics_port (const bus_metrics_t *self)
{
    return self->port;
}

//  ---------------------------------------------------------------------
//  Counting (bus thread)

static const char *
s_verdict (const med_event_t *event)
{
    if (event->hold_closed) {
        return event->verdict == MED_PASS? "released": "hold_denied";
    }
    return event->verdict == MED_PASS? "delivered": event->verdict == MED_HOLD? "held": "denied";
}

void
bus_metrics_count (bus_metrics_t *self, const bus_core_t *core, const med_event_t *event)
{
    //  Only names the live policy knows, and a recipient only along an edge
    //  it draws: neither a name an agent made up nor its sends to every
    //  agent it has no edge to can make series of their own (one agent
    //  could otherwise fill the cap and hide everyone after it). Series are
    //  then bounded by the policy: (edges + agents) x classes x verdicts.
    const bus_agent_t *from = bus_policy_agent (core->policy, event->sender);
    const bus_agent_t *to = bus_policy_agent (core->policy, event->recipient);
    const char *sender = from? event->sender: "other";
    const char *recipient = from && to && bus_policy_edge (core->policy, from, to)? event->recipient
                                                                                  : "other";
    const char *cls = event->intent_class [0]? event->intent_class: "none";
    char key [sizeof self->series [0].key];
    snprintf (key, sizeof key, "%s\t%s\t%s\t%s", sender, recipient, cls, s_verdict (event));
    size_t slots = 2 * BUS_METRICS_SERIES;
    size_t slot = (size_t) (s_hash (key) % slots);
    for (size_t probe = 0; probe < slots; probe++) {
        s_series_t *series = &self->series [slot];
        if (!series->key [0]) {
            if (self->n_series == BUS_METRICS_SERIES) {
                break;
            }
            memcpy (series->key, key, strlen (key) + 1);
            self->n_series++;
        }
        if (strcmp (series->key, key) == 0) {
            series->count++;
            return;
        }
        slot = (slot + 1) % slots;
    }
    self->dropped++;
}

void
bus_metrics_commit (bus_metrics_t *self, uint64_t micros)
{
    size_t i = 0;
    while (i < S_BUCKETS && micros > s_bounds [i]) {
        i++;
    }
    self->commits [i]++;
    self->commit_sum_us += micros;
    self->commit_count++;
}

//  ---------------------------------------------------------------------
//  The page (bus thread), then handed to MHD's thread

static void
s_put (bus_metrics_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_put (bus_metrics_t *self, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        va_list args;
        va_start (args, fmt);
        int n = vsnprintf (self->buf + self->len, self->cap - self->len, fmt, args);
        va_end (args);
        if (n < 0) {
            return;
        }
        if ((size_t) n < self->cap - self->len) {
            self->len += (size_t) n;
            return;
        }
        size_t cap = (self->cap + (size_t) n + 1) * 2;
        char *buf = realloc (self->buf, cap);
        if (!buf) {
            return;                     //  the page is cut; the next one tries again
        }
        self->buf = buf;
        self->cap = cap;
    }
}

static void
s_head (bus_metrics_t *self, const char *name, const char *type, const char *help)
{
    s_put (self, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
bus_metrics_render (bus_metrics_t *self, bus_core_t *core)
{
    if (!self->buf || self->cap == 0) {
        free (self->buf);
        self->cap = 65536;
        self->buf = malloc (self->cap);
        if (!self->buf) {
            self->cap = 0;
            return;
        }
    }
    self->len = 0;
    self->buf [0] = 0;
    s_head (self, "bulkhead_messages_total", "counter",
            "Messages decided, by sender, recipient, class and verdict.");
    for (size_t i = 0; i < 2 * BUS_METRICS_SERIES; i++) {
        const s_series_t *series = &self->series [i];
        if (!series->key [0]) {
            continue;
        }
        char parts [4][BUS_NAME_MAX + 16];
        const char *p = series->key;
        for (int k = 0; k < 4; k++) {
            size_t len = strcspn (p, "\t");
            snprintf (parts [k], sizeof parts [k], "%.*s", (int) len, p);
            p += len + (p [len] == '\t');
        }
        //  Names are [a-z0-9._-]: nothing in them needs escaping.
        s_put (self, "bulkhead_messages_total{sender=\"%s\",recipient=\"%s\",class=\"%s\","
               "verdict=\"%s\"} %llu\n", parts [0], parts [1], parts [2], parts [3],
               (unsigned long long) series->count);
    }
    s_head (self, "bulkhead_metrics_series_dropped_total", "counter",
            "Messages not counted by label because the series cap was reached.");
    s_put (self, "bulkhead_metrics_series_dropped_total %llu\n",
           (unsigned long long) self->dropped);
    s_head (self, "bulkhead_holds_waiting", "gauge", "Held messages waiting for approval.");
    s_put (self, "bulkhead_holds_waiting %u\n", (unsigned) bus_holds_size (core->holds));
    s_head (self, "bulkhead_alerts_opened_total", "counter", "Monitoring alerts opened, by kind.");
    for (int k = 0; k < BUS_ALERT_KIND_COUNT; k++) {
        s_put (self, "bulkhead_alerts_opened_total{kind=\"%s\"} %llu\n", bus_alert_kinds [k],
               (unsigned long long) (core->monitor? med_monitor_opened (core->monitor, k): 0));
    }
    size_t open = 0;
    size_t quarantined = 0;
    if (core->monitor) {
        static const med_alert_t *alerts [MED_MON_ALERTS];
        size_t n = med_monitor_alerts (core->monitor, alerts, MED_MON_ALERTS);
        for (size_t i = 0; i < n; i++) {
            open += alerts [i]->closed_us == 0;
        }
        const med_quarantine_t *list;
        quarantined = med_monitor_quarantines (core->monitor, &list);
    }
    s_head (self, "bulkhead_alerts_open", "gauge", "Monitoring alerts open now.");
    s_put (self, "bulkhead_alerts_open %zu\n", open);
    s_head (self, "bulkhead_quarantined_agents", "gauge", "Agents quarantined now.");
    s_put (self, "bulkhead_quarantined_agents %zu\n", quarantined);
    s_head (self, "bulkhead_monitor_dropped_total", "counter",
            "Things the detectors left out because a table was full.");
    s_put (self, "bulkhead_monitor_dropped_total %llu\n",
           (unsigned long long) (core->monitor? med_monitor_dropped (core->monitor): 0));
    s_head (self, "bulkhead_commit_duration_seconds", "histogram",
            "Time of one group commit of the log (one synced LMDB transaction).");
    uint64_t cumulative = 0;
    for (int i = 0; i < S_BUCKETS; i++) {
        cumulative += self->commits [i];
        s_put (self, "bulkhead_commit_duration_seconds_bucket{le=\"%g\"} %llu\n",
               (double) s_bounds [i] / 1e6, (unsigned long long) cumulative);
    }
    cumulative += self->commits [S_BUCKETS];
    s_put (self, "bulkhead_commit_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
           (unsigned long long) cumulative);
    s_put (self, "bulkhead_commit_duration_seconds_sum %.6f\n", (double) self->commit_sum_us / 1e6);
    s_put (self, "bulkhead_commit_duration_seconds_count %llu\n",
           (unsigned long long) self->commit_count);
    s_head (self, "bulkhead_log_records", "gauge", "Sequence of the last log record.");
    s_put (self, "bulkhead_log_records %llu\n",
           (unsigned long long) bus_store_last_seq (core->store));
    char path [4096];
    snprintf (path, sizeof path, "%s/data.mdb", core->options.data_dir);
    struct stat st;
    s_head (self, "bulkhead_log_bytes", "gauge", "Bytes the log's LMDB file takes on disk.");
    s_put (self, "bulkhead_log_bytes %lld\n",
           stat (path, &st) == 0? (long long) st.st_blocks * 512: 0LL);
    size_t online = bus_sessions_online (core);
    s_head (self, "bulkhead_sessions_online", "gauge", "Agents connected now.");
    s_put (self, "bulkhead_sessions_online %zu\n", online);

    //  Swap the new page in; MHD copies it out under the same lock.
    pthread_mutex_lock (&self->lock);
    char *page = self->page;
    size_t page_cap = self->page_cap;
    self->page = self->buf;
    self->page_cap = self->cap;
    self->page_len = self->len;
    self->buf = page;
    self->cap = page_cap;
    pthread_mutex_unlock (&self->lock);
}
