/*  bus_policy.c: reads a ZPL policy file and builds the immutable policy.

    Two steps. A small ZPL reader turns the text into a flat array of items
    (name, optional value, line, first child, next sibling); it knows nothing
    of policies. The builder then walks that tree section by section, in the
    order the sections depend on each other: bus (defaults), classes, agents
    (which name classes), approvers (which name agents), edges (which name
    both). Every error goes through s_fail so it reads "FILE:LINE: ...".
*/
#include "bus_policy.h"
#include "bus_hash.h"
#include "bus_big.h"
#include "bus_keys.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>
#include <sodium.h>
#include <zmq.h>

#define S_DEPTH_MAX     16              //  our schema needs 3; ZPL has no limit
#define S_FILE_MAX      (16u << 20)     //  a policy is a few KiB; refuse a log
#define S_KNOWN_MAX     256             //  "(known: ...)" is cut to this

//  One ZPL line with a name. Strings point into the reader's copy of the
//  text, terminated in place.
typedef struct {
    char *name;
    char *value;                //  NULL when the line has no '='
    int line;
    int child;                  //  first child, -1 if none
    int next;                   //  next sibling, -1 if none
    int children;               //  how many (the edges section counts them
                                //  several times: a million items a walk)
} s_item_t;

//  The public struct first, so a bus_policy_t * is an s_policy_t *.
//  One key of an agent, for look-ups by key: an agent has one, or two
//  during a rotation (next_key).
typedef struct {
    uint64_t prefix;                    //  the key's first 8 bytes, big-endian:
                                        //  most comparisons end there (s_by_key)
    const char *key;                    //  Z85, inside the agent
    const char *fp;
    const bus_agent_t *agent;
} s_keyref_t;

//  A slot of the name table holds the first bytes of the name, so that a
//  look-up of a short name (most are) reads one slot and no agent: a
//  fleet's million edges name their agents a million times.
#define S_HEAD  16
typedef struct {
    uint32_t tag;                       //  upper half of the name's hash
    uint32_t agent;                     //  index + 1; 0: a free slot
    char head [S_HEAD];                 //  the name's first bytes, NUL-padded
} s_slot_t;

typedef struct {
    bus_policy_t base;
    s_keyref_t *by_key;                 //  every key (key, next_key) sorted
    size_t key_count;
    //  Agents by name: open addressing, at most half full, names_size a
    //  power of two (0: no table).
    s_slot_t *by_name;
    size_t names_size;
    //  Where each agent's edges start (edges are sorted by sender), so
    //  that bus_policy_edge searches only the sender's: agent_count + 1
    //  entries, NULL without edges.
    size_t *edge_first;
} s_policy_t;

//  The hash of the file, taken by a second thread that runs ahead of the
//  reader: done is how far it has gone, and the reader cuts no byte it has
//  not passed (s_hash_wait).
#define S_SHARED_HASH   (4u << 20)
#define S_HASH_STEP     (256u << 10)

typedef struct {
    const uint8_t *text;
    size_t len;
    uint8_t out [32];
    pthread_mutex_t lock;
    pthread_cond_t moved;
    size_t done;                        //  under lock
} s_hash_t;

typedef struct {
    const char *origin;                 //  file name for error messages
    bus_error_t *err;
    char *buf;                          //  the text, NUL-terminated, items point in
    s_hash_t *hash;                     //  running ahead of s_read, or NULL
    size_t hashed;                      //  what s_read knows it has passed
    s_item_t *items;
    int count;
    s_policy_t *self;
    int approvers_line [BUS_CLASS_MAX]; //  0 when the file gives none
} s_ctx_t;

static int
s_fail (s_ctx_t *ctx, int line, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (s_ctx_t *ctx, int line, const char *fmt, ...)
{
    char what [sizeof ctx->err->text];
    va_list args;
    va_start (args, fmt);
    vsnprintf (what, sizeof what, fmt, args);
    va_end (args);
    return bus_fail (ctx->err, BUS_EPOLICY, "%s:%d: %s", ctx->origin, line,
                     what);
}

static int
s_nomem (s_ctx_t *ctx)
{
    return bus_fail (ctx->err, BUS_ENOMEM, "%s: out of memory", ctx->origin);
}

//  Appends a word to a "a, b, c" list; a list too long for the buffer ends
//  in "..." so the message still fits in a bus_error_t.
static void
s_append (char *list, size_t size, const char *word)
{
    size_t len = strlen (list);
    if (len >= 3 && strcmp (list + len - 3, "...") == 0) {
        return;
    }
    const char *sep = len? ", ": "";
    if (len + strlen (sep) + strlen (word) + sizeof ", ..." > size) {
        snprintf (list + len, size - len, "%s...", sep);
    }
    else {
        snprintf (list + len, size - len, "%s%s", sep, word);
    }
}


//  ---------------------------------------------------------------------
//  ZPL reader

static bool
s_blank (char c)
{
    return c == ' ' || c == '\t';
}

//  Reads one line [p, end) that holds an item (not blank, not a comment).
static int
s_read_item (s_ctx_t *ctx, char *p, char *end, int line)
{
    char *name = p;
    while (p < end && !s_blank (*p) && *p != '=' && *p != '#') {
        p++;
    }
    char *name_end = p;
    if (name == name_end) {
        return s_fail (ctx, line, "missing name before '='");
    }
    while (p < end && s_blank (*p)) {
        p++;
    }
    char *value = NULL;
    if (p < end && *p == '=') {
        for (p++; p < end && s_blank (*p); p++) {
        }
        if (p < end && (*p == '"' || *p == '\'')) {
            //  A quoted value may hold '#' and spaces; ZPL has no escapes
            char quote = *p++;
            value = p;
            while (p < end && *p != quote) {
                p++;
            }
            if (p == end) {
                return s_fail (ctx, line, "unterminated quoted value; "
                               "close it with %c", quote);
            }
            *p++ = 0;
            while (p < end && s_blank (*p)) {
                p++;
            }
            if (p < end && *p != '#') {
                return s_fail (ctx, line, "text after the closing quote; "
                               "start a comment with '#'");
            }
        }
        else {
            value = p;
            while (p < end && *p != '#') {
                p++;
            }
            while (p > value && s_blank (p [-1])) {
                p--;
            }
            *p = 0;
        }
    }
    else
    if (p < end && *p != '#') {
        return s_fail (ctx, line, "expected '=' after '%.64s'; "
                       "write `name = value`", name);
    }
    *name_end = 0;

    //  s_read made room for one item a line
    ctx->items [ctx->count] = (s_item_t) {
        .name = name, .value = value, .line = line, .child = -1, .next = -1
    };
    return 0;
}

static void *
s_hash_run (void *arg)
{
    s_hash_t *hash = arg;
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, sizeof hash->out);
    for (size_t at = 0; at < hash->len; ) {
        size_t step = hash->len - at < S_HASH_STEP? hash->len - at: S_HASH_STEP;
        crypto_generichash_update (&state, hash->text + at, step);
        at += step;
        pthread_mutex_lock (&hash->lock);
        hash->done = at;
        pthread_cond_signal (&hash->moved);
        pthread_mutex_unlock (&hash->lock);
    }
    crypto_generichash_final (&state, hash->out, sizeof hash->out);
    return NULL;
}

//  Returns once the hash has passed byte `end`, so the reader may cut
//  bytes before it.
static void
s_hash_wait (s_ctx_t *ctx, size_t end)
{
    if (ctx->hash && end > ctx->hashed) {
        pthread_mutex_lock (&ctx->hash->lock);
        while (ctx->hash->done < end) {
            pthread_cond_wait (&ctx->hash->moved, &ctx->hash->lock);
        }
        ctx->hashed = ctx->hash->done;
        pthread_mutex_unlock (&ctx->hash->lock);
    }
}

//  Fills ctx->items from the text in ctx->buf (len bytes and room for a
//  NUL), which it cuts into strings in place. Children are indented
//  exactly four spaces deeper than their parent; tabs would make depth a
//  matter of the reader's editor settings, so they are refused.
static int
s_read (s_ctx_t *ctx, size_t len)
{
    ctx->buf [len] = 0;
    size_t lines = 1;
    for (const char *c = ctx->buf; (c = memchr (c, '\n', len - (size_t) (c - ctx->buf)));
         c++) {
        lines++;
    }
    if (lines > INT_MAX) {
        return s_fail (ctx, INT_MAX, "more than %d lines", INT_MAX);
    }
    ctx->items = bus_big_calloc (lines, sizeof *ctx->items);
    if (!ctx->items) {
        return s_nomem (ctx);
    }

    int last [S_DEPTH_MAX];             //  last item seen at each depth
    int last_depth = -1;
    int line = 0;
    char *end = ctx->buf + len;
    for (char *p = ctx->buf; p < end; ) {
        char *eol = memchr (p, '\n', end - p);
        char *next = eol? eol + 1: end;
        eol = eol? eol: end;
        line++;
        s_hash_wait (ctx, (size_t) (next - ctx->buf));
        if (eol > p && eol [-1] == '\r') {
            eol--;
        }
        *eol = 0;
        for (char *c = p; c < eol; c++) {
            if ((unsigned char) *c < 0x20 && *c != '\t') {
                return s_fail (ctx, line, "control byte 0x%02x; a policy is "
                               "plain text", (unsigned char) *c);
            }
        }
        char *start = p;
        while (start < eol && s_blank (*start)) {
            start++;
        }
        if (start == eol || *start == '#') {
            p = next;
            continue;                   //  blank or comment line
        }
        if (memchr (p, '\t', start - p)) {
            return s_fail (ctx, line, "tab in indentation; indent with "
                           "4 spaces per level");
        }
        int indent = (int) (start - p);
        int depth = indent / 4;
        if (indent % 4) {
            return s_fail (ctx, line, "indented %d spaces; indent with "
                           "a multiple of 4", indent);
        }
        if (depth > last_depth + 1) {
            return s_fail (ctx, line, "indented too deep; a child goes "
                           "exactly 4 spaces under its parent");
        }
        if (depth >= S_DEPTH_MAX) {
            return s_fail (ctx, line, "nested deeper than %d levels",
                           S_DEPTH_MAX);
        }
        if (s_read_item (ctx, start, eol, line)) {
            return -1;
        }
        //  Link the item: to its previous sibling if one is open at this
        //  depth, else as the first child of the item above it.
        if (last_depth >= depth) {
            ctx->items [last [depth]].next = ctx->count;
        }
        else
        if (depth > 0) {
            ctx->items [last [depth - 1]].child = ctx->count;
        }
        if (depth > 0) {
            ctx->items [last [depth - 1]].children++;
        }
        last [depth] = ctx->count++;
        last_depth = depth;
        p = next;
    }
    return 0;
}


