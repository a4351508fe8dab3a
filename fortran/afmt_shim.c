/*
 * afmt_shim.c - the C side of the Fortran module afmt (fortran/afmt.f90).
 *
 * Only what ISO_C_BINDING cannot express lives here: MPI handles. A Fortran MPI
 * communicator or info object is an INTEGER (MPI_Fint; TYPE(MPI_Comm) of mpi_f08 holds
 * the same integer in its MPI_VAL), while the C API takes MPI_Comm / MPI_Info, whose
 * representation is implementation-defined (a pointer in Open MPI). MPI_Comm_f2c and
 * MPI_Info_f2c convert them; everything else the module binds to afmt.h directly.
 */
#include <mpi.h>

#include "afmt.h"

/* Prototypes for -Wmissing-prototypes; the module's interfaces are the only callers. */
int afmt_f_create(MPI_Fint comm, const char *path, unsigned flags, const afmt_opts *opts,
                  afmt_file **f);
int afmt_f_open(MPI_Fint comm, const char *path, unsigned mode, const afmt_opts *opts,
                afmt_file **f);
int afmt_f_open_layer(MPI_Fint comm, const char *path, uint64_t layer, const afmt_opts *opts,
                      afmt_file **f);
int afmt_f_signal_pending(MPI_Fint comm, int *pending);
int afmt_f_opts_set_mpi_info(afmt_opts *o, MPI_Fint info);

int afmt_f_create(MPI_Fint comm, const char *path, unsigned flags, const afmt_opts *opts,
                  afmt_file **f) {
    return afmt_create(MPI_Comm_f2c(comm), path, flags, opts, f);
}

int afmt_f_open(MPI_Fint comm, const char *path, unsigned mode, const afmt_opts *opts,
                afmt_file **f) {
    return afmt_open(MPI_Comm_f2c(comm), path, mode, opts, f);
}

int afmt_f_open_layer(MPI_Fint comm, const char *path, uint64_t layer, const afmt_opts *opts,
                      afmt_file **f) {
    return afmt_open_layer(MPI_Comm_f2c(comm), path, layer, opts, f);
}

int afmt_f_signal_pending(MPI_Fint comm, int *pending) {
    return afmt_signal_pending(MPI_Comm_f2c(comm), pending);
}

int afmt_f_opts_set_mpi_info(afmt_opts *o, MPI_Fint info) {
    return afmt_opts_set_mpi_info(o, MPI_Info_f2c(info));
}
