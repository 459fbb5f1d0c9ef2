/*  harness.c: see harness.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"
#include "bus_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static const char *
s_bin (void)
{
    const char *bin = getenv ("BULKHEAD_BIN");
    return bin? bin: "build/asan/bulkhead";
}

void
harness_init (harness_t *h)
{
    memset (h, 0, sizeof *h);
    snprintf (h->dir, sizeof h->dir, "/tmp/bulkhead-test-XXXXXX");
    if (!mkdtemp (h->dir)) {
        perror ("mkdtemp");
        abort ();
    }
    snprintf (h->policy, sizeof h->policy, "%s/policy.cfg", h->dir);
    snprintf (h->data, sizeof h->data, "%s/data", h->dir);
    snprintf (h->endpoint, sizeof h->endpoint, "ipc://%s/bus.sock", h->dir);
    snprintf (h->bus_pub, sizeof h->bus_pub, "%s/data/bus.pub", h->dir);
    snprintf (h->log, sizeof h->log, "%s/bus.log", h->dir);
    h->pid = -1;
}

static int
s_agent_key (harness_t *h, const char *name, char public_z85 [41])
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s.key", h->dir, name);
    bus_keypair_t pair;
    bus_error_t err;
    if (access (path, F_OK) == 0) {
        if (bus_keys_load (&pair, path, &err) != 0) {
            return -1;
        }
    }
    else {
        char pub [512];
        snprintf (pub, sizeof pub, "%s/%s.pub", h->dir, name);
        if (bus_keys_generate (&pair, name, &err) != 0 || bus_keys_save (&pair, path, pub, &err) != 0) {
            fprintf (stderr, "harness: key for %s: %s\n", name, err.text);
            return -1;
        }
    }
    memcpy (public_z85, pair.public_z85, 41);
    return 0;
}

int
harness_policy (harness_t *h, const char *text)
{
    char tmp [512];
    snprintf (tmp, sizeof tmp, "%s.tmp", h->policy);
    FILE *file = fopen (tmp, "w");
    if (!file) {
        return -1;
    }
    for (const char *p = text; *p; p++) {
        const char *end = *p == '@'? strchr (p + 1, '@'): NULL;
        if (end && end - p - 1 > 0 && end - p - 1 <= 64) {
            char name [65];
            memcpy (name, p + 1, (size_t) (end - p - 1));
            name [end - p - 1] = 0;
            char key [41];
            if (s_agent_key (h, name, key) != 0) {
                fclose (file);
                return -1;
            }
            fprintf (file, "\"%s\"", key);
            p = end;
        }
        else {
            fputc (*p, file);
        }
    }
    fclose (file);
    //  Atomic replace, as an operator's editor would do before SIGHUP.
    return rename (tmp, h->policy);
}

int
harness_start (harness_t *h)
{
    int ready [2];
    if (pipe (ready) != 0) {
        return -1;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        close (ready [0]);
        int log = open (h->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log >= 0) {
            dup2 (log, 2);
            close (log);
        }
        char fd [16];
        snprintf (fd, sizeof fd, "%d", ready [1]);
        const char *argv [24] = { s_bin (), "serve", "--policy", h->policy, "--data", h->data,
                                  "--endpoint", h->listen [0]? h->listen: h->endpoint,
                                  "--ready-fd", fd };
        int argc = 10;
        for (int i = 0; i < 8 && h->extra [i]; i++) {
            argv [argc++] = h->extra [i];
        }
        argv [argc] = NULL;
        execv (argv [0], (char **) argv);
        perror ("exec bulkhead");
        _exit (127);
    }
    close (ready [1]);
    h->pid = pid;
    struct pollfd item = { ready [0], POLLIN, 0 };
    char line [400] = "";
    int rc = poll (&item, 1, 10000);
    ssize_t n = rc > 0? read (ready [0], line, sizeof line - 1): -1;
    close (ready [0]);
    if (n <= 0 || strncmp (line, "ready ", 6) != 0) {
        fprintf (stderr, "harness: bus did not start (see %s)\n", h->log);
        harness_stop (h, SIGKILL);
        return -1;
    }
    //  The bus says where it listens (tcp://127.0.0.1:* picks a port).
    line [strcspn (line, "\n")] = 0;
    snprintf (h->endpoint, sizeof h->endpoint, "%s", line + 6);
    return 0;
}

int
harness_stop (harness_t *h, int sig)
{
    if (h->pid <= 0) {
        return -1;
    }
    kill (h->pid, sig);
    int status = -1;
    //  Bounded: a bus that does not stop within 10 s is killed.
    for (int i = 0; i < 1000; i++) {
        pid_t done = waitpid (h->pid, &status, WNOHANG);
        if (done == h->pid) {
            h->pid = -1;
            return status;
        }
        struct timespec tick = { 0, 10 * 1000 * 1000 };
        nanosleep (&tick, NULL);
    }
    kill (h->pid, SIGKILL);
    waitpid (h->pid, &status, 0);
    h->pid = -1;
    return status;
}

bus_client_t *
harness_connect_at (harness_t *h, const char *agent, uint64_t last_seq, bus_error_t *err)
{
    char key [512];
    snprintf (key, sizeof key, "%s/%s.key", h->dir, agent);
    bus_client_options_t options = {
        .endpoint = h->endpoint,
        .bus_key = h->bus_pub,
        .key_file = key,
        .last_seq = last_seq,
        .timeout_ms = 5000,
    };
    bus_client_t *client = NULL;
    if (bus_client_connect (&client, &options, err) != 0) {
        return NULL;
    }
    return client;
}

bus_client_t *
harness_connect (harness_t *h, const char *agent, bus_error_t *err)
{
    return harness_connect_at (h, agent, 0, err);
}

Bulkhead__V1__Frame *
harness_send (bus_client_t *client, const char *to, const char *intent,
              const char *payload, const char *id)
{
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = (char *) to;
    send.intent = (char *) intent;
    send.message_id = (char *) id;
    if (payload) {
        send.has_payload = true;
        send.payload.data = (uint8_t *) payload;
        send.payload.len = strlen (payload);
    }
    Bulkhead__V1__Frame *reply = NULL;
    bus_error_t err;
    if (bus_client_send (client, &send, &reply, 5000, &err) != 0) {
        fprintf (stderr, "harness_send: %s\n", err.text);
        return NULL;
    }
    return reply;
}

Bulkhead__V1__Frame *
harness_deliver (bus_client_t *client, int timeout_ms)
{
    struct timespec start, now;
    clock_gettime (CLOCK_MONOTONIC, &start);
    while (true) {
        clock_gettime (CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (spent >= timeout_ms) {
            return NULL;
        }
        Bulkhead__V1__Frame *frame;
        bus_error_t err;
        if (bus_client_recv (client, &frame, (int) (timeout_ms - spent), &err) != 0) {
            return NULL;
        }
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_DELIVER) {
            return frame;
        }
        bus_client_free (&frame);
    }
}

int
harness_run (harness_t *h, char **out, const char *arg, ...)
{
    const char *argv [32] = { s_bin () };
    int argc = 1;
    va_list args;
    va_start (args, arg);
    for (const char *a = arg; a && argc < 31; a = va_arg (args, const char *)) {
        argv [argc++] = a;
    }
    va_end (args);
    argv [argc] = NULL;
    char path [512];
    snprintf (path, sizeof path, "%s/run.out", h->dir);
    pid_t pid = fork ();
    if (pid == 0) {
        int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2 (fd, 1);
        dup2 (fd, 2);
        close (fd);
        execv (argv [0], (char **) argv);
        _exit (127);
    }
    int status = -1;
    waitpid (pid, &status, 0);
    if (out) {
        FILE *file = fopen (path, "r");
        *out = calloc (1, 1 << 20);
        if (file && *out) {
            size_t n = fread (*out, 1, (1 << 20) - 1, file);
            (*out) [n] = 0;
        }
        if (file) {
            fclose (file);
        }
    }
    return WIFEXITED (status)? WEXITSTATUS (status): -1;
}

int
harness_cleanup (harness_t *h)
{
    if (h->pid > 0) {
        harness_stop (h, SIGTERM);
    }
    //  The bus runs sanitized too: a report in its log fails the test.
    int rc = 0;
    FILE *log = fopen (h->log, "r");
    char line [512];
    while (log && fgets (line, sizeof line, log)) {
        if (strstr (line, "Sanitizer") || strstr (line, "runtime error:")) {
            fprintf (stderr, "harness: the bus reported: %s(see %s)\n", line, h->log);
            rc = -1;
            break;
        }
    }
    if (log) {
        fclose (log);
    }
    if (getenv ("HARNESS_KEEP") || rc != 0) {
        fprintf (stderr, "harness: kept %s\n", h->dir);
        return rc;
    }
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", h->dir);
    if (system (command) != 0) {
        fprintf (stderr, "harness: could not remove %s\n", h->dir);
    }
    return rc;
}

const char *
harness_code (const Bulkhead__V1__Frame *frame)
{
    static const char *verdicts [] = { "?", "delivered", "queued", "held", "denied" };
    if (!frame) {
        return "none";
    }
    if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
        return frame->ack->verdict < 5? verdicts [frame->ack->verdict]: "?";
    }
    if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
        return frame->error->code;
    }
    return "other";
}

void *
harness_raw (harness_t *h, void *ctx, const char *agent, const char *rid)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s.key", h->dir, agent);
    bus_keypair_t pair;
    bus_keypair_t bus;
    bus_error_t err;
    if (bus_keys_load (&pair, path, &err) != 0 || bus_keys_load (&bus, h->bus_pub, &err) != 0) {
        fail_msg ("raw %s: %s", agent, err.text);
    }
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    if (rid) {
        zmq_setsockopt (dealer, ZMQ_ROUTING_ID, rid, strlen (rid));
    }
    zmq_setsockopt (dealer, ZMQ_CURVE_SERVERKEY, bus.public_z85, 40);
    zmq_setsockopt (dealer, ZMQ_CURVE_PUBLICKEY, pair.public_z85, 40);
    zmq_setsockopt (dealer, ZMQ_CURVE_SECRETKEY, pair.secret_z85, 40);
    if (zmq_connect (dealer, h->endpoint) != 0) {
        fail_msg ("raw %s: connect: %s", agent, zmq_strerror (zmq_errno ()));
    }
    return dealer;
}

int
harness_raw_send (void *dealer, const Bulkhead__V1__Frame *frame)
{
    size_t size = bulkhead__v1__frame__get_packed_size (frame);
    uint8_t *data = malloc (size? size: 1);
    if (!data) {
        return -1;
    }
    bulkhead__v1__frame__pack (frame, data);
    int rc = zmq_send (dealer, data, size, 0) == (int) size? 0: -1;
    free (data);
    return rc;
}

int
harness_raw_hello (void *dealer)
{
    Bulkhead__V1__Hello hello = BULKHEAD__V1__HELLO__INIT;
    hello.version = 1;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_HELLO;
    frame.hello = &hello;
    return harness_raw_send (dealer, &frame);
}

Bulkhead__V1__Frame *
harness_raw_recv (void *dealer, int timeout_ms)
{
    zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0) {
        return NULL;
    }
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    zmq_msg_recv (&msg, dealer, 0);
    Bulkhead__V1__Frame *frame = bulkhead__v1__frame__unpack (NULL, zmq_msg_size (&msg),
                                                              zmq_msg_data (&msg));
    zmq_msg_close (&msg);
    return frame;
}

int
harness_fixture (void **state, const char *policy)
{
    harness_t *h = calloc (1, sizeof *h);
    if (!h) {
        return -1;
    }
    harness_init (h);
    if (harness_policy (h, policy) != 0 || harness_start (h) != 0) {
        harness_cleanup (h);
        free (h);
        return -1;
    }
    *state = h;
    return 0;
}

int
harness_fixture_end (void **state)
{
    harness_t *h = *state;
    int rc = harness_cleanup (h);
    free (h);
    return rc;
}

bus_client_t *
harness_agent (harness_t *h, const char *agent)
{
    bus_error_t err;
    bus_client_t *client = harness_connect (h, agent, &err);
    if (!client) {
        fail_msg ("connect %s: %s: %s", agent, bus_errname (err.code), err.text);
    }
    return client;
}

Bulkhead__V1__Frame *
harness_reload (bus_client_t *operator_client)
{
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_RELOAD;
    Bulkhead__V1__Frame *reply = NULL;
    bus_error_t err;
    assert_int_equal (bus_client_control (operator_client, &control, &reply, 5000, &err), 0);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY);
    return reply;
}

void
harness_verify (harness_t *h)
{
    char *out = NULL;
    int rc = harness_run (h, &out, "verify", "--data", h->data, NULL);
    if (rc != 0) {
        fail_msg ("bulkhead verify: exit %d: %s", rc, out? out: "");
    }
    free (out);
}