//  ---------------------------------------------------------------------
//  Values

//  One table per kind of heading lists its options, the Redis way: name,
//  type, where the value goes, its range. An S_OTHER option needs code of
//  its own and goes to the section's handler.
typedef enum { S_NUMBER, S_BOOL, S_WORD, S_OTHER } s_type_t;

typedef struct {
    const char *name;
    s_type_t type;
    size_t offset;                      //  of the field in its struct
    uint32_t min, max;                  //  S_NUMBER: accepted range
    const char *words [3];              //  S_WORD: the second sets the bool
} s_option_t;

#define S_OPTIONS_MAX   24
#define S_OTHER_OPTION(n) { .name = n, .type = S_OTHER }
#define S_BOOL_OPTION(n, T, f) \
    { .name = n, .type = S_BOOL, .offset = offsetof (T, f) }
#define S_WORD_OPTION(n, T, f, no, yes) \
    { .name = n, .type = S_WORD, .offset = offsetof (T, f), \
      .words = { no, yes } }
#define S_NUMBER_OPTION(n, T, f, lo, hi) \
    { .name = n, .type = S_NUMBER, .offset = offsetof (T, f), \
      .min = lo, .max = hi }

static const s_option_t s_sections [] = {
    S_OTHER_OPTION ("bus"), S_OTHER_OPTION ("classes"),
    S_OTHER_OPTION ("agents"), S_OTHER_OPTION ("edges"), S_OTHER_OPTION ("monitor"),
    { .name = NULL }
};

const char *const bus_alert_kinds [BUS_ALERT_KIND_COUNT + 1] = {
    "loop", "depth", "bounce", "pingpong", "volume", "cost", "new_edge", "probe", "timing",
    "heartbeat", "result", "result_denied", NULL
};

//  The detectors' settings; the row is the documentation (README, monitor).
#define S_EXPECT    15                  //  its place in s_monitor_options
static const s_option_t s_monitor_options [] = {
    S_BOOL_OPTION ("on", bus_monitor_policy_t, on),
    S_NUMBER_OPTION ("loop_turns", bus_monitor_policy_t, loop_turns, 2, 1000),
    S_NUMBER_OPTION ("loop_depth", bus_monitor_policy_t, loop_depth, 2, 1000),
    S_NUMBER_OPTION ("bounce", bus_monitor_policy_t, bounce, 2, 1000),
    S_NUMBER_OPTION ("factor", bus_monitor_policy_t, factor, 2, 1000),
    S_NUMBER_OPTION ("min_volume", bus_monitor_policy_t, min_volume, 1, 1000000),
    S_NUMBER_OPTION ("learn_hours", bus_monitor_policy_t, learn_hours, 0, 24 * 365),
    S_NUMBER_OPTION ("budget_messages", bus_monitor_policy_t, budget_messages, 0, UINT32_MAX),
    S_NUMBER_OPTION ("budget_bytes", bus_monitor_policy_t, budget_bytes, 0, UINT32_MAX),
    S_NUMBER_OPTION ("cost_percent", bus_monitor_policy_t, cost_percent, 1, 100),
    S_NUMBER_OPTION ("new_edge_days", bus_monitor_policy_t, new_edge_days, 1, 3650),
    S_NUMBER_OPTION ("probe", bus_monitor_policy_t, probe, 1, 1000000),
    S_NUMBER_OPTION ("timing_permille", bus_monitor_policy_t, timing_permille, 0, 1000),
    S_NUMBER_OPTION ("quiet", bus_monitor_policy_t, quiet, 1, 86400),
    S_OTHER_OPTION ("quarantine_on"),
    S_OTHER_OPTION ("expect"),
    { .name = NULL }
};

static const s_option_t s_expect_options [] = {
    S_OTHER_OPTION ("agent"), S_OTHER_OPTION ("intent"), S_OTHER_OPTION ("every"),
    S_OTHER_OPTION ("class"), S_OTHER_OPTION ("to"), S_OTHER_OPTION ("reply_within"),
    { .name = NULL }
};

static const s_option_t s_bus_options [] = {
    S_NUMBER_OPTION ("max_frame", bus_policy_t, max_frame, 256, 16u << 20),
    S_NUMBER_OPTION ("max_backlog", bus_policy_t, max_backlog, 1, UINT32_MAX),
    //  At most 1024 held messages: what one LIST_PENDING reply shows whole
    //  (and what a person can still read).
    S_NUMBER_OPTION ("hold_cap_total", bus_policy_t, hold_cap_total, 1, 1024),
    S_NUMBER_OPTION ("hold_cap_sender", bus_policy_t, hold_cap_sender, 1, 1024),
    //  What one key may make the bus do, before any decode (defaults for
    //  every agent; an agent may have its own).
    S_NUMBER_OPTION ("frames", bus_policy_t, frames, 1, 1000000),
    S_NUMBER_OPTION ("bytes", bus_policy_t, bytes, 1024, UINT32_MAX),
    S_NUMBER_OPTION ("connections", bus_policy_t, connections, 1, 1024),
    S_NUMBER_OPTION ("log_budget", bus_policy_t, log_budget, 0, UINT32_MAX),
    S_NUMBER_OPTION ("backlog_share", bus_policy_t, backlog_share, 1, 100),
    S_NUMBER_OPTION ("key_max_age", bus_policy_t, key_max_age, 0, 36500),
    { .name = NULL }
};

#define S_QUORUM    4                   //  its place in s_class_options
static const s_option_t s_class_options [] = {
    S_BOOL_OPTION ("privileged", bus_class_t, privileged),
    S_BOOL_OPTION ("hold", bus_class_t, hold),
    S_OTHER_OPTION ("actions"),
    S_OTHER_OPTION ("approvers"),
    S_NUMBER_OPTION ("quorum", bus_class_t, quorum, 1, UINT32_MAX),
    S_NUMBER_OPTION ("ttl", bus_class_t, ttl_s, 1, UINT32_MAX),
    S_WORD_OPTION ("restricted", bus_class_t, restricted_hold, "deny", "hold"),
    { .name = NULL }
};

#define S_KEY       0                   //  its place in s_agent_options
static const s_option_t s_agent_options [] = {
    S_OTHER_OPTION ("key"),
    S_OTHER_OPTION ("next_key"),
    S_OTHER_OPTION ("created"),
    S_OTHER_OPTION ("expires"),
    S_OTHER_OPTION ("provider"),
    S_WORD_OPTION ("trust", bus_agent_t, untrusted, "trusted", "untrusted"),
    S_WORD_OPTION ("taint", bus_agent_t, causal, "sticky", "causal"),
    S_BOOL_OPTION ("accepts_restricted", bus_agent_t, accepts_restricted),
    S_OTHER_OPTION ("class"),
    S_OTHER_OPTION ("role"),
    S_NUMBER_OPTION ("max_backlog", bus_agent_t, max_backlog, 1, UINT32_MAX),
    S_NUMBER_OPTION ("rate", bus_agent_t, rate, 0, UINT32_MAX),
    S_NUMBER_OPTION ("frames", bus_agent_t, frames, 1, 1000000),
    S_NUMBER_OPTION ("bytes", bus_agent_t, bytes, 1024, UINT32_MAX),
    S_NUMBER_OPTION ("log_budget", bus_agent_t, log_budget, 0, UINT32_MAX),
    { .name = NULL }
};

//  Finds item's name in an option table, refusing unknown and repeated
//  names. seen has one slot per option: the line it was first on, or 0.
static int
s_key (s_ctx_t *ctx, const s_item_t *item, const s_option_t *table,
       const char *where, int *seen)
{
    for (int i = 0; table [i].name; i++) {
        if (item->name [0] == table [i].name [0] && strcmp (item->name, table [i].name) == 0) {
            if (seen [i]) {
                return s_fail (ctx, item->line, "'%s' in %s is given twice "
                               "(first at line %d); keep one", table [i].name,
                               where, seen [i]);
            }
            seen [i] = item->line;
            return i;
        }
    }
    char known [S_KNOWN_MAX] = "";
    for (int i = 0; table [i].name; i++) {
        s_append (known, sizeof known, table [i].name);
    }
    return s_fail (ctx, item->line, "unknown key '%.64s' in %s (known: %s)",
                   item->name, where, known);
}

//  A `name = value` line with nothing indented under it.
static int
s_scalar (s_ctx_t *ctx, const s_item_t *item)
{
    if (!item->value || !*item->value) {
        return s_fail (ctx, item->line, "'%s' needs a value: %s = ...",
                       item->name, item->name);
    }
    if (item->child >= 0) {
        return s_fail (ctx, ctx->items [item->child].line, "'%s' takes a "
                       "value, not indented lines under it", item->name);
    }
    return 0;
}

//  A heading (section, class, agent, sender): a name with children only.
static int
s_heading (s_ctx_t *ctx, const s_item_t *item, const char *what)
{
    if (item->value) {
        return s_fail (ctx, item->line, "%s '%.64s' takes no value; put its "
                       "items on the lines under it, indented 4 more spaces",
                       what, item->name);
    }
    return 0;
}

//  Decimal only: "0x10" or "1e3" in a limit is more likely a mistake than
//  a wish, and one notation keeps the file easy to read.
static int
s_u32 (s_ctx_t *ctx, const s_item_t *item, uint32_t min, uint32_t max,
       uint32_t *out)
{
    const char *value = item->value;
    size_t len = strlen (value);
    bool digits = len > 0 && len <= 10 && strspn (value, "0123456789") == len;
    unsigned long long number = digits? strtoull (value, NULL, 10): 0;
    if (!digits || number < min || number > max) {
        return s_fail (ctx, item->line, "'%s' must be a whole number from "
                       "%u to %u, not '%.64s'", item->name, min, max, value);
    }
    *out = (uint32_t) number;
    return 0;
}

