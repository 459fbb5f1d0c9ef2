/*  bench_util.h: what the bench drivers share (load.c, nats_load.c).

    Header-only on purpose: the Makefile turns every C file in bench/ into a
    program, so shared code cannot live in a .c of its own.

    Every figure a driver prints is measured inside one run and printed as
    one JSON line; bench/report.py turns the lines of many runs into ratios.

    Payload layout, the same for every system so that each carries the same
    bytes: [send time, ns, CLOCK_MONOTONIC][sequence][filler to size]. All
    senders and recipients of a run live in one process, so one monotonic
    clock times send to delivery without any clock skew.
*/
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_STAMP_SIZE    16          //  send time + sequence
#define BENCH_PAIRS_MAX     16
#define BENCH_RSS_SAMPLES   11          //  at 0%, 10%, ... 100% of the run
#define BENCH_SAMPLES_MAX   (4u << 20)  //  latency samples kept per run

typedef struct {
    //  Set from the command line
    const char *system;                 //  baseline, bulkhead, nats
    const char *mode;                   //  tput (closed loop) or lat (open loop)
    size_t size;                        //  payload bytes
    int pairs;
    uint64_t count;                     //  closed loop: messages to send
    double seconds;                     //  time bound of the measured phase
    double rate;                        //  open loop: offered msgs/s, all pairs
    uint32_t inflight;                  //  closed loop: unacked sends per sender
    int server_pid;                     //  0: no server figures
    //  Measured
    uint64_t sent;
    uint64_t acked;                     //  ACKs that said delivered (or queued)
    uint64_t delivered;                 //  measured DELIVERs seen by recipients
    uint64_t errors;                    //  refusals, failed sends, bad frames
    double elapsed;                     //  first send to last delivery, s
    uint64_t *samples;                  //  latency, ns, one per delivery
    uint64_t sample_count;
    uint64_t samples_max;
    double server_cpu;                  //  server CPU seconds during the phase
    double driver_cpu;                  //  this process's (agents') CPU seconds
    long rss_kb [BENCH_RSS_SAMPLES];    //  server VmRSS along the run
    long anon_kb [BENCH_RSS_SAMPLES];   //  its RssAnon: heap, not the mapped log
    int rss_count;
    long hwm_kb;                        //  server peak RSS at the end
} bench_run_t;

static inline uint64_t
bench_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

//  Sleeps until the monotonic time `when_ns` (returns at once if past).
static inline void
bench_sleep_until (uint64_t when_ns)
{
    struct timespec ts = { (time_t) (when_ns / 1000000000u), (long) (when_ns % 1000000000u) };
    while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

static inline void
bench_stamp (uint8_t *payload, uint64_t seq)
{
    uint64_t now = bench_now_ns ();
    memcpy (payload, &now, 8);
    memcpy (payload + 8, &seq, 8);
}

//  Latency of a received payload in ns, 0 when the payload is too short.
static inline uint64_t
bench_latency (const uint8_t *payload, size_t size)
{
    if (size < BENCH_STAMP_SIZE) {
        return 0;
    }
    uint64_t sent;
    memcpy (&sent, payload, 8);
    uint64_t now = bench_now_ns ();
    return now > sent? now - sent: 0;
}

//  CPU seconds (user + system) a process has used so far; -1 if gone.
static inline double
bench_proc_cpu (int pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
    FILE *file = fopen (path, "r");
    if (!file) {
        return -1;
    }
    char line [1024];
    double cpu = -1;
    if (fgets (line, sizeof line, file)) {
        //  The command name may hold spaces: count fields after its ')'.
        char *p = strrchr (line, ')');
        unsigned long utime = 0, stime = 0;
        if (p && sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                         &utime, &stime) == 2) {
            cpu = (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
        }
    }
    fclose (file);
    return cpu;
}

//  CPU seconds (user + system) this process has used so far.
static inline double
bench_self_cpu (void)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (double) usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6
         + (double) usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

//  A "VmRSS:" or "VmHWM:" figure of a process in kB; -1 if gone.
static inline long
bench_proc_kb (int pid, const char *field)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/status", pid);
    FILE *file = fopen (path, "r");
    if (!file) {
        return -1;
    }
    char line [256];
    long kb = -1;
    size_t len = strlen (field);
    while (fgets (line, sizeof line, file)) {
        if (strncmp (line, field, len) == 0) {
            kb = strtol (line + len, NULL, 10);
            break;
        }
    }
    fclose (file);
    return kb;
}

static inline void
bench_sample (bench_run_t *run, uint64_t latency_ns)
{
    if (run->sample_count < run->samples_max) {
        run->samples [run->sample_count++] = latency_ns;
    }
}

static inline void
bench_rss_sample (bench_run_t *run)
{
    if (run->server_pid && run->rss_count < BENCH_RSS_SAMPLES) {
        run->rss_kb [run->rss_count] = bench_proc_kb (run->server_pid, "VmRSS:");
        run->anon_kb [run->rss_count] = bench_proc_kb (run->server_pid, "RssAnon:");
        run->rss_count++;
    }
}

static int
s_u64_cmp (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y? -1: x > y;
}

//  Nearest-rank percentile of sorted samples, in microseconds.
static inline double
bench_percentile (const uint64_t *sorted, uint64_t count, double p)
{
    if (count == 0) {
        return 0;
    }
    uint64_t rank = (uint64_t) (p / 100.0 * (double) count + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > count) {
        rank = count;
    }
    return (double) sorted [rank - 1] / 1000.0;
}

