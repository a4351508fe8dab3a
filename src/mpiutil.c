/* mpiutil.c - collectives on u64 byte counts and the agreement on a step's outcome.
 * MPI counts are ints: past 2^31 bytes (or displacements) we send pieces point to point,
 * so commits with huge metadata never overflow. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"

static uint64_t mpi_piece = (uint64_t)1 << 30;

void afmt__set_mpi_piece(uint64_t bytes) {
    mpi_piece = bytes && bytes <= (uint64_t)INT_MAX ? bytes : ((uint64_t)1 << 30);
}

static int fits_int(uint64_t v) {
    return v <= (uint64_t)INT_MAX && v <= mpi_piece;
}

int afmt__agree(afmt_file *f, int rc) {
    /* The lowest failing rank's code and message win, so every rank reports the same. */
    int mine = rc != AFMT_OK ? f->rank : f->size, root = f->size;
    if (MPI_Allreduce(&mine, &root, 1, MPI_INT, MPI_MIN, f->comm) != MPI_SUCCESS)
        return afmt_fail(f->errmsg, AFMT_EMPI, "MPI_Allreduce failed while agreeing on an outcome");
    if (root == f->size) return AFMT_OK;
    struct {
        int code;
        char msg[AFMT_ERRMSG_MAX];
    } m;
    memset(&m, 0, sizeof m);
    if (f->rank == root) {
        m.code = rc;
        memcpy(m.msg, f->errmsg, sizeof m.msg);
    }
    if (MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, root, f->comm) != MPI_SUCCESS)
        return afmt_fail(f->errmsg, AFMT_EMPI, "MPI_Bcast failed while agreeing on an outcome");
    m.msg[AFMT_ERRMSG_MAX - 1] = 0;
    return afmt_fail(f->errmsg, m.code, "%s", m.msg);
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

int afmt__gather_bytes(MPI_Comm comm, const void *buf, uint64_t len, int root, uint8_t **out,
                       uint64_t *lens) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    *out = NULL;
    uint64_t l = len;
    if (MPI_Gather(&l, 1, MPI_UINT64_T, lens, 1, MPI_UINT64_T, root, comm) != MPI_SUCCESS)
        return AFMT_EMPI;
    /* Decide the method on root, then tell everyone, so all ranks take the same path. */
    int small = 1, rc = AFMT_OK;
    uint64_t total = 0;
    int *cnt = NULL, *dsp = NULL;
    if (rank == root) {
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
        if (!*out || (small && (!cnt || !dsp))) rc = AFMT_ENOMEM;
        uint64_t off = 0;
        for (int r = 0; rc == AFMT_OK && small && r < size; r++) {
            cnt[r] = (int)lens[r];
            dsp[r] = (int)off;
            off += lens[r];
        }
    }
    /* Everyone learns the method and whether root could allocate before any data moves. */
    int hdr[2] = {small, rc};
    if (MPI_Bcast(hdr, 2, MPI_INT, root, comm) != MPI_SUCCESS) hdr[1] = AFMT_EMPI;
    if (hdr[1] != AFMT_OK) {
        free(cnt);
        free(dsp);
        if (rank == root) {
            free(*out);
            *out = NULL;
        }
        return hdr[1];
    }
    if (hdr[0]) {
        int e = MPI_Gatherv(buf, (int)len, MPI_BYTE, *out, cnt, dsp, MPI_BYTE, root, comm);
        free(cnt);
        free(dsp);
        return e == MPI_SUCCESS ? AFMT_OK : AFMT_EMPI;
    }
    if (rank == root) {
        uint64_t off = 0;
        for (int r = 0; r < size; r++) {
            if (r == root)
                memcpy(*out + off, buf, len);
            else if (rc == AFMT_OK)
                rc = recv_pieces(comm, *out + off, lens[r], r, 7101);
            off += lens[r];
        }
        return rc;
    }
    return send_pieces(comm, buf, len, root, 7101);
}

