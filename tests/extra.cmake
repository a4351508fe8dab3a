# tests/extra.cmake - the install.consumer test: installs the build tree into a scratch
# prefix and builds two tiny consumer programs against it, one with
# find_package(afmt) -> afmt::afmt (plus one linked to afmt::afmt_static) and one with
# `pkg-config afmt`, then runs them on one MPI rank. It proves that the installed header,
# libraries, CMake package and afmt.pc are complete and relocatable.
#
# This file has two roles: tests/CMakeLists.txt include()s it to add the test, and the
# test runs it again in script mode (cmake -P) to do the work.

if(NOT CMAKE_SCRIPT_MODE_FILE)
  # ---- configure time: add the test ------------------------------------------------
  # A sanitized library needs the sanitizer runtimes in every consumer: checked only in
  # the ordinary build.
  if(NOT AFMT_SANITIZE)
    string(REPLACE ";" "|" _afmt_extra "${AFMT_MPIEXEC_EXTRA}")
    add_test(NAME install.consumer
      COMMAND ${CMAKE_COMMAND}
              -DAFMT_BUILD_DIR=${CMAKE_BINARY_DIR}
              -DAFMT_WORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/install-consumer
              -DAFMT_LIBDIR=${CMAKE_INSTALL_LIBDIR}
              -DAFMT_C_COMPILER=${CMAKE_C_COMPILER}
              -DAFMT_MPIEXEC=${MPIEXEC_EXECUTABLE}
              "-DAFMT_MPIEXEC_ARGS=${MPIEXEC_NUMPROC_FLAG}|1|${_afmt_extra}"
              -P ${CMAKE_CURRENT_LIST_FILE})
    set_tests_properties(install.consumer PROPERTIES TIMEOUT 600 PROCESSORS 1)
  endif()
  return()
endif()

# ---- script mode: do it ----------------------------------------------------------------
string(REPLACE "|" ";" mpiexec_args "${AFMT_MPIEXEC_ARGS}")
string(REPLACE ";;" ";" mpiexec_args "${mpiexec_args}")
set(prefix "${AFMT_WORK_DIR}/prefix")
set(src "${AFMT_WORK_DIR}/src")
file(REMOVE_RECURSE "${AFMT_WORK_DIR}")
file(MAKE_DIRECTORY "${src}")

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install.consumer: ${what} failed (${rc}):\n${ARGN}\n${out}")
  endif()
  message(STATUS "install.consumer: ${what}: ok")
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

run("cmake --install" "${CMAKE_COMMAND}" --install "${AFMT_BUILD_DIR}" --prefix "${prefix}")

