/*  bus_inbound.c: what an agent sends, to its handler, see bus_inbound.h. */
#include "bus_decide.h"
#include "bus_inbound.h"
#include "bus_intake.h"
#include "bus_keys.h"
#include "bus_refusals.h"

#include <stdio.h>
#include <string.h>
#include <zmq.h>

//  ---------------------------------------------------------------------
//  One frame: who sent it, then a handler by frame type

static void
s_on_hello (bus_inbound_t *self, bus_peer_t *peer, const frame_t *frame)
{
    bus_session_hello (self->core, peer, frame->hello);
}

static void
s_on_ping (bus_inbound_t *self, bus_peer_t *peer, const frame_t *frame)
{
    Bulkhead__V1__Pong pong = BULKHEAD__V1__PONG__INIT;
    pong.has_nonce = frame->ping->has_nonce;
    pong.nonce = frame->ping->nonce;
    frame_t reply = BULKHEAD__V1__FRAME__INIT;
    reply.body_case = BULKHEAD__V1__FRAME__BODY_PONG;
    reply.pong = &pong;
    bus_outbox_frame (self->core->outbox, peer->rid, peer->rid_len, &reply, NULL);
}

static void
s_on_send (bus_inbound_t *self, bus_peer_t *peer, const frame_t *frame)
{
    bus_core_t *core = self->core;
    const Bulkhead__V1__Send *send = frame->send;
    const char *invalid = bus_intake_invalid (send);
    if (invalid) {
        const char *id = bus_id_valid (send->message_id, BUS_MESSAGE_ID_MAX)? send->message_id: NULL;
        bus_core_refuse (core, peer, BUS_EMALFORMED, invalid, id);
        return;
    }
    if (!bus_intake_duplicate (core, peer, send)) {
        bus_decide_send (core, peer, send);
    }
}

static void
s_on_delivery_ack (bus_inbound_t *self, bus_peer_t *peer, const frame_t *frame)
{
    bus_session_ack (self->core, peer, frame->delivery_ack);
}

static void
s_on_control (bus_inbound_t *self, bus_peer_t *peer, const frame_t *frame)
{
    bus_control (self->core, peer, frame->control, self->reload);
}

typedef void (frame_fn) (bus_inbound_t *self, bus_peer_t *peer, const frame_t *frame);

//  What an agent may send, whether it must have said HELLO first, and
//  whether it must come alone (a HELLO sets what the connection takes, so
//  not in a bundle). A Bundle is read in place before any decode, never
//  by this table; one inside a bundle is refused.
static const struct {
    Bulkhead__V1__Frame__BodyCase body;
    bool needs_hello;
    bool alone;
    frame_fn *handler;
} s_dispatch [] = {
    { BULKHEAD__V1__FRAME__BODY_HELLO,          false, true,  s_on_hello },
    { BULKHEAD__V1__FRAME__BODY_PING,           false, false, s_on_ping },
    { BULKHEAD__V1__FRAME__BODY_SEND,           true,  false, s_on_send },
    { BULKHEAD__V1__FRAME__BODY_DELIVERY_ACK,   true,  false, s_on_delivery_ack },
    { BULKHEAD__V1__FRAME__BODY_CONTROL,        true,  false, s_on_control },
};

//  Over budget: answered and counted before any decode or look-up. rest,
//  if not NULL, says what of a bundle the one answer refuses.
static void
s_over_budget (bus_core_t *core, const bus_peer_t *peer, const char *rest)
{
    char reason [240];
    snprintf (reason, sizeof reason, "%s is over its budget of %u frames and %u bytes per "
              "second (policy: frames, bytes)%s", peer->agent->name, peer->agent->frames,
              peer->agent->bytes, rest? rest: "");
    bus_core_refuse (core, peer, BUS_ERATE, reason, NULL);
}