static int
s_bool (s_ctx_t *ctx, const s_item_t *item, bool *out)
{
    const char *v = item->value;
    if (!strcmp (v, "true") || !strcmp (v, "yes") || !strcmp (v, "1")) {
        *out = true;
    }
    else
    if (!strcmp (v, "false") || !strcmp (v, "no") || !strcmp (v, "0")) {
        *out = false;
    }
    else {
        return s_fail (ctx, item->line, "'%s' must be true or false "
                       "(or yes/no, 1/0), not '%.64s'", item->name, v);
    }
    return 0;
}

//  Splits a comma list in place. Returns an array of words pointing into
//  the reader's buffer: room's, if it has that many (room_size), else one
//  the caller frees (free the array only if it is not room); NULL after
//  failing.
static char **
s_split_in (s_ctx_t *ctx, s_item_t *item, char **room, size_t room_size, size_t *count)
{
    size_t words = 1;
    for (const char *c = item->value; *c; c++) {
        words += *c == ',';
    }
    char **list = words <= room_size? room: malloc (words * sizeof *list);
    if (!list) {
        s_nomem (ctx);
        return NULL;
    }
    char *p = item->value;
    for (size_t i = 0; i < words; i++) {
        char *comma = strchr (p, ',');
        char *end = comma? comma: p + strlen (p);
        while (s_blank (*p)) {
            p++;
        }
        while (end > p && s_blank (end [-1])) {
            end--;
        }
        if (end == p) {
            if (list != room) {
                free (list);
            }
            s_fail (ctx, item->line, "empty entry in the list of '%s'",
                    item->name);
            return NULL;
        }
        *end = 0;
        list [i] = p;
        p = comma? comma + 1: end;
    }
    *count = words;
    return list;
}

static char **
s_split (s_ctx_t *ctx, s_item_t *item, size_t *count)
{
    return s_split_in (ctx, item, NULL, 0, count);
}

//  Copies words and their pointer array into one block, so one free ()
//  releases the list.
static char **
s_pack (char **words, size_t count)
{
    size_t size = count * sizeof (char *);
    for (size_t i = 0; i < count; i++) {
        size += strlen (words [i]) + 1;
    }
    char **packed = malloc (size? size: 1);
    if (packed) {
        char *at = (char *) (packed + count);
        for (size_t i = 0; i < count; i++) {
            packed [i] = strcpy (at, words [i]);
            at += strlen (at) + 1;
        }
    }
    return packed;
}

static int
s_name (s_ctx_t *ctx, const s_item_t *item, const char *what)
{
    if (!bus_name_valid (item->name, strlen (item->name))) {
        return s_fail (ctx, item->line, "%s name '%.64s' is not valid; use "
                       "1 to %d of a-z 0-9 . _ - starting with a letter or "
                       "digit", what, item->name, BUS_NAME_MAX);
    }
    return 0;
}


//  ---------------------------------------------------------------------
//  Sections

static void
s_known_classes (const bus_policy_t *self, char *known, size_t size)
{
    for (size_t i = 0; i < self->class_count; i++) {
        s_append (known, size, self->classes [i].name);
    }
}

static void
s_known_agents (const bus_policy_t *self, unsigned roles, char *known,
                size_t size)
{
    for (size_t i = 0; i < self->agent_count; i++) {
        if (self->agents [i].roles & roles) {
            s_append (known, size, self->agents [i].name);
        }
    }
    if (!*known) {
        s_append (known, size, "none");
    }
}

//  Picks value out of a NULL-terminated word list, or says which words fit.
static int
s_choice (s_ctx_t *ctx, int line, const char *what, const char *value,
          const char *const *words)
{
    for (int i = 0; words [i]; i++) {
        if (strcmp (value, words [i]) == 0) {
            return i;
        }
    }
    char known [S_KNOWN_MAX] = "";
    for (int i = 0; words [i]; i++) {
        s_append (known, sizeof known, words [i]);
    }
    return s_fail (ctx, line, "unknown %s '%.64s' (known: %s)", what, value,
                   known);
}

typedef int (s_other_fn) (s_ctx_t *ctx, void *base, s_item_t *item);

//  Reads the options under a heading into the struct at base.
static int
s_options (s_ctx_t *ctx, int first, const s_option_t *table,
           const char *where, void *base, s_other_fn *other, int *seen)
{
    for (int i = first; i >= 0; i = ctx->items [i].next) {
        s_item_t *item = &ctx->items [i];
        int k = s_key (ctx, item, table, where, seen);
        if (k < 0 || s_scalar (ctx, item)) {
            return -1;
        }
        void *field = (char *) base + table [k].offset;
        int rc = 0;
        if (table [k].type == S_NUMBER) {
            rc = s_u32 (ctx, item, table [k].min, table [k].max, field);
        }
        else
        if (table [k].type == S_BOOL) {
            rc = s_bool (ctx, item, field);
        }
        else
        if (table [k].type == S_WORD) {
            int choice = s_choice (ctx, item->line, item->name, item->value,
                                   table [k].words);
            *(bool *) field = choice == 1;
            rc = choice < 0? -1: 0;
        }
        else {
            rc = other (ctx, base, item);
        }
        if (rc) {
            return -1;
        }
    }
    return 0;
}

//  actions and approvers, both comma lists
static int
s_class_other (s_ctx_t *ctx, void *base, s_item_t *item)
{
    bus_class_t *class = base;
    bool approvers = strcmp (item->name, "approvers") == 0;
    size_t count;
    char **words = s_split (ctx, item, &count);
    if (!words) {
        return -1;
    }
    //  Distinct approvals are counted, so a name twice would make a
    //  quorum that can never be met.
    for (size_t i = 0; approvers && i < count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp (words [i], words [j]) == 0) {
                s_fail (ctx, item->line, "approver '%.64s' is listed twice "
                        "in class '%s'", words [i], class->name);
                free (words);
                return -1;
            }
        }
    }
    char **packed = s_pack (words, count);
    free (words);
    if (!packed) {
        return s_nomem (ctx);
    }
    if (approvers) {
        class->approvers = packed;
        class->approver_count = count;
        ctx->approvers_line [class - ctx->self->base.classes] = item->line;
    }
    else {
        class->actions = packed;
        class->action_count = count;
    }
    return 0;
}

static int
s_section_classes (s_ctx_t *ctx, int first)
{
    bus_policy_t *self = &ctx->self->base;
    for (int i = first; i >= 0; i = ctx->items [i].next) {
        s_item_t *item = &ctx->items [i];
        if (s_heading (ctx, item, "class") || s_name (ctx, item, "class")) {
            return -1;
        }
        int index = bus_policy_class (self, item->name);
        if (index >= 0 && self->classes [index].line) {
            return s_fail (ctx, item->line, "class '%s' is given twice (first "
                           "at line %d); merge them", item->name,
                           self->classes [index].line);
        }
        if (index < 0) {
            if (self->class_count == BUS_CLASS_MAX) {
                return s_fail (ctx, item->line, "too many classes; at most "
                               "%d, built-ins included", BUS_CLASS_MAX);
            }
            index = (int) self->class_count++;
            strcpy (self->classes [index].name, item->name);
            self->classes [index].quorum = 1;
            self->classes [index].ttl_s = 3600;
        }
        bus_class_t *class = &self->classes [index];
        class->line = item->line;

        int seen [S_OPTIONS_MAX] = { 0 };
        char where [BUS_NAME_MAX + 16];
        snprintf (where, sizeof where, "class '%s'", class->name);
        if (s_options (ctx, item->child, s_class_options, where, class,
                       s_class_other, seen)) {
            return -1;
        }
        if (class->approver_count && class->quorum > class->approver_count) {
            return s_fail (ctx, seen [S_QUORUM], "quorum %u in class '%s' "
                           "exceeds its %zu approvers; lower it or add "
                           "approvers", class->quorum, class->name,
                           class->approver_count);
        }
    }
    return 0;
}

