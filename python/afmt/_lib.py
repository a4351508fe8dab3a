"""A writer (and a C-library reader, for comparisons) through libafmt with ctypes.

libafmt is found through $AFMT_LIBRARY (a path to libafmt.so), else the dynamic loader
(ctypes.util.find_library), else the build directories of a source tree. It needs MPI
initialized by the same MPI library: mpi4py (python3-mpi4py) does that on import.
"""

import ctypes
import ctypes.util
import os

import numpy as np

from ._format import CODEC_NAMES, AfmtError, CodecError, CorruptError, VersionError, name_bytes

_ERRORS = {-7: CorruptError, -8: VersionError, -10: CodecError}

# afmt_dtype ids (include/afmt.h), by numpy dtype.
_DTYPE_IDS = {
    np.dtype(np.bool_): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2,
    np.dtype(np.int32): 3, np.dtype(np.int64): 4, np.dtype(np.uint8): 5,
    np.dtype(np.uint16): 6, np.dtype(np.uint32): 7, np.dtype(np.uint64): 8,
    np.dtype(np.float32): 9, np.dtype(np.float64): 10,
}
_CODECS = {"none": 0, "lz4": 1, "zstd": 2}
# afmt_zfp_mode (include/afmt.h) by name, and the names by id.
_ZFP_MODES = {"accuracy": 1, "precision": 2, "rate": 3, "reversible": 4}
_ZFP_NAMES = {v: k for k, v in _ZFP_MODES.items()}
_UNSET = (1 << 32) - 1
AFMT_RDONLY, AFMT_RDWR, AFMT_TRUNC = 0x1, 0x2, 0x4

_lib = None


class _ArrayCodec(ctypes.Structure):
    """afmt_array_codec (include/afmt.h)."""

    _fields_ = [("codec", ctypes.c_uint32), ("level", ctypes.c_int), ("shuffle", ctypes.c_int),
                ("zfp_mode", ctypes.c_int), ("zfp_param", ctypes.c_double),
                ("bitround", ctypes.c_int), ("abs_bound", ctypes.c_double),
                ("rel_bound", ctypes.c_double), ("reserved", ctypes.c_uint64 * 8)]


