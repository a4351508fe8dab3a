/* h5common.h - what afmt export (cmd_export.c) and afmt import (cmd_import.c) share: the
 * HDF5 and afmt headers, the mapping between afmt dtypes and HDF5 types, and netCDF-4's
 * marker of a dimension without a variable. Built only with HDF5 (AFMT_HAVE_HDF5). */
#ifndef AFMT_TOOLS_H5COMMON_H
#define AFMT_TOOLS_H5COMMON_H

#include <hdf5.h>
#include <hdf5_hl.h>

#include "api/file.h"
#include "cli.h"

typedef unsigned long long ull;

/* The text netCDF-4 puts in the NAME attribute of a dimension without a variable. */
#define NC_DIM_ONLY "This is a netCDF dimension but not a netCDF variable."

/* The HDF5 native type of afmt dtype t (bool: uint8, as netCDF has no bool). */
hid_t h5_native(afmt_dtype t);
/* Whether type is h5py's bool: a 1-byte enum of FALSE = 0 and TRUE = 1. */
int is_h5py_bool(hid_t type);
/* The memory type to read a file type of afmt dtype t with (to close): h5py's bool enum
 * as its native enum (0/1 bytes), else the native type of t. */
hid_t mem_type(hid_t ftype, int t);
/* The afmt dtype of an HDF5 integer or float type (or h5py's bool enum), or -1 (not
 * numeric, or a float that is not 4 or 8 bytes). */
int afmt_of_h5(hid_t type);
/* The name of type's HDF5 class ("string", "compound", ...), for messages. */
const char *h5_class_name(hid_t type);
/* Whether paths a and b name the same existing file (writing one would destroy the
 * other). */
int same_file(const char *a, const char *b);

#endif
