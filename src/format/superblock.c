/* superblock.c - the two superblock slots and the trailer. Byte layout: docs/format.md,
 * sections "Superblock" and "Trailer". */
#include "format/superblock.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"

static const uint8_t SUPER_MAGIC[8] = {'A', 'F', 'M', 'T', 'S', 'U', 'P', 'R'};
static const uint8_t TRAILER_MAGIC[8] = {'A', 'F', 'M', 'T', 'T', 'R', 'L', 'R'};

/* Field offsets inside a slot (format version 1). Magic, version and the checksum in the
 * last 8 bytes keep their place in every version, so any reader can recognise a slot. */
enum {
    SO_MAGIC = 0,
    SO_VERSION = 8,
    SO_FLAGS = 12,
    SO_UUID = 16,
    SO_GENERATION = 32,
    SO_FOOTER_OFFSET = 40,
    SO_FOOTER_LENGTH = 48,
    SO_FOOTER_CHECKSUM = 56,
    SO_EOF = 64,
    SO_NLAYERS = 72,
    SO_LAYER_ID = 80,
    SO_NEXT_ARRAY_ID = 88,
    SO_RESERVED = 96, /* 24 zero bytes */
    SO_CHECKSUM = AFMT_SLOT_SIZE - 8
};

void afmt__super_encode(const afmt_super *s, uint8_t *out) {
    memset(out, 0, AFMT_SLOT_SIZE);
    memcpy(out + SO_MAGIC, SUPER_MAGIC, 8);
    /* The writer always writes its own version, whatever s->version says: the bytes
     * are in this version's layout. */
    afmt__put_u32(out + SO_VERSION, AFMT_FORMAT_VERSION);
    afmt__put_u32(out + SO_FLAGS, 0);
    memcpy(out + SO_UUID, s->uuid, 16);
    afmt__put_u64(out + SO_GENERATION, s->generation);
    afmt__put_u64(out + SO_FOOTER_OFFSET, s->footer_offset);
    afmt__put_u64(out + SO_FOOTER_LENGTH, s->footer_length);
    afmt__put_u64(out + SO_FOOTER_CHECKSUM, s->footer_checksum);
    afmt__put_u64(out + SO_EOF, s->eof);
    afmt__put_u64(out + SO_NLAYERS, s->nlayers);
    afmt__put_u64(out + SO_LAYER_ID, s->layer_id);
    afmt__put_u64(out + SO_NEXT_ARRAY_ID, s->next_array_id);
    afmt__put_u64(out + SO_CHECKSUM, afmt__checksum(out, SO_CHECKSUM));
}

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Decodes one slot; on failure writes a short reason ("bad checksum ...") into why. */
static int slot_decode(const uint8_t *slot, afmt_super *s, char *why, size_t whylen) {
    memset(s, 0, sizeof *s);
    if (memcmp(slot + SO_MAGIC, SUPER_MAGIC, 8) != 0) {
        snprintf(why, whylen, "%s", all_zero(slot, AFMT_SLOT_SIZE) ? "empty" : "bad magic");
        return AFMT_ECORRUPT;
    }
    uint64_t stored = afmt__get_u64(slot + SO_CHECKSUM);
    uint64_t computed = afmt__checksum(slot, SO_CHECKSUM);
    if (stored != computed) {
        snprintf(why, whylen, "bad checksum (stored 0x%016llx, computed 0x%016llx)",
                 (unsigned long long)stored, (unsigned long long)computed);
        return AFMT_ECORRUPT;
    }
    uint32_t version = afmt__get_u32(slot + SO_VERSION);
    if (version == 0) {
        snprintf(why, whylen, "bad version 0");
        return AFMT_ECORRUPT;
    }
    if (version > AFMT_FORMAT_VERSION) {
        /* Only magic, version and checksum are known in a newer layout. */
        s->version = version;
        snprintf(why, whylen, "format version %u is newer than this reader's %d", version,
                 AFMT_FORMAT_VERSION);
        return AFMT_EVERSION;
    }
    s->version = version;
    memcpy(s->uuid, slot + SO_UUID, 16);
    s->generation = afmt__get_u64(slot + SO_GENERATION);
    s->footer_offset = afmt__get_u64(slot + SO_FOOTER_OFFSET);
    s->footer_length = afmt__get_u64(slot + SO_FOOTER_LENGTH);
    s->footer_checksum = afmt__get_u64(slot + SO_FOOTER_CHECKSUM);
    s->eof = afmt__get_u64(slot + SO_EOF);
    s->nlayers = afmt__get_u64(slot + SO_NLAYERS);
    s->layer_id = afmt__get_u64(slot + SO_LAYER_ID);
    s->next_array_id = afmt__get_u64(slot + SO_NEXT_ARRAY_ID);

    /* A checksummed slot can still hold values no writer produces (a bug elsewhere);
     * refusing them here keeps every later offset computation in range. */
    if (s->eof < AFMT_SUPER_REGION) {
        snprintf(why, whylen, "eof %llu is inside the superblock region (< %d)",
                 (unsigned long long)s->eof, AFMT_SUPER_REGION);
        return AFMT_ECORRUPT;
    }
    if ((s->footer_length == 0) != (s->nlayers == 0) ||
        (s->footer_length == 0 && s->footer_offset != 0)) {
        snprintf(why, whylen, "inconsistent footer_offset %llu, footer_length %llu, nlayers %llu",
                 (unsigned long long)s->footer_offset, (unsigned long long)s->footer_length,
                 (unsigned long long)s->nlayers);
        return AFMT_ECORRUPT;
    }
    if (s->footer_length != 0) {
        uint64_t end = 0;
        if (s->footer_offset < AFMT_SUPER_REGION ||
            !afmt__add_ok(s->footer_offset, s->footer_length, &end) ||
            !afmt__add_ok(end, AFMT_TRAILER_SIZE, &end) || end > s->eof) {
            snprintf(why, whylen,
                     "footer at offset %llu, length %llu plus its %d-byte trailer does not lie "
                     "in [%d, eof %llu)",
                     (unsigned long long)s->footer_offset, (unsigned long long)s->footer_length,
                     AFMT_TRAILER_SIZE, AFMT_SUPER_REGION, (unsigned long long)s->eof);
            return AFMT_ECORRUPT;
        }
    }
    if (s->next_array_id == 0) {
        snprintf(why, whylen, "next_array_id is 0");
        return AFMT_ECORRUPT;
    }
    return AFMT_OK;
}

