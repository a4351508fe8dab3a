"""The xarray backend of afmt: xr.open_dataset(path, engine="afmt").

Registered for xarray through the entry point group "xarray.backends" (the afmt.dist-info
next to this package, python/afmt.dist-info/entry_points.txt), so that engine="afmt" works
whenever python/ is on sys.path; passing the class, engine=AfmtBackendEntrypoint, works
without the entry point. Built on the pure-Python reader (afmt.open):

- every live array is a variable; its dimension names are the array's (an axis whose
  stored name is libafmt's default "dim<i>", given where the writer named no dimensions,
  gets xarray's default name "dim_<i>" instead, see _dimension_names), its attributes
  the variable's attrs, the file attributes the dataset's attrs;
- the variables are lazy: a selection reads only the chunks it touches (a BackendArray
  over the reader's numpy basic indexing);
- encoding["preferred_chunks"] and encoding["chunksizes"] are the afmt chunk shape, so
  chunks={} gives dask chunks aligned to the afmt chunks;
- layer=K opens the file as of layer K (default: the newest layer, pinned at open so that
  every later read, and a reopen after pickling, sees that same layer);
- CF decoding (mask_and_scale, decode_times, ...) as in xarray's own backends;
- an http(s):// or s3:// URL opens a remote file (timeout=, retries= as for afmt.open).

This module imports xarray; `import afmt` does not import it."""

import os

import numpy as np
from xarray.backends.common import AbstractDataStore, BackendArray, BackendEntrypoint
from xarray.backends.file_manager import CachingFileManager
from xarray.backends.locks import SerializableLock
from xarray.backends.store import StoreBackendEntrypoint
from xarray.core import indexing
from xarray.core.utils import Frozen, FrozenDict
from xarray.core.variable import Variable

from . import _format as F
from . import _remote
from ._reader import File

__all__ = ["AfmtBackendEntrypoint", "AfmtBackendArray", "AfmtDataStore"]


def _open_file(path, layer, timeout=30.0, retries=3):
    return File(path, layer=layer, timeout=timeout, retries=retries)


def _default_axis(name, axis):
    """An axis libafmt named itself: afmt_define with dims NULL names axis i "dim<i>"."""
    return name == "dim%d" % axis


def _dimension_names(arrays, raw_dims=False):
    """The dimension names of every array (a dict name -> tuple). An axis i whose stored
    name is libafmt's default "dim<i>" is unnamed and gets xarray's default name "dim_<i>"
    (what xr.DataArray gives an array without dims) when every unnamed axis i of the file
    has the same length and no named dimension "dim_<i>" has another length; otherwise it
    gets "dim_<i>_<length>", so that arrays of different shapes can share a dataset.
    Arrays of the same shape always get the same names. raw_dims: the names as stored."""
    if raw_dims:
        return {n: tuple(a.dims) for n, a in arrays.items()}
    named, unnamed = {}, {}
    for a in arrays.values():
        for i, (d, s) in enumerate(zip(a.dims, a.shape)):
            if _default_axis(d, i):
                unnamed.setdefault(i, set()).add(s)
            else:
                named.setdefault(d, set()).add(s)
    out = {}
    for n, a in arrays.items():
        dims = []
        for i, (d, s) in enumerate(zip(a.dims, a.shape)):
            if _default_axis(d, i):
                d = "dim_%d" % i
                if len(unnamed[i]) > 1 or named.get(d, {s}) != {s}:
                    d = "dim_%d_%d" % (i, s)
            dims.append(d)
        out[n] = tuple(dims)
    return out


# An outer selection reads one box per combination of its pieces (runs of touched chunks
# per axis); beyond this many boxes, the axes with the most pieces are read whole.
_MAX_BOXES = 64


def _pieces(idx, c):
    """The pieces [lo, hi) of one axis to read for the sorted indices idx (in chunks of
    c): one per run of consecutive chunks that idx touches, from its first index to its
    last."""
    ch = idx // c
    cut = np.flatnonzero(np.diff(ch) > 1) + 1     # a chunk skipped: a new piece
    return [(int(r[0]), int(r[-1]) + 1) for r in np.split(idx, cut)]


