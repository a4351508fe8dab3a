# cmake/AfmtMPIExec.cmake - the MPI implementation that runs the tests and examples, and
# the flags its mpiexec needs, as scripts/mpiexec-flags (the one place that knows them)
# says for MPIEXEC_EXECUTABLE: Open MPI --oversubscribe (a CI runner has fewer cores than
# ranks) and, as root, --allow-run-as-root; MPICH none. Sets:
#   AFMT_MPI_IMPL        openmpi, mpich or unknown
#   AFMT_MPIEXEC_EXTRA   the extra mpiexec arguments (a list)
#   AFMT_MPIEXEC_ENV     NAME=VALUE settings (a list) of a process that initializes MPI
#                        without mpiexec (a singleton), e.g. Open MPI run by root
#   _afmt_mpiexec_version  the text of `mpiexec --version` (the pkg-config module choice)
set(_afmt_flags_sh ${CMAKE_CURRENT_LIST_DIR}/../scripts/mpiexec-flags)
foreach(_afmt_what impl flags env)
  set(_afmt_opt --${_afmt_what})
  if(_afmt_what STREQUAL "flags")
    set(_afmt_opt "")
  endif()
  execute_process(COMMAND bash ${_afmt_flags_sh} ${_afmt_opt} ${MPIEXEC_EXECUTABLE}
    OUTPUT_VARIABLE _afmt_out OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  separate_arguments(_afmt_out UNIX_COMMAND "${_afmt_out}")
  set(_afmt_mpi_${_afmt_what} ${_afmt_out})
endforeach()
set(AFMT_MPI_IMPL ${_afmt_mpi_impl})
set(AFMT_MPIEXEC_EXTRA ${_afmt_mpi_flags})
set(AFMT_MPIEXEC_ENV ${_afmt_mpi_env})
if(NOT AFMT_MPI_IMPL)
  set(AFMT_MPI_IMPL unknown)
endif()
message(STATUS "MPI for the tests: ${AFMT_MPI_IMPL}, mpiexec flags: ${AFMT_MPIEXEC_EXTRA}")
execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE _afmt_mpiexec_version
  ERROR_QUIET)
