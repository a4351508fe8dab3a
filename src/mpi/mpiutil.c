/* mpiutil.c - the agreement on a step's outcome and collectives on u64 byte counts
 * (mpiutil.h). MPI counts are ints: past 2^31 bytes (or displacements) we send pieces
 * point to point, so commits with huge metadata never overflow. Knows nothing of
 * handles: file.c wraps these calls for an afmt_file. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mpi/mpiutil.h"

#include "common/error.h"

static uint64_t mpi_piece = AFMT_PIECE;

#ifdef AFMT_TESTING
void afmt__set_mpi_piece(uint64_t bytes) {
    mpi_piece = bytes && bytes <= (uint64_t)INT_MAX ? bytes : AFMT_PIECE;
}
#endif

static int fits_int(uint64_t v) {
    return v <= (uint64_t)INT_MAX && v <= mpi_piece;
}

/* Every rank gets the code and message of rank root (the lowest failing one). */
static int share_failure(MPI_Comm comm, int rank, int root, int rc, char *errmsg) {
    struct {
        int code;
        char msg[AFMT_ERRMSG_MAX];
    } m;
    memset(&m, 0, sizeof m);
    if (rank == root) {
        m.code = rc;
        memcpy(m.msg, errmsg, sizeof m.msg);
    }
    if (MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, root, comm) != MPI_SUCCESS)
        return afmt__fail(errmsg, AFMT_EMPI, "MPI_Bcast failed while agreeing on an outcome");
    m.msg[AFMT_ERRMSG_MAX - 1] = 0;
    return afmt__fail(errmsg, m.code, "%s", m.msg);
}