def _outer_read(a, key):
    """a[key] for an afmt Array a and an outer key (xarray's OuterIndexer with OUTER
    support: ints, slices of positive step, sorted 1-D integer arrays), reading only the
    chunks of the selected indices: each array axis becomes pieces (runs of touched
    chunks), each combination of pieces one basic read of the reader."""
    arrays = [d for d, k in enumerate(key) if isinstance(k, np.ndarray)]
    if not arrays:
        return np.asarray(a[key])
    axes = []   # per axis, its pieces: [(lo, hi), ...] or [the slice]
    for d, k in enumerate(key):
        if isinstance(k, np.ndarray):
            idx = k.astype(np.int64, copy=False).ravel()
            axes.append(_pieces(idx, a.chunks[d]) if idx.size else [])
        elif isinstance(k, slice):
            axes.append([k])
        else:
            axes.append([(int(k), int(k) + 1)])
    if any(not p for p in axes):    # an empty array selects nothing
        shape = [len(k) if isinstance(k, np.ndarray) else len(range(*k.indices(n)))
                 for k, n in zip(key, a.shape) if not isinstance(k, (int, np.integer))]
        return np.empty(shape, dtype=a.dtype)
    while np.prod([len(p) for p in axes]) > _MAX_BOXES:
        d = max(arrays, key=lambda d: len(axes[d]))
        axes[d] = [(axes[d][0][0], axes[d][-1][1])]
    box_shape = []
    for d, p in enumerate(axes):
        if isinstance(p[0], slice):
            box_shape.append(len(range(*p[0].indices(a.shape[d]))))
        else:
            box_shape.append(sum(hi - lo for lo, hi in p))
    buf = np.empty(box_shape, dtype=a.dtype)
    offsets = []
    for p in axes:
        o, acc = [], 0
        for q in p:
            o.append(acc)
            acc += 0 if isinstance(q, slice) else q[1] - q[0]
        offsets.append(o)
    for combo in np.ndindex(*[len(p) for p in axes]):
        src, dst = [], []
        for d, i in enumerate(combo):
            q = axes[d][i]
            if isinstance(q, slice):
                src.append(q)
                dst.append(slice(None))
            else:
                src.append(slice(q[0], q[1]))
                dst.append(slice(offsets[d][i], offsets[d][i] + q[1] - q[0]))
        buf[tuple(dst)] = a[tuple(src)]
    for d in arrays:   # the selected indices' positions in the pieces read
        idx = key[d].astype(np.int64, copy=False).ravel()
        los = np.array([q[0] for q in axes[d]])
        j = np.searchsorted(los, idx, side="right") - 1
        buf = np.take(buf, np.asarray(offsets[d])[j] + idx - los[j], axis=d)
    return buf[tuple(0 if not isinstance(k, (slice, np.ndarray)) else slice(None)
                     for k in key)]


def _positive_steps(key, shape):
    """key (an ExplicitIndexer) with every slice of negative step replaced by the slice
    of positive step over the same elements, and the axes of the result to reverse.
    xarray's own conversion (indexing._decompose_slice, 2023.01) picks the wrong elements
    where the length is not a multiple of the step: [::-3] of 9 elements gave 7, 4, 1."""
    tup = key.tuple
    if not any(isinstance(k, slice) and k.step is not None and k.step < 0 for k in tup):
        return key, ()
    vectorized = isinstance(key, indexing.VectorizedIndexer)
    # The result's axes: basic and outer, one per slice and array in order; vectorized,
    # the arrays' broadcast axes first, then one per slice.
    ax = max([k.ndim for k in tup if isinstance(k, np.ndarray)] or [0]) if vectorized else 0
    new, flip = [], []
    for k, n in zip(tup, shape):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step < 0:
                m = len(range(start, stop, step))
                k = slice(start + (m - 1) * step, start + 1, -step) if m else slice(0, 0)
                flip.append(ax)
            ax += 1
        elif isinstance(k, np.ndarray) and not vectorized:
            ax += 1
        new.append(k)
    return type(key)(tuple(new)), tuple(flip)


class AfmtBackendArray(BackendArray):
    """One afmt array, read lazily: indexing reads only the chunks the selection touches
    (basic selections: the reader's numpy basic indexing; outer ones, integer arrays per
    axis: one basic read per run of touched chunks, _outer_read; xarray turns vectorized
    selections into an outer one plus numpy indexing of its result)."""

    __slots__ = ("datastore", "name", "shape", "dtype")

    def __init__(self, datastore, name, shape, dtype):
        self.datastore = datastore
        self.name = name
        self.shape = shape
        self.dtype = dtype

    def __getitem__(self, key):
        key, flip = _positive_steps(key, self.shape)
        out = indexing.explicit_indexing_adapter(key, self.shape,
                                                 indexing.IndexingSupport.OUTER,
                                                 self._getitem)
        return np.flip(out, axis=flip) if flip else out

    def _getitem(self, key):
        # The reader's handle is not thread-safe (its block cache): one read at a time.
        with self.datastore.lock:
            a = self.datastore.acquire()[self.name]
            return _outer_read(a, tuple(key))


