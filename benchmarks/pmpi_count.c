/* pmpi_count.c - counts the bytes this rank receives, by MPI call, between MPI_Pcontrol(1)
 * and MPI_Pcontrol(0) (pmpi_count.h says what counts). Not thread-safe: the benchmarks
 * that link it call MPI from one thread. */
#include "pmpi_count.h"

#include <mpi.h>
#include <stdarg.h>
#include <string.h>

static int counting;
static pmpi_counts cnt;

void pmpi_count_get(pmpi_counts *out) {
    *out = cnt;
    out->total = 0;
    for (int k = 0; k < PC_N; k++) out->total += cnt.bytes[k];
}

const char *pmpi_count_name(int k) {
    static const char *names[PC_N] = {"bcast",     "allreduce", "reduce",  "scan", "gather",
                                      "allgather", "alltoall",  "scatter", "p2p"};
    return k >= 0 && k < PC_N ? names[k] : "?";
}

int MPI_Pcontrol(const int level, ...) {
    if (level == 1) {
        memset(&cnt, 0, sizeof cnt);
        counting = 1;
    } else if (level == 0) {
        counting = 0;
    }
    return MPI_SUCCESS;
}

static uint64_t tsize(MPI_Datatype t) {
    int s = 0;
    if (t == MPI_DATATYPE_NULL || PMPI_Type_size(t, &s) != MPI_SUCCESS || s < 0) return 0;
    return (uint64_t)s;
}

static int rank_of(MPI_Comm c) {
    int r = 0;
    PMPI_Comm_rank(c, &r);
    return r;
}

static int size_of(MPI_Comm c) {
    int s = 1;
    PMPI_Comm_size(c, &s);
    return s;
}

static void add(int kind, uint64_t bytes) {
    if (!counting) return;
    cnt.calls[kind]++;
    cnt.bytes[kind] += bytes;
}

static uint64_t status_bytes(const MPI_Status *st, MPI_Datatype t) {
    int n = 0;
    if (PMPI_Get_count(st, t, &n) != MPI_SUCCESS || n == MPI_UNDEFINED || n < 0) return 0;
    return (uint64_t)n * tsize(t);
}

/* ---- collectives ---- */

int MPI_Bcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm) {
    int rc = PMPI_Bcast(buffer, count, datatype, root, comm);
    if (counting) add(PC_BCAST, rank_of(comm) == root ? 0 : (uint64_t)count * tsize(datatype));
    return rc;
}

int MPI_Ibcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm,
               MPI_Request *request) {
    int rc = PMPI_Ibcast(buffer, count, datatype, root, comm, request);
    if (counting) add(PC_BCAST, rank_of(comm) == root ? 0 : (uint64_t)count * tsize(datatype));
    return rc;
}

int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                  MPI_Comm comm) {
    int rc = PMPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm);
    if (counting) add(PC_ALLREDUCE, (uint64_t)count * tsize(datatype));
    return rc;
}

int MPI_Iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                   MPI_Comm comm, MPI_Request *request) {
    int rc = PMPI_Iallreduce(sendbuf, recvbuf, count, datatype, op, comm, request);
    if (counting) add(PC_ALLREDUCE, (uint64_t)count * tsize(datatype));
    return rc;
}

int MPI_Reduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
               int root, MPI_Comm comm) {
    int rc = PMPI_Reduce(sendbuf, recvbuf, count, datatype, op, root, comm);
    if (counting) add(PC_REDUCE, rank_of(comm) == root ? (uint64_t)count * tsize(datatype) : 0);
    return rc;
}

int MPI_Scan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
             MPI_Comm comm) {
    int rc = PMPI_Scan(sendbuf, recvbuf, count, datatype, op, comm);
    if (counting) add(PC_SCAN, (uint64_t)count * tsize(datatype));
    return rc;
}

int MPI_Exscan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
               MPI_Comm comm) {
    int rc = PMPI_Exscan(sendbuf, recvbuf, count, datatype, op, comm);
    if (counting) add(PC_SCAN, rank_of(comm) == 0 ? 0 : (uint64_t)count * tsize(datatype));
    return rc;
}

int MPI_Gather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
               int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm) {
    int rc = PMPI_Gather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, root, comm);
    if (counting) {
        uint64_t b = 0;
        if (rank_of(comm) == root)
            b = (uint64_t)(size_of(comm) - 1) * (uint64_t)recvcount * tsize(recvtype);
        add(PC_GATHER, b);
    }
    return rc;
}

int MPI_Gatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                const int recvcounts[], const int displs[], MPI_Datatype recvtype, int root,
                MPI_Comm comm) {
    int rc = PMPI_Gatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, root,
                          comm);
    if (counting) {
        uint64_t b = 0;
        int me = rank_of(comm), n = size_of(comm);
        if (me == root)
            for (int r = 0; r < n; r++)
                if (r != me) b += (uint64_t)recvcounts[r] * tsize(recvtype);
        add(PC_GATHER, b);
    }
    return rc;
}