//  One frame, alone or one of a bundle's (bundled).
static void
s_dispatch_frame (bus_inbound_t *self, bus_peer_t *peer, const void *data, size_t size,
                  bool bundled)
{
    bus_core_t *core = self->core;
    if (bundled && bus_wire_is_bundle (data, size)) {
        bus_core_refuse (core, peer, BUS_EMALFORMED, "a bundle inside a bundle", NULL);
        return;
    }
    frame_t *frame;
    bus_error_t err;
    if (bus_wire_decode (self->wire, data, size, &frame, &err) != 0) {
        bus_core_refuse (core, peer, err.code, err.text, NULL);
        return;
    }
    char reason [96];
    for (size_t i = 0; i < sizeof s_dispatch / sizeof s_dispatch [0]; i++) {
        if (s_dispatch [i].body != frame->body_case) {
            continue;
        }
        if (bundled && s_dispatch [i].alone) {
            snprintf (reason, sizeof reason, "%s goes alone, not in a bundle",
                      bus_wire_body_name (frame));
            bus_core_refuse (core, peer, BUS_EMALFORMED, reason, NULL);
        }
        else
        if (s_dispatch [i].needs_hello && !peer->session->hello) {
            bus_core_refuse (core, peer, BUS_ENOHELLO, "say HELLO first", NULL);
        }
        else {
            s_dispatch [i].handler (self, peer, frame);
        }
        return;
    }
    snprintf (reason, sizeof reason, "agents do not send %s frames", bus_wire_body_name (frame));
    bus_core_refuse (core, peer, BUS_EMALFORMED, reason, NULL);
}

static void
s_ignore (bus_inbound_t *self, const bus_peer_t *peer)
{
    bus_core_t *core = self->core;
    char fp [17] = "";
    if (peer->key) {
        bus_keys_fingerprint (fp, peer->key);
    }
    const char *reason = peer->key? "this key is not in the live policy (changed or removed); "
                                    "its frames are not accepted and not answered"
                                  : "connection is not authenticated";
    if (bus_refusals_note (core, fp [0]? fp: "(no key)", fp, BUS_EUNKNOWN, reason, peer->data,
                           peer->size)) {
        bus_core_say (core, "BUS-IGNORED", "key_fp=%s reason=\"key not in the live policy\"",
                      fp [0]? fp: "-");
    }
}

//  A Bundle from an agent: each of its frames as if it had come alone, in
//  order. The bundle itself paid the byte budget and one frame's; every
//  further frame pays a frame, so bundling buys no more than the budget.
//  A malformed bundle is refused whole, before any of its frames is
//  looked at. Returns how many frames the batch took.
static uint32_t
s_on_bundle (bus_inbound_t *self, bus_peer_t *peer)
{
    bus_core_t *core = self->core;
    bus_bundle_reader_t reader;
    size_t count;
    bus_error_t err;
    if (!peer->session->hello) {
        bus_core_refuse (core, peer, BUS_ENOHELLO, "say HELLO first", NULL);
        return 1;
    }
    if (bus_bundle_open (&reader, peer->data, peer->size, &count, &err) != 0) {
        bus_core_refuse (core, peer, err.code, err.text, NULL);
        return 1;
    }
    if (count > BUS_BUNDLE_FRAMES) {
        char reason [128];
        snprintf (reason, sizeof reason, "a bundle of %zu frames, more than the %d one may hold",
                  count, BUS_BUNDLE_FRAMES);
        bus_core_refuse (core, peer, BUS_EMALFORMED, reason, NULL);
        return 1;
    }
    const uint8_t *end = (const uint8_t *) peer->data + peer->size;
    const bus_policy_t *policy = core->policy;
    uint64_t now = bus_now_us ();
    const uint8_t *member;
    size_t size;
    for (size_t n = 0; bus_bundle_next (&reader, &member, &size); n++) {
        //  A frame before this one reloaded the policy (an operator's
        //  RELOAD): the agent the sender was is gone with the old one. The
        //  rest meets the live policy, as frames sent after it would: the
        //  key is looked up again, and if it is no longer there, nothing
        //  more of the bundle is taken.
        if (core->policy != policy) {
            policy = core->policy;
            peer->agent = bus_policy_agent_by_live_key (policy, peer->key, now, &peer->key_fp);
            //  (The key may even name another agent now: its session, then;
            //  memory out for one is taken as the key gone.)
            if (!peer->agent || !(peer->session = bus_session_get (core, peer->agent->name))) {
                peer->data = member;
                peer->size = (size_t) (end - member);
                s_ignore (self, peer);
                return (uint32_t) count;
            }
        }
        //  What a refusal of this frame names (digest, length) is the frame.
        peer->data = member;
        peer->size = size;
        if (n > 0 && bus_outbox_reserve (core->outbox, 16) != 0) {
            bus_core_say (core, "BUS-ERROR", "agent=%s reason=\"out of memory: %zu frames of a "
                          "bundle dropped\"", peer->agent->name, count - n);
            return (uint32_t) n;
        }
        //  Over budget, the rest of the bundle is refused in one answer:
        //  a refusal for load costs the bus one frame, not one per frame.
        //  The budget is read at the bundle's time: its own length does
        //  not refill it.
        if (n > 0 && !bus_session_budget (peer->session, peer->agent, 0, now)) {
            char rest [64];
            snprintf (rest, sizeof rest, ": frames %zu to %zu of this bundle refused", n + 1,
                      count);
            peer->size = (size_t) (end - member);
            s_over_budget (core, peer, rest);
            break;
        }
        s_dispatch_frame (self, peer, member, size, true);
    }
    return (uint32_t) count;
}

