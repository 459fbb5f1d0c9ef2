/*  bus_inbound.h: what an agent sends, from the ROUTER to its handler.

    One message from the ROUTER at a time: who sent it (its CURVE key, in
    the live policy), its connection count and its budget, all before any
    decode; then the bounded canonical decode (bus_wire) and a handler by
    frame type from one table (HELLO, PING, SEND, DELIVERY_ACK, CONTROL).
    A Bundle's frames go the same way one by one, in order. What the
    handlers decide goes into the batch and the outbox; the server's loop
    reads up to a batch of frames, then commits and flushes.
*/
#ifndef BUS_INBOUND_H
#define BUS_INBOUND_H

#include "bus_control.h"
#include "bus_core.h"
#include "bus_wire.h"

typedef struct {
    bus_core_t *core;
    bus_wire_t *wire;                   //  decodes agents' frames
    bus_reload_fn *reload;              //  what an operator's RELOAD runs
} bus_inbound_t;

//  Reads one message from the ROUTER and handles it: how many frames it
//  was (a bundle's count), 0 if none was waiting.
int
    bus_inbound_read (bus_inbound_t *self);

//  Answers one ZAP request (a CURVE handshake) from the live policy. An
//  agent's handshake is logged; refused ones are counted per peer address
//  (bus_refusals), so an unauthenticated peer cannot write to the log.
//  False when no request was waiting.
bool
    bus_inbound_zap (bus_inbound_t *self, void *socket);

#endif
