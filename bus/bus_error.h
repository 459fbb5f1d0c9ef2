/*  bus_error.h: the error codes of bulkhead, one list.

    Every failure in bulkhead is one of these codes plus a sentence that says
    what, where, why and how to fix it. The code word (the name without the
    leading E, e.g. "DENIED") is stable: it goes on the wire in Ack.code and
    Error.code and in the log, so scripts can match on it. Our codes are never
    mixed with errno values.
*/
#ifndef BUS_ERROR_H
#define BUS_ERROR_H

#include <stdarg.h>

#define BUS_ERRORS(X) \
    X (OK,          "success") \
    X (EINVAL,      "invalid argument") \
    X (ENOMEM,      "out of memory") \
    X (EIO,         "input/output error") \
    X (EPOLICY,     "invalid policy") \
    X (EMALFORMED,  "frame is not a valid bulkhead message") \
    X (EMULTIPART,  "multipart messages are not accepted; send one frame") \
    X (ETOOBIG,     "frame exceeds the size limit") \
    X (EVERSION,    "unsupported protocol version") \
    X (EUNKNOWN,    "key or agent is not in the policy") \
    X (ENOHELLO,    "session has not said HELLO") \
    X (ESPOOF,      "claimed sender is not the authenticated agent") \
    X (EDENIED,     "sender may not reach recipient") \
    X (EINTENT,     "edge does not allow this intent") \
    X (ECLASS,      "edge does not allow this intent class") \
    X (ERESTRICTED, "restricted content may not trigger this") \
    X (EREFUSED,    "recipient does not accept restricted content") \
    X (ERATE,       "sender is over its limit") \
    X (EBACKLOG,    "recipient mailbox is full") \
    X (EDUPLICATE,  "message id already used by this sender") \
    X (ENOTFOUND,   "no such item") \
    X (EPERM,       "not permitted for this agent") \
    X (EHOLDFULL,   "too many held messages") \
    X (EEXPIRED,    "hold expired") \
    X (ELOGFULL,    "log is full; refusing to deliver") \
    X (ELOGFAIL,    "log write failed; refusing to deliver") \
    X (ECORRUPT,    "log is corrupt") \
    X (ETIMEOUT,    "timed out") \
    X (ECONNECT,    "could not reach the bus") \
    X (EKEY,        "bad key file") \
    X (ELOGBUDGET,  "sender is over its share of the log") \
    X (ECAUSE,      "a cause names a message this sender never saw") \
    X (ESCOPE,      "outside the edge's scope") \
    X (EQUARANTINE, "sender is quarantined; its messages wait for an operator")

typedef enum {
#define BUS_ERR_ENUM(name, text) BUS_##name,
    BUS_ERRORS (BUS_ERR_ENUM)
#undef BUS_ERR_ENUM
    BUS_ERROR_COUNT
} bus_code_t;

//  A failure: its code and a sentence for a person. Fixed size, no
//  allocation, so it can be filled on any path, out-of-memory included.
typedef struct {
    bus_code_t code;
    char text [512];
} bus_error_t;

//  "EDENIED": the code's name, for logs and tests. Never NULL.
const char *
    bus_errname (bus_code_t code);

//  "DENIED": the stable word that goes on the wire. Never NULL.
const char *
    bus_errword (bus_code_t code);

//  The generic sentence for a code. Never NULL.
const char *
    bus_strerror (bus_code_t code);

//  Fills err (if not NULL) and returns -1, so a failing path reads
//  `return bus_fail (err, BUS_EIO, "log: %s", mdb_strerror (rc));`
int
    bus_fail (bus_error_t *err, bus_code_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Makes text valid UTF-8 in place: a sequence cut at the end (by a printf
//  width) is dropped, any other invalid byte becomes '?'.
void
    bus_utf8_repair (char *text);

//  Maps a wire word back to its code; BUS_EINVAL if unknown.
bus_code_t
    bus_code_from_word (const char *word);

#endif