int MPI_Allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                  int recvcount, MPI_Datatype recvtype, MPI_Comm comm) {
    int rc = PMPI_Allgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm);
    if (counting)
        add(PC_ALLGATHER, (uint64_t)(size_of(comm) - 1) * (uint64_t)recvcount * tsize(recvtype));
    return rc;
}

int MPI_Allgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                   const int recvcounts[], const int displs[], MPI_Datatype recvtype,
                   MPI_Comm comm) {
    int rc =
        PMPI_Allgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm);
    if (counting) {
        uint64_t b = 0;
        int me = rank_of(comm), n = size_of(comm);
        for (int r = 0; r < n; r++)
            if (r != me) b += (uint64_t)recvcounts[r] * tsize(recvtype);
        add(PC_ALLGATHER, b);
    }
    return rc;
}

int MPI_Alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                 int recvcount, MPI_Datatype recvtype, MPI_Comm comm) {
    int rc = PMPI_Alltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm);
    if (counting)
        add(PC_ALLTOALL, (uint64_t)(size_of(comm) - 1) * (uint64_t)recvcount * tsize(recvtype));
    return rc;
}

int MPI_Alltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[],
                  MPI_Datatype sendtype, void *recvbuf, const int recvcounts[], const int rdispls[],
                  MPI_Datatype recvtype, MPI_Comm comm) {
    int rc = PMPI_Alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts, rdispls,
                            recvtype, comm);
    if (counting) {
        uint64_t b = 0;
        int me = rank_of(comm), n = size_of(comm);
        for (int r = 0; r < n; r++)
            if (r != me) b += (uint64_t)recvcounts[r] * tsize(recvtype);
        add(PC_ALLTOALL, b);
    }
    return rc;
}

int MPI_Scatter(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm) {
    int rc = PMPI_Scatter(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, root, comm);
    if (counting)
        add(PC_SCATTER, rank_of(comm) == root ? 0 : (uint64_t)recvcount * tsize(recvtype));
    return rc;
}

int MPI_Scatterv(const void *sendbuf, const int sendcounts[], const int displs[],
                 MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype,
                 int root, MPI_Comm comm) {
    int rc = PMPI_Scatterv(sendbuf, sendcounts, displs, sendtype, recvbuf, recvcount, recvtype,
                           root, comm);
    if (counting)
        add(PC_SCATTER, rank_of(comm) == root ? 0 : (uint64_t)recvcount * tsize(recvtype));
    return rc;
}

/* ---- point to point ---- */

int MPI_Recv(void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm,
             MPI_Status *status) {
    MPI_Status own;
    MPI_Status *st = status == MPI_STATUS_IGNORE ? &own : status;
    int rc = PMPI_Recv(buf, count, datatype, source, tag, comm, st);
    if (counting) add(PC_P2P, rc == MPI_SUCCESS ? status_bytes(st, datatype) : 0);
    return rc;
}

int MPI_Mrecv(void *buf, int count, MPI_Datatype type, MPI_Message *message, MPI_Status *status) {
    MPI_Status own;
    MPI_Status *st = status == MPI_STATUS_IGNORE ? &own : status;
    int rc = PMPI_Mrecv(buf, count, type, message, st);
    if (counting) add(PC_P2P, rc == MPI_SUCCESS ? status_bytes(st, type) : 0);
    return rc;
}

int MPI_Sendrecv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, int dest, int sendtag,
                 void *recvbuf, int recvcount, MPI_Datatype recvtype, int source, int recvtag,
                 MPI_Comm comm, MPI_Status *status) {
    MPI_Status own;
    MPI_Status *st = status == MPI_STATUS_IGNORE ? &own : status;
    int rc = PMPI_Sendrecv(sendbuf, sendcount, sendtype, dest, sendtag, recvbuf, recvcount,
                           recvtype, source, recvtag, comm, st);
    if (counting) add(PC_P2P, rc == MPI_SUCCESS ? status_bytes(st, recvtype) : 0);
    return rc;
}

int MPI_Irecv(void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm,
              MPI_Request *request) {
    int rc = PMPI_Irecv(buf, count, datatype, source, tag, comm, request);
    if (counting) add(PC_P2P, (uint64_t)count * tsize(datatype));
    return rc;
}

int MPI_Imrecv(void *buf, int count, MPI_Datatype type, MPI_Message *message,
               MPI_Request *request) {
    int rc = PMPI_Imrecv(buf, count, type, message, request);
    if (counting) add(PC_P2P, (uint64_t)count * tsize(type));
    return rc;
}