class AfmtDataStore(AbstractDataStore):
    """An afmt file as an xarray data store: variables, attributes, encoding."""

    def __init__(self, path, layer=None, raw_dims=False, lock=None, timeout=30.0, retries=3):
        self.path = path
        self.lock = SerializableLock() if lock is None else lock
        remote = {"timeout": timeout, "retries": retries}
        f = File(path, layer=layer, **remote)  # errors here, at open, not at the first read
        try:
            # Pin the layer: a reopen (after pickling, or after the file cache closed the
            # handle) must see this view even if the file got more layers meanwhile.
            self.layer = f.layers[-1].id
        except BaseException:
            f.close()
            raise
        f.close()
        self._manager = CachingFileManager(_open_file, path,
                                           kwargs=dict(remote, layer=self.layer))
        self.raw_dims = raw_dims

    def acquire(self):
        return self._manager.acquire()

    def get_variables(self):
        f = self.acquire()
        arrays = {n: f[n] for n in f}
        dims = _dimension_names(arrays, self.raw_dims)
        out = {}
        for n, a in arrays.items():
            data = indexing.LazilyIndexedArray(AfmtBackendArray(self, n, a.shape, a.dtype))
            enc = {"dtype": a.dtype, "original_shape": a.shape, "afmt_fill": a.fill,
                   "source": self.path}
            if a.ndim:
                enc["chunksizes"] = a.chunks
                enc["preferred_chunks"] = dict(zip(dims[n], a.chunks))
            out[n] = Variable(dims[n], data, attrs=dict(a.attrs), encoding=enc)
        return FrozenDict(out)

    def get_attrs(self):
        return FrozenDict(self.acquire().attrs)

    def get_dimensions(self):
        dims = {}
        for v in self.get_variables().values():
            dims.update(zip(v.dims, v.shape))
        return Frozen(dims)

    def get_encoding(self):
        f = self.acquire()
        return {"afmt_layer": self.layer, "afmt_layers": [L.id for L in f.layers]}

    def close(self):
        self._manager.close()


def _is_afmt(path):
    """A path ending in .afmt, or a file with an afmt superblock slot (its magic at the
    offset of slot A or B)."""
    if str(path).endswith(".afmt"):
        return True
    if _remote.is_url(path):
        return False    # not worth a request: engine="afmt" opens it
    try:
        with open(path, "rb") as fh:
            for off in F.SLOT_OFFSETS:
                fh.seek(off)
                if fh.read(len(F.SLOT_MAGIC)) == F.SLOT_MAGIC:
                    return True
    except (OSError, ValueError, TypeError):
        pass
    return False


class AfmtBackendEntrypoint(BackendEntrypoint):
    """xarray's entry point for afmt files: xr.open_dataset(path, engine="afmt",
    layer=None, raw_dims=False), xr.open_mfdataset(paths, engine="afmt", ...)."""

    description = "Open afmt files (layered, chunked, compressed arrays) in xarray"
    url = "docs/python.md, section xarray, in the afmt source tree"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "mask_and_scale",
                               "decode_times", "concat_characters", "decode_coords",
                               "use_cftime", "decode_timedelta", "layer", "raw_dims",
                               "lock", "timeout", "retries")

    def guess_can_open(self, filename_or_obj):
        try:
            path = os.fspath(filename_or_obj)
        except TypeError:
            return False
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        return _is_afmt(path)

    def open_dataset(self, filename_or_obj, *, drop_variables=None, mask_and_scale=True,
                     decode_times=True, concat_characters=True, decode_coords=True,
                     use_cftime=None, decode_timedelta=None, layer=None, raw_dims=False,
                     lock=None, timeout=30.0, retries=3):
        """layer: the layer id to open the file as of (None: the newest). raw_dims: the
        dimension names exactly as stored (libafmt's "dim0", ... too). lock: the lock
        around this file's reads (default: one per opened dataset). timeout, retries: for
        an http(s):// or s3:// URL, as in afmt.open."""
        try:
            path = os.fspath(filename_or_obj)
        except TypeError:
            raise TypeError("engine 'afmt' opens a path (str or os.PathLike), not %r" %
                            type(filename_or_obj).__name__) from None
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        store = AfmtDataStore(path, layer=layer, raw_dims=raw_dims, lock=lock,
                              timeout=timeout, retries=retries)
        try:
            return StoreBackendEntrypoint().open_dataset(
                store, mask_and_scale=mask_and_scale, decode_times=decode_times,
                concat_characters=concat_characters, decode_coords=decode_coords,
                drop_variables=drop_variables, use_cftime=use_cftime,
                decode_timedelta=decode_timedelta)
        except BaseException:
            store.close()
            raise

