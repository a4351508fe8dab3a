/* array.c - array and attribute metadata: define, delete, attributes and inquiry. The
 * collective calls here reserve the memory they need, agree in one MPI_Allreduce
 * (afmt__enter: every rank's outcome, and that every rank is in the same call), then
 * apply the same change to each rank's index and queue the record for the next commit's
 * footer; each successful call is also noted in the handle's digest (consistency.h),
 * which the commit compares across ranks (the arguments). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/file.h"
#include "common/convert.h"
#include "common/util.h"

static int name_ok(afmt_file *f, const char *fn, const char *what, const char *s, size_t max) {
    if (!s) return afmt__fail(f->errmsg, AFMT_EINVAL, "%s: %s is NULL", fn, what);
    size_t n = strlen(s);
    if (n == 0) return afmt__fail(f->errmsg, AFMT_EINVAL, "%s: %s is empty", fn, what);
    if (n > max)
        return afmt__fail(f->errmsg, AFMT_EINVAL, "%s: %s \"%.40s...\" is %zu bytes, limit %zu", fn,
                          what, s, n, max);
    return AFMT_OK;
}

/* Room for one more pending array record (more room changes nothing). */
static int reserve_pending_array(afmt_file *f) {
    return AFMT__GROW(f->pend_arrays, f->cap_pend_arrays, f->n_pend_arrays + 1, 8);
}

/* COLLECTIVE. The metadata calls change nothing until every rank has the memory for the
 * change: rc is this rank's outcome of reserving it, agreed once (a rank short of memory
 * used to fail alone, and the ranks' metadata diverged). */
static int agree_reserved(afmt_file *f, int call, int rc, const char *fn, const char *name) {
    if (rc != AFMT_OK) afmt__fail(f->errmsg, rc, "%s(\"%s\"): out of memory", fn, name);
    return afmt__enter(f, call, rc, NULL, 0);
}

/* The define record of a new array: shape, chunk shape and dimension names checked. */
static int define_record(afmt_file *f, const char *name, afmt_dtype t, int ndim,
                         const uint64_t *shape, const uint64_t *chunk, const char *const *dims,
                         afmt_array_rec *r) {
    memset(r, 0, sizeof *r);
    r->id = f->idx.next_array_id;
    r->kind = AFMT_REC_DEFINE;
    r->codec = AFMT_CODEC_UNSET; /* no per-array codec setting recorded (format.md 6) */
    r->flags = f->opts.shuffle ? AFMT_ARRAY_SHUFFLE : 0;
    r->dtype = t;
    r->ndim = ndim;
    memcpy(r->name, name, strlen(name) + 1);
    uint64_t autoc[AFMT_MAX_NDIM]; /* chunk NULL: the rule of grid.h (about 2 MiB) */
    if (!chunk) afmt__grid_auto_chunk(ndim, shape, afmt__dtype_size(t), autoc);
    for (int i = 0; i < ndim; i++) {
        r->shape[i] = shape[i];
        r->chunk[i] = chunk ? chunk[i] : autoc[i];
        if (shape[i] == 0)
            return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_define(\"%s\"): shape[%d]=0", name, i);
        if (r->chunk[i] == 0 || r->chunk[i] > shape[i])
            return afmt__fail(f->errmsg, AFMT_EINVAL,
                              "afmt_define(\"%s\"): chunk[%d]=%llu outside [1, shape[%d]=%llu]",
                              name, i, (unsigned long long)r->chunk[i], i,
                              (unsigned long long)shape[i]);
        if (dims) {
            char what[64];
            snprintf(what, sizeof what, "dims[%d]", i);
            int rc = name_ok(f, "afmt_define", what, dims[i], AFMT_MAX_DIMNAME);
            if (rc != AFMT_OK) return rc;
            memcpy(r->dims[i], dims[i], strlen(dims[i]) + 1);
        } else {
            snprintf(r->dims[i], sizeof r->dims[i], "dim%d", i);
        }
    }
    return AFMT_OK;
}

