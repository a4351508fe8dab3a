/* test_superblock.c - superblock slots (encode, decode, pick) and the trailer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"
#include "format/superblock.h"
#include "testutil.h"

static afmt_super sample(uint64_t generation) {
    afmt_super s;
    memset(&s, 0, sizeof s);
    s.version = AFMT_FORMAT_VERSION;
    for (int i = 0; i < 16; i++) s.uuid[i] = (uint8_t)(0xa0 + i);
    s.generation = generation;
    s.footer_offset = 10000 + generation;
    s.footer_length = 500;
    s.footer_checksum = 0x0123456789abcdefull ^ generation;
    s.eof = s.footer_offset + s.footer_length + AFMT_TRAILER_SIZE;
    s.nlayers = generation;
    s.layer_id = generation + 7;
    s.next_array_id = 42;
    return s;
}

static void put_slot(uint8_t *region, int which, const afmt_super *s) {
    afmt__super_encode(s, region + (which ? AFMT_SLOT_B_OFFSET : AFMT_SLOT_A_OFFSET));
}

static void resum(uint8_t *slot) {
    afmt__put_u64(slot + AFMT_SLOT_SIZE - 8, afmt__checksum(slot, AFMT_SLOT_SIZE - 8));
}

static void test_roundtrip(void **state) {
    (void)state;
    afmt_super s = sample(5), d;
    uint8_t slot[AFMT_SLOT_SIZE];
    afmt__super_encode(&s, slot);
    assert_memory_equal(slot, "AFMTSUPR", 8);
    assert_int_equal(afmt__super_decode(slot, &d), AFMT_OK);
    assert_memory_equal(&s, &d, sizeof s);
    /* The empty file of afmt_create: no footer, eof at the end of the superblock region. */
    memset(&s, 0, sizeof s);
    s.eof = AFMT_SUPER_REGION;
    s.next_array_id = 1;
    afmt__super_encode(&s, slot);
    assert_int_equal(afmt__super_decode(slot, &d), AFMT_OK);
    assert_int_equal(d.version, AFMT_FORMAT_VERSION);
    assert_int_equal(d.eof, AFMT_SUPER_REGION);
    assert_int_equal(d.footer_length, 0);
}

static void test_slot_offset(void **state) {
    (void)state;
    assert_int_equal(afmt__super_slot_offset(0), AFMT_SLOT_A_OFFSET);
    assert_int_equal(afmt__super_slot_offset(1), AFMT_SLOT_B_OFFSET);
    assert_int_equal(afmt__super_slot_offset(2), AFMT_SLOT_A_OFFSET);
    assert_int_equal(afmt__super_slot_offset(UINT64_MAX), AFMT_SLOT_B_OFFSET);
}

static void test_pick_highest(void **state) {
    (void)state;
    uint8_t region[AFMT_SUPER_REGION] = {0};
    afmt_super s, a = sample(4), b = sample(5);
    char msg[AFMT_ERRMSG_MAX];
    int which = -1;
    put_slot(region, 0, &a);
    put_slot(region, 1, &b);
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_OK);
    assert_int_equal(which, 1);
    assert_int_equal(s.generation, 5);
    a = sample(6);
    put_slot(region, 0, &a);
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_OK);
    assert_int_equal(which, 0);
    assert_int_equal(s.generation, 6);
    assert_int_equal(s.footer_offset, 10006);
}

static void test_one_damaged(void **state) {
    (void)state;
    uint8_t region[AFMT_SUPER_REGION] = {0};
    afmt_super s, a = sample(4), b = sample(5);
    char msg[AFMT_ERRMSG_MAX];
    int which = -1;
    put_slot(region, 0, &a);
    put_slot(region, 1, &b);
    region[AFMT_SLOT_B_OFFSET + 40] ^= 1; /* newest slot torn: fall back to the older */
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_OK);
    assert_int_equal(which, 0);
    assert_int_equal(s.generation, 4);
    put_slot(region, 1, &b);
    region[AFMT_SLOT_A_OFFSET + 3] ^= 1;
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_OK);
    assert_int_equal(which, 1);
}

