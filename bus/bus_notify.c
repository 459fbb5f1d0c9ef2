/*  bus_notify.c: the notification hook, see bus_notify.h. */
#include "bus_notify.h"
#include "bus_print.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct bus_notify {
    char *command;
    int64_t interval_ms;
    char *lines [BUS_NOTIFY_QUEUE_MAX];     //  queued objects, one JSON line each
    size_t count;
    uint64_t dropped;                       //  past the queue, since the last batch
    pid_t child;                            //  the run going, or 0
    int64_t started_ms;                     //  when the last run started
};

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *
bus_json_text (const void *data, size_t size, int flags, size_t max, size_t *not_shown)
{
    bus_print_how_t how = { flags, max, NULL };
    size_t need = bus_print_buf (NULL, 0, &how, data, size, NULL);
    char *buf = malloc (need + 1);
    if (!buf) {
        return NULL;
    }
    bus_print_buf (buf, need + 1, &how, data, size, not_shown);
    //  bus_print's text mode writes valid UTF-8 only: jansson takes it.
    json_t *text = json_string (buf);
    free (buf);
    return text;
}

json_t *
bus_json_str (const char *text)
{
    return text? bus_json_text (text, strlen (text), BUS_PRINT_LINE, 0, NULL): json_null ();
}

bus_notify_t *
bus_notify_new (const char *command, unsigned interval_s)
{
    bus_notify_t *self = calloc (1, sizeof *self);
    if (!self || !(self->command = strdup (command))) {
        free (self);
        return NULL;
    }
    self->interval_ms = (int64_t) interval_s * 1000;
    self->started_ms = s_now_ms () - self->interval_ms;
    return self;
}

static void
s_reap (bus_notify_t *self, bool wait)
{
    if (!self->child) {
        return;
    }
    int status;
    pid_t done = waitpid (self->child, &status, wait? 0: WNOHANG);
    if (done == self->child) {
        if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
            fprintf (stderr, "bulkhead: notify command failed (%s %d)\n",
                     WIFEXITED (status)? "exit": "signal",
                     WIFEXITED (status)? WEXITSTATUS (status): WTERMSIG (status));
        }
        self->child = 0;
    }
    else
    if (s_now_ms () - self->started_ms > BUS_NOTIFY_RUN_MAX_S * 1000) {
        fprintf (stderr, "bulkhead: notify command still running after %d s: killed\n",
                 BUS_NOTIFY_RUN_MAX_S);
        kill (self->child, SIGKILL);
        waitpid (self->child, &status, 0);
        self->child = 0;
    }
}

static void s_run (bus_notify_t *self);

//  Waits up to a second for the run going to end.
static void
s_wait_child (bus_notify_t *self)
{
    for (int i = 0; i < 10 && self->child; i++) {
        s_reap (self, false);
        if (self->child) {
            usleep (100 * 1000);
        }
    }
}

void
bus_notify_destroy (bus_notify_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    bus_notify_t *self = *self_p;
    //  What is queued still goes out, whatever the interval: nothing told
    //  is lost at exit.
    s_wait_child (self);
    if (!self->child && (self->count || self->dropped)) {
        s_run (self);
    }
    s_wait_child (self);
    if (self->child) {
        kill (self->child, SIGKILL);
        s_reap (self, true);
    }
    for (size_t i = 0; i < self->count; i++) {
        free (self->lines [i]);
    }
    free (self->command);
    free (self);
    *self_p = NULL;
}

static void
s_queue (bus_notify_t *self, json_t *object)
{
    char *line = object? json_dumps (object, JSON_COMPACT): NULL;
    json_decref (object);
    if (!line || self->count == BUS_NOTIFY_QUEUE_MAX) {
        free (line);
        self->dropped++;
        return;
    }
    self->lines [self->count++] = line;
}

void
bus_notify_pending (bus_notify_t *self, const Bulkhead__V1__Pending *p)
{
    json_t *votes = json_array ();
    for (size_t i = 0; votes && i < p->n_votes; i++) {
        json_array_append_new (votes, bus_json_str (p->votes [i]));
    }
    json_t *o = json_pack ("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:I, s:I, s:I, s:o}",
                           "event", "pending",
                           "approval_id", bus_json_str (p->approval_id),
                           "sender", bus_json_str (p->sender),
                           "recipient", bus_json_str (p->recipient),
                           "class", bus_json_str (p->intent_class),
                           "action", bus_json_str (p->action),
                           "resource", bus_json_str (p->resource),
                           "justification", bus_json_str (p->justification),
                           "restricted", p->has_restricted && p->restricted,
                           "votes", votes? votes: json_array (),
                           "quorum", (json_int_t) p->quorum,
                           "expires_us", (json_int_t) p->expires_us,
                           "seq", (json_int_t) p->seq,
                           "blocked", bus_json_str (p->blocked));
    s_queue (self, o);
}

//  Starts CMD with the queued batch as its standard input: a file of its
//  own, written first, so a CMD that does not read cannot stall us.
static void
s_run (bus_notify_t *self)
{
    FILE *batch = tmpfile ();
    if (!batch) {
        fprintf (stderr, "bulkhead: notify: cannot make the batch file: %s\n", strerror (errno));
        return;
    }
    for (size_t i = 0; i < self->count; i++) {
        fprintf (batch, "%s\n", self->lines [i]);
        free (self->lines [i]);
    }
    if (self->dropped) {
        fprintf (batch, "{\"event\":\"dropped\",\"count\":%llu}\n", (unsigned long long) self->dropped);
    }
    self->count = 0;
    self->dropped = 0;
    fflush (batch);
    rewind (batch);
    self->started_ms = s_now_ms ();
    pid_t pid = fork ();
    if (pid == 0) {
        //  Only async-signal-safe calls: the console has threads.
        dup2 (fileno (batch), 0);
        close_range (3, ~0U, 0);
        execl ("/bin/sh", "sh", "-c", self->command, (char *) NULL);
        _exit (127);
    }
    if (pid < 0) {
        fprintf (stderr, "bulkhead: notify: cannot start the command: %s\n", strerror (errno));
    }
    else {
        self->child = pid;
    }
    fclose (batch);
}

void
bus_notify_tick (bus_notify_t *self)
{
    s_reap (self, false);
    if (!self->child && (self->count || self->dropped)
    &&  s_now_ms () - self->started_ms >= self->interval_ms) {
        s_run (self);
    }
}

int
bus_notify_wait_ms (bus_notify_t *self)
{
    if (self->child) {
        return 100;                 //  reap it soon
    }
    if (!self->count && !self->dropped) {
        return -1;
    }
    int64_t due = self->started_ms + self->interval_ms - s_now_ms ();
    return due < 0? 0: (int) due;
}