/* Bounded sizes keep every buffer computation of the write and read paths in range
 * (format.md 2): the grid's counts, the array's bytes, a chunk's bytes. */
static int define_sizes_ok(afmt_file *f, const afmt_array_rec *r) {
    const char *name = r->name;
    afmt_grid g;
    if (afmt__grid_init(&g, r->ndim, r->shape, r->chunk) != AFMT_OK)
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_define(\"%s\"): the number of elements or chunks overflows 64 bits",
                          name);
    size_t es = afmt__dtype_size(r->dtype);
    uint64_t nelem = 1, celem = 1, bytes = 0;
    for (int i = 0; i < r->ndim; i++) {
        nelem *= r->shape[i]; /* afmt__grid_init checked these products */
        celem *= r->chunk[i];
    }
    if (!afmt__mul_ok(nelem, es, &bytes))
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_define(\"%s\"): %llu elements of %zu bytes exceed the limit of "
                          "2^64-1 bytes per array",
                          name, (unsigned long long)nelem, es);
    if (celem * es > AFMT_MAX_CHUNK_BYTES) /* celem * es <= nelem * es: no overflow */
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_define(\"%s\"): a chunk of %llu elements of %zu bytes (%llu "
                          "bytes) exceeds the limit of %llu bytes (AFMT_MAX_CHUNK_BYTES); choose "
                          "a smaller chunk shape",
                          name, (unsigned long long)celem, es, (unsigned long long)(celem * es),
                          (unsigned long long)AFMT_MAX_CHUNK_BYTES);
    return AFMT_OK;
}

int afmt_define(afmt_file *f, const char *name, afmt_dtype t, int ndim, const uint64_t *shape,
                const uint64_t *chunk, const char *const *dims, const void *fill) {
    return afmt_define_with(f, name, t, ndim, shape, chunk, dims, fill, NULL);
}

int afmt_define_with(afmt_file *f, const char *name, afmt_dtype t, int ndim, const uint64_t *shape,
                     const uint64_t *chunk, const char *const *dims, const void *fill,
                     const afmt_array_opts *ao) {
    const char *fn = ao ? "afmt_define_with" : "afmt_define";
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    if ((rc = afmt__check_writable(f, fn)) != AFMT_OK) return rc;
    if ((rc = name_ok(f, fn, "array name", name, AFMT_MAX_NAME)) != AFMT_OK) return rc;
    if (!afmt__dtype_valid((int)t))
        return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_define(\"%s\"): dtype %d is not valid",
                          name, (int)t);
    if (ndim < 0 || ndim > AFMT_MAX_NDIM)
        return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_define(\"%s\"): ndim=%d outside [0, %d]",
                          name, ndim, AFMT_MAX_NDIM);
    if (ndim > 0 && !shape)
        return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_define(\"%s\"): shape is NULL", name);
    if (afmt__index_find(&f->idx, name))
        return afmt__fail(f->errmsg, AFMT_EEXIST,
                          "afmt_define(\"%s\"): an array of that name exists", name);
    afmt_array_rec r;
    if ((rc = define_record(f, name, t, ndim, shape, chunk, dims, &r)) != AFMT_OK) return rc;
    if ((rc = define_sizes_ok(f, &r)) != AFMT_OK) return rc;
    if ((rc = afmt__array_setting(f, name, t, ao, &r)) != AFMT_OK) return rc;
    if (fill) {
        size_t es = afmt__dtype_size(t);
        memcpy(r.fill, fill, es);
        if (afmt__host_is_big_endian()) afmt__bswap_elems(r.fill, 1, es);
    }
    rc = reserve_pending_array(f);
    if (rc == AFMT_OK) rc = afmt__index_reserve_array(&f->idx);
    if (rc == AFMT_OK) rc = afmt__consist_reserve(f);
    if ((rc = agree_reserved(f, AFMT_CALL_DEFINE, rc, fn, name)) != AFMT_OK) return rc;
    char msg[AFMT_ERRMSG_MAX];
    if ((rc = afmt__index_define(&f->idx, &r, msg)) != AFMT_OK)
        return afmt__fail(f->errmsg, rc, "afmt_define(\"%s\"): %s", name, msg);
    f->pend_arrays[f->n_pend_arrays++] = r;
    afmt__consist_note_define(f, &r);
    return AFMT_OK;
}