static void test_both_damaged(void **state) {
    (void)state;
    uint8_t region[AFMT_SUPER_REGION] = {0};
    afmt_super s, a = sample(4), b = sample(5);
    char msg[AFMT_ERRMSG_MAX];
    int which = -1;
    put_slot(region, 0, &a);
    put_slot(region, 1, &b);
    region[0] = 'X';
    region[AFMT_SLOT_B_OFFSET + 100] ^= 0x10;
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_ECORRUPT);
    assert_non_null(strstr(msg, "slot A: bad magic"));
    assert_non_null(strstr(msg, "slot B: bad checksum"));
    /* All zeros: an empty region is not a file. */
    memset(region, 0, sizeof region);
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_ECORRUPT);
    assert_non_null(strstr(msg, "slot A: empty"));
    assert_non_null(strstr(msg, "slot B: empty"));
    /* errmsg NULL goes to the thread buffer. */
    assert_int_equal(afmt__super_pick(region, 10, &s, &which, NULL), AFMT_ECORRUPT);
    assert_non_null(strstr(afmt__thread_errbuf(), "missing"));
}

static void test_empty_b(void **state) {
    (void)state;
    uint8_t region[AFMT_SUPER_REGION] = {0};
    afmt_super s, a;
    memset(&a, 0, sizeof a);
    a.eof = AFMT_SUPER_REGION;
    a.next_array_id = 1;
    char msg[AFMT_ERRMSG_MAX];
    int which = -1;
    put_slot(region, 0, &a);
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_OK);
    assert_int_equal(which, 0);
    assert_int_equal(s.generation, 0);
    /* A file cut inside slot B, or before it. */
    assert_int_equal(afmt__super_pick(region, AFMT_SLOT_B_OFFSET + 100, &s, &which, msg), AFMT_OK);
    assert_int_equal(afmt__super_pick(region, AFMT_SLOT_SIZE, &s, &which, msg), AFMT_OK);
    assert_int_equal(afmt__super_pick(region, AFMT_SLOT_SIZE - 1, &s, &which, msg), AFMT_ECORRUPT);
    /* Slot A empty, B written (generation 1). */
    afmt_super b = sample(1);
    memset(region, 0, sizeof region);
    put_slot(region, 1, &b);
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_OK);
    assert_int_equal(which, 1);
}

static void test_newer_version(void **state) {
    (void)state;
    uint8_t region[AFMT_SUPER_REGION] = {0};
    afmt_super s, a = sample(4), b = sample(5);
    char msg[AFMT_ERRMSG_MAX];
    int which = -1;
    put_slot(region, 0, &a);
    put_slot(region, 1, &b);
    uint8_t *sb = region + AFMT_SLOT_B_OFFSET;
    afmt__put_u32(sb + 8, AFMT_FORMAT_VERSION + 1);
    resum(sb);
    assert_int_equal(afmt__super_decode(sb, &s), AFMT_EVERSION);
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_EVERSION);
    assert_non_null(strstr(msg, "slot B"));
    assert_non_null(strstr(msg, "version 3"));
    /* Also when the newer slot is the older generation: a newer writer touched the file. */
    b = sample(3);
    put_slot(region, 1, &b);
    afmt__put_u32(sb + 8, 0xffffffffu);
    resum(sb);
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_EVERSION);
    /* Without the re-checksum it is damage: slot A is used. */
    sb[0x50] ^= 1;
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_OK);
    assert_int_equal(which, 0);
}

