#!/usr/bin/env bash
# run_hdf5_tests.sh AFMT MKEXPORT WORKDIR HAVE_HDF5 - tests afmt export and afmt import on
# the file mkexport.c writes: the structure (h5dump -H, ncdump -h), every value bit for
# bit and the dimension scales and attributes (h5py, check_export.py), the import back
# (afmt diff, afmt ls), and bad input. h5dump, ncdump and h5py are each skipped with a
# note when missing (scripts/deps installs them). HAVE_HDF5 0: checks that the commands
# say they are not built, and exits 77 (skipped).
set -u
if [ $# -ne 4 ]; then
    echo "usage: $0 AFMT MKEXPORT WORKDIR HAVE_HDF5" >&2
    exit 2
fi
AFMT=$1
MK=$2
W=$3
HAVE=$4
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/tap.sh
source "$HERE/../tap.sh"
rm -rf "$W"
mkdir -p "$W"
cd "$W" || exit 2
if [ "$HAVE" != 1 ]; then
    t "export without HDF5" "$AFMT" export a.afmt out.h5
    rc_is 2
    err_has "built without HDF5"
    echo "1..$n"
    echo "hdf5.export: afmt was built without HDF5 (libhdf5-openmpi-dev); export/import" \
        "not tested"
    [ "$fails" -eq 0 ] && exit 77
    exit 1
fi

if ! "$MK" a.afmt; then
    echo "not ok - mkexport failed"
    exit 1
fi
PY=/usr/bin/python3
HAVE_H5PY=0
[ -x "$PY" ] && "$PY" -c "import h5py, numpy" 2>/dev/null && HAVE_H5PY=1

# ---- export ----
for ext in h5 nc; do
    t "export .$ext" "$AFMT" export a.afmt "out.$ext"
    rc_is 0
    if [ -s err ]; then bad "export .$ext: stderr not empty"; else ok "export .$ext: quiet"; fi
    if command -v h5dump >/dev/null; then
        t "h5dump -H .$ext" h5dump -H "out.$ext"
        rc_is 0
        has 'DATASET "temp"'
        has 'H5T_IEEE_F32LE'
        has 'DATASET "nsteps"'
        has 'DATASPACE  SCALAR'
        has 'H5T_STD_U64LE'
        has 'DATASET "dim0_9"'
        has 'DIMENSION_LIST'
    else
        ok "# skip h5dump checks: h5dump not installed (hdf5-tools)"
    fi
    if [ "$HAVE_H5PY" = 1 ]; then
        t "h5py .$ext" "$PY" "$HERE/check_export.py" "out.$ext"
        rc_is 0
        has "check_export: ok"
    else
        ok "# skip h5py checks: $PY with h5py and numpy not found (python3-h5py)"
    fi
done
if command -v ncdump >/dev/null; then
    t "ncdump -h" ncdump -h out.nc
    rc_is 0
    has "x = 7 ;"
    has "y = 5 ;"
    has "dim0 = 3 ;"
    has "dim0_9 = 9 ;"
    has "float temp(y, x) ;"
    has "double x(x) ;"
    has "int64 count(dim0, dim1, dim2) ;"
    has "uint64 u64(dim0_9) ;"
    has "int nsteps ;"
    has 'temp:long_name = "temperature" ;'
    has "count:step = 42 ;"
    has ':title = "test run" ;'
    t "ncdump -v" ncdump -v temp,nsteps out.nc
    rc_is 0
    has "-1, -1, -1, -1, -1, -1, -1 ;"
    has "nsteps = -123456 ;"
else
    ok "# skip ncdump checks: ncdump not installed (netcdf-bin)"
fi

# slabs of 40 bytes: every array goes through in many pieces, both ways
if [ "$HAVE_H5PY" = 1 ]; then
    t "export in small slabs" env AFMT_CLI_SLAB_BYTES=40 "$AFMT" export a.afmt small.h5
    rc_is 0
    t "h5py small slabs" "$PY" "$HERE/check_export.py" small.h5
    rc_is 0
    t "import in small slabs" mpi 2 env AFMT_CLI_SLAB_BYTES=40 "$AFMT" import small.h5 small.afmt
    rc_is 0
    t "diff small slabs" "$AFMT" diff a.afmt small.afmt
    rc_is 0
fi

# on 2 ranks: rank 0 writes, the same file
if [ "$HAVE_H5PY" = 1 ]; then
    t "export on 2 ranks" mpi 2 "$AFMT" export a.afmt np2.h5
    rc_is 0
    t "h5py 2 ranks" "$PY" "$HERE/check_export.py" np2.h5
    rc_is 0
fi
t "export on 2 ranks: missing input" mpi 2 "$AFMT" export nosuch.afmt np2x.h5
rc_is 2
err_lines 1

# --deflate: the same values, the filters on
t "export --deflate 4" "$AFMT" export a.afmt deflate.h5 --deflate 4
rc_is 0
if command -v h5dump >/dev/null; then
    t "h5dump -p: deflate" h5dump -p -H deflate.h5
    has "DEFLATE"
    has "SHUFFLE"
fi
if [ "$HAVE_H5PY" = 1 ]; then
    t "h5py --deflate" "$PY" "$HERE/check_export.py" deflate.h5
    rc_is 0
fi
t "export --deflate 10" "$AFMT" export a.afmt d10.h5 --deflate 10
rc_is 2
err_lines 1

# an older layer: a second commit changes nsteps; --layer 1 exports the first
cp a.afmt b.afmt
t "second layer" "$MK" b.afmt again
rc_is 0
if [ "$HAVE_H5PY" = 1 ]; then
    t "export newest" "$AFMT" export b.afmt new.h5
    rc_is 0
    t "export newest: values" "$PY" -c "import h5py; print(h5py.File('new.h5')['nsteps'][()])"
    out_is 7
    t "export --layer" "$AFMT" export b.afmt layer.h5 --layer 1
    rc_is 0
    t "export --layer: values" "$PY" -c "import h5py; print(h5py.File('layer.h5')['nsteps'][()])"
    out_is -123456
fi
t "export --layer 9" "$AFMT" export a.afmt l9.h5 --layer 9
rc_is 2
err_lines 1

# ---- import ----
t "import .h5" "$AFMT" import out.h5 back.afmt
rc_is 0
t "diff after import" "$AFMT" diff a.afmt back.afmt
rc_is 0
t "ls after import" "$AFMT" ls back.afmt
has "temp    float32  [5,7]    [2,3]    y,x"
has "x       float64  [7]      [3]      x"
has "count   int64    [3,4,5]  [2,3,2]  dim0,dim1,dim2"
has "u64     uint64   [9]      [4]      dim0_9"
has "nsteps  int32    []       []       -"
t "ls -l after import" "$AFMT" ls -l back.afmt
has 'attribute long_name (uint8) = "temperature"'
has 'attribute valid_range (float64) = [-2, 1.5]'
has 'title (uint8) = "test run"'
t "import .nc on 2 ranks" mpi 2 "$AFMT" import out.nc back2.afmt
rc_is 0
t "diff after import .nc" "$AFMT" diff a.afmt back2.afmt
rc_is 0
t "import: FILE exists" "$AFMT" import out.h5 back.afmt
rc_is 2
err_lines 1
t "import --force" "$AFMT" import --force out.h5 back.afmt
rc_is 0

# a file netCDF itself wrote (ncgen -4): an unlimited dimension, a coordinate variable,
# _FillValue, _NCProperties
if command -v ncgen >/dev/null; then
    ncgen -4 -o ncgen.nc "$HERE/ncgen.cdl"
    t "import ncgen's file" "$AFMT" import ncgen.nc ncgen.afmt
    rc_is 0
    if [ -s err ]; then bad "import ncgen's file: stderr not empty"; else ok "import ncgen's file: quiet"; fi
    t "ls ncgen's file" "$AFMT" ls -l ncgen.afmt
    has "lat   float64  [3]      [3]      lat"
    has "t     float32  [2,3,4]  [1,3,4]  time,lat,lon"
    has "fill: -999"
    has 'attribute units (uint8) = "degrees_north"'
    has "attribute scale (float64) = 2.5"
    has 'source (uint8) = "ncgen"'
    t "dump ncgen's t" "$AFMT" dump ncgen.afmt t --start 1,2,0 --count 1,1,4
    out_is "[1,2,0] 21 22 23 24"
    t "export it again" "$AFMT" export ncgen.afmt ncgen2.nc
    rc_is 0
    t "ncdump it" ncdump ncgen2.nc
    has "float t(time, lat, lon) ;"
    has "lat = 10, 20, 30 ;"
    has "n = 5 ;"
else
    ok "# skip the ncgen file: ncgen not installed (netcdf-bin)"
fi

# ---- bad input ----
t "export: missing input" "$AFMT" export nosuch.afmt x.h5
rc_is 2
err_lines 1
t "export: output not writable" "$AFMT" export a.afmt nodir/x.h5
rc_is 2
err_lines 1
err_has "cannot create the HDF5 file"
t "export: OUT is FILE" "$AFMT" export a.afmt ./a.afmt
rc_is 2
err_has "is FILE itself"
t "export: OUT is FILE: FILE intact" "$AFMT" verify -q a.afmt
rc_is 0
t "import: FILE is IN" "$AFMT" import --force out.h5 ./out.h5
rc_is 2
err_has "is IN itself"
t "import: missing input" "$AFMT" import nosuch.h5 x.afmt
rc_is 2
err_lines 1
t "import: not HDF5" "$AFMT" import a.afmt x.afmt
rc_is 2
err_has "not an HDF5 file"
if [ "$HAVE_H5PY" = 1 ]; then
    "$PY" - <<'PYEOF'
import h5py, numpy as np
with h5py.File("mixed.h5", "w") as f:
    f["num"] = np.arange(6, dtype=np.int16).reshape(2, 3)
    f["str"] = np.array([b"ab", b"cd"])
    f["cmp"] = np.zeros(3, dtype=[("a", "i4"), ("b", "f8")])
    f["flag"] = np.array([True, False, True])
    f["color"] = np.array([0, 2], dtype=h5py.enum_dtype({"R": 0, "G": 1, "B": 2}, basetype="i1"))
    f["grp/sub"] = np.arange(4.0)
    f["num"].attrs["note"] = "hello"
    f["num"].attrs["strs"] = [b"a", b"b"]
    f["empty"] = np.zeros((0, 3))
PYEOF
    t "import: strings, compound, enum skipped" "$AFMT" import mixed.h5 mixed.afmt
    rc_is 0
    err_has 'skipping dataset "str" (string)'
    err_has 'skipping dataset "cmp" (compound)'
    err_has 'skipping dataset "color" (enum)'
    err_has 'skipping dataset "empty" (a dimension of length 0)'
    err_has 'skipping attribute num:strs'
    t "ls mixed" "$AFMT" ls -l mixed.afmt
    t "export: a name with /" "$AFMT" export mixed.afmt mixed2.h5
    rc_is 0
    t "export: a name with / is a group" "$PY" -c "import h5py; print(list(h5py.File('mixed2.h5')['grp/sub'][...]))"
    out_is "[0.0, 1.0, 2.0, 3.0]"
    t "export: bool as uint8" "$PY" -c "import h5py; d = h5py.File('mixed2.h5')['flag']; print(d.dtype, list(d[...]))"
    out_is "uint8 [1, 0, 1]"
    t "ls mixed" "$AFMT" ls -l mixed.afmt
    has "num "
    has "grp/sub "
    has 'attribute note (uint8) = "hello"'
    has "flag     bool"
    t "dump bool" "$AFMT" dump mixed.afmt flag
    out_is "[0] 1 0 1"
fi

echo "1..$n"
if [ "$fails" -ne 0 ]; then
    echo "hdf5.export: $fails of $n checks failed"
    exit 1
fi
echo "hdf5.export: all $n checks passed"
