/*  bus_router.c: the ROUTER socket and our ZAP handler, see bus_router.h. */
#include "bus_router.h"

#include <string.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#   define ZMQ_ZAP_ENFORCE_DOMAIN 93   //  draft in 4.3.4's header, honoured by the library
#endif

static uint64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int
bus_router_secure (void *socket, const char *secret_z85, int heartbeat_ms, bus_error_t *err)
{
    //  No ZMQ heartbeats, whatever heartbeat_ms says (see bus_router.h): a
    //  libzmq 4.3.4 I/O thread cancels timers with a walk of all of them, so
    //  a heartbeat per connection made the bus quadratic in connections. The
    //  kernel finds a dead tcp peer instead, for no CPU of the bus's: 30 s
    //  without a packet, then a probe every 10 s, dropped after 3 unanswered
    //  (60 s); TCP_USER_TIMEOUT (ZMQ_TCP_MAXRT) drops a peer that leaves sent
    //  data unacknowledged for 60 s, where keepalive does not probe (else
    //  retransmits go on for about 15 minutes). An ipc peer's close is seen
    //  at once by the kernel.
    (void) heartbeat_ms;
    int one = 1;
    int zero = 0;
    int64_t max = BUS_HARD_FRAME_MAX;
    int handshake = 5000;
    int keepalive_idle = 30;
    int keepalive_intvl = 10;
    int keepalive_cnt = 3;
    int user_timeout_ms = 60000;
    //  A reconnect storm (a bus restart with thousands of agents) fits in
    //  the accept queue (the kernel caps it at net.core.somaxconn) instead
    //  of its SYNs being dropped and retried at 1, 3, 7, 15 s...
    int backlog = 4096;
    int hwm = 10000;
    int linger = 500;
    if (zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &one, sizeof one)
    ||  zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, secret_z85, BUS_KEY_Z85_LEN)
    ||  zmq_setsockopt (socket, ZMQ_ZAP_DOMAIN, BUS_ZAP_DOMAIN, strlen (BUS_ZAP_DOMAIN))
    ||  zmq_setsockopt (socket, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one)
    ||  zmq_setsockopt (socket, ZMQ_ROUTER_MANDATORY, &one, sizeof one)
    ||  zmq_setsockopt (socket, ZMQ_ROUTER_HANDOVER, &zero, sizeof zero)
    ||  zmq_setsockopt (socket, ZMQ_MAXMSGSIZE, &max, sizeof max)
    ||  zmq_setsockopt (socket, ZMQ_HANDSHAKE_IVL, &handshake, sizeof handshake)
    ||  zmq_setsockopt (socket, ZMQ_TCP_KEEPALIVE, &one, sizeof one)
    ||  zmq_setsockopt (socket, ZMQ_TCP_KEEPALIVE_IDLE, &keepalive_idle, sizeof keepalive_idle)
    ||  zmq_setsockopt (socket, ZMQ_TCP_KEEPALIVE_INTVL, &keepalive_intvl, sizeof keepalive_intvl)
    ||  zmq_setsockopt (socket, ZMQ_TCP_KEEPALIVE_CNT, &keepalive_cnt, sizeof keepalive_cnt)
    ||  zmq_setsockopt (socket, ZMQ_TCP_MAXRT, &user_timeout_ms, sizeof user_timeout_ms)
    ||  zmq_setsockopt (socket, ZMQ_BACKLOG, &backlog, sizeof backlog)
    ||  zmq_setsockopt (socket, ZMQ_SNDHWM, &hwm, sizeof hwm)
    ||  zmq_setsockopt (socket, ZMQ_RCVHWM, &hwm, sizeof hwm)
    ||  zmq_setsockopt (socket, ZMQ_LINGER, &linger, sizeof linger)) {
        return bus_fail (err, BUS_EINVAL, "cannot secure the bus socket: %s",
                         zmq_strerror (zmq_errno ()));
    }
    return 0;
}

int
bus_router_local (int fd, char *out, size_t size)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (fd < 0 || getsockname (fd, (struct sockaddr *) &addr, &len) != 0) {
        return -1;
    }
    if (addr.ss_family == AF_INET) {
        snprintf (out, size, "tcp:%u", ntohs (((struct sockaddr_in *) &addr)->sin_port));
    }
    else
    if (addr.ss_family == AF_INET6) {
        snprintf (out, size, "tcp:%u", ntohs (((struct sockaddr_in6 *) &addr)->sin6_port));
    }
    else
    if (addr.ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *) &addr;
        size_t path = len > offsetof (struct sockaddr_un, sun_path)?
                      len - offsetof (struct sockaddr_un, sun_path): 0;
        snprintf (out, size, "ipc:%.*s", (int) strnlen (un->sun_path, path), un->sun_path);
    }
    else {
        return -1;
    }
    return 0;
}

