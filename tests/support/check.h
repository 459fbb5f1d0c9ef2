/*  check.h: the checks the mediator unit tests share, on top of cmocka.

    In the spirit of nng's NUTS_PASS / NUTS_FAIL: a failed check says what
    was expected and what came, by NAME (EDENIED, not 13; MED_HOLD, not 1),
    with the error's sentence, then fails the test at the caller's line.

        CHECK_PASS (expr, err)          expr (0 or -1) must be 0; on -1 prints
                                        bus_errname (err.code) and err.text
        CHECK_FAIL (expr, err, code)    expr must be -1 with err.code == code
        CHECK_CODE (err, code)          err.code == code, both names printed
        CHECK_VERDICT (v, verdict)      v == verdict, both names printed
        CHECK_DECIDE (v, err, verdict, code)
                                        both at once; on a mismatch prints the
                                        verdict, the code and err.text
        CHECK_CONTAINS (text, needle)   strstr (text, needle), both printed

    Every argument is evaluated once. err is an lvalue of type bus_error_t
    (not a pointer). Include order: this header includes cmocka's
    prerequisites (stdarg, stddef, setjmp, stdint) and cmocka.h itself, so a
    test includes it first, or after those four system headers.
*/
#ifndef CHECK_H
#define CHECK_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "bus_error.h"
#include "med_stage.h"

static inline const char *
check_verdict_name (med_verdict_t verdict)
{
    switch (verdict) {
        case MED_PASS:   return "MED_PASS";
        case MED_HOLD:   return "MED_HOLD";
        case MED_REJECT: return "MED_REJECT";
    }
    return "MED_(invalid)";
}

//  Names a code that may be out of range without reading past the table.
static inline const char *
check_code_name (bus_code_t code)
{
    return (unsigned) code < BUS_ERROR_COUNT? bus_errname (code): "E(out of range)";
}

static inline void
check_pass (int rc, const bus_error_t *err, const char *expr, const char *file, int line)
{
    if (rc != 0) {
        print_error ("%s:%d: %s returned %d, expected 0: %s: %s\n", file, line, expr, rc,
                     check_code_name (err->code), err->text);
        _fail (file, line);
    }
}

static inline void
check_code (const bus_error_t *err, bus_code_t expected, const char *what,
            const char *file, int line)
{
    if (err->code != expected) {
        print_error ("%s:%d: %s: code is %s, expected %s: %s\n", file, line, what,
                     check_code_name (err->code), check_code_name (expected), err->text);
        _fail (file, line);
    }
}

static inline void
check_fail (int rc, const bus_error_t *err, bus_code_t expected, const char *expr,
            const char *file, int line)
{
    if (rc != -1) {
        print_error ("%s:%d: %s returned %d, expected -1 with %s\n", file, line, expr, rc,
                     check_code_name (expected));
        _fail (file, line);
    }
    check_code (err, expected, expr, file, line);
}

static inline void
check_verdict (med_verdict_t got, med_verdict_t expected, const char *expr,
               const char *file, int line)
{
    if (got != expected) {
        print_error ("%s:%d: %s is %s, expected %s\n", file, line, expr,
                     check_verdict_name (got), check_verdict_name (expected));
        _fail (file, line);
    }
}

static inline void
check_decide (med_verdict_t got, const bus_error_t *err, med_verdict_t verdict,
              bus_code_t code, const char *expr, const char *file, int line)
{
    //  On PASS the stages leave err alone: only the verdict counts then.
    if (got != verdict || (verdict != MED_PASS && err->code != code)) {
        print_error ("%s:%d: %s is %s with %s, expected %s with %s: %s\n", file, line, expr,
                     check_verdict_name (got), check_code_name (err->code),
                     check_verdict_name (verdict), check_code_name (code), err->text);
        _fail (file, line);
    }
}

static inline void
check_contains (const char *text, const char *needle, const char *expr,
                const char *file, int line)
{
    if (!text || !needle || !strstr (text, needle)) {
        print_error ("%s:%d: %s: \"%s\" does not contain \"%s\"\n", file, line, expr,
                     text? text: "(null)", needle? needle: "(null)");
        _fail (file, line);
    }
}

#define CHECK_PASS(expr, err) \
    check_pass ((expr), &(err), #expr, __FILE__, __LINE__)
#define CHECK_FAIL(expr, err, code) \
    check_fail ((expr), &(err), (code), #expr, __FILE__, __LINE__)
#define CHECK_CODE(err, code) \
    check_code (&(err), (code), #err, __FILE__, __LINE__)
#define CHECK_VERDICT(v, verdict) \
    check_verdict ((v), (verdict), #v, __FILE__, __LINE__)
#define CHECK_DECIDE(v, err, verdict, code) \
    check_decide ((v), &(err), (verdict), (code), #v, __FILE__, __LINE__)
#define CHECK_CONTAINS(text, needle) \
    check_contains ((text), (needle), #text, __FILE__, __LINE__)

#endif