//  key, provider, class, role
//  "YYYY-MM-DD", optionally "THH:MM" or "THH:MM:SS", optionally "Z": UTC.
static int
s_date (const char *text, uint64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
    if (sscanf (text, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10) {
        return -1;
    }
    const char *rest = text + used;
    if (*rest == 'T' || *rest == ' ') {
        int more = 0;
        if (sscanf (rest + 1, "%2d:%2d%n", &h, &mi, &more) != 2 || more != 5) {
            return -1;
        }
        rest += 1 + more;
        if (*rest == ':') {
            if (sscanf (rest + 1, "%2d%n", &sec, &more) != 1 || more != 2) {
                return -1;
            }
            rest += 3;
        }
    }
    if (*rest == 'Z') {
        rest++;
    }
    if (*rest || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59
    ||  sec > 60) {
        return -1;
    }
    //  Days from the civil date (Howard Hinnant's algorithm), no time zone.
    int yy = y - (mo <= 2);
    int era = yy / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (mo + (mo > 2? -3: 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t) era * 146097 + doe - 719468;
    *out = (uint64_t) ((days * 86400 + h * 3600 + mi * 60 + sec) * INT64_C (1000000));
    return 0;
}

static int
s_agent_other (s_ctx_t *ctx, void *base, s_item_t *item)
{
    static const char *roles [] = { "agent", "approver", "operator", "monitor", NULL };
    bus_agent_t *agent = base;
    const bus_policy_t *self = &ctx->self->base;
    const char *value = item->value;
    if (strcmp (item->name, "key") == 0 || strcmp (item->name, "next_key") == 0) {
        uint8_t raw [32];
        if (strlen (value) != BUS_KEY_Z85_LEN || !zmq_z85_decode (raw, value)) {
            return s_fail (ctx, item->line, "%s of agent '%s' is not a %d-"
                           "character Z85 CURVE public key; quote it, Z85 "
                           "may contain '#'", item->name, agent->name, BUS_KEY_Z85_LEN);
        }
        //  Fingerprints once here, not per logged message.
        if (item->name [0] == 'k') {
            memcpy (agent->key, raw, sizeof raw);
            strcpy (agent->key_z85, value);
            bus_keys_fingerprint (agent->key_fp, agent->key_z85);
        }
        else {
            strcpy (agent->next_key_z85, value);
            bus_keys_fingerprint (agent->next_key_fp, agent->next_key_z85);
        }
    }
    else
    if (strcmp (item->name, "created") == 0 || strcmp (item->name, "expires") == 0) {
        uint64_t when;
        if (s_date (value, &when) != 0) {
            return s_fail (ctx, item->line, "%s of agent '%s' is not a date: write "
                           "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (UTC)", item->name,
                           agent->name);
        }
        if (item->name [0] == 'c') {
            agent->created_us = when;
        }
        else {
            agent->expires_us = when;
        }
    }
    else
    if (strcmp (item->name, "provider") == 0) {
        if (!bus_name_valid (value, strlen (value))) {
            return s_fail (ctx, item->line, "provider '%.64s' is not valid; "
                           "use a-z 0-9 . _ -", value);
        }
        strcpy (agent->provider, value);
    }
    else
    if (strcmp (item->name, "class") == 0) {
        agent->class_index = bus_policy_class (self, value);
        if (agent->class_index < 0) {
            char known [S_KNOWN_MAX] = "";
            s_known_classes (self, known, sizeof known);
            return s_fail (ctx, item->line, "unknown class '%.64s' for agent "
                           "'%s' (known: %s)", value, agent->name, known);
        }
    }
    else {
        size_t count;
        char **words = s_split (ctx, item, &count);
        int choice = words? 0: -1;
        agent->roles = 0;
        for (size_t i = 0; choice >= 0 && i < count; i++) {
            choice = s_choice (ctx, item->line, "role", words [i], roles);
            agent->roles |= choice >= 0? 1u << choice: 0;
        }
        free (words);
        return choice < 0? -1: 0;
    }
    return 0;
}

//  FNV-1a over the name; head gets its first S_HEAD bytes, NUL-padded.
//  Returns the hash; *len the name's length.
static uint64_t
s_name_hash (const char *name, char head [S_HEAD], size_t *len)
{
    uint64_t h = bus_fnv1a_str (BUS_FNV_OFFSET, name, len);
    memset (head, 0, S_HEAD);
    memcpy (head, name, *len < S_HEAD? *len: S_HEAD);
    return h;
}

//  A name to look up: its hash and head, which s_name_key computes before
//  s_name_find reads the table, so that a reader of many can ask for
//  their slots ahead (s_edges_share).
typedef struct {
    const char *name;
    uint64_t hash;
    size_t len;
    char head [S_HEAD];
} s_name_t;

static inline void
s_name_key (s_name_t *key, const char *name)
{
    key->name = name;
    key->hash = s_name_hash (name, key->head, &key->len);
}

static const s_slot_t *
s_name_slot (const s_policy_t *self, const s_name_t *key)
{
    return self->names_size? &self->by_name [key->hash & (self->names_size - 1)]: NULL;
}

static inline const bus_agent_t *
s_name_find (const s_policy_t *self, const s_name_t *key)
{
    if (!self->names_size) {
        return NULL;
    }
    size_t mask = self->names_size - 1;
    for (size_t i = key->hash & mask; self->by_name [i].agent; i = (i + 1) & mask) {
        const s_slot_t *slot = &self->by_name [i];
        if (slot->tag == (uint32_t) (key->hash >> 32)
        &&  memcmp (slot->head, key->head, S_HEAD) == 0) {
            //  A shorter name is all in the head, with its NUL.
            const bus_agent_t *agent = &self->base.agents [slot->agent - 1];
            if (key->len < S_HEAD || strcmp (agent->name + S_HEAD, key->name + S_HEAD) == 0) {
                return agent;
            }
        }
    }
    return NULL;
}

//  The agents by name, once they are sorted and known distinct.
static int
s_index_names (s_ctx_t *ctx)
{
    s_policy_t *self = ctx->self;
    size_t count = self->base.agent_count, size = 16;
    while (size < 2 * count) {
        size *= 2;
    }
    self->by_name = bus_big_calloc (size, sizeof *self->by_name);
    if (!self->by_name) {
        return s_nomem (ctx);
    }
    self->names_size = size;
    for (size_t a = 0; a < count; a++) {
        s_slot_t slot = { .agent = (uint32_t) (a + 1) };
        size_t len;
        uint64_t h = s_name_hash (self->base.agents [a].name, slot.head, &len);
        slot.tag = (uint32_t) (h >> 32);
        size_t i = h & (size - 1);
        while (self->by_name [i].agent) {
            i = (i + 1) & (size - 1);
        }
        self->by_name [i] = slot;
    }
    return 0;
}

//  Two threads share the long sections of a fleet's policy (its agents,
//  its edges): fn reads entries [first, last) of its section, each share
//  with a copy of the context whose err is its own; it writes only its own
//  entries' places and items, so two can run at once. s_shared runs
//  [0, split) and [split, n), on two threads when both are not empty and
//  there are two CPUs, and tells the first error in the file: the first
//  share's, else the second's.
typedef int (s_share_fn) (s_ctx_t *ctx, void *arg, size_t first, size_t last);

typedef struct {
    s_ctx_t ctx;
    s_share_fn *fn;
    void *arg;
    size_t first, last;
    bus_error_t err;
    int rc;
} s_share_t;

static void *
s_share_run (void *arg)
{
    s_share_t *share = arg;
    share->rc = share->fn (&share->ctx, share->arg, share->first, share->last);
    return NULL;
}

static int
s_shared (s_ctx_t *ctx, size_t n, size_t split, s_share_fn *fn, void *arg)
{
    s_share_t shares [2];
    for (int s = 0; s < 2; s++) {
        shares [s] = (s_share_t) { .ctx = *ctx, .fn = fn, .arg = arg,
                                   .first = s? split: 0, .last = s? n: split };
        shares [s].ctx.err = &shares [s].err;
    }
    pthread_t thread;
    bool threaded = split > 0 && split < n && sysconf (_SC_NPROCESSORS_ONLN) > 1
                 && pthread_create (&thread, NULL, s_share_run, &shares [1]) == 0;
    s_share_run (&shares [0]);
    if (threaded) {
        pthread_join (thread, NULL);
    }
    else
    if (shares [0].rc == 0) {
        s_share_run (&shares [1]);
    }
    for (int s = 0; s < 2; s++) {
        if (shares [s].rc != 0) {
            *ctx->err = shares [s].err;
            return -1;
        }
    }
    return 0;
}

//  A fleet's agents and edges are most of its file: with this many, two
//  threads read them.
#define S_SHARED_AGENTS (1u << 13)
#define S_SHARED_EDGES  (1u << 16)

static int
s_by_name (const void *a, const void *b)
{
    return strcmp (((const bus_agent_t *) a)->name,
                   ((const bus_agent_t *) b)->name);
}

//  A text's first 8 bytes (0 after its end) as a number that orders as
//  strcmp does the texts, so far as it goes.
static uint64_t
s_prefix (const char *text)
{
    uint64_t prefix = 0;
    for (int i = 0; i < 8 && text [i]; i++) {
        prefix |= (uint64_t) (unsigned char) text [i] << (56 - 8 * i);
    }
    return prefix;
}

//  By key; a fleet's 100,000 keys are sorted without reading the agents
//  they live in, which would be a cache miss each, but for ties.
static int
s_by_key (const void *a, const void *b)
{
    const s_keyref_t *x = a, *y = b;
    if (x->prefix != y->prefix) {
        return x->prefix < y->prefix? -1: 1;
    }
    return strcmp (x->key, y->key);
}

//  Agents [first, last) of the section, heads [i] the heading of agent i.
static int
s_agents_share (s_ctx_t *ctx, void *arg, size_t first, size_t last)
{
    const int *heads = arg;
    bus_policy_t *self = &ctx->self->base;
    for (size_t a = first; a < last; a++) {
        s_item_t *item = &ctx->items [heads [a]];
        if (s_heading (ctx, item, "agent") || s_name (ctx, item, "agent")) {
            return -1;
        }
        bus_agent_t *agent = &self->agents [a];
        strcpy (agent->name, item->name);
        agent->class_index = -1;
        agent->accepts_restricted = true;
        agent->roles = BUS_ROLE_AGENT;
        agent->max_backlog = self->max_backlog;
        agent->frames = self->frames;
        agent->bytes = self->bytes;
        agent->log_budget = self->log_budget;
        agent->line = item->line;

        int seen [S_OPTIONS_MAX] = { 0 };
        char where [BUS_NAME_MAX + 16];
        snprintf (where, sizeof where, "agent '%s'", agent->name);
        if (s_options (ctx, item->child, s_agent_options, where, agent,
                       s_agent_other, seen)) {
            return -1;
        }
        if (!seen [S_KEY]) {
            return s_fail (ctx, item->line, "agent '%s' has no key; add "
                           "key = \"<its 40-character Z85 public key>\"",
                           agent->name);
        }
        //  An agent that reads outside content can be steered by it: it may
        //  not be the person who approves, nor the one who clears taint.
        if (agent->untrusted && (agent->roles & (BUS_ROLE_APPROVER | BUS_ROLE_OPERATOR))) {
            return s_fail (ctx, item->line, "agent '%s' is trust = untrusted and has the %s "
                           "role; untrusted agents may not approve or operate: drop the role "
                           "or give it to a trusted agent", agent->name,
                           agent->roles & BUS_ROLE_APPROVER? "approver": "operator");
        }
    }
    return 0;
}

//  Every key of every agent (key, next_key) into by_key, sorted.
static void *
s_index_keys (void *arg)
{
    s_policy_t *self = arg;
    size_t keys = 0;
    for (size_t i = 0; i < self->base.agent_count; i++) {
        const bus_agent_t *agent = &self->base.agents [i];
        self->by_key [keys++] = (s_keyref_t) { s_prefix (agent->key_z85), agent->key_z85,
                                               agent->key_fp, agent };
        if (agent->next_key_z85 [0]) {
            self->by_key [keys++] = (s_keyref_t) { s_prefix (agent->next_key_z85),
                                                   agent->next_key_z85, agent->next_key_fp,
                                                   agent };
        }
    }
    self->key_count = keys;
    qsort (self->by_key, keys, sizeof *self->by_key, s_by_key);
    return NULL;
}

static int
s_section_agents (s_ctx_t *ctx, int first)
{
    bus_policy_t *self = &ctx->self->base;
    size_t count = 0;
    for (int i = first; i >= 0; i = ctx->items [i].next) {
        count++;
    }
    self->agents = bus_big_calloc (count + 1, sizeof *self->agents);
    ctx->self->by_key = bus_big_calloc (2 * count + 1, sizeof *ctx->self->by_key);
    int *heads = malloc ((count + 1) * sizeof *heads);
    if (!self->agents || !ctx->self->by_key || !heads) {
        free (heads);
        return s_nomem (ctx);
    }
    count = 0;
    for (int i = first; i >= 0; i = ctx->items [i].next) {
        heads [count++] = i;
    }
    int rc = s_shared (ctx, count, count >= S_SHARED_AGENTS? count / 2: count,
                       s_agents_share, heads);
    free (heads);
    if (rc != 0) {
        return -1;
    }
    self->agent_count = count;
    //  Sorted for bsearch; neighbours then show duplicates.
    qsort (self->agents, count, sizeof *self->agents, s_by_name);
    for (size_t i = 0; i < count; i++) {
        const bus_agent_t *a = &self->agents [i - (i > 0)];
        const bus_agent_t *b = &self->agents [i];
        if (a != b && strcmp (a->name, b->name) == 0) {
            int earlier = a->line < b->line? a->line: b->line;
            int later = a->line > b->line? a->line: b->line;
            return s_fail (ctx, later, "agent '%s' is given twice (lines %d "
                           "and %d); rename one", a->name, earlier, later);
        }
    }
    //  The key index and the name index only read the agents: for a fleet,
    //  the keys are sorted on a second thread.
    pthread_t thread;
    bool threaded = count >= S_SHARED_AGENTS && sysconf (_SC_NPROCESSORS_ONLN) > 1
                 && pthread_create (&thread, NULL, s_index_keys, ctx->self) == 0;
    if (!threaded) {
        s_index_keys (ctx->self);
    }
    int rc_names = s_index_names (ctx);
    //  Keys live at most key_max_age days from when they were made.
    for (size_t i = 0; i < count; i++) {
        bus_agent_t *agent = &self->agents [i];
        if (self->key_max_age && agent->created_us) {
            uint64_t limit = agent->created_us + (uint64_t) self->key_max_age * 86400 * 1000000;
            if (!agent->expires_us || limit < agent->expires_us) {
                agent->expires_us = limit;
            }
        }
    }
    if (threaded) {
        pthread_join (thread, NULL);
    }
    if (rc_names != 0) {
        return -1;
    }
    //  One key per agent: a shared key would let one process speak as
    //  several agents, and the key is what a session authenticates. During
    //  a rotation an agent has two, and neither may be another's.
    size_t keys = ctx->self->key_count;
    for (size_t i = 1; i < keys; i++) {
        const bus_agent_t *a = ctx->self->by_key [i - 1].agent;
        const bus_agent_t *b = ctx->self->by_key [i].agent;
        if (s_by_key (&ctx->self->by_key [i - 1], &ctx->self->by_key [i]) == 0) {
            if (a->line > b->line) {
                const bus_agent_t *swap = a;
                a = b;
                b = swap;
            }
            if (a == b) {
                return s_fail (ctx, a->line, "agent '%s' has the same key as key and as "
                               "next_key; a rotation needs a new key pair (bulkhead keygen "
                               "%s --rotate)", a->name, a->name);
            }
            return s_fail (ctx, b->line, "agent '%s' has the same key as "
                           "agent '%s' (line %d); give each agent its own "
                           "key pair", b->name, a->name, a->line);
        }
    }
    return 0;
}

//  Approvers name agents, so they are checked once the agents are known.
static int
s_check_approvers (s_ctx_t *ctx)
{
    const bus_policy_t *self = &ctx->self->base;
    for (size_t c = 0; c < self->class_count; c++) {
        const bus_class_t *class = &self->classes [c];
        for (size_t i = 0; i < class->approver_count; i++) {
            const char *name = class->approvers [i];
            const bus_agent_t *agent = bus_policy_agent (self, name);
            if (!agent) {
                char known [S_KNOWN_MAX] = "";
                s_known_agents (self, BUS_ROLE_APPROVER, known, sizeof known);
                return s_fail (ctx, ctx->approvers_line [c], "unknown agent "
                               "'%.64s' in approvers of class '%s' (known "
                               "approvers: %s)", name, class->name, known);
            }
            if (!(agent->roles & BUS_ROLE_APPROVER)) {
                return s_fail (ctx, ctx->approvers_line [c], "agent '%s' in "
                               "approvers of class '%s' lacks the approver "
                               "role; add role = approver to it (line %d)",
                               name, class->name, agent->line);
            }
        }
    }
    return 0;
}

//  The agent the item names (agent, looked up), or fails listing them.
static const bus_agent_t *
s_edge_known (s_ctx_t *ctx, const s_item_t *item, const char *role, const bus_agent_t *agent)
{
    if (!agent) {
        char known [S_KNOWN_MAX] = "";
        s_known_agents (&ctx->self->base, ~0u, known, sizeof known);
        s_fail (ctx, item->line, "unknown agent '%.64s' as %s in edges "
                "(known: %s)", item->name, role, known);
    }
    return agent;
}

//  One scope line: `actions`, `tools` or `resources` (glob lists, "none"
//  for a message without one, one alphabet: printable ASCII, no spaces, as
//  a Send's action) or `outside` (deny or hold). `where` names the block
//  for errors ("edge a -> b", "finance under edge a -> b").
static const char *s_scope_keys [] = { "actions", "tools", "resources", "outside", NULL };

static int
s_scope_line (s_ctx_t *ctx, bus_scope_t *scope, s_item_t *item, int k, const char *where)
{
    if (s_scalar (ctx, item)) {
        return -1;
    }
    if (k == 3) {
        if (strcmp (item->value, "deny") != 0 && strcmp (item->value, "hold") != 0) {
            return s_fail (ctx, item->line, "outside must be deny or hold, not '%.64s'",
                           item->value);
        }
        scope->outside = strcmp (item->value, "hold") == 0? BUS_OUTSIDE_HOLD: BUS_OUTSIDE_DENY;
        return 0;
    }
    size_t count;
    char **list = s_split (ctx, item, &count);
    if (!list) {
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        for (const char *p = list [i]; *p; p++) {
            if (*p < 0x21 || *p > 0x7e) {
                s_fail (ctx, item->line, "pattern '%.64s' in %s of %s may hold only "
                        "printable ASCII, no spaces", list [i], s_scope_keys [k], where);
                free (list);
                return -1;
            }
        }
    }
    //  The words point into the file's text, which does not outlive the
    //  parse: one block of their own, freed with the edge.
    char **packed = s_pack (list, count);
    free (list);
    if (!packed) {
        return s_nomem (ctx);
    }
    bus_patterns_t *patterns = k == 0? &scope->actions: k == 1? &scope->tools: &scope->resources;
    patterns->patterns = packed;
    patterns->count = count;
    patterns->line = item->line;
    return 0;
}

//  The lines under an edge: its own scope lines, and blocks named by one
//  of its classes with scope lines for that class only.
static int
s_edge_scope (s_ctx_t *ctx, bus_edge_t *edge, s_item_t *option, const bus_agent_t *from,
              const bus_agent_t *to)
{
    bus_policy_t *self = &ctx->self->base;
    if (option->child < 0) {
        return 0;                       //  not scoped: most edges
    }
    char where [2 * BUS_NAME_MAX + 80];
    snprintf (where, sizeof where, "edge %s -> %s", from->name, to->name);
    size_t blocks = 0;
    for (int c = option->child; c >= 0; c = ctx->items [c].next) {
        blocks += ctx->items [c].child >= 0;
    }
    //  One block: the edge's own scope, then one per class block.
    edge->scope = calloc (blocks + 1, sizeof *edge->scope);
    if (!edge->scope) {
        return s_nomem (ctx);
    }
    edge->scope->class_index = -1;
    edge->scope->line = edge->line;
    edge->class_scopes = blocks? edge->scope + 1: NULL;
    int seen [4] = { 0 };
    for (int c = option->child; c >= 0; c = ctx->items [c].next) {
        s_item_t *item = &ctx->items [c];
        int k = 0;
        while (s_scope_keys [k] && strcmp (s_scope_keys [k], item->name) != 0) {
            k++;
        }
        if (s_scope_keys [k]) {
            if (seen [k]) {
                return s_fail (ctx, item->line, "'%s' under %s is given twice (first at line "
                               "%d); keep one", s_scope_keys [k], where, seen [k]);
            }
            seen [k] = item->line;
            if (s_scope_line (ctx, edge->scope, item, k, where) != 0) {
                return -1;
            }
            continue;
        }
        int class = bus_policy_class (self, item->name);
        if (class < 0 || !(edge->classes >> class & 1) || item->child < 0) {
            return s_fail (ctx, item->line, "unknown key '%.64s' under %s (known: actions, "
                           "tools, resources, outside, or a block named by a class the edge "
                           "carries, with those lines under it)", item->name, where);
        }
        if (s_heading (ctx, item, "a class block")) {
            return -1;
        }
        for (size_t b = 0; b < edge->class_scope_count; b++) {
            if (edge->class_scopes [b].class_index == class) {
                return s_fail (ctx, item->line, "class %s under %s is given twice (first at "
                               "line %d); keep one", item->name, where,
                               edge->class_scopes [b].line);
            }
        }
        bus_scope_t *scope = &edge->class_scopes [edge->class_scope_count++];
        scope->class_index = class;
        scope->line = item->line;
        char inner [sizeof where + BUS_NAME_MAX + 8];
        snprintf (inner, sizeof inner, "%s under %s", item->name, where);
        int inner_seen [4] = { 0 };
        for (int d = item->child; d >= 0; d = ctx->items [d].next) {
            s_item_t *line = &ctx->items [d];
            int j = 0;
            while (s_scope_keys [j] && strcmp (s_scope_keys [j], line->name) != 0) {
                j++;
            }
            if (!s_scope_keys [j]) {
                return s_fail (ctx, line->line, "unknown key '%.64s' under %s (known: "
                               "actions, tools, resources, outside)", line->name, inner);
            }
            if (inner_seen [j]) {
                return s_fail (ctx, line->line, "'%s' under %s is given twice (first at line "
                               "%d); keep one", s_scope_keys [j], inner, inner_seen [j]);
            }
            inner_seen [j] = line->line;
            if (s_scope_line (ctx, scope, line, j, inner) != 0) {
                return -1;
            }
        }
    }
    //  `outside` needs something to be outside of, wherever it is said.
    if (edge->scope->outside && bus_scope_empty (edge->scope) && !edge->class_scope_count) {
        return s_fail (ctx, seen [3], "outside under %s has no scope to be outside of; add "
                       "actions, tools or resources", where);
    }
    for (size_t b = 0; b < edge->class_scope_count; b++) {
        bus_scope_t resolved;
        bus_policy_scope (edge, edge->class_scopes [b].class_index, &resolved);
        if (edge->class_scopes [b].outside && bus_scope_empty (&resolved)) {
            return s_fail (ctx, edge->class_scopes [b].line, "outside under %s under %s has "
                           "no scope to be outside of; add actions, tools or resources",
                           self->classes [edge->class_scopes [b].class_index].name, where);
        }
    }
    return 0;
}

bool
bus_scope_empty (const bus_scope_t *scope)
{
    return !scope->actions.count && !scope->tools.count && !scope->resources.count;
}

const bus_scope_t *
bus_edge_scope (const bus_edge_t *edge)
{
    static const bus_scope_t none = { .class_index = -1 };
    return edge->scope? edge->scope: &none;
}

void
bus_policy_scope (const bus_edge_t *edge, int class_index, bus_scope_t *out)
{
    *out = *bus_edge_scope (edge);
    out->line = edge->line;             //  where the edge's own lines are
    for (size_t b = 0; b < edge->class_scope_count; b++) {
        const bus_scope_t *block = &edge->class_scopes [b];
        if (block->class_index != class_index) {
            continue;
        }
        if (block->actions.count) {
            out->actions = block->actions;
        }
        if (block->tools.count) {
            out->tools = block->tools;
        }
        if (block->resources.count) {
            out->resources = block->resources;
        }
        if (block->outside) {
            out->outside = block->outside;
        }
        out->class_index = class_index;
        out->line = block->line;
        break;
    }
    if (!out->outside) {
        out->outside = BUS_OUTSIDE_DENY;
    }
}

//  One sender heading of the edges section: its sender and where its
//  edges go in the (from, to) order, known before any edge is read.
typedef struct {
    int item;
    uint32_t from;
    size_t at;                          //  its first edge's place
} s_sender_t;

//  One edge line: its classes and what is under it, into edge.
static int
s_edge_read (s_ctx_t *ctx, s_item_t *option, uint32_t from_index, const bus_agent_t *from,
             const bus_agent_t *to, bus_edge_t *edge)
{
    bus_policy_t *self = &ctx->self->base;
    if (!option->value || !*option->value) {
        return s_fail (ctx, option->line, "edge %s -> %s needs its classes: %s = "
                       "message, query", from->name, to->name, option->name);
    }
    edge->from = from_index;
    edge->to = bus_policy_agent_index (self, to);
    edge->line = option->line;

    //  A million edges: their few classes need no array of their own.
    char *room [8];
    size_t words;
    char **names = s_split_in (ctx, option, room, 8, &words);
    if (!names) {
        return -1;
    }
    int rc = 0;
    for (size_t w = 0; w < words && rc == 0; w++) {
        int class = bus_policy_class (self, names [w]);
        if (class < 0) {
            char known [S_KNOWN_MAX] = "";
            s_known_classes (self, known, sizeof known);
            rc = s_fail (ctx, option->line, "unknown class '%.64s' in edge "
                         "%s -> %s (known: %s)", names [w], from->name,
                         to->name, known);
        }
        else {
            edge->classes |= UINT64_C (1) << class;
        }
    }
    if (names != room) {
        free (names);
    }
    return rc? rc: s_edge_scope (ctx, edge, option, from, to);
}

//  Names looked up at once (s_names_ahead).
#define S_AHEAD 16

//  The next S_AHEAD items of a list from *item on (fewer at its end; *item
//  moves past them): each one's name hashed and its slot in the name table
//  asked for, before any is read. A fleet's table is megabytes, read at
//  random: the reads then wait for memory together.
static size_t
s_names_ahead (s_ctx_t *ctx, int *item, int group [S_AHEAD], s_name_t keys [S_AHEAD])
{
    size_t n = 0;
    for (; *item >= 0 && n < S_AHEAD; *item = ctx->items [*item].next, n++) {
        group [n] = *item;
        s_name_key (&keys [n], ctx->items [*item].name);
        __builtin_prefetch (s_name_slot (ctx->self, &keys [n]));
    }
    return n;
}

static int
s_edges_share (s_ctx_t *ctx, void *arg, size_t first, size_t last)
{
    const s_sender_t *senders = arg;
    bus_policy_t *self = &ctx->self->base;
    for (size_t h = first; h < last; h++) {
        const s_sender_t *sender = &senders [h];
        const bus_agent_t *from = &self->agents [sender->from];
        size_t at = sender->at;
        //  The recipients S_AHEAD at a time (s_names_ahead).
        int c = ctx->items [sender->item].child;
        while (c >= 0) {
            int group [S_AHEAD];
            s_name_t keys [S_AHEAD];
            size_t n = s_names_ahead (ctx, &c, group, keys);
            for (size_t g = 0; g < n; g++) {
                s_item_t *option = &ctx->items [group [g]];
                const bus_agent_t *to = s_edge_known (ctx, option, "recipient",
                                                      s_name_find (ctx->self, &keys [g]));
                if (!to || s_edge_read (ctx, option, sender->from, from, to,
                                        &self->edges [at++]) != 0) {
                    return -1;
                }
            }
        }
    }
    return 0;
}

//  The order of the edges, for bsearch: (from, to).
static int
s_edge_cmp (const void *a, const void *b)
{
    const bus_edge_t *x = a, *y = b;
    if (x->from != y->from) {
        return x->from < y->from? -1: 1;
    }
    return x->to < y->to? -1: x->to > y->to;
}

//  Within one sender's run: by recipient, then by line.
static int
s_run_cmp (const void *a, const void *b)
{
    const bus_edge_t *x = a, *y = b;
    if (x->to != y->to) {
        return x->to < y->to? -1: 1;
    }
    return x->line < y->line? -1: x->line > y->line;
}

//  Each sender's edges sit together in file order; this puts them in
//  recipient order (equals, which are refused below, by line). Most
//  senders have a few edges: insertion sort, and qsort for long runs.
static void
s_sort_runs (bus_edge_t *edges, size_t n)
{
    for (size_t start = 0, end; start < n; start = end) {
        for (end = start + 1; end < n && edges [end].from == edges [start].from; end++) {
        }
        if (end - start > 32) {
            qsort (edges + start, end - start, sizeof *edges, s_run_cmp);
            continue;
        }
        for (size_t i = start + 1; i < end; i++) {
            if (s_run_cmp (&edges [i - 1], &edges [i]) <= 0) {
                continue;
            }
            bus_edge_t edge = edges [i];
            size_t j = i;
            for (; j > start && s_run_cmp (&edges [j - 1], &edge) > 0; j--) {
                edges [j] = edges [j - 1];
            }
            edges [j] = edge;
        }
    }
}

static int
s_section_edges (s_ctx_t *ctx, int first)
{
    bus_policy_t *self = &ctx->self->base;
    size_t count = 0, headings = 0;
    for (int i = first; i >= 0; i = ctx->items [i].next) {
        headings++;
        count += (size_t) ctx->items [i].children;
    }
    self->edges = bus_big_calloc (count + 1, sizeof *self->edges);
    s_sender_t *senders = malloc ((headings + 1) * sizeof *senders);
    size_t *at = calloc (self->agent_count + 1, sizeof *at);
    if (!self->edges || !senders || !at) {
        free (senders), free (at);
        return s_nomem (ctx);
    }
    //  The headings first, in file order. One that names no agent stops
    //  this pass with its error; the edges above it are still read, and an
    //  error among them comes first in the file, so it is the one told.
    //  The senders are looked up S_AHEAD at a time, as the recipients are.
    size_t valid = 0, known = 0;
    int rc = 0;
    for (int i = first; rc == 0 && i >= 0; ) {
        int group [S_AHEAD];
        s_name_t keys [S_AHEAD];
        size_t n = s_names_ahead (ctx, &i, group, keys);
        for (size_t g = 0; g < n; g++) {
            s_item_t *item = &ctx->items [group [g]];
            const bus_agent_t *from;
            if (s_heading (ctx, item, "sender")
            ||  !(from = s_edge_known (ctx, item, "sender", s_name_find (ctx->self, &keys [g])))) {
                rc = -1;
                break;
            }
            uint32_t index = bus_policy_agent_index (self, from);
            senders [valid++] = (s_sender_t) { .item = group [g], .from = index };
            at [index + 1] += (size_t) item->children;
            known += (size_t) item->children;
        }
    }
    //  Each sender's edges start where the senders before it end; a
    //  sender given under two headings continues where the first ended.
    for (size_t a = 1; a <= self->agent_count; a++) {
        at [a] += at [a - 1];
    }
    for (size_t h = 0; h < valid; h++) {
        senders [h].at = at [senders [h].from];
        at [senders [h].from] += (size_t) ctx->items [senders [h].item].children;
    }
    free (at);
    //  The edges into their places, in two shares of about as many edges
    //  (the second from the first heading past half of them).
    size_t split = valid, seen = 0;
    if (known >= S_SHARED_EDGES) {
        for (split = 0; split < valid && seen < known / 2; split++) {
            seen += (size_t) ctx->items [senders [split].item].children;
        }
    }
    int shared_rc = s_shared (ctx, valid, split, s_edges_share, senders);
    free (senders);
    //  What destroy frees: every place was zeroed, and a failed share
    //  leaves the places after its error so.
    self->edge_count = known;
    if (shared_rc != 0) {
        return -1;
    }
    if (rc != 0) {
        return -1;                      //  the heading's error, in ctx->err
    }
    s_sort_runs (self->edges, count);
    ctx->self->edge_first = bus_big_calloc (self->agent_count + 2, sizeof *ctx->self->edge_first);
    if (!ctx->self->edge_first) {
        return s_nomem (ctx);
    }
    for (size_t i = 0; i < count; i++) {
        ctx->self->edge_first [self->edges [i].from + 1]++;
    }
    for (size_t a = 0; a < self->agent_count; a++) {
        ctx->self->edge_first [a + 1] += ctx->self->edge_first [a];
    }
    for (size_t i = 1; i < count; i++) {
        const bus_edge_t *a = &self->edges [i - 1], *b = &self->edges [i];
        if (a->from == b->from && a->to == b->to) {
            int earlier = a->line < b->line? a->line: b->line;
            int later = a->line > b->line? a->line: b->line;
            return s_fail (ctx, later, "edge %s -> %s is given twice (first "
                           "at line %d); list its classes on one line",
                           self->agents [a->from].name,
                           self->agents [a->to].name, earlier);
        }
    }
    return 0;
}

//  One expectation: a heartbeat (agent, every, intent optional) or an
//  expected result (to, reply_within, class optional).
static int
s_expect (s_ctx_t *ctx, s_item_t *item, bus_expect_t *expect)
{
    const bus_policy_t *self = &ctx->self->base;
    if (s_heading (ctx, item, "expect") || s_name (ctx, item, "expect")) {
        return -1;
    }
    strcpy (expect->name, item->name);
    expect->agent = -1;
    expect->class_index = -1;
    expect->line = item->line;
    int seen [S_OPTIONS_MAX] = { 0 };
    char where [BUS_NAME_MAX + 16];
    snprintf (where, sizeof where, "expect '%s'", expect->name);
    for (int i = item->child; i >= 0; i = ctx->items [i].next) {
        s_item_t *option = &ctx->items [i];
        int k = s_key (ctx, option, s_expect_options, where, seen);
        if (k < 0 || s_scalar (ctx, option)) {
            return -1;
        }
        const char *value = option->value;
        if (k == 0 || k == 4) {
            const bus_agent_t *agent = bus_policy_agent (self, value);
            if (!agent) {
                char known [S_KNOWN_MAX] = "";
                s_known_agents (self, ~0u, known, sizeof known);
                return s_fail (ctx, option->line, "unknown agent '%.64s' in %s (known: %s)",
                               value, where, known);
            }
            expect->agent = (int) (agent - self->agents);
        }
        else
        if (k == 1) {
            if (!bus_name_valid (value, strlen (value))) {
                return s_fail (ctx, option->line, "intent '%.64s' in %s is not a name (a-z 0-9 "
                               ". _ -)", value, where);
            }
            strcpy (expect->intent, value);
        }
        else
        if (k == 3) {
            expect->class_index = bus_policy_class (self, value);
            if (expect->class_index < 0) {
                char known [S_KNOWN_MAX] = "";
                s_known_classes (self, known, sizeof known);
                return s_fail (ctx, option->line, "unknown class '%.64s' in %s (known: %s)",
                               value, where, known);
            }
        }
        else
        if (s_u32 (ctx, option, 1, 30 * 86400, &expect->seconds) != 0) {
            return -1;
        }
    }
    bool heartbeat = seen [0] || seen [2] || seen [1];
    bool reply = seen [4] || seen [5] || seen [3];
    if (heartbeat == reply) {
        return s_fail (ctx, item->line, "%s must be a heartbeat (agent, every, intent) or an "
                       "expected result (to, reply_within, class), one of the two", where);
    }
    expect->reply = reply;
    if (heartbeat && (!seen [0] || !seen [2])) {
        return s_fail (ctx, item->line, "%s needs agent = NAME and every = SECONDS", where);
    }
    if (reply && (!seen [4] || !seen [5])) {
        return s_fail (ctx, item->line, "%s needs to = NAME and reply_within = SECONDS", where);
    }
    return 0;
}

static int
s_section_monitor (s_ctx_t *ctx, int first)
{
    bus_monitor_policy_t *monitor = &ctx->self->base.monitor;
    int seen [S_OPTIONS_MAX] = { 0 };
    for (int i = first; i >= 0; i = ctx->items [i].next) {
        s_item_t *item = &ctx->items [i];
        int k = s_key (ctx, item, s_monitor_options, "monitor", seen);
        if (k < 0) {
            return -1;
        }
        if (k == S_EXPECT) {
            if (s_heading (ctx, item, "expect")) {
                return -1;
            }
            size_t count = 0;
            for (int j = item->child; j >= 0; j = ctx->items [j].next) {
                count++;
            }
            monitor->expects = calloc (count? count: 1, sizeof *monitor->expects);
            if (!monitor->expects) {
                return s_nomem (ctx);
            }
            for (int j = item->child; j >= 0; j = ctx->items [j].next) {
                bus_expect_t *expect = &monitor->expects [monitor->expect_count];
                for (size_t e = 0; e < monitor->expect_count; e++) {
                    if (strcmp (monitor->expects [e].name, ctx->items [j].name) == 0) {
                        return s_fail (ctx, ctx->items [j].line, "expect '%.64s' is given twice "
                                       "(first at line %d); rename one", ctx->items [j].name,
                                       monitor->expects [e].line);
                    }
                }
                if (s_expect (ctx, &ctx->items [j], expect) != 0) {
                    return -1;
                }
                monitor->expect_count++;
            }
            continue;
        }
        if (s_scalar (ctx, item)) {
            return -1;
        }
        void *field = (char *) monitor + s_monitor_options [k].offset;
        int rc = 0;
        if (s_monitor_options [k].type == S_NUMBER) {
            rc = s_u32 (ctx, item, s_monitor_options [k].min, s_monitor_options [k].max, field);
        }
        else
        if (s_monitor_options [k].type == S_BOOL) {
            rc = s_bool (ctx, item, field);
        }
        else {
            //  quarantine_on: alert kinds that quarantine their agent at once
            size_t count;
            char **words = s_split (ctx, item, &count);
            rc = words? 0: -1;
            monitor->quarantine_on = 0;
            for (size_t w = 0; rc == 0 && w < count; w++) {
                if (strcmp (words [w], "none") == 0) {
                    continue;
                }
                int kind = s_choice (ctx, item->line, "alert kind", words [w],
                                     (const char *const *) bus_alert_kinds);
                rc = kind < 0? -1: 0;
                monitor->quarantine_on |= kind >= 0? 1u << kind: 0;
            }
            free (words);
        }
        if (rc) {
            return -1;
        }
    }
    return 0;
}

//  Built-ins come first so their indices (and bits in edge masks) are the
//  same in every policy.
static const struct {
    const char *name;
    bool privileged;
} s_builtins [] = {
    { "message", false }, { "query", false },
    { "finance", true }, { "deploy", true }, { "comms", true }
};

static s_policy_t *
s_policy_new (void)
{
    s_policy_t *self = calloc (1, sizeof *self);
    if (self) {
        self->base.classes = calloc (BUS_CLASS_MAX, sizeof *self->base.classes);
    }
    if (!self || !self->base.classes) {
        free (self);
        return NULL;
    }
    for (size_t i = 0; i < sizeof s_builtins / sizeof s_builtins [0]; i++) {
        bus_class_t *class = &self->base.classes [self->base.class_count++];
        strcpy (class->name, s_builtins [i].name);
        class->privileged = class->hold = s_builtins [i].privileged;
        class->quorum = 1;
        class->ttl_s = 3600;
    }
    self->base.max_frame = 65536;
    self->base.max_backlog = 10000;
    self->base.hold_cap_total = 1000;
    self->base.hold_cap_sender = 100;
    self->base.frames = 2000;
    self->base.bytes = 16u << 20;
    self->base.connections = 8;
    self->base.log_budget = 0;
    self->base.backlog_share = 50;
    self->base.monitor = (bus_monitor_policy_t) {
        .on = true, .loop_turns = 4, .loop_depth = 32, .bounce = 3, .factor = 8,
        .min_volume = 60, .learn_hours = 24, .cost_percent = 80, .new_edge_days = 30,
        .probe = 10, .timing_permille = 5, .quiet = 300,
    };
    return self;
}

static int
s_build (s_ctx_t *ctx)
{
    int seen [S_OPTIONS_MAX] = { 0 };
    int child [5] = { -1, -1, -1, -1, -1 };
    for (int i = ctx->count? 0: -1; i >= 0; i = ctx->items [i].next) {
        s_item_t *item = &ctx->items [i];
        int k = s_key (ctx, item, s_sections, "the top level", seen);
        if (k < 0 || s_heading (ctx, item, "section")) {
            return -1;
        }
        child [k] = item->child;
    }
    int bus_seen [S_OPTIONS_MAX] = { 0 };
    if (s_options (ctx, child [0], s_bus_options, "bus", &ctx->self->base,
                   NULL, bus_seen)
    ||  s_section_classes (ctx, child [1])
    ||  s_section_agents (ctx, child [2])
    ||  s_check_approvers (ctx)
    ||  s_section_edges (ctx, child [3])
    ||  s_section_monitor (ctx, child [4])) {
        return -1;
    }
    return 0;
}


//  ---------------------------------------------------------------------
//  Public API

//  Parses text, len bytes in a block of len + 1 that it cuts in place;
//  path is what the policy records as its file.
static int
s_parse (bus_policy_t **out, char *text, size_t len,
         const char *origin, const char *path, bus_error_t *err)
{
    assert (out);
    assert (text);
    s_ctx_t ctx = { .origin = origin? origin: "(policy)", .err = err, .buf = text };
    if (sodium_init () < 0) {
        return bus_fail (err, BUS_EIO, "%s: libsodium failed to start",
                         ctx.origin);
    }
    //  The hash is of the bytes as they are, before the reader cuts them:
    //  a fleet's tens of megabytes on a second thread, ahead of the reader.
    s_hash_t hash = { .text = (const uint8_t *) text, .len = len, .done = len };
    pthread_t thread;
    bool threaded = false;
    if (len >= S_SHARED_HASH && sysconf (_SC_NPROCESSORS_ONLN) > 1) {
        hash.done = 0;
        pthread_mutex_init (&hash.lock, NULL);
        pthread_cond_init (&hash.moved, NULL);
        threaded = pthread_create (&thread, NULL, s_hash_run, &hash) == 0;
        if (threaded) {
            ctx.hash = &hash;
        }
        else {
            hash.done = len;
        }
    }
    if (!threaded) {
        crypto_generichash (hash.out, sizeof hash.out, hash.text, len, NULL, 0);
    }
    ctx.self = s_policy_new ();
    int rc = ctx.self? 0: s_nomem (&ctx);
    if (rc == 0) {
        rc = s_read (&ctx, len) || s_build (&ctx)? -1: 0;
    }
    if (threaded) {
        pthread_join (thread, NULL);
        pthread_mutex_destroy (&hash.lock);
        pthread_cond_destroy (&hash.moved);
    }
    if (rc == 0) {
        ctx.self->base.path = strdup (path);
        rc = ctx.self->base.path? 0: s_nomem (&ctx);
    }
    if (rc == 0) {
        sodium_bin2hex (ctx.self->base.hash, sizeof ctx.self->base.hash,
                        hash.out, sizeof hash.out);
    }
    bus_big_free (ctx.items);
    bus_policy_t *self = ctx.self? &ctx.self->base: NULL;
    if (rc) {
        bus_policy_destroy (&self);
    }
    else {
        *out = self;
    }
    return rc;
}

int
bus_policy_parse (bus_policy_t **out, const char *text, size_t len,
                  const char *origin, bus_error_t *err)
{
    assert (text || len == 0);
    char *copy = malloc (len + 1);
    if (!copy) {
        return bus_fail (err, BUS_ENOMEM, "%s: out of memory", origin? origin: "(policy)");
    }
    if (len) {
        memcpy (copy, text, len);
    }
    int rc = s_parse (out, copy, len, origin, "", err);
    free (copy);
    return rc;
}

int
bus_policy_load (bus_policy_t **out, const char *path, bus_error_t *err)
{
    return bus_policy_load_max (out, path, S_FILE_MAX, err);
}

int
bus_policy_load_max (bus_policy_t **out, const char *path, size_t max_bytes, bus_error_t *err)
{
    assert (out);
    assert (path);
    FILE *file = fopen (path, "rb");
    if (!file) {
        return bus_fail (err, BUS_EIO, "%s: %s", path, strerror (errno));
    }
    //  Read to the end rather than trust a size from stat: the path may
    //  be a pipe. The cap stops a wrong path from eating memory. A regular
    //  file's size is a good first guess (one block, no copies), with room
    //  for the NUL the reader adds and for a read that finds the end.
    char *text = NULL;
    size_t len = 0, size = 0;
    int rc = 0;
    struct stat st;
    if (fstat (fileno (file), &st) == 0 && S_ISREG (st.st_mode) && st.st_size > 0
    &&  (uint64_t) st.st_size <= max_bytes) {
        size = (size_t) st.st_size + 2;
        text = bus_big_calloc (size, 1);
        if (!text) {
            size = 0;
        }
    }
    while (rc == 0 && len <= max_bytes) {
        if (len + 1 >= size) {
            //  It grew, or is a pipe: a block twice the size, by hand, as
            //  the first is bus_big's
            size_t bigger_size = size? size * 2: 4096;
            char *bigger = bus_big_calloc (bigger_size, 1);
            if (!bigger) {
                rc = bus_fail (err, BUS_ENOMEM, "%s: out of memory", path);
                break;
            }
            if (len) {
                memcpy (bigger, text, len);
            }
            bus_big_free (text);
            text = bigger;
            size = bigger_size;
        }
        size_t got = fread (text + len, 1, size - len, file);
        len += got;
        if (got == 0) {
            if (ferror (file)) {
                rc = bus_fail (err, BUS_EIO, "%s: %s", path, strerror (errno));
            }
            break;
        }
    }
    fclose (file);
    if (rc == 0 && len > max_bytes) {
        rc = bus_fail (err, BUS_EPOLICY, "%s: larger than %zu bytes; is this "
                       "the policy file?", path, max_bytes);
    }
    if (rc == 0) {
        rc = s_parse (out, text, len, path, path, err);
    }
    bus_big_free (text);
    return rc;
}

void
bus_policy_destroy (bus_policy_t **self_p)
{
    if (self_p && *self_p) {
        s_policy_t *self = (s_policy_t *) *self_p;
        for (size_t i = 0; i < self->base.class_count; i++) {
            free (self->base.classes [i].actions);
            free (self->base.classes [i].approvers);
        }
        free (self->base.classes);
        bus_big_free (self->base.agents);
        for (size_t i = 0; self->base.edges && i < self->base.edge_count; i++) {
            bus_edge_t *edge = &self->base.edges [i];
            //  The own scope and the class blocks are one allocation.
            for (size_t b = 0; edge->scope && b <= edge->class_scope_count; b++) {
                bus_scope_t *scope = &edge->scope [b];
                free (scope->actions.patterns);
                free (scope->tools.patterns);
                free (scope->resources.patterns);
            }
            free (edge->scope);
        }
        bus_big_free (self->base.edges);
        free (self->base.monitor.expects);
        free (self->base.path);
        bus_big_free (self->by_key);
        bus_big_free (self->by_name);
        bus_big_free (self->edge_first);
        free (self);
        *self_p = NULL;
    }
}

static int
s_name_vs_agent (const void *name, const void *agent)
{
    return strcmp (name, ((const bus_agent_t *) agent)->name);
}

static int
s_key_vs_ref (const void *key, const void *ref)
{
    return strcmp (key, ((const s_keyref_t *) ref)->key);
}

const bus_agent_t *
bus_policy_agent (const bus_policy_t *self, const char *name)
{
    if (!self || !name || !self->agent_count) {
        return NULL;
    }
    const s_policy_t *policy = (const s_policy_t *) self;
    if (policy->names_size) {
        s_name_t key;
        s_name_key (&key, name);
        return s_name_find (policy, &key);
    }
    return bsearch (name, self->agents, self->agent_count,
                    sizeof *self->agents, s_name_vs_agent);
}

const bus_agent_t *
bus_policy_agent_by_key (const bus_policy_t *self, const char *key_z85)
{
    if (!self || !key_z85 || !self->agent_count) {
        return NULL;
    }
    const s_policy_t *policy = (const s_policy_t *) self;
    const s_keyref_t *found = bsearch (key_z85, policy->by_key, policy->key_count,
                                       sizeof *policy->by_key, s_key_vs_ref);
    return found? found->agent: NULL;
}

const bus_agent_t *
bus_policy_agent_by_live_key (const bus_policy_t *self, const char *key_z85, uint64_t now_us,
                              const char **fp)
{
    if (!self || !key_z85 || !self->agent_count) {
        return NULL;
    }
    const s_policy_t *policy = (const s_policy_t *) self;
    const s_keyref_t *found = bsearch (key_z85, policy->by_key, policy->key_count,
                                       sizeof *policy->by_key, s_key_vs_ref);
    if (!found) {
        return NULL;
    }
    //  The expiry is the current key's; a next_key has none of its own yet
    //  (it becomes the key, with its own dates, when the rotation ends).
    bool current = found->key == found->agent->key_z85;
    if (current && found->agent->expires_us && now_us >= found->agent->expires_us) {
        return NULL;
    }
    if (fp) {
        *fp = found->fp;
    }
    return found->agent;
}

uint64_t
bus_policy_next_expiry (const bus_policy_t *self, uint64_t after_us)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; self && i < self->agent_count; i++) {
        uint64_t when = self->agents [i].expires_us;
        if (when > after_us && when < next) {
            next = when;
        }
    }
    return next;
}