int
bus_router_bind_keyed (void *socket, const char *endpoint, const char *secret_z85,
                       const char *restore_z85, char *bound, size_t size, bus_error_t *err)
{
    //  libzmq copies a socket's options into each listener at bind: the key
    //  set just before this bind is the one its handshakes use, and the key
    //  set back after it leaves every other endpoint as it was.
    if (zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, secret_z85, BUS_KEY_Z85_LEN) != 0
    ||  zmq_bind (socket, endpoint) != 0) {
        int e = zmq_errno ();
        zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, restore_z85, BUS_KEY_Z85_LEN);
        return bus_fail (err, BUS_EIO, "cannot bind %s: %s", endpoint, zmq_strerror (e));
    }
    zmq_getsockopt (socket, ZMQ_LAST_ENDPOINT, bound, &size);
    if (zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, restore_z85, BUS_KEY_Z85_LEN) != 0) {
        return bus_fail (err, BUS_EIO, "cannot restore the bus key: %s",
                         zmq_strerror (zmq_errno ()));
    }
    return 0;
}

int
bus_router_endpoint_key (const char *endpoint, char *out, size_t size)
{
    if (strncmp (endpoint, "tcp://", 6) == 0) {
        const char *colon = strrchr (endpoint, ':');
        snprintf (out, size, "tcp:%s", colon + 1);
    }
    else
    if (strncmp (endpoint, "ipc://", 6) == 0) {
        snprintf (out, size, "ipc:%s", endpoint + 6);
    }
    else {
        return -1;
    }
    return 0;
}

int
bus_router_limit (void *socket, uint32_t max_frame, bus_error_t *err)
{
    int64_t max = 2 * (int64_t) max_frame + 4096;
    if (max > BUS_HARD_FRAME_MAX) {
        max = BUS_HARD_FRAME_MAX;
    }
    if (zmq_setsockopt (socket, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0) {
        return bus_fail (err, BUS_EINVAL, "cannot bound the bus socket's frames: %s",
                         zmq_strerror (zmq_errno ()));
    }
    return 0;
}

void
bus_router_zap (void *zap, const bus_policy_t *policy, bus_zap_t *out)
{
    memset (out, 0, sizeof *out);
    zmq_msg_t parts [8];
    int count = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&part);
            break;
        }
        more = zmq_msg_more (&part);
        if (count < 8) {
            parts [count++] = part;
        }
        else {
            zmq_msg_close (&part);
        }
    }
    if (count < 6) {
        for (int i = 0; i < count; i++) {
            zmq_msg_close (&parts [i]);
        }
        return;
    }
    out->handled = true;
    //  version, request id, domain, address, routing id, mechanism, credentials
    const char *status = "400";
    out->why = "unknown key";
    size_t addr_len = zmq_msg_size (&parts [3]);
    if (addr_len >= sizeof out->address) {
        addr_len = sizeof out->address - 1;
    }
    memcpy (out->address, zmq_msg_data (&parts [3]), addr_len);
    out->address [addr_len] = 0;
    bool curve = zmq_msg_size (&parts [5]) == 5
              && memcmp (zmq_msg_data (&parts [5]), "CURVE", 5) == 0;
    bool domain = zmq_msg_size (&parts [2]) == strlen (BUS_ZAP_DOMAIN)
               && memcmp (zmq_msg_data (&parts [2]), BUS_ZAP_DOMAIN, strlen (BUS_ZAP_DOMAIN)) == 0;
    if (!curve || !domain || count < 7 || zmq_msg_size (&parts [6]) != 32) {
        out->why = "CURVE required";
    }
    else {
        zmq_z85_encode (out->key, zmq_msg_data (&parts [6]), 32);
        //  An expired key is refused as one the policy does not name.
        out->agent = bus_policy_agent_by_live_key (policy, out->key, s_now_us (), NULL);
        if (out->agent) {
            status = "200";
            out->why = "OK";
        }
    }
    //  Reply: version, request id, status code, status text, user id, metadata
    zmq_send (zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send (zap, zmq_msg_data (&parts [1]), zmq_msg_size (&parts [1]), ZMQ_SNDMORE);
    zmq_send (zap, status, 3, ZMQ_SNDMORE);
    zmq_send (zap, out->why, strlen (out->why), ZMQ_SNDMORE);
    zmq_send (zap, out->agent? out->key: "", out->agent? BUS_KEY_Z85_LEN: 0, ZMQ_SNDMORE);
    zmq_send (zap, "", 0, 0);
    for (int i = 0; i < count; i++) {
        zmq_msg_close (&parts [i]);
    }
}