int afmt_delete(afmt_file *f, const char *name) {
    const char *fn = "afmt_delete";
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    if ((rc = afmt__check_writable(f, fn)) != AFMT_OK) return rc;
    afmt_array *arr;
    if ((rc = afmt__lookup(f, fn, name, &arr)) != AFMT_OK) return rc;
    afmt_array_rec r;
    memset(&r, 0, sizeof r);
    r.id = arr->d.id;
    r.kind = AFMT_REC_DELETE;
    r.dtype = arr->d.dtype;
    memcpy(r.name, arr->d.name, sizeof r.name);
    rc = reserve_pending_array(f);
    if (rc == AFMT_OK) rc = afmt__consist_reserve(f);
    if ((rc = agree_reserved(f, AFMT_CALL_DELETE, rc, fn, name)) != AFMT_OK) return rc;
    f->pend_arrays[f->n_pend_arrays++] = r;
    afmt__staging_drop_array(&f->staging, r.id);
    afmt__index_delete(&f->idx, r.id);
    afmt__consist_note_delete(f, r.name);
    return AFMT_OK;
}

/* Resolves the owner of an attribute: NULL = the file. */
static int attr_owner(afmt_file *f, const char *fn, const char *array, uint64_t *id) {
    if (!array) {
        *id = AFMT_ATTR_FILE;
        return AFMT_OK;
    }
    afmt_array *arr;
    int rc = afmt__lookup(f, fn, array, &arr);
    if (rc == AFMT_OK) *id = arr->d.id;
    return rc;
}

int afmt_set_attr(afmt_file *f, const char *array, const char *key, afmt_dtype t, uint64_t n,
                  const void *values) {
    const char *fn = "afmt_set_attr";
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    if ((rc = afmt__check_writable(f, fn)) != AFMT_OK) return rc;
    if ((rc = name_ok(f, fn, "attribute key", key, AFMT_MAX_NAME)) != AFMT_OK) return rc;
    if (!afmt__dtype_valid((int)t))
        return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_set_attr(\"%s\"): dtype %d is not valid",
                          key, (int)t);
    if (n > 0 && !values)
        return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_set_attr(\"%s\"): values is NULL", key);
    size_t es = afmt__dtype_size(t);
    uint64_t bytes;
    if (!afmt__mul_ok(n, es, &bytes) || bytes > ((uint64_t)1 << 31))
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_set_attr(\"%s\"): n=%llu values exceed the 2 GiB attribute limit",
                          key, (unsigned long long)n);
    uint64_t id;
    if ((rc = attr_owner(f, fn, array, &id)) != AFMT_OK) return rc;
    /* The pending record's value and the index's copy, and room for both, first. */
    uint8_t *le = malloc(bytes ? (size_t)bytes : 1), *mine = malloc(bytes ? (size_t)bytes : 1);
    rc = le && mine ? AFMT_OK : AFMT_ENOMEM;
    if (rc == AFMT_OK) {
        if (bytes) memcpy(le, values, (size_t)bytes);
        if (afmt__host_is_big_endian()) afmt__bswap_elems(le, (size_t)n, es);
        if (bytes) memcpy(mine, le, (size_t)bytes);
    }
    if (rc == AFMT_OK) rc = AFMT__GROW(f->pend_attrs, f->cap_pend_attrs, f->n_pend_attrs + 1, 8);
    if (rc == AFMT_OK) rc = afmt__index_reserve_attr(&f->idx, id, key);
    if (rc == AFMT_OK) rc = afmt__consist_reserve(f);
    if ((rc = agree_reserved(f, AFMT_CALL_SET_ATTR, rc, fn, key)) != AFMT_OK) {
        free(le);
        free(mine);
        return rc;
    }
    afmt__index_put_attr(&f->idx, id, key, t, n, mine); /* cannot fail: reserved */
    afmt_attr_rec *a = &f->pend_attrs[f->n_pend_attrs++];
    memset(a, 0, sizeof *a);
    a->array_id = id;
    memcpy(a->key, key, strlen(key) + 1);
    a->dtype = t;
    a->n = n;
    a->value = le;
    afmt__consist_note_set_attr(f, array, a);
    return AFMT_OK;
}

