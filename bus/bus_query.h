/*  bus_query.h: questions to the log whose cost grows with the answer.

    A query is a conjunction of filters. Each equality filter (agent, class,
    verdict, code, kind, restricted, message id) is a list of seqs in the
    index, ascending (bus_store.h); a time range is a range of seqs (the
    time index). The answer is the intersection, found by leapfrogging:
    each list in turn seeks the first seq >= the current candidate; when
    every list lands on the same seq it is an answer. A list is never
    walked entry by entry past what the others rule out, so the cost is
    about (answer + jumps) x lists x log(n), whatever the size of the log
    or of the largest list. Lists start smallest first (counts are O(1)).

    Every record found is decoded and checked against the whole query
    before it is shown: the index narrows, the record decides. A log whose
    indexes are not built yet (opened read-only before the bus first ran on
    it) is walked record by record instead; the plan says so.

    --thread SEQ: the records connected to SEQ through causes, both ways:
    its causes (from its record), their causes, ..., and its effects (the
    effect index: cause seq -> the records that named it), their effects,
    and so on, at most BUS_QUERY_THREAD_MAX records.
*/
#ifndef BUS_QUERY_H
#define BUS_QUERY_H

#include "bus_store.h"

#include <stdbool.h>
#include <stdint.h>

#define BUS_QUERY_THREAD_MAX    10000

typedef struct {
    const char *agent;          //  sender, recipient or actor
    const char *intent_class;
    const char *code;           //  code word, e.g. DENIED
    const char *message_id;
    int kind;                   //  RecordKind; 0: any
    int verdict;                //  Verdict; 0: any
    bool restricted;            //  only restricted records
    bool has_since;
    uint64_t since_us;          //  time_us >= since_us
    bool has_until;
    uint64_t until_us;          //  time_us <= until_us
    uint64_t from_seq;          //  seq >= from_seq (0: from the start)
} bus_query_t;

//  How a query was answered (`log --explain`).
typedef struct {
    bool indexed;               //  false: the log was walked
    size_t lists;               //  index lists intersected
    uint64_t lo, hi;            //  the seq range looked at
    uint64_t matched;
    uint64_t reads;             //  index entries and records read
    uint64_t past;              //  of them, records past the index's watermark
                                //  (still in the trail, bus_store.h), decoded
} bus_query_plan_t;

//  Called for each answer in seq order with the decoded record and its
//  stored size; returns 0 to go on, non-zero to stop (then returned).
typedef int (bus_query_fn) (void *arg, const Bulkhead__V1__Record *rec, size_t raw_len);

//  True if rec passes every filter of query.
bool
    bus_query_match (const bus_query_t *query, const Bulkhead__V1__Record *rec);

//  Runs query over one snapshot of the log: fn for each answer. 0, the
//  value fn stopped with, or -1 with err. plan may be NULL.
int
    bus_query_run (bus_store_t *store, const bus_query_t *query, bus_query_fn *fn,
                   void *arg, bus_query_plan_t *plan, bus_error_t *err);

//  The thread through seq (see above), filtered by query, in seq order.
//  ENOTFOUND if there is no record seq; ETOOBIG past BUS_QUERY_THREAD_MAX.
int
    bus_query_thread (bus_store_t *store, uint64_t seq, const bus_query_t *query,
                      bus_query_fn *fn, void *arg, bus_query_plan_t *plan, bus_error_t *err);

#endif