static void test_inconsistent_fields(void **state) {
    (void)state;
    uint8_t slot[AFMT_SLOT_SIZE];
    afmt_super s = sample(3), d;
    struct {
        uint64_t eof, off, len, nlayers;
    } bad[] = {
        {100, 0, 0, 0},                        /* eof inside the superblock region */
        {20000, 10000, 0, 0},                  /* offset without length */
        {20000, 10000, 500, 0},                /* footer but no layers */
        {20000, 0, 0, 2},                      /* layers but no footer */
        {20000, 100, 500, 1},                  /* footer inside the superblock region */
        {20000, 19500, 500, 1},                /* no room for the trailer */
        {UINT64_MAX, UINT64_MAX - 10, 500, 1}, /* wraps */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s.eof = bad[i].eof;
        s.footer_offset = bad[i].off;
        s.footer_length = bad[i].len;
        s.nlayers = bad[i].nlayers;
        afmt__super_encode(&s, slot);
        if (afmt__super_decode(slot, &d) != AFMT_ECORRUPT) fail_msg("case %zu accepted", i);
    }
    s.eof = 20000;
    s.footer_offset = 19468;
    s.footer_length = 500;
    afmt__super_encode(&s, slot);
    assert_int_equal(afmt__super_decode(slot, &d), AFMT_OK);
}

/* Any single-byte change of a slot makes that slot invalid; the other one is used. */
static void test_flip_every_byte(void **state) {
    (void)state;
    uint8_t region[AFMT_SUPER_REGION] = {0};
    afmt_super s, a = sample(4), b = sample(5);
    char msg[AFMT_ERRMSG_MAX];
    put_slot(region, 0, &a);
    put_slot(region, 1, &b);
    for (int slot = 0; slot < 2; slot++) {
        uint8_t *p = region + (slot ? AFMT_SLOT_B_OFFSET : AFMT_SLOT_A_OFFSET);
        for (int i = 0; i < AFMT_SLOT_SIZE; i++)
            for (int bit = 0; bit < 8; bit++) {
                p[i] ^= (uint8_t)(1u << bit);
                afmt_super d;
                assert_int_equal(afmt__super_decode(p, &d), AFMT_ECORRUPT);
                int which = -1;
                assert_int_equal(afmt__super_pick(region, sizeof region, &s, &which, msg), AFMT_OK);
                assert_int_equal(which, 1 - slot);
                p[i] ^= (uint8_t)(1u << bit);
            }
    }
}

static void test_trailer(void **state) {
    (void)state;
    uint8_t t[AFMT_TRAILER_SIZE];
    uint64_t off = 0, len = 0, ck = 0;
    afmt__trailer_encode(123456, 789, 0xfeedfacecafebeefull, t);
    assert_memory_equal(t + 24, "AFMTTRLR", 8);
    assert_int_equal(afmt__trailer_decode(t, &off, &len, &ck), AFMT_OK);
    assert_int_equal(off, 123456);
    assert_int_equal(len, 789);
    assert_int_equal(ck, 0xfeedfacecafebeefull);
    t[31] ^= 1;
    assert_int_equal(afmt__trailer_decode(t, &off, &len, &ck), AFMT_ECORRUPT);
    afmt__trailer_encode(UINT64_MAX - 5, 789, 0, t);
    assert_int_equal(afmt__trailer_decode(t, &off, &len, &ck), AFMT_ECORRUPT);
    afmt__trailer_encode(5000, 0, 0, t);
    assert_int_equal(afmt__trailer_decode(t, &off, &len, &ck), AFMT_ECORRUPT);
    afmt__trailer_encode(100, 10, 0, t);
    assert_int_equal(afmt__trailer_decode(t, &off, &len, &ck), AFMT_ECORRUPT);
}