int afmt__agree(MPI_Comm comm, int rank, int size, int rc, char *errmsg) {
    /* The lowest failing rank's code and message win, so every rank reports the same. */
    int mine = rc != AFMT_OK ? rank : size, root = size;
    if (MPI_Allreduce(&mine, &root, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return afmt__fail(errmsg, AFMT_EMPI, "MPI_Allreduce failed while agreeing on an outcome");
    if (root == size) return AFMT_OK;
    return share_failure(comm, rank, root, rc, errmsg);
}

static int agree(const afmt__group *g, int rc) {
    return afmt__agree(g->comm, g->rank, g->size, rc, g->errmsg);
}

int afmt__agree_keyed(const afmt__group *g, int key, int rc, int *flags, int nflags, int keys[2],
                      const char *what) {
    /* One MPI_Allreduce (MIN) of {failing rank or size, key, -key, -flags...}: the
     * agreement on rc, the OR of the flags, and whether every rank passed the same key. */
    int v[3 + AFMT__AGREE_MAXFLAGS], r[3 + AFMT__AGREE_MAXFLAGS];
    keys[0] = keys[1] = key;
    v[0] = rc != AFMT_OK ? g->rank : g->size;
    v[1] = key;
    v[2] = -key;
    /* Always the same count, whatever the key: ranks with different keys must meet in a
     * matching Allreduce to find out. */
    for (int i = 0; i < AFMT__AGREE_MAXFLAGS; i++) v[3 + i] = i < nflags && flags[i] ? -1 : 0;
    if (MPI_Allreduce(v, r, 3 + AFMT__AGREE_MAXFLAGS, MPI_INT, MPI_MIN, g->comm) != MPI_SUCCESS)
        return afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Allreduce failed", what);
    for (int i = 0; i < nflags; i++) flags[i] = r[3 + i] != 0;
    if (r[1] != -r[2]) {
        keys[0] = r[1];
        keys[1] = -r[2];
        return AFMT_EINVAL;
    }
    if (r[0] == g->size) return AFMT_OK;
    return share_failure(g->comm, g->rank, r[0], rc, g->errmsg);
}

int afmt__bcast_bytes(MPI_Comm comm, void *buf, uint64_t len, int root) {
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t n = len < mpi_piece ? len : mpi_piece;
        if (n > (uint64_t)INT_MAX) n = (uint64_t)INT_MAX;
        if (MPI_Bcast(p, (int)n, MPI_BYTE, root, comm) != MPI_SUCCESS) return AFMT_EMPI;
        p += n;
        len -= n;
    }
    return AFMT_OK;
}

int afmt__share_buf_comm(const afmt__group *g, afmt_buf *b, int rc, const char *what) {
    uint64_t len = b->len;
    if (MPI_Bcast(&len, 1, MPI_UINT64_T, 0, g->comm) != MPI_SUCCESS && rc == AFMT_OK)
        rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Bcast of the length failed", what);
    if (rc == AFMT_OK && g->rank != 0) {
        b->len = 0;
        if (len > SIZE_MAX || afmt__buf_reserve(b, (size_t)len) != AFMT_OK)
            rc = afmt__fail(g->errmsg, AFMT_ENOMEM, "%s: out of memory for %llu bytes", what,
                            (unsigned long long)len);
        else
            b->len = (size_t)len;
    }
    if ((rc = agree(g, rc)) != AFMT_OK) return rc;
    if (afmt__bcast_bytes(g->comm, b->data, len, 0) != AFMT_OK)
        rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Bcast failed", what);
    return agree(g, rc);
}

/* Point-to-point transfer of len bytes in pieces (both sides loop the same way). */
static int send_pieces(MPI_Comm comm, const uint8_t *p, uint64_t len, int dest, int tag) {
    while (len > 0) {
        uint64_t n = len < mpi_piece ? len : mpi_piece;
        if (n > (uint64_t)INT_MAX) n = (uint64_t)INT_MAX;
        if (MPI_Send(p, (int)n, MPI_BYTE, dest, tag, comm) != MPI_SUCCESS) return AFMT_EMPI;
        p += n;
        len -= n;
    }
    return AFMT_OK;
}

static int recv_pieces(MPI_Comm comm, uint8_t *p, uint64_t len, int src, int tag) {
    while (len > 0) {
        uint64_t n = len < mpi_piece ? len : mpi_piece;
        if (n > (uint64_t)INT_MAX) n = (uint64_t)INT_MAX;
        if (MPI_Recv(p, (int)n, MPI_BYTE, src, tag, comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return AFMT_EMPI;
        p += n;
        len -= n;
    }
    return AFMT_OK;
}

int afmt__gather_bytes_comm(const afmt__group *g, const void *buf, uint64_t len, uint8_t **out,
                            uint64_t *lens, const char *what) {
    MPI_Comm comm = g->comm;
    int rank = g->rank, size = g->size, rc = AFMT_OK;
    *out = NULL;
    uint64_t l = len;
    if (MPI_Gather(&l, 1, MPI_UINT64_T, lens, 1, MPI_UINT64_T, 0, comm) != MPI_SUCCESS)
        rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Gather of the lengths failed", what);
    /* Root: the method (one MPI_Gatherv while every count fits an int, else pieces) and
     * the buffers; then one agreement, so that no data moves unless every rank is ready. */
    int small = 1;
    uint64_t total = 0;
    int *cnt = NULL, *dsp = NULL;
    if (rank == 0 && rc == AFMT_OK) {
        for (int r = 0; r < size; r++) {
            if (!fits_int(lens[r]) || !fits_int(total)) small = 0;
            total += lens[r];
        }
        if (!fits_int(total)) small = 0;
        *out = malloc(total ? total : 1);
        if (small) {
            cnt = malloc(sizeof(int) * (size_t)size);
            dsp = malloc(sizeof(int) * (size_t)size);
        }
        if (!*out || (small && (!cnt || !dsp)))
            rc = afmt__fail(g->errmsg, AFMT_ENOMEM, "%s: out of memory for %llu bytes", what,
                            (unsigned long long)total);
        uint64_t off = 0;
        for (int r = 0; rc == AFMT_OK && small && r < size; r++) {
            cnt[r] = (int)lens[r];
            dsp[r] = (int)off;
            off += lens[r];
        }
    }
    if (MPI_Bcast(&small, 1, MPI_INT, 0, comm) != MPI_SUCCESS && rc == AFMT_OK)
        rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Bcast failed", what);
    if ((rc = agree(g, rc)) == AFMT_OK) {
        if (small) {
            if (MPI_Gatherv(buf, (int)len, MPI_BYTE, *out, cnt, dsp, MPI_BYTE, 0, comm) !=
                MPI_SUCCESS)
                rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Gatherv failed", what);
        } else if (rank == 0) {
            uint64_t off = 0;
            for (int r = 0; r < size; r++) {
                if (r == 0)
                    memcpy(*out + off, buf, len);
                else if (recv_pieces(comm, *out + off, lens[r], r, 7101) != AFMT_OK &&
                         rc == AFMT_OK)
                    rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Recv failed", what);
                off += lens[r];
            }
        } else if (send_pieces(comm, buf, len, 0, 7101) != AFMT_OK) {
            rc = afmt__fail(g->errmsg, AFMT_EMPI, "%s: MPI_Send failed", what);
        }
        rc = agree(g, rc);
    }
    free(cnt);
    free(dsp);
    if (rc != AFMT_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}