const bus_edge_t *
bus_policy_edge (const bus_policy_t *self,
                 const bus_agent_t *from, const bus_agent_t *to)
{
    if (!self || !from || !to || !self->edge_count) {
        return NULL;
    }
    bus_edge_t key = {
        .from = bus_policy_agent_index (self, from),
        .to = bus_policy_agent_index (self, to)
    };
    const size_t *first = ((const s_policy_t *) self)->edge_first;
    if (first) {
        //  Within the sender's edges: a few reads, where a search of all
        //  a fleet's edges is twenty cache misses (the bus asks for every
        //  message, blast for every hop it replays).
        return bsearch (&key, self->edges + first [key.from], first [key.from + 1] - first [key.from],
                        sizeof *self->edges, s_edge_cmp);
    }
    return bsearch (&key, self->edges, self->edge_count, sizeof *self->edges,
                    s_edge_cmp);
}

//  At most BUS_CLASS_MAX classes in a fixed order (their indices are bits
//  in edge masks), so a scan is as fast as a sorted index would be.
int
bus_policy_class (const bus_policy_t *self, const char *name)
{
    //  The first byte first: a fleet asks this for every edge's classes.
    for (size_t i = 0; self && name && i < self->class_count; i++) {
        if (self->classes [i].name [0] == name [0] && strcmp (self->classes [i].name, name) == 0) {
            return (int) i;
        }
    }
    return -1;
}

