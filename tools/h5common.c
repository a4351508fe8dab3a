/* h5common.c - the dtype mapping between afmt and HDF5 that afmt export and afmt import
 * share (h5common.h). */
#include "h5common.h"

#include <sys/stat.h>

hid_t h5_native(afmt_dtype t) {
    switch (t) {
    case AFMT_BOOL: /* no HDF5/netCDF bool: 0/1 as uint8 */
    case AFMT_UINT8:
        return H5T_NATIVE_UINT8;
    case AFMT_INT8:
        return H5T_NATIVE_INT8;
    case AFMT_INT16:
        return H5T_NATIVE_INT16;
    case AFMT_INT32:
        return H5T_NATIVE_INT32;
    case AFMT_INT64:
        return H5T_NATIVE_INT64;
    case AFMT_UINT16:
        return H5T_NATIVE_UINT16;
    case AFMT_UINT32:
        return H5T_NATIVE_UINT32;
    case AFMT_UINT64:
        return H5T_NATIVE_UINT64;
    case AFMT_FLOAT32:
        return H5T_NATIVE_FLOAT;
    case AFMT_FLOAT64:
        return H5T_NATIVE_DOUBLE;
    }
    return H5T_NATIVE_UINT8;
}

/* Whether type is h5py's bool: a 1-byte enum of FALSE = 0 and TRUE = 1. */
int is_h5py_bool(hid_t type) {
    if (H5Tget_class(type) != H5T_ENUM || H5Tget_size(type) != 1 || H5Tget_nmembers(type) != 2)
        return 0;
    int ok = 1;
    for (unsigned i = 0; i < 2 && ok; i++) {
        char *nm = H5Tget_member_name(type, i);
        hid_t base = H5Tget_super(type);
        int8_t raw[8] = {0};
        if (!nm || H5Tget_member_value(type, i, raw) < 0 ||
            H5Tconvert(base, H5T_NATIVE_INT8, 1, raw, NULL, H5P_DEFAULT) < 0)
            ok = 0;
        int8_t v = raw[0];
        if (ok && !((!strcmp(nm, "FALSE") && v == 0) || (!strcmp(nm, "TRUE") && v == 1))) ok = 0;
        if (nm) H5free_memory(nm);
        H5Tclose(base);
    }
    return ok;
}

/* The memory type to read a file type of afmt dtype t with (to close): h5py's bool enum
 * as its native enum (0/1 bytes), else the native type of t. */
hid_t mem_type(hid_t ftype, int t) {
    if (t == AFMT_BOOL) return H5Tget_native_type(ftype, H5T_DIR_ASCEND);
    return H5Tcopy(h5_native((afmt_dtype)t));
}

/* The afmt dtype of an HDF5 integer or float type (or h5py's bool enum), or -1 (not numeric, or a
 * float that is not 4 or 8 bytes). */
int afmt_of_h5(hid_t type) {
    H5T_class_t c = H5Tget_class(type);
    size_t sz = H5Tget_size(type);
    if (c == H5T_ENUM) return is_h5py_bool(type) ? AFMT_BOOL : -1;
    if (c == H5T_FLOAT) return sz == 4 ? AFMT_FLOAT32 : sz == 8 ? AFMT_FLOAT64 : -1;
    if (c != H5T_INTEGER) return -1;
    int sgn = H5Tget_sign(type) == H5T_SGN_2;
    switch (sz) {
    case 1:
        return sgn ? AFMT_INT8 : AFMT_UINT8;
    case 2:
        return sgn ? AFMT_INT16 : AFMT_UINT16;
    case 4:
        return sgn ? AFMT_INT32 : AFMT_UINT32;
    case 8:
        return sgn ? AFMT_INT64 : AFMT_UINT64;
    default:
        return -1;
    }
}

const char *h5_class_name(hid_t type) {
    switch (H5Tget_class(type)) {
    case H5T_STRING:
        return "string";
    case H5T_COMPOUND:
        return "compound";
    case H5T_ENUM:
        return "enum";
    case H5T_ARRAY:
        return "array";
    case H5T_VLEN:
        return "variable-length";
    case H5T_REFERENCE:
        return "reference";
    case H5T_OPAQUE:
        return "opaque";
    case H5T_BITFIELD:
        return "bitfield";
    case H5T_FLOAT:
        return "float of an unsupported size";
    case H5T_INTEGER:
        return "integer of an unsupported size";
    default:
        return "unsupported";
    }
}

/* Whether paths a and b name the same existing file (writing one would destroy the
 * other). */
int same_file(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}