//  Prints the run as one JSON line on stdout.
static inline void
bench_report (bench_run_t *run)
{
    qsort (run->samples, run->sample_count, sizeof run->samples [0], s_u64_cmp);
    const uint64_t *s = run->samples;
    uint64_t n = run->sample_count;
    double tput = run->elapsed > 0? (double) run->delivered / run->elapsed: 0;
    printf ("{\"system\":\"%s\",\"mode\":\"%s\",\"size\":%zu,\"pairs\":%d,\"rate\":%.0f,"
            "\"count\":%llu,\"sent\":%llu,\"acked\":%llu,\"delivered\":%llu,\"errors\":%llu,"
            "\"seconds\":%.4f,\"tput\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
            "\"max_us\":%.1f,\"samples\":%llu",
            run->system, run->mode, run->size, run->pairs, run->rate,
            (unsigned long long) run->count, (unsigned long long) run->sent,
            (unsigned long long) run->acked, (unsigned long long) run->delivered,
            (unsigned long long) run->errors, run->elapsed, tput,
            bench_percentile (s, n, 50), bench_percentile (s, n, 99),
            bench_percentile (s, n, 99.9), n? (double) s [n - 1] / 1000.0: 0,
            (unsigned long long) n);
    if (run->delivered) {
        printf (",\"driver_cpu_s_per_M\":%.2f", run->driver_cpu * 1e6 / (double) run->delivered);
    }
    if (run->server_pid) {
        double per_million = run->delivered? run->server_cpu * 1e6 / (double) run->delivered: 0;
        printf (",\"server_cpu_s\":%.3f,\"cpu_s_per_M\":%.2f,\"hwm_kb\":%ld,\"rss_kb\":[",
                run->server_cpu, per_million, run->hwm_kb);
        for (int i = 0; i < run->rss_count; i++) {
            printf ("%s%ld", i? ",": "", run->rss_kb [i]);
        }
        printf ("],\"anon_kb\":[");
        for (int i = 0; i < run->rss_count; i++) {
            printf ("%s%ld", i? ",": "", run->anon_kb [i]);
        }
        printf ("]");
    }
    printf ("}\n");
    fflush (stdout);
}

static inline void
bench_usage_exit (const char *prog, const char *extra)
{
    fprintf (stderr,
        "usage: %s --system NAME --mode tput|lat --size BYTES --pairs N\n"
        "          [--count N] [--seconds S] [--rate MSGS_PER_S] [--inflight N]\n"
        "          [--server-pid PID] %s\n"
        "  tput: closed loop, COUNT messages or SECONDS, whichever first, at most\n"
        "        INFLIGHT unacknowledged sends per sender\n"
        "  lat:  open loop at RATE msgs/s over all pairs for SECONDS\n", prog, extra);
    exit (2);
}

//  Parses the options every driver shares; returns true if argv [*i] was one.
static inline bool
bench_option (bench_run_t *run, int argc, char **argv, int *i)
{
    const char *name = argv [*i];
    if (*i + 1 >= argc) {
        return false;
    }
    const char *value = argv [*i + 1];
    if (strcmp (name, "--system") == 0) {
        run->system = value;
    }
    else
    if (strcmp (name, "--mode") == 0) {
        run->mode = value;
    }
    else
    if (strcmp (name, "--size") == 0) {
        run->size = strtoul (value, NULL, 10);
    }
    else
    if (strcmp (name, "--pairs") == 0) {
        run->pairs = atoi (value);
    }
    else
    if (strcmp (name, "--count") == 0) {
        run->count = strtoull (value, NULL, 10);
    }
    else
    if (strcmp (name, "--seconds") == 0) {
        run->seconds = atof (value);
    }
    else
    if (strcmp (name, "--rate") == 0) {
        run->rate = atof (value);
    }
    else
    if (strcmp (name, "--inflight") == 0) {
        run->inflight = (uint32_t) strtoul (value, NULL, 10);
    }
    else
    if (strcmp (name, "--server-pid") == 0) {
        run->server_pid = atoi (value);
    }
    else {
        return false;
    }
    (*i)++;
    return true;
}

//  Checks the shared options and fills defaults; false if they cannot work.
static inline bool
bench_options_valid (bench_run_t *run)
{
    if (!run->system || !run->mode || run->pairs < 1 || run->pairs > BENCH_PAIRS_MAX
    ||  run->size < BENCH_STAMP_SIZE || run->size > 65000) {
        return false;
    }
    if (run->seconds <= 0 || run->seconds > 600) {
        run->seconds = 20;
    }
    if (!run->inflight) {
        run->inflight = 1000;
    }
    bool tput = strcmp (run->mode, "tput") == 0;
    bool lat = strcmp (run->mode, "lat") == 0;
    if (tput && (run->count == 0 || run->count > 100000000)) {
        return false;
    }
    if (lat) {
        if (run->rate <= 0 || run->rate > 1e6) {
            return false;
        }
        run->count = (uint64_t) (run->rate * run->seconds);
    }
    if (!tput && !lat) {
        return false;
    }
    uint64_t keep = run->count < BENCH_SAMPLES_MAX? run->count: BENCH_SAMPLES_MAX;
    run->samples = calloc (keep + 1, sizeof run->samples [0]);
    run->samples_max = keep;
    return run->samples != NULL;
}

#endif