/* Slot A of the worked example in docs/format.md section 17. */
static void test_doc_example(void **state) {
    (void)state;
    afmt_super s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 16; i++) s.uuid[i] = (uint8_t)(0x11 * i);
    s.generation = 2;
    s.footer_offset = 4112;
    s.footer_length = 448;
    s.footer_checksum = 0xc808bd239c8e914eull;
    s.eof = 4592;
    s.nlayers = 1;
    s.layer_id = 1;
    s.next_array_id = 2;
    uint8_t slot[AFMT_SLOT_SIZE];
    afmt__super_encode(&s, slot);
    /* The example is a version-1 file: the same slot with version 1 (a v2 writer writes 2) */
    afmt__put_u32(slot + 8, 1);
    afmt__put_u64(slot + 120, afmt__checksum(slot, 120));
    assert_int_equal(afmt__get_u64(slot + 120), 0xcd23a2b06c3c15daull);
    afmt_super d;
    assert_int_equal(afmt__super_decode(slot, &d), AFMT_OK); /* v1 slots stay readable */
    assert_int_equal(d.version, 1);
    assert_int_equal(afmt__super_slot_offset(2), 0);
}

/* format.md 3.3: a slot whose eof is past the file size is not usable (the other is
 * taken); two valid slots of different uuids are damage; next_array_id 0 is invalid. */
static void test_examine(void **state) {
    (void)state;
    uint8_t region[AFMT_SUPER_REGION];
    memset(region, 0, sizeof region);
    afmt_super a = sample(8), b = sample(9), s;
    put_slot(region, 0, &a);
    put_slot(region, 1, &b);
    afmt_super_view v;
    char msg[AFMT_ERRMSG_MAX];
    assert_int_equal(afmt__super_examine(region, sizeof region, b.eof, &v, msg), AFMT_OK);
    assert_int_equal(v.chosen, 1);
    /* The file ends before B's eof: A (older, shorter) is taken. */
    assert_int_equal(afmt__super_examine(region, sizeof region, b.eof - 1, &v, msg), AFMT_OK);
    assert_int_equal(v.chosen, 0);
    assert_false(v.usable[1]);
    assert_non_null(strstr(v.why[1], "eof"));
    /* Shorter than both: damage, both named. */
    assert_int_equal(afmt__super_examine(region, sizeof region, a.eof - 1, &v, msg), AFMT_ECORRUPT);
    assert_non_null(strstr(msg, "slot A: the file has only"));
    assert_non_null(strstr(msg, "slot B: the file has only"));
    /* Different uuids: damage, even though B alone would be fine. */
    b.uuid[3] ^= 0x40;
    put_slot(region, 1, &b);
    assert_int_equal(afmt__super_examine(region, sizeof region, UINT64_MAX, &v, msg),
                     AFMT_ECORRUPT);
    assert_non_null(strstr(msg, "different files"));
    assert_int_equal(afmt__super_pick(region, sizeof region, &s, NULL, msg), AFMT_ECORRUPT);
    /* An empty slot has no uuid to compare. */
    memset(region + AFMT_SLOT_A_OFFSET, 0, AFMT_SLOT_SIZE);
    assert_int_equal(afmt__super_examine(region, sizeof region, UINT64_MAX, &v, msg), AFMT_OK);
    assert_int_equal(v.state[0], AFMT_ENOTFOUND);
    assert_int_equal(v.chosen, 1);
    /* next_array_id 0. */
    b.next_array_id = 0;
    put_slot(region, 1, &b);
    assert_int_equal(afmt__super_examine(region, sizeof region, UINT64_MAX, &v, msg),
                     AFMT_ECORRUPT);
    assert_non_null(strstr(msg, "next_array_id is 0"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_roundtrip),       cmocka_unit_test(test_slot_offset),
    cmocka_unit_test(test_pick_highest),    cmocka_unit_test(test_one_damaged),
    cmocka_unit_test(test_both_damaged),    cmocka_unit_test(test_empty_b),
    cmocka_unit_test(test_newer_version),   cmocka_unit_test(test_inconsistent_fields),
    cmocka_unit_test(test_flip_every_byte), cmocka_unit_test(test_trailer),
    cmocka_unit_test(test_doc_example),     cmocka_unit_test(test_examine),
};

TU_MAIN("superblock", tests)