/* attr_copy_out for a t other than the stored dtype: the stored values (little-endian: a
 * native copy first on a big-endian host) converted into values. AFMT_ERANGE names the
 * first value that does not fit t. */
static int attr_convert_out(afmt_file *f, const char *fn, const char *owner, const afmt_attr_rec *a,
                            afmt_dtype t, void *values) {
    size_t es = afmt__dtype_size(a->dtype);
    const uint8_t *src = a->value;
    uint8_t *tmp = NULL;
    if (afmt__host_is_big_endian() && es > 1 && a->n) {
        if (!(tmp = malloc((size_t)a->n * es)))
            return afmt__fail(f->errmsg, AFMT_ENOMEM, "%s(\"%s\"): out of memory", fn, a->key);
        memcpy(tmp, a->value, (size_t)a->n * es);
        afmt__bswap_elems(tmp, (size_t)a->n, es);
        src = tmp;
    }
    size_t bad = 0;
    int rc = afmt__convert(values, t, src, a->dtype, (size_t)a->n, &bad);
    if (rc == AFMT_ERANGE) {
        char v[64];
        afmt__value_str(v, sizeof v, src + bad * es, a->dtype);
        afmt__fail(f->errmsg, rc, "%s(%s, \"%s\"): value %zu (%s, %s) does not fit %s %s", fn,
                   owner, a->key, bad, v, afmt__dtype_name(a->dtype), afmt__dtype_name(t),
                   afmt__dtype_range_str(t));
    } else if (rc != AFMT_OK) {
        afmt__fail(f->errmsg, rc, "%s(%s, \"%s\"): stored dtype %d is not valid", fn, owner, a->key,
                   (int)a->dtype);
    }
    free(tmp);
    return rc;
}

/* Copies a stored attribute out for a reader: dtype, capacity, byte order, and the
 * conversion to t where t is not the stored dtype (convert.h). owner names the array, the
 * file or the layer in a conversion's message ("\"temp\"", "file", "layer 3"). */
static int attr_copy_out(afmt_file *f, const char *fn, const char *owner, const afmt_attr_rec *a,
                         afmt_dtype t, uint64_t *n, void *values) {
    const char *key = a->key;
    if (!afmt__dtype_valid((int)t))
        return afmt__fail(f->errmsg, AFMT_EINVAL, "%s(\"%s\"): dtype %d is not valid", fn, key,
                          (int)t);
    uint64_t cap = *n;
    *n = a->n;
    if (cap < a->n)
        return afmt__fail(f->errmsg, AFMT_ERANGE,
                          "%s(\"%s\"): %llu values do not fit in a capacity of %llu", fn, key,
                          (unsigned long long)a->n, (unsigned long long)cap);
    if (a->n > 0 && !values)
        return afmt__fail(f->errmsg, AFMT_EINVAL, "%s(\"%s\"): values is NULL", fn, key);
    if (a->dtype != t) return attr_convert_out(f, fn, owner, a, t, values);
    size_t es = afmt__dtype_size(t);
    if (a->n) memcpy(values, a->value, (size_t)(a->n * es));
    if (afmt__host_is_big_endian()) afmt__bswap_elems(values, (size_t)a->n, es);
    if (t == AFMT_BOOL) afmt__bool_normalize(values, (size_t)a->n); /* nonzero reads as 1 */
    return AFMT_OK;
}

