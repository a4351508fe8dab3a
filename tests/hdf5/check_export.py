"""check_export.py OUT.h5 - checks, with h5py, the export of mkexport.c's file: every
value bit for bit, the dtypes, chunk shapes, fill values, dimension scales and attributes."""
import sys

import h5py
import numpy as np

fails = []


def check(cond, what):
    if not cond:
        fails.append(what)


f = h5py.File(sys.argv[1], "r")
x = np.array([0.5 * i - 1.25 for i in range(7)], dtype=np.float64)
check(f["x"].dtype == np.float64 and f["x"].chunks == (3,), "x: dtype/chunks")
check(f["x"][...].tobytes() == x.tobytes(), "x: values")
check(f["x"].attrs["units"] == b"m" or f["x"].attrs["units"] == "m", "x: units")
check(h5py.h5ds.is_scale(f["x"].id), "x: a dimension scale (coordinate variable)")

tv = (np.arange(35, dtype=np.float32) * np.float32(0.1) - np.float32(2.0)).astype(np.float32)
tv[3] = np.float32(1e-40)
t = np.full((5, 7), -1.0, dtype=np.float32)
t[:4] = tv[:28].reshape(4, 7)
T = f["temp"]
check(T.dtype == np.float32 and T.shape == (5, 7) and T.chunks == (2, 3), "temp: dtype/shape/chunks")
check(T[...].tobytes() == t.tobytes(), "temp: values bit for bit (with the fill row)")
check(T.fillvalue == np.float32(-1), "temp: fill value")
check(T.attrs["long_name"] in (b"temperature", "temperature"), "temp: long_name")
check(list(T.attrs["valid_range"]) == [-2.0, 1.5], "temp: valid_range")
check(T.dims[0][0].name == "/y" and T.dims[1][0].name == "/x", "temp: dims y, x")

c = (np.arange(60, dtype=np.int64) * 1000000007 - 9000000000000000000).reshape(3, 4, 5)
C = f["count"]
check(C.dtype == np.int64 and C.chunks == (2, 3, 2), "count: dtype/chunks")
check(np.array_equal(C[...], c), "count: values")
check(int(C.attrs["step"]) == 42 and C.attrs["step"].dtype == np.int32, "count: step")
check([C.dims[d][0].name for d in range(3)] == ["/dim0", "/dim1", "/dim2"], "count: dims")

i = np.arange(9)
exp = {
    "i8": (i * 31 - 128).astype(np.int8),
    "u16": (65535 - i * 7000).astype(np.uint16),
    "u32": (4294967295 - i.astype(np.uint64) * 123456789).astype(np.uint32),
    "u64": np.uint64(2**64 - 1) - i.astype(np.uint64) * np.uint64(1234567890123),
    "i16": (i * 8000 - 32768).astype(np.int16),
    "u8": (255 - i).astype(np.uint8),
}
for k, v in exp.items():
    check(f[k].dtype == v.dtype, k + ": dtype " + str(f[k].dtype))
    check(np.array_equal(f[k][...], v), k + ": values")
    check(f[k].dims[0][0].name == "/dim0_9", k + ": dim dim0_9 " + str(f[k].dims[0].keys()))
check(f["dim0"].shape == (3,) and f["dim0_9"].shape == (9,), "pure dims' lengths")
check(f["nsteps"].shape == () and f["nsteps"][()] == -123456, "nsteps: scalar")
check(f.attrs["title"] in (b"test run", "test run"), "file attr title")
vv = np.array([1.0, 2.5, -0.0], dtype=np.float32)
check(f.attrs["version"].tobytes() == vv.tobytes(), "file attr version bit for bit")
for fl in fails:
    print("FAIL:", fl)
print("check_export:", "ok" if not fails else "%d failures" % len(fails))
sys.exit(1 if fails else 0)