int afmt__alltoallv_bytes(MPI_Comm comm, const uint8_t *sbuf, const uint64_t *scount,
                          uint8_t **rbuf, uint64_t *rcount, uint64_t *rdispl) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    *rbuf = NULL;
    if (MPI_Alltoall(scount, 1, MPI_UINT64_T, rcount, 1, MPI_UINT64_T, comm) != MPI_SUCCESS)
        return AFMT_EMPI;
    uint64_t stotal = 0, rtotal = 0;
    int small = 1;
    for (int r = 0; r < size; r++) {
        if (!fits_int(scount[r]) || !fits_int(rcount[r]) || !fits_int(stotal) || !fits_int(rtotal))
            small = 0;
        rdispl[r] = rtotal;
        stotal += scount[r];
        rtotal += rcount[r];
    }
    if (!fits_int(stotal) || !fits_int(rtotal)) small = 0;
    int all_small = 0;
    if (MPI_Allreduce(&small, &all_small, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return AFMT_EMPI;
    *rbuf = malloc(rtotal ? rtotal : 1);
    int rc = *rbuf ? AFMT_OK : AFMT_ENOMEM, any = AFMT_OK;
    if (MPI_Allreduce(&rc, &any, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS) return AFMT_EMPI;
    if (any != AFMT_OK) return any;
    if (all_small) {
        int *v = malloc(sizeof(int) * 4 * (size_t)size);
        if (!v) return AFMT_ENOMEM; /* cannot happen consistently; treat as fatal here */
        uint64_t off = 0;
        for (int r = 0; r < size; r++) {
            v[r] = (int)scount[r];
            v[size + r] = (int)off;
            v[2 * size + r] = (int)rcount[r];
            v[3 * size + r] = (int)rdispl[r];
            off += scount[r];
        }
        int e = MPI_Alltoallv(sbuf, v, v + size, MPI_BYTE, *rbuf, v + 2 * size, v + 3 * size,
                              MPI_BYTE, comm);
        free(v);
        return e == MPI_SUCCESS ? AFMT_OK : AFMT_EMPI;
    }
    /* Large exchange: pairwise rounds (rank^k style by shift), pieces point to point. */
    uint64_t *sdispl = malloc(sizeof(uint64_t) * (size_t)size);
    if (!sdispl) return AFMT_ENOMEM;
    uint64_t off = 0;
    for (int r = 0; r < size; r++) {
        sdispl[r] = off;
        off += scount[r];
    }
    if (scount[rank]) memcpy(*rbuf + rdispl[rank], sbuf + sdispl[rank], scount[rank]);
    for (int k = 1; k < size && rc == AFMT_OK; k++) {
        /* Round k: send to rank+k, receive from rank-k; each direction in its own number
         * of pieces, all posted at once (MPI keeps the order of one pair and tag). */
        int to = (rank + k) % size, from = (rank - k + size) % size;
        uint64_t np_s = (scount[to] + mpi_piece - 1) / mpi_piece;
        uint64_t np_r = (rcount[from] + mpi_piece - 1) / mpi_piece;
        MPI_Request *req = malloc(sizeof(MPI_Request) * (size_t)(np_s + np_r + 1));
        if (!req) {
            rc = AFMT_ENOMEM;
            break;
        }
        int nreq = 0;
        for (uint64_t i = 0; i < np_r && rc == AFMT_OK; i++) {
            uint64_t o = i * mpi_piece,
                     n = rcount[from] - o < mpi_piece ? rcount[from] - o : mpi_piece;
            if (MPI_Irecv(*rbuf + rdispl[from] + o, (int)n, MPI_BYTE, from, 7102, comm,
                          &req[nreq++]) != MPI_SUCCESS)
                rc = AFMT_EMPI;
        }
        for (uint64_t i = 0; i < np_s && rc == AFMT_OK; i++) {
            uint64_t o = i * mpi_piece, n = scount[to] - o < mpi_piece ? scount[to] - o : mpi_piece;
            if (MPI_Isend(sbuf + sdispl[to] + o, (int)n, MPI_BYTE, to, 7102, comm, &req[nreq++]) !=
                MPI_SUCCESS)
                rc = AFMT_EMPI;
        }
        if (MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE) != MPI_SUCCESS) rc = AFMT_EMPI;
        free(req);
    }
    free(sdispl);
    return rc;
}