int afmt_layer_attr(afmt_file *f, uint64_t index, const char *key, afmt_dtype t, uint64_t *n,
                    void *values) {
    int rc = afmt__check(f, "afmt_layer_attr");
    if (rc != AFMT_OK) return rc;
    if (!key || !n)
        return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_layer_attr: %s is NULL", key ? "n" : "key");
    if (index >= f->idx.n_layers)
        return afmt__fail(f->errmsg, AFMT_ERANGE, "afmt_layer_attr: index %llu outside [0, %llu)",
                          (unsigned long long)index, (unsigned long long)f->idx.n_layers);
    const afmt_layer_info *li = &f->idx.layers[index];
    for (uint64_t i = 0; i < li->n_attrs; i++)
        if (!strcmp(li->attrs[i].key, key)) {
            char owner[32];
            snprintf(owner, sizeof owner, "layer %llu", (unsigned long long)li->layer_id);
            return attr_copy_out(f, "afmt_layer_attr", owner, &li->attrs[i], t, n, values);
        }
    return afmt__fail(f->errmsg, AFMT_ENOTFOUND,
                      "afmt_layer_attr(layer %llu, \"%s\"): no such attribute",
                      (unsigned long long)li->layer_id, key);
}

int afmt_get_attr(afmt_file *f, const char *array, const char *key, afmt_dtype t, uint64_t *n,
                  void *values) {
    const char *fn = "afmt_get_attr";
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    if (!key || !n)
        return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_get_attr: %s is NULL", key ? "n" : "key");
    uint64_t id;
    if ((rc = attr_owner(f, fn, array, &id)) != AFMT_OK) return rc;
    const afmt_attr_rec *a = afmt__index_get_attr(&f->idx, id, key);
    if (!a)
        return afmt__fail(f->errmsg, AFMT_ENOTFOUND,
                          "afmt_get_attr(%s%s%s, \"%s\"): no such attribute", array ? "\"" : "",
                          array ? array : "file", array ? "\"" : "", key);
    char owner[AFMT_MAX_NAME + 3];
    snprintf(owner, sizeof owner, "%s%s%s", array ? "\"" : "", array ? array : "file",
             array ? "\"" : "");
    return attr_copy_out(f, "afmt_get_attr", owner, a, t, n, values);
}

static void fill_info(const afmt_array *arr, afmt_info *info) {
    memset(info, 0, sizeof *info);
    memcpy(info->name, arr->d.name, sizeof info->name);
    info->dtype = arr->d.dtype;
    info->ndim = arr->d.ndim;
    for (int i = 0; i < arr->d.ndim; i++) {
        info->shape[i] = arr->d.shape[i];
        info->chunk[i] = arr->d.chunk[i];
        memcpy(info->dims[i], arr->d.dims[i], sizeof info->dims[i]);
    }
}

int afmt_count(afmt_file *f, int *n) {
    int rc = afmt__check(f, "afmt_count");
    if (rc != AFMT_OK) return rc;
    if (!n) return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_count: n is NULL");
    uint64_t c = afmt__index_live_count(&f->idx);
    if (c > (uint64_t)INT32_MAX)
        return afmt__fail(f->errmsg, AFMT_ERANGE, "afmt_count: %llu arrays exceed an int",
                          (unsigned long long)c);
    *n = (int)c;
    return AFMT_OK;
}

int afmt_info_at(afmt_file *f, int index, afmt_info *info) {
    int rc = afmt__check(f, "afmt_info_at");
    if (rc != AFMT_OK) return rc;
    if (!info) return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_info_at: info is NULL");
    uint64_t c = afmt__index_live_count(&f->idx);
    if (index < 0 || (uint64_t)index >= c)
        return afmt__fail(f->errmsg, AFMT_ERANGE, "afmt_info_at: index %d outside [0, %llu)", index,
                          (unsigned long long)c);
    fill_info(afmt__index_live_at(&f->idx, (uint64_t)index), info);
    return AFMT_OK;
}

int afmt_inquire(afmt_file *f, const char *name, afmt_info *info) {
    int rc = afmt__check(f, "afmt_inquire");
    if (rc != AFMT_OK) return rc;
    if (!info) return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_inquire: info is NULL");
    afmt_array *arr;
    if ((rc = afmt__lookup(f, "afmt_inquire", name, &arr)) != AFMT_OK) return rc;
    fill_info(arr, info);
    return AFMT_OK;
}