class _Info(ctypes.Structure):
    """afmt_info (include/afmt.h; AFMT_MAX_NAME 255, AFMT_MAX_NDIM 32, AFMT_MAX_DIMNAME 63)."""

    _fields_ = [("name", ctypes.c_char * 256), ("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_uint64 * 32), ("chunk", ctypes.c_uint64 * 32),
                ("dims", (ctypes.c_char * 64) * 32), ("reserved", ctypes.c_uint64 * 16)]


_ITEMSIZE = {i: dt.itemsize for dt, i in _DTYPE_IDS.items()}


def _box_shape(a):
    """mem_shape of the C-ordered array whose box the view a is (u[2:-2, 2:-2] of a
    ghosted u), with the box at a's first element; None for any other layout. Strides
    positive, the last one the item size, each divisible by the next with a quotient at
    least the next extent: then element i of a is at offset sum(i[d] * strides[d]), which
    is C order in mem_shape = (shape[0], strides[0] / strides[1], ...)."""
    if (a.ndim == 0 or a.size == 0 or not a.dtype.isnative or a.dtype not in _DTYPE_IDS or
            a.strides[-1] != a.itemsize or min(a.strides) <= 0):
        return None
    mem = [a.shape[0]]
    for d in range(a.ndim - 1):
        q, r = divmod(a.strides[d], a.strides[d + 1])
        if r or q < a.shape[d + 1]:
            return None
        mem.append(q)
    return mem


def _candidates():
    env = os.environ.get("AFMT_LIBRARY")
    if env:
        yield env
    found = ctypes.util.find_library("afmt")
    if found:
        yield found
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    for d in ("build", "build-bench", "build-asan"):
        yield os.path.join(root, d, "libafmt.so")


def lib():
    """The loaded libafmt (ctypes.CDLL), with argument types declared."""
    global _lib
    if _lib is not None:
        return _lib
    last = None
    for c in _candidates():
        try:
            L = ctypes.CDLL(c, mode=ctypes.RTLD_GLOBAL)
            break
        except OSError as e:
            last = e
    else:
        raise AfmtError("libafmt not found (set AFMT_LIBRARY to the path of libafmt.so): %s" %
                        last)
    P, u64p, c = ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64), ctypes.c_char_p
    sig = {
        "afmt_opts_create": [ctypes.POINTER(P)],
        "afmt_opts_set_codec": [P, ctypes.c_int, ctypes.c_int],
        "afmt_opts_set_shuffle": [P, ctypes.c_int],
        "afmt_opts_set_block_size": [P, ctypes.c_uint64],
        "afmt_opts_set_check_bounds": [P, ctypes.c_int],
        "afmt_opts_set_retention": [P, ctypes.c_uint64, ctypes.c_double],
        "afmt_opts_free": [P],
        "afmt_array_opts_create": [ctypes.POINTER(P)],
        "afmt_array_opts_set_codec": [P, ctypes.c_int, ctypes.c_int],
        "afmt_array_opts_set_shuffle": [P, ctypes.c_int],
        "afmt_array_opts_set_zfp": [P, ctypes.c_int, ctypes.c_double],
        "afmt_array_opts_set_bitround": [P, ctypes.c_int],
        "afmt_array_opts_free": [P],
        "afmt_create": [P, c, ctypes.c_uint, P, ctypes.POINTER(P)],
        "afmt_open": [P, c, ctypes.c_uint, P, ctypes.POINTER(P)],
        "afmt_open_layer": [P, c, ctypes.c_uint64, P, ctypes.POINTER(P)],
        "afmt_close": [P],
        "afmt_define": [P, c, ctypes.c_int, ctypes.c_int, u64p, u64p, ctypes.POINTER(c), P],
        "afmt_define_with": [P, c, ctypes.c_int, ctypes.c_int, u64p, u64p, ctypes.POINTER(c), P,
                             P],
        "afmt_inquire_codec": [P, c, ctypes.POINTER(_ArrayCodec)],
        "afmt_write": [P, c, u64p, u64p, P],
        "afmt_read": [P, c, u64p, u64p, P],
        "afmt_write_box": [P, c, u64p, u64p, u64p, u64p, P],
        "afmt_read_box": [P, c, u64p, u64p, u64p, u64p, P],
        "afmt_inquire": [P, c, ctypes.POINTER(_Info)],
        "afmt_commit": [P],
        "afmt_commit_start": [P],
        "afmt_commit_wait": [P],
        "afmt_discard": [P],
        "afmt_delete": [P, c],
        "afmt_compact": [P],
        "afmt_compact_keep": [P, ctypes.c_uint64],
        "afmt_set_attr": [P, c, c, ctypes.c_int, ctypes.c_uint64, P],
    }
    for name, args in sig.items():
        fn = getattr(L, name)
        fn.argtypes = args
        fn.restype = ctypes.c_int
    L.afmt_errmsg.argtypes = [P]
    L.afmt_errmsg.restype = c
    L.afmt_strerror.argtypes = [ctypes.c_int]
    L.afmt_strerror.restype = c
    L.afmt_version.argtypes = []
    L.afmt_version.restype = c
    _lib = L
    return L


def _comm_handle(comm):
    """The C MPI_Comm of an mpi4py communicator (MPI.COMM_SELF when comm is None)."""
    from mpi4py import MPI  # initializes MPI, which libafmt needs

    if comm is None:
        comm = MPI.COMM_SELF
    return ctypes.c_void_p(MPI._handleof(comm))


def _b(name):
    """A name or key for libafmt: a str (surrogates stand for bytes that are not UTF-8,
    as the reader returns them) or bytes."""
    return name_bytes(name)


def _u64(seq):
    return (ctypes.c_uint64 * max(len(seq), 1))(*[int(x) for x in seq])


def _codec_id(codec):
    """A lossless codec by name ("none", "lz4", "zstd") or id (a user codec's too)."""
    if isinstance(codec, str):
        if codec not in _CODECS:
            raise ValueError("codec %r: not one of %s (ZFP is set with zfp=)" %
                             (codec, ", ".join(sorted(_CODECS))))
        return _CODECS[codec]
    return int(codec)


def _zfp_setting(zfp):
    """zfp= of define: "reversible", or (mode, parameter) with mode "accuracy" (the
    absolute error bound), "precision" (bit planes) or "rate" (bits per value)."""
    if isinstance(zfp, str):
        zfp = (zfp,)
    zfp = tuple(zfp)
    mode = _ZFP_MODES.get(zfp[0]) if zfp and isinstance(zfp[0], str) else None
    if mode is None or len(zfp) not in ((1, 2) if mode == 4 else (2,)):
        raise ValueError("zfp=%r: give (\"accuracy\", tolerance), (\"precision\", bits), "
                         "(\"rate\", bits per value) or \"reversible\"" % (zfp,))
    return mode, float(zfp[1]) if len(zfp) > 1 else 0.0


