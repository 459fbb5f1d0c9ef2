/*  test_secmem.c: bus_secmem's slots (zeroed when freed, reused, a double
    free an abort, large ones passed to libsodium, two threads at once),
    and that a real CURVE handshake over loopback takes its buffers from
    them and gives every one back.
*/
#include "check.h"

#include "bus_secmem.h"

#include <pthread.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

static void
test_slots_zeroed_and_reused (void **state)
{
    (void) state;
    bus_secmem_stats_t before, after;
    bus_secmem_stats (&before);
    uint8_t *a = sodium_allocarray (227, 1);
    assert_non_null (a);
    assert_true (bus_secmem_owns (a));
    memset (a, 0xa5, 227);
    sodium_free (a);
    //  The slot freed last comes back first, and holds nothing of before.
    uint8_t *b = sodium_allocarray (BUS_SECMEM_SLOT, 1);
    assert_ptr_equal (a, b);
    for (size_t i = 0; i < BUS_SECMEM_SLOT; i++) {
        assert_int_equal (b [i], 0);
    }
    uint8_t *c = sodium_allocarray (12, 8);
    assert_true (bus_secmem_owns (c));
    assert_ptr_not_equal (b, c);
    sodium_free (c);
    sodium_free (b);
    sodium_free (NULL);
    bus_secmem_stats (&after);
    assert_int_equal (after.in_use, before.in_use);
    assert_int_equal (after.served, before.served + 3);
}

static void
test_large_and_overflow (void **state)
{
    (void) state;
    //  Larger than a slot: libsodium's guarded allocation, freed there.
    uint8_t *big = sodium_allocarray (BUS_SECMEM_SLOT + 1, 1);
    assert_non_null (big);
    assert_false (bus_secmem_owns (big));
    memset (big, 1, BUS_SECMEM_SLOT + 1);
    sodium_free (big);
    errno = 0;
    assert_null (sodium_allocarray (SIZE_MAX / 2, 4));
    assert_int_equal (errno, ENOMEM);
}

//  f (ptr) must abort the process: run in a child.
static void
s_expect_abort (void (*f) (void *), void *ptr)
{
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        freopen ("/dev/null", "w", stderr);
        f (ptr);
        _exit (0);
    }
    int status;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    assert_true (WIFSIGNALED (status));
    assert_int_equal (WTERMSIG (status), SIGABRT);
}

static void
s_free_twice (void *ptr)
{
    sodium_free (ptr);
    sodium_free (ptr);
}

static void
test_bad_free_aborts (void **state)
{
    (void) state;
    uint8_t *a = sodium_allocarray (64, 1);
    assert_true (bus_secmem_owns (a));
    s_expect_abort (s_free_twice, a);
    s_expect_abort (sodium_free, a + 8);            //  inside a slot
    sodium_free (a);
}

//  Each thread marks its slots with its number and checks the mark is
//  still there when it frees them: a slot handed out twice is overwritten.
static void *
s_churn (void *arg)
{
    uint8_t mark = (uint8_t) (uintptr_t) arg;
    uint8_t *held [32] = { NULL };
    for (unsigned i = 0; i < 100000; i++) {
        unsigned k = (i * 2654435761u) % 32;
        if (held [k]) {
            for (size_t j = 0; j < 96; j++) {
                if (held [k][j] != mark) {
                    return (void *) 1;
                }
            }
            sodium_free (held [k]);
        }
        held [k] = sodium_allocarray (96, 1);
        if (!held [k]) {
            return (void *) 1;
        }
        memset (held [k], mark, 96);
    }
    for (size_t k = 0; k < 32; k++) {
        sodium_free (held [k]);
    }
    return NULL;
}

static void
test_two_threads (void **state)
{
    (void) state;
    bus_secmem_stats_t before, after;
    bus_secmem_stats (&before);
    pthread_t threads [2];
    for (uintptr_t t = 0; t < 2; t++) {
        assert_int_equal (pthread_create (&threads [t], NULL, s_churn, (void *) (t + 1)), 0);
    }
    for (int t = 0; t < 2; t++) {
        void *rc;
        assert_int_equal (pthread_join (threads [t], &rc), 0);
        assert_null (rc);
    }
    bus_secmem_stats (&after);
    assert_int_equal (after.in_use, before.in_use);
    //  Reused, not grown: at most 64 held at once.
    assert_true (after.slots - before.slots <= 64);
}

static void
test_curve_handshake_uses_slots (void **state)
{
    (void) state;
    char server_pub [41], server_sec [41], client_pub [41], client_sec [41];
    assert_int_equal (zmq_curve_keypair (server_pub, server_sec), 0);
    assert_int_equal (zmq_curve_keypair (client_pub, client_sec), 0);
    bus_secmem_stats_t before, after;
    bus_secmem_stats (&before);

    void *ctx = zmq_ctx_new ();
    void *server = zmq_socket (ctx, ZMQ_ROUTER);
    int one = 1, timeout = 5000, linger = 0;
    assert_int_equal (zmq_setsockopt (server, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    assert_int_equal (zmq_setsockopt (server, ZMQ_CURVE_SECRETKEY, server_sec, 40), 0);
    assert_int_equal (zmq_setsockopt (server, ZMQ_RCVTIMEO, &timeout, sizeof timeout), 0);
    assert_int_equal (zmq_setsockopt (server, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal (zmq_bind (server, "tcp://127.0.0.1:*"), 0);
    char endpoint [256];
    size_t size = sizeof endpoint;
    assert_int_equal (zmq_getsockopt (server, ZMQ_LAST_ENDPOINT, endpoint, &size), 0);

    void *client = zmq_socket (ctx, ZMQ_DEALER);
    assert_int_equal (zmq_setsockopt (client, ZMQ_CURVE_SERVERKEY, server_pub, 40), 0);
    assert_int_equal (zmq_setsockopt (client, ZMQ_CURVE_PUBLICKEY, client_pub, 40), 0);
    assert_int_equal (zmq_setsockopt (client, ZMQ_CURVE_SECRETKEY, client_sec, 40), 0);
    assert_int_equal (zmq_setsockopt (client, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal (zmq_connect (client, endpoint), 0);
    assert_int_equal (zmq_send (client, "hi", 2, 0), 2);
    char rid [256], body [16];
    assert_true (zmq_recv (server, rid, sizeof rid, 0) > 0);
    assert_int_equal (zmq_recv (server, body, sizeof body, 0), 2);
    assert_memory_equal (body, "hi", 2);
    zmq_close (client);
    zmq_close (server);
    zmq_ctx_term (ctx);

    //  Both ends' handshakes (five buffers a side in libzmq 4.3), all freed.
    bus_secmem_stats (&after);
    assert_true (after.served - before.served >= 8);
    assert_int_equal (after.in_use, before.in_use);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_slots_zeroed_and_reused),
        cmocka_unit_test (test_large_and_overflow),
        cmocka_unit_test (test_bad_free_aborts),
        cmocka_unit_test (test_two_threads),
        cmocka_unit_test (test_curve_handshake_uses_slots),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
