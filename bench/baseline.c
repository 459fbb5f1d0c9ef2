/*  baseline.c: the least a CURVE broker hop can cost, for `make bench`.

    One ROUTER, CURVE server, one thread: it reads a frame, forwards it
    whole (zero copy) to the peer whose routing id is the recipient name in
    the frame, and answers the sender with a one-byte ACK. No decode, no
    policy, no log. This is the transport's limit, the figure the bus is
    divided by; it is written to be exactly as secure on the wire as the bus
    (CURVE, same socket options) and to do nothing else.

    Frame from a client: [name length: 1 byte][recipient name][payload].
    A name length of 0 is a HELLO: the frame is echoed back, so a client
    knows its connection is up before a run starts.
    ACK to the sender: 1 byte, 1 = forwarded, 0 = recipient not connected.

    There is no ZAP handler: any client key passes the handshake. The bus
    checks a key once per connection, not per message, so leaving it out
    does not change the per-message cost this measures.

        baseline --endpoint tcp://127.0.0.1:* [--ready-fd N]

    Prints "ready ENDPOINT SERVER_PUBLIC_KEY" to the ready fd once bound,
    stops on SIGINT or SIGTERM.
*/
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#define BASELINE_BATCH  1024        //  frames read per wake-up, as the bus
#define BASELINE_HWM    10000       //  as the bus's ROUTER

//  Forwards one frame and ACKs it. Returns 0 if a frame was handled, -1 if
//  none was waiting.
static int
s_forward (void *router)
{
    zmq_msg_t rid, body;
    zmq_msg_init (&rid);
    if (zmq_msg_recv (&rid, router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&rid);
        return -1;
    }
    zmq_msg_init (&body);
    if (zmq_msg_recv (&body, router, ZMQ_DONTWAIT) < 0 || zmq_msg_more (&body)) {
        //  Not our framing; the bench never sends this.
        zmq_msg_close (&body);
        zmq_msg_close (&rid);
        return 0;
    }
    const uint8_t *data = zmq_msg_data (&body);
    size_t size = zmq_msg_size (&body);
    uint8_t ack = 0;
    if (size > 0 && data [0] == 0) {
        //  HELLO: echo it
        if (zmq_msg_send (&rid, router, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
            zmq_msg_send (&body, router, ZMQ_DONTWAIT);
        }
        zmq_msg_close (&body);
        zmq_msg_close (&rid);
        return 0;
    }
    if (size > 0 && (size_t) data [0] + 1 <= size) {
        //  ROUTER_MANDATORY refuses the first part if the peer is unknown
        //  (or at its high-water mark), so the body is only sent after it.
        if (zmq_send (router, data + 1, data [0], ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
        &&  zmq_msg_send (&body, router, ZMQ_DONTWAIT) >= 0) {
            ack = 1;
        }
    }
    zmq_msg_close (&body);
    if (zmq_msg_send (&rid, router, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
        zmq_send (router, &ack, 1, ZMQ_DONTWAIT);
    }
    zmq_msg_close (&rid);
    return 0;
}

int
main (int argc, char **argv)
{
    const char *endpoint = "tcp://127.0.0.1:*";
    int ready_fd = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--endpoint") == 0 && i + 1 < argc) {
            endpoint = argv [++i];
        }
        else
        if (strcmp (argv [i], "--ready-fd") == 0 && i + 1 < argc) {
            ready_fd = atoi (argv [++i]);
        }
        else {
            fprintf (stderr, "usage: baseline [--endpoint EP] [--ready-fd N]\n");
            return 2;
        }
    }
    //  Signals arrive on a descriptor; block them before libzmq starts its
    //  I/O thread so that it inherits the mask.
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    sigprocmask (SIG_BLOCK, &mask, NULL);
    int sigfd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    char public_key [41], secret_key [41];
    if (sigfd < 0 || zmq_curve_keypair (public_key, secret_key) != 0) {
        fprintf (stderr, "baseline: no signalfd or no CURVE in this libzmq\n");
        return 1;
    }
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    int one = 1;
    int hwm = BASELINE_HWM;
    int linger = 0;
    if (zmq_setsockopt (router, ZMQ_CURVE_SERVER, &one, sizeof one)
    ||  zmq_setsockopt (router, ZMQ_CURVE_SECRETKEY, secret_key, 40)
    ||  zmq_setsockopt (router, ZMQ_ROUTER_MANDATORY, &one, sizeof one)
    ||  zmq_setsockopt (router, ZMQ_SNDHWM, &hwm, sizeof hwm)
    ||  zmq_setsockopt (router, ZMQ_RCVHWM, &hwm, sizeof hwm)
    ||  zmq_setsockopt (router, ZMQ_LINGER, &linger, sizeof linger)
    ||  zmq_bind (router, endpoint) != 0) {
        fprintf (stderr, "baseline: cannot listen on %s: %s\n", endpoint, zmq_strerror (zmq_errno ()));
        return 1;
    }
    char bound [256];
    size_t len = sizeof bound;
    zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, bound, &len);
    if (ready_fd >= 0) {
        dprintf (ready_fd, "ready %s %s\n", bound, public_key);
        close (ready_fd);
    }
    bool stop = false;
    while (!stop) {
        zmq_pollitem_t items [] = {
            { router, 0, ZMQ_POLLIN, 0 },
            { NULL, sigfd, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 2, 1000) < 0 && zmq_errno () != EINTR) {
            break;
        }
        if (items [1].revents & ZMQ_POLLIN) {
            stop = true;
        }
        for (int n = 0; n < BASELINE_BATCH; n++) {
            if (s_forward (router) != 0) {
                break;
            }
        }
    }
    zmq_close (router);
    zmq_ctx_term (ctx);
    close (sigfd);
    return 0;
}