class Writer:
    """A file open through libafmt (afmt.create / afmt.append). COLLECTIVE calls must be
    made by every rank of comm in the same order: define, delete, set_attr, commit,
    commit_wait, discard, compact, close; write and read are INDEPENDENT."""

    def __init__(self, path, comm=None, create=True, codec="lz4", level=0, shuffle=True,
                 block_size=None, check_bounds=False, keep=0, dead_fraction=0.0):
        self._L = L = lib()
        self.path = path
        self._f = ctypes.c_void_p()
        opts = ctypes.c_void_p()
        self._check(L.afmt_opts_create(ctypes.byref(opts)), None)
        try:
            self._check(L.afmt_opts_set_codec(opts, _CODECS[codec], int(level)), None)
            self._check(L.afmt_opts_set_shuffle(opts, 1 if shuffle else 0), None)
            if block_size:
                self._check(L.afmt_opts_set_block_size(opts, int(block_size)), None)
            if check_bounds:
                self._check(L.afmt_opts_set_check_bounds(opts, 1), None)
            if keep or dead_fraction:
                # Retention after every commit, commit_wait and close (afmt_opts_set_retention):
                # keep > 0 keeps the keep newest layers and folds the older ones once there
                # are more than keep + 1; dead_fraction in (0, 1) compacts once more than that
                # share of the file is dead (both: both must hold). Same on every rank.
                self._check(L.afmt_opts_set_retention(opts, int(keep), float(dead_fraction)),
                            None)
            h = _comm_handle(comm)
            if create:
                rc = L.afmt_create(h, os.fsencode(path), AFMT_TRUNC, opts, ctypes.byref(self._f))
            else:
                rc = L.afmt_open(h, os.fsencode(path), AFMT_RDWR, opts, ctypes.byref(self._f))
            self._check(rc, None)
        finally:
            L.afmt_opts_free(opts)

    def _check(self, rc, f="self"):
        if rc == 0:
            return
        handle = self._f if f == "self" else None
        msg = self._L.afmt_errmsg(handle) or self._L.afmt_strerror(rc)
        raise _ERRORS.get(rc, AfmtError)(msg.decode(errors="replace"))

    def define(self, name, dtype, shape, chunks=None, dims=None, fill=None, codec=None, level=0,
               shuffle=None, zfp=None, bitround=None):
        """COLLECTIVE. Defines an array; chunks None: the library picks chunks of 1-2 MiB of
        whole rows of the fastest dimensions, an array up to 4 MiB is one chunk (docs/api.md,
        afmt_define).

        The array's own compression (afmt_define_with; recorded in the file, every later
        writer uses it), each left to the writer's options when not given: codec, a
        lossless codec ("none", "lz4", "zstd" or a user codec's id) with its level;
        shuffle (True/False); zfp, lossy ZFP for a float32 or float64 array:
        ("accuracy", tolerance) keeps every value within tolerance, ("precision", bits)
        keeps that many bit planes, ("rate", bits) that many bits per value, "reversible"
        is lossless (also for int32 and int64 arrays); bitround, the mantissa bits each float value keeps (relative error
        at most 2^-(bitround+1)) before the lossless codec. zfp and bitround do not
        combine, nor codec and zfp. Every rank must give the same setting."""
        dt = np.dtype(dtype)
        shape = [int(s) for s in shape]
        chunks = None if chunks is None else [int(c) for c in chunks]
        dims_p = None
        if dims is not None:
            dims_p = (ctypes.c_char_p * len(dims))(*[_b(d) for d in dims])
        fill_p = None
        if fill is not None:
            fb = np.array(fill, dtype=dt.newbyteorder("="))
            fill_p = fb.ctypes.data_as(ctypes.c_void_p)
        tid = _DTYPE_IDS[dt.newbyteorder("=")]
        if codec is None and shuffle is None and zfp is None and not bitround:
            if level:
                raise ValueError("%s: level=%r needs codec=" % (name, level))
            self._check(self._L.afmt_define(self._f, _b(name), tid, len(shape), _u64(shape),
                                            None if chunks is None else _u64(chunks), dims_p,
                                            fill_p))
            return
        if codec is not None and zfp is not None:
            raise ValueError("%s: codec= and zfp= do not combine (ZFP is the codec)" % name)
        L = self._L
        ao = ctypes.c_void_p()
        self._check(L.afmt_array_opts_create(ctypes.byref(ao)), None)
        try:
            if codec is not None:
                self._check(L.afmt_array_opts_set_codec(ao, _codec_id(codec), int(level)), None)
            elif level:
                raise ValueError("%s: level=%r needs codec=" % (name, level))
            if shuffle is not None:
                self._check(L.afmt_array_opts_set_shuffle(ao, 1 if shuffle else 0), None)
            if zfp is not None:
                self._check(L.afmt_array_opts_set_zfp(ao, *_zfp_setting(zfp)), None)
            if bitround:
                self._check(L.afmt_array_opts_set_bitround(ao, int(bitround)), None)
            self._check(L.afmt_define_with(self._f, _b(name), tid, len(shape), _u64(shape),
                                           None if chunks is None else _u64(chunks), dims_p,
                                           fill_p, ao))
        finally:
            L.afmt_array_opts_free(ao)

    def codec_info(self, name):
        """INDEPENDENT. The array's compression as the file records it
        (afmt_inquire_codec), as a dict with the keys of the pure-Python reader's
        Array.codec_info: codec (the id; None: the writer's default), codec_name, level,
        shuffle, zfp_mode ("accuracy", "precision", "rate", "reversible" or None),
        zfp_param, bitround, abs_bound, rel_bound."""
        c = _ArrayCodec()
        self._check(self._L.afmt_inquire_codec(self._f, _b(name), ctypes.byref(c)))
        unset = c.codec == _UNSET
        return {"codec": None if unset else c.codec,
                "codec_name": None if unset else CODEC_NAMES.get(c.codec, "codec %d" % c.codec),
                "level": c.level, "shuffle": bool(c.shuffle),
                "zfp_mode": _ZFP_NAMES.get(c.zfp_mode), "zfp_param": c.zfp_param,
                "bitround": c.bitround, "abs_bound": c.abs_bound, "rel_bound": c.rel_bound}

    def _fits(self, name, dt):
        """Raises unless a buffer of numpy dtype dt holds the elements of array name (the
        same size, float for float): libafmt moves the array's element size per element,
        so a smaller buffer would be overrun."""
        info = _Info()
        self._check(self._L.afmt_inquire(self._f, _b(name), ctypes.byref(info)))
        size = _ITEMSIZE.get(info.dtype)
        if size != dt.itemsize or (info.dtype in (9, 10)) != (dt.kind == "f"):
            raise TypeError("%s: a buffer of dtype %s does not fit the array's dtype (afmt "
                            "dtype id %d)" % (name, dt, info.dtype))

    def write(self, name, data, start=None):
        """INDEPENDENT. Writes data (a numpy array) at start (default: the origin). A box
        of a C-ordered array (u[2:-2, 2:-2] of a ghosted u; see _box_shape) is written
        from where it lies, without a copy; other non-contiguous layouts, non-native byte
        order and non-arrays are copied to a contiguous array first. TypeError if the
        dtype does not fit the array's (see _fits)."""
        mem = None
        if isinstance(data, np.ndarray) and not data.flags.c_contiguous:
            mem = _box_shape(data)
        if mem is not None:
            self._fits(name, data.dtype)
            start = [0] * data.ndim if start is None else start
            self._check(self._L.afmt_write_box(
                self._f, _b(name), _u64(start), _u64(data.shape), _u64(mem),
                _u64([0] * data.ndim), data.ctypes.data_as(ctypes.c_void_p)))
            return
        a = np.ascontiguousarray(data)
        a = a.astype(a.dtype.newbyteorder("="), copy=False)
        self._fits(name, a.dtype)
        start = [0] * a.ndim if start is None else start
        self._check(self._L.afmt_write(self._f, _b(name), _u64(start), _u64(a.shape),
                                       a.ctypes.data_as(ctypes.c_void_p)))

    def read(self, name, start, count, dtype):
        """INDEPENDENT. libafmt's own read of a hyperslab (for comparisons)."""
        out = np.empty([int(c) for c in count], dtype=np.dtype(dtype).newbyteorder("="))
        self._check(self._L.afmt_read(self._f, _b(name), _u64(start), _u64(count),
                                      out.ctypes.data_as(ctypes.c_void_p)))
        return out

    def read_into(self, name, start, out):
        """INDEPENDENT. Reads the hyperslab at start (None: the origin) of out's shape into
        out, an existing writable numpy array whose dtype fits the array's (same size,
        float for float), and returns out. A box of a C-ordered array (u[2:-2, 2:-2] of a
        ghosted u) is filled in place (afmt_read_box): the rest of its base array, the
        halo, is left as it was. Other layouts are read into a temporary and copied in."""
        if not isinstance(out, np.ndarray) or not out.flags.writeable:
            raise TypeError("%s: read_into needs a writable numpy array" % name)
        start = [0] * out.ndim if start is None else start
        self._fits(name, out.dtype)
        ptr = out.ctypes.data_as(ctypes.c_void_p)
        if out.flags.c_contiguous and out.dtype.isnative:
            self._check(self._L.afmt_read(self._f, _b(name), _u64(start), _u64(out.shape), ptr))
            return out
        mem = _box_shape(out)
        if mem is None:
            out[...] = self.read(name, start, out.shape, out.dtype)
            return out
        self._check(self._L.afmt_read_box(self._f, _b(name), _u64(start), _u64(out.shape),
                                          _u64(mem), _u64([0] * out.ndim), ptr))
        return out

    def set_attr(self, array, key, value):
        """COLLECTIVE. array None = a file attribute. A str is stored as UINT8 bytes."""
        if isinstance(value, str):
            v = np.frombuffer(value.encode(), dtype=np.uint8)
        else:
            v = np.ascontiguousarray(np.atleast_1d(value))
        self._check(self._L.afmt_set_attr(self._f, _b(array) if array else None,
                                          _b(key), _DTYPE_IDS[v.dtype.newbyteorder("=")],
                                          v.size, v.ctypes.data_as(ctypes.c_void_p)))

    def delete(self, name):
        """COLLECTIVE."""
        self._check(self._L.afmt_delete(self._f, _b(name)))

    def commit(self, wait=True):
        """COLLECTIVE. Makes everything staged durable as one new layer (afmt_commit).

        wait=False starts the commit (afmt_commit_start) and returns as soon as the
        program may go on: this rank's blocks are written and synced by a helper thread
        (which, under MPI_THREAD_MULTIPLE, mpi4py's default, also compresses, agrees the
        layer with the other ranks and publishes it: the background mode of api.md), and
        the layer is durable once commit_wait(), or the next collective call on the
        writer (define, delete, set_attr, commit, discard, compact, close), has finished
        it (in the start mode it exists only then). Until then write() stages into the next layer and read() sees the commit in
        flight plus the writes since. An error of the background part is raised by that
        finishing call, on every rank; the file then stays as the previous commit left
        it, and the failed commit's changes and the writes since are dropped."""
        if wait:
            self._check(self._L.afmt_commit(self._f))
        else:
            self._check(self._L.afmt_commit_start(self._f))

    def commit_wait(self):
        """COLLECTIVE. Finishes the commit that commit(wait=False) started and makes it
        durable (afmt_commit_wait); with none in flight it does nothing."""
        self._check(self._L.afmt_commit_wait(self._f))

    def discard(self):
        """COLLECTIVE."""
        self._check(self._L.afmt_discard(self._f))

    def compact(self, keep=0):
        """COLLECTIVE. keep > 0: checkpoint retention (afmt_compact_keep), the keep newest
        layers stay as they were, ids included; the older ones are folded into one."""
        if keep:
            self._check(self._L.afmt_compact_keep(self._f, keep))
        else:
            self._check(self._L.afmt_compact(self._f))

    def close(self):
        """COLLECTIVE. Finishes a commit in flight, commits what is staged, then closes."""
        if self._f:
            f, self._f = self._f, ctypes.c_void_p()
            rc = self._L.afmt_close(f)
            if rc:
                raise _ERRORS.get(rc, AfmtError)(self._L.afmt_errmsg(None).decode(errors="replace"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CReader:
    """libafmt opened read-only (optionally as of a layer): the reference the pure-Python
    reader is tested against."""

    def __init__(self, path, layer=None, comm=None):
        self._L = L = lib()
        self._f = ctypes.c_void_p()
        h = _comm_handle(comm)
        if layer is None:
            rc = L.afmt_open(h, os.fsencode(path), AFMT_RDONLY, None, ctypes.byref(self._f))
        else:
            rc = L.afmt_open_layer(h, os.fsencode(path), int(layer), None, ctypes.byref(self._f))
        Writer._check(self, rc, None)

    _check = Writer._check
    read = Writer.read
    read_into = Writer.read_into
    _fits = Writer._fits
    codec_info = Writer.codec_info
    close = Writer.close


def create(path, comm=None, **opts):
    """Creates (truncates) path through libafmt and returns a Writer. COLLECTIVE."""
    return Writer(path, comm=comm, create=True, **opts)


def append(path, comm=None, **opts):
    """Opens an existing file for writing through libafmt (a new layer per commit)."""
    return Writer(path, comm=comm, create=False, **opts)
