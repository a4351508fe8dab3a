"""afmt for Python: a pure-Python reader of afmt files (written from docs/format.md,
needing only numpy, lz4, zstandard and xxhash, and zfpy for arrays stored with ZFP) and
a writer through libafmt (ctypes).

    import afmt
    f = afmt.open("run.afmt")              # the newest layer; layer=K for an older one
    t = f["temperature"][10:20, :, ::2]   # numpy basic indexing, a numpy array
    f["temperature"].attrs, .dims, .shape, .dtype, .chunks; f.layers, f.attrs

    from mpi4py import MPI
    f = afmt.open("run.afmt", comm=MPI.COMM_WORLD)   # each rank reads only its slices

    w = afmt.create("in.afmt", comm=MPI.COMM_WORLD)   # libafmt; needs mpi4py
    w.define("u", "float64", (64, 64), chunks=(16, 16)); w.write("u", u, start=(0, 0))
    w.define("z", "float64", (64, 64), chunks=(16, 16), zfp=("accuracy", 1e-4))
    f["z"].codec_info, w.codec_info("z")   # the array's compression setting
    w.commit(); w.close()

    import xarray as xr                    # afmt.xarray_backend; import afmt needs no xarray
    ds = xr.open_dataset("run.afmt", engine="afmt", chunks={})   # layer=K too
"""

from ._format import AfmtError, CodecError, CorruptError, VersionError
from ._lib import CReader, Writer, append, create
from ._reader import Array, File, Layer, open
from ._version import __version__

__all__ = ["open", "create", "append", "File", "Array", "Layer", "Writer", "CReader",
           "AfmtError", "CorruptError", "VersionError", "CodecError"]