int
bus_router_recv (void *router, bus_inframe_t *in)
{
    zmq_msg_t rid;
    zmq_msg_init (&rid);
    if (zmq_msg_recv (&rid, router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&rid);
        return -1;
    }
    in->rid_len = zmq_msg_size (&rid) < BUS_RID_MAX? zmq_msg_size (&rid): BUS_RID_MAX;
    memcpy (in->rid, zmq_msg_data (&rid), in->rid_len);
    zmq_msg_close (&rid);
    zmq_msg_init (&in->body);
    in->key [0] = 0;
    in->fd = -1;
    in->multipart = false;
    if (zmq_msg_recv (&in->body, router, ZMQ_DONTWAIT) < 0) {
        //  ROUTER hands over whole messages: a routing id alone is empty.
        return 0;
    }
    //  The authenticated key is metadata of the body frame; copy it before
    //  the frame is closed (see PITFALLS: metadata is lost on some paths).
    in->fd = zmq_msg_get (&in->body, ZMQ_SRCFD);
    const char *user_id = zmq_msg_gets (&in->body, "User-Id");
    if (user_id && strlen (user_id) == BUS_KEY_Z85_LEN) {
        memcpy (in->key, user_id, sizeof in->key);
    }
    if (zmq_msg_more (&in->body)) {
        //  Drain the rest: libzmq delivers a message whole, so it is here.
        in->multipart = true;
        zmq_msg_t rest;
        zmq_msg_init (&rest);
        while (zmq_msg_recv (&rest, router, ZMQ_DONTWAIT) >= 0 && zmq_msg_more (&rest)) {
        }
        zmq_msg_close (&rest);
    }
    return 0;
}

void *
bus_router_monitor (void *ctx, void *router, bus_error_t *err)
{
    //  One monitor per process: the bus has one ROUTER.
    const char *endpoint = "inproc://bulkhead.router.monitor";
    if (zmq_socket_monitor (router, endpoint, ZMQ_EVENT_DISCONNECTED) != 0) {
        bus_fail (err, BUS_EIO, "cannot monitor the bus socket: %s", zmq_strerror (zmq_errno ()));
        return NULL;
    }
    void *monitor = zmq_socket (ctx, ZMQ_PAIR);
    if (!monitor || zmq_connect (monitor, endpoint) != 0) {
        bus_fail (err, BUS_EIO, "cannot read the bus socket's monitor: %s",
                  zmq_strerror (zmq_errno ()));
        if (monitor) {
            zmq_close (monitor);
        }
        return NULL;
    }
    return monitor;
}

void
bus_router_events (void *monitor, void (*gone) (void *arg, int fd), void *arg)
{
    //  Each event is two frames: 6 bytes (u16 event, u32 value), then the
    //  endpoint.
    while (true) {
        zmq_msg_t head, address;
        zmq_msg_init (&head);
        if (zmq_msg_recv (&head, monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&head);
            return;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size (&head) >= 6) {
            memcpy (&event, zmq_msg_data (&head), 2);
            memcpy (&value, (uint8_t *) zmq_msg_data (&head) + 2, 4);
        }
        bool more = zmq_msg_more (&head);
        zmq_msg_close (&head);
        if (more) {
            zmq_msg_init (&address);
            zmq_msg_recv (&address, monitor, ZMQ_DONTWAIT);
            zmq_msg_close (&address);
        }
        if (event == ZMQ_EVENT_DISCONNECTED) {
            gone (arg, (int) value);
        }
    }
}

void
bus_router_done (bus_inframe_t *in)
{
    zmq_msg_close (&in->body);
}

int
bus_router_send (void *router, const uint8_t *rid, size_t rid_len, const void *data, size_t size)
{
    if (zmq_send (router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        return zmq_errno ();
    }
    //  The body cannot fail after the routing frame was accepted: ROUTER
    //  checks the peer on the first part.
    if (zmq_send (router, data, size, ZMQ_DONTWAIT) < 0) {
        return zmq_errno ();
    }
    return 0;
}

int
bus_router_send_bundle (void *router, const uint8_t *rid, size_t rid_len,
                        const bus_bundle_t *bundle)
{
    zmq_msg_t msg;
    if (zmq_msg_init_size (&msg, bus_bundle_size (bundle)) != 0) {
        return zmq_errno ();
    }
    bus_bundle_write (bundle, zmq_msg_data (&msg));
    if (zmq_send (router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&msg);
        return zmq_errno ();
    }
    if (zmq_msg_send (&msg, router, ZMQ_DONTWAIT) < 0) {
        int rc = zmq_errno ();
        zmq_msg_close (&msg);
        return rc;
    }
    return 0;
}
