/*  test_error.c: the error codes (bus_error): names, wire words, sentences,
    and bus_fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "bus_error.h"

static void
test_every_code_named (void **state)
{
    (void) state;
    for (int code = 0; code < BUS_ERROR_COUNT; code++) {
        const char *name = bus_errname ((bus_code_t) code);
        const char *word = bus_errword ((bus_code_t) code);
        const char *text = bus_strerror ((bus_code_t) code);
        assert_non_null (name);
        assert_non_null (word);
        assert_non_null (text);
        assert_true (strlen (word) > 0);
        assert_true (strlen (text) > 3);
        //  Names are "E" + word, upper case; OK is the only one without E.
        if (code == BUS_OK) {
            assert_string_equal (name, "OK");
            assert_string_equal (word, "OK");
        }
        else {
            assert_int_equal (name [0], 'E');
            assert_string_equal (name + 1, word);
        }
        for (const char *p = word; *p; p++) {
            assert_true (isupper ((unsigned char) *p));
        }
        //  Sentences are lower case prose, no trailing period.
        assert_true (islower ((unsigned char) text [0]));
        assert_true (text [strlen (text) - 1] != '.');
        //  No two codes share a word or a sentence.
        for (int other = 0; other < code; other++) {
            assert_string_not_equal (word, bus_errword ((bus_code_t) other));
            assert_string_not_equal (text, bus_strerror ((bus_code_t) other));
        }
    }
    assert_string_equal (bus_errname (BUS_EDENIED), "EDENIED");
    assert_string_equal (bus_errword (BUS_EDENIED), "DENIED");
    assert_string_equal (bus_strerror (BUS_ESPOOF), "claimed sender is not the authenticated agent");
}

static void
test_out_of_range (void **state)
{
    (void) state;
    //  Never NULL, never an out-of-bounds read.
    assert_string_equal (bus_errname (BUS_ERROR_COUNT), "EUNKNOWNCODE");
    assert_string_equal (bus_errname ((bus_code_t) -1), "EUNKNOWNCODE");
    assert_string_equal (bus_strerror (BUS_ERROR_COUNT), "unknown error code");
    assert_string_equal (bus_strerror ((bus_code_t) 100000), "unknown error code");
    assert_non_null (bus_errword (BUS_ERROR_COUNT));
    assert_int_equal (bus_code_from_word (bus_errword (BUS_ERROR_COUNT)), BUS_EINVAL);
}

static void
test_word_round_trip (void **state)
{
    (void) state;
    for (int code = 0; code < BUS_ERROR_COUNT; code++) {
        assert_int_equal (bus_code_from_word (bus_errword ((bus_code_t) code)), code);
    }
    //  Unknown words map to EINVAL; the names (with E) are not words.
    assert_int_equal (bus_code_from_word ("NOSUCHWORD"), BUS_EINVAL);
    assert_int_equal (bus_code_from_word (""), BUS_EINVAL);
    assert_int_equal (bus_code_from_word ("denied"), BUS_EINVAL);
    assert_int_equal (bus_code_from_word ("DENIED "), BUS_EINVAL);
    assert_int_equal (bus_code_from_word ("EDENIED"), BUS_EINVAL);
}

static void
test_fail (void **state)
{
    (void) state;
    bus_error_t err = { BUS_OK, "" };
    assert_int_equal (bus_fail (&err, BUS_EIO, "log: %s at %d", "disk full", 42), -1);
    assert_int_equal (err.code, BUS_EIO);
    assert_string_equal (err.text, "log: disk full at 42");

    //  No error to fill: still -1, no crash.
    assert_int_equal (bus_fail (NULL, BUS_EIO, "ignored %s", "x"), -1);

    //  Longer than the buffer: cut, terminated.
    char big [2000];
    memset (big, 'z', sizeof big - 1);
    big [sizeof big - 1] = 0;
    assert_int_equal (bus_fail (&err, BUS_ETOOBIG, "%s", big), -1);
    assert_int_equal (err.code, BUS_ETOOBIG);
    assert_int_equal (strlen (err.text), sizeof err.text - 1);

    //  A '%' in an argument is printed, not interpreted.
    assert_int_equal (bus_fail (&err, BUS_EINVAL, "bad name '%s'", "%s%n%x"), -1);
    assert_string_equal (err.text, "bad name '%s%n%x'");

    //  The same error refilled: the old text does not leak through.
    assert_int_equal (bus_fail (&err, BUS_EDENIED, "short"), -1);
    assert_string_equal (err.text, "short");
    assert_int_equal (err.code, BUS_EDENIED);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_every_code_named),
        cmocka_unit_test (test_out_of_range),
        cmocka_unit_test (test_word_round_trip),
        cmocka_unit_test (test_fail),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