uint32_t
bus_policy_agent_index (const bus_policy_t *self, const bus_agent_t *agent)
{
    //  An agent from another policy is a caller bug, not bad input
    assert (agent >= self->agents && agent < self->agents + self->agent_count);
    return (uint32_t) (agent - self->agents);
}

//  ASCII case folding: actions match whatever their case ('Email.send' is
//  'email.send'), so a spelling cannot move a message to a lower class.
static char
s_fold (char c)
{
    return c >= 'A' && c <= 'Z'? (char) (c - 'A' + 'a'): c;
}

void
bus_policy_join (char *const *list, size_t count, const char *none, char *out, size_t size)
{
    snprintf (out, size, "%s", count? "": none);
    size_t used = 0;
    for (size_t i = 0; i < count && used < size; i++) {
        int n = snprintf (out + used, size - used, "%s%s", i? ", ": "", list [i]);
        if (n < 0) {
            break;
        }
        used += (size_t) n;
    }
}

static bool s_glob (const char *pattern, const char *text, bool fold);

bool
bus_glob_match (const char *pattern, const char *text)
{
    return s_glob (pattern, text, true);
}

bool
bus_glob_match_bytes (const char *pattern, const char *text)
{
    return s_glob (pattern, text, false);
}

static bool
s_glob (const char *pattern, const char *text, bool fold)
{
    if (!pattern || !text) {
        return false;
    }
    //  Greedy with one backtrack point, the last '*': linear in practice
    //  and never recursive, whatever the pattern.
    const char *star = NULL, *resume = NULL;
    while (*text) {
        if (*pattern == '*') {
            star = pattern++;
            resume = text;
        }
        else
        if (fold? s_fold (*pattern) == s_fold (*text): *pattern == *text) {
            pattern++;
            text++;
        }
        else
        if (star) {
            pattern = star + 1;
            text = ++resume;
        }
        else {
            return false;
        }
    }
    while (*pattern == '*') {
        pattern++;
    }
    return *pattern == 0;
}