//  Reads one message from the ROUTER and handles it: how many frames it
//  was (a bundle's count), 0 if none was waiting.
int
bus_inbound_read (bus_inbound_t *self)
{
    bus_core_t *core = self->core;
    bus_inframe_t in;
    if (bus_router_recv (core->router, &in) != 0) {
        return 0;
    }
    uint32_t taken = 1;
    bus_peer_t peer;
    memset (&peer, 0, sizeof peer);
    memcpy (peer.rid, in.rid, in.rid_len);
    peer.rid_len = in.rid_len;
    peer.fd = in.fd;
    size_t size = zmq_msg_size (&in.body);
    peer.data = zmq_msg_data (&in.body);
    peer.size = size;
    if (in.key [0]) {
        peer.key = in.key;
        peer.agent = bus_policy_agent_by_live_key (core->policy, in.key, bus_now_us (),
                                                   &peer.key_fp);
    }
    if (!peer.agent) {
        //  A key the policy no longer names (changed or removed by a
        //  reload): nothing from it is accepted, and nothing of any kind
        //  goes back to it. Logged, not answered.
        s_ignore (self, &peer);
    }
    else
    if (!(peer.session = bus_session_get (core, peer.agent->name))) {
        bus_core_say (core, "BUS-ERROR", "agent=%s reason=\"out of memory for a session\"",
                      peer.agent->name);
    }
    else
    if (!bus_session_connection (core, peer.session, peer.fd)) {
        char reason [160];
        snprintf (reason, sizeof reason, "%s has %u connections already, the most one key may "
                  "have (policy: bus.connections)", peer.agent->name, core->policy->connections);
        bus_core_refuse (core, &peer, BUS_ERATE, reason, NULL);
    }
    else
    if (!bus_session_budget (peer.session, peer.agent, size, bus_now_us ())) {
        s_over_budget (core, &peer, NULL);
    }
    else {
        bus_session_seen (core, peer.session, &peer);
        if (in.multipart) {
            bus_core_refuse (core, &peer, BUS_EMULTIPART,
                             "multipart message refused: one frame per message", NULL);
        }
        else
        if (size > core->policy->max_frame) {
            char reason [128];
            snprintf (reason, sizeof reason, "frame of %zu bytes is over the limit of %u bytes",
                      size, core->policy->max_frame);
            bus_core_refuse (core, &peer, BUS_ETOOBIG, reason, NULL);
        }
        else
        if (bus_wire_is_bundle (peer.data, size)) {
            taken = s_on_bundle (self, &peer);
        }
        else {
            s_dispatch_frame (self, &peer, peer.data, size, false);
        }
    }
    bus_router_done (&in);
    return (int) taken;
}

bool
bus_inbound_zap (bus_inbound_t *self, void *socket)
{
    bus_core_t *core = self->core;
    bus_zap_t zap;
    bus_router_zap (socket, core->policy, &zap);
    if (!zap.handled) {
        return false;
    }
    if (zap.agent) {
        char event [160];
        snprintf (event, sizeof event, "handshake from %s", zap.address);
        bus_core_event (core, BULKHEAD__V1__RECORD_KIND__RECORD_SESSION, zap.agent->name, zap.key,
                        BUS_OK, event);
        return true;
    }
    //  Refused handshakes are counted per peer address, not logged one by
    //  one: an unauthenticated peer must not be able to write to the log.
    char fp [17] = "";
    if (zap.key [0]) {
        bus_keys_fingerprint (fp, zap.key);
    }
    char reason [160];
    snprintf (reason, sizeof reason, "handshake refused from %s: %s", zap.address, zap.why);
    if (bus_refusals_note (core, zap.address [0]? zap.address: "(local)", fp, BUS_EUNKNOWN, reason,
                           NULL, 0)) {
        bus_core_say (core, "BUS-REFUSED", "address=%s key_fp=%s reason=\"%s\"", zap.address,
                      fp [0]? fp: "none", zap.why);
    }
    return true;
}