# The consumer: writes and reads back a small array through the installed library.
file(WRITE "${src}/consumer.c" [=[
#include <afmt.h>
#include <stdio.h>
#include <string.h>

#define CHECK(h, call)                                                                     \
    do {                                                                                   \
        if ((call) != AFMT_OK) {                                                           \
            fprintf(stderr, "consumer: %s failed: %s\n", #call, afmt_errmsg(h));            \
            MPI_Finalize();                                                                \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    afmt_file *f = NULL;
    uint64_t shape[1] = {10}, start[1] = {0}, chunk[1] = {4};
    int in[10], out[10] = {0};
    for (int i = 0; i < 10; i++) in[i] = i * i;
    if (argc != 2) return 2;
    CHECK(f, afmt_create(MPI_COMM_SELF, argv[1], AFMT_TRUNC, NULL, &f));
    CHECK(f, afmt_define(f, "sq", AFMT_INT32, 1, shape, chunk, NULL, NULL));
    CHECK(f, afmt_write(f, "sq", start, shape, in));
    CHECK(f, afmt_commit(f));
    CHECK(NULL, afmt_close(f));
    f = NULL;
    CHECK(f, afmt_open(MPI_COMM_SELF, argv[1], AFMT_RDONLY, NULL, &f));
    CHECK(f, afmt_read(f, "sq", start, shape, out));
    CHECK(NULL, afmt_close(f));
    f = NULL;
    int ok = memcmp(in, out, sizeof in) == 0;
    printf("consumer: afmt %s: %s\n", afmt_version(), ok ? "ok" : "wrong values");
    remove(argv[1]);
    MPI_Finalize();
    return ok ? 0 : 1;
}
]=])
file(WRITE "${src}/CMakeLists.txt" [=[
cmake_minimum_required(VERSION 3.18)
project(afmt_consumer LANGUAGES C)
find_package(afmt 0.1 REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE afmt::afmt)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static PRIVATE afmt::afmt_static)
]=])

# 1. CMake: find_package(afmt) from the prefix.
run("cmake configure (find_package)" "${CMAKE_COMMAND}" -S "${src}" -B "${AFMT_WORK_DIR}/cm"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_C_COMPILER=${AFMT_C_COMPILER}")
run("cmake build (afmt::afmt, afmt::afmt_static)" "${CMAKE_COMMAND}" --build
    "${AFMT_WORK_DIR}/cm")

# 2. pkg-config: plain compiler, flags from the installed afmt.pc (MPI's come with it).
find_program(PKG_CONFIG NAMES pkg-config pkgconf REQUIRED)
set(ENV{PKG_CONFIG_PATH} "${prefix}/${AFMT_LIBDIR}/pkgconfig:$ENV{PKG_CONFIG_PATH}")
run("pkg-config --cflags --libs afmt" "${PKG_CONFIG}" --cflags --libs afmt)
string(STRIP "${run_output}" pc_flags)
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
string(FIND "${pc_flags}" "-I${prefix}/include" pos)
if(pos LESS 0)
  message(FATAL_ERROR "install.consumer: afmt.pc does not point into ${prefix}: ${pc_flags}")
endif()
run("cc consumer.c `pkg-config --cflags --libs afmt`" "${AFMT_C_COMPILER}"
    "${src}/consumer.c" -o "${AFMT_WORK_DIR}/consumer_pc" ${pc_flags})
# The README's line for any prefix: the rpath finds libafmt.so at run time, with no
# LD_LIBRARY_PATH (run below before that is set).
run("cc consumer.c `pkg-config --cflags --libs afmt` -Wl,-rpath" "${AFMT_C_COMPILER}"
    "${src}/consumer.c" -o "${AFMT_WORK_DIR}/consumer_rpath" ${pc_flags}
    "-Wl,-rpath,${prefix}/${AFMT_LIBDIR}")
run("run consumer_rpath" "${AFMT_MPIEXEC}" ${mpiexec_args} "${AFMT_WORK_DIR}/consumer_rpath"
    "${AFMT_WORK_DIR}/test.afmt")

# Static: the archive plus `pkg-config --static --libs` (Requires.private, Libs.private).
run("pkg-config --static --libs afmt" "${PKG_CONFIG}" --static --libs afmt)
string(STRIP "${run_output}" pc_static)
separate_arguments(pc_static UNIX_COMMAND "${pc_static}")
list(REMOVE_ITEM pc_static -lafmt)
run("pkg-config --cflags afmt" "${PKG_CONFIG}" --cflags afmt)
string(STRIP "${run_output}" pc_cflags)
separate_arguments(pc_cflags UNIX_COMMAND "${pc_cflags}")
run("cc consumer.c libafmt.a `pkg-config --static --libs afmt`" "${AFMT_C_COMPILER}"
    ${pc_cflags} "${src}/consumer.c" "${prefix}/${AFMT_LIBDIR}/libafmt.a" ${pc_static}
    -o "${AFMT_WORK_DIR}/consumer_pc_static")

# 3. Run them all on one rank.
set(ENV{LD_LIBRARY_PATH} "${prefix}/${AFMT_LIBDIR}:$ENV{LD_LIBRARY_PATH}")
foreach(exe cm/consumer cm/consumer_static consumer_pc consumer_pc_static)
  run("run ${exe}" "${AFMT_MPIEXEC}" ${mpiexec_args} "${AFMT_WORK_DIR}/${exe}"
      "${AFMT_WORK_DIR}/test.afmt")
endforeach()
file(REMOVE_RECURSE "${AFMT_WORK_DIR}")