int afmt__super_decode(const uint8_t *slot, afmt_super *s) {
    char why[256];
    return slot_decode(slot, s, why, sizeof why);
}

int afmt__super_check_slot(const uint8_t *region, size_t len, int which, afmt_super *s, char *why,
                           size_t whylen) {
    size_t off = which ? AFMT_SLOT_B_OFFSET : AFMT_SLOT_A_OFFSET;
    if (len < off + AFMT_SLOT_SIZE) {
        /* A file cut short: the slot is simply missing. */
        memset(s, 0, sizeof *s);
        snprintf(why, whylen, "missing (file is only %zu bytes)", len);
        return AFMT_ECORRUPT;
    }
    int rc = slot_decode(region + off, s, why, whylen);
    if (rc == AFMT_ECORRUPT && all_zero(region + off, AFMT_SLOT_SIZE)) rc = AFMT_ENOTFOUND;
    return rc;
}

static char slot_letter(int i) {
    return i ? 'B' : 'A';
}

static void hex16(const uint8_t *u, char *out) {
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", u[i]);
}

int afmt__super_examine(const uint8_t *region, size_t len, uint64_t size, afmt_super_view *v,
                        char *errmsg) {
    memset(v, 0, sizeof *v);
    v->chosen = -1;
    for (int i = 0; i < 2; i++)
        v->state[i] =
            afmt__super_check_slot(region, len, i, &v->slot[i], v->why[i], sizeof v->why[i]);
    for (int i = 0; i < 2; i++) {
        if (v->state[i] != AFMT_OK) continue;
        if (v->slot[i].eof > size) {
            /* The commit it describes is not (or no longer) all in the file. */
            snprintf(v->why[i], sizeof v->why[i],
                     "the file has only %llu bytes, the slot's eof is %llu (truncated?)",
                     (unsigned long long)size, (unsigned long long)v->slot[i].eof);
            continue;
        }
        v->usable[i] = 1;
        if (v->chosen < 0 || v->slot[i].generation > v->slot[v->chosen].generation) v->chosen = i;
    }
    /* Any readable slot of a newer version means a newer writer has touched the file:
     * the slot of this version may be stale, so refuse rather than read old state. */
    for (int i = 0; i < 2; i++)
        if (v->state[i] == AFMT_EVERSION)
            return afmt__fail(errmsg, AFMT_EVERSION, "superblock slot %c: %s", slot_letter(i),
                              v->why[i]);
    if (v->state[0] == AFMT_OK && v->state[1] == AFMT_OK &&
        memcmp(v->slot[0].uuid, v->slot[1].uuid, 16) != 0) {
        char a[33], b[33];
        hex16(v->slot[0].uuid, a);
        hex16(v->slot[1].uuid, b);
        return afmt__fail(errmsg, AFMT_ECORRUPT,
                          "superblock: the slots name different files (uuid %s in slot A, %s in "
                          "slot B)",
                          a, b);
    }
    if (v->chosen < 0)
        return afmt__fail(errmsg, AFMT_ECORRUPT,
                          "superblock: no valid slot: slot A: %s; slot B: %s", v->why[0],
                          v->why[1]);
    return AFMT_OK;
}

int afmt__super_pick(const uint8_t *region, size_t len, afmt_super *s, int *which, char *errmsg) {
    afmt_super_view v;
    int rc = afmt__super_examine(region, len, UINT64_MAX, &v, errmsg);
    if (rc != AFMT_OK) return rc;
    *s = v.slot[v.chosen];
    if (which) *which = v.chosen;
    return AFMT_OK;
}

uint64_t afmt__super_slot_offset(uint64_t generation) {
    return (generation % 2) ? AFMT_SLOT_B_OFFSET : AFMT_SLOT_A_OFFSET;
}

void afmt__trailer_encode(uint64_t footer_offset, uint64_t footer_length, uint64_t footer_checksum,
                          uint8_t *out) {
    afmt__put_u64(out, footer_offset);
    afmt__put_u64(out + 8, footer_length);
    afmt__put_u64(out + 16, footer_checksum);
    memcpy(out + 24, TRAILER_MAGIC, 8);
}

int afmt__trailer_decode(const uint8_t *p, uint64_t *footer_offset, uint64_t *footer_length,
                         uint64_t *footer_checksum) {
    if (memcmp(p + 24, TRAILER_MAGIC, 8) != 0) return AFMT_ECORRUPT;
    uint64_t off = afmt__get_u64(p), flen = afmt__get_u64(p + 8), end = 0;
    /* The trailer sits right after its footer, so a sane one never wraps around. */
    if (flen == 0 || off < AFMT_SUPER_REGION || !afmt__add_ok(off, flen, &end))
        return AFMT_ECORRUPT;
    *footer_offset = off;
    *footer_length = flen;
    *footer_checksum = afmt__get_u64(p + 16);
    return AFMT_OK;
}
