#!/usr/bin/env bash
# run_cli_tests.sh AFMT MKFILES WORKDIR - drives every afmt subcommand on files written by
# MKFILES (see mkfiles.c for their exact content) and on damaged copies of them. Checks
# output contents, exit codes (0 ok / 1 damage or difference / 2 error) and that every
# error is exactly one line on stderr. Environment: AFMT_MPIEXEC (default mpiexec),
# AFMT_MPIEXEC_EXTRA (e.g. --oversubscribe), AFMT_PYTHON (validates --json; optional).
set -u
if [ $# -ne 3 ]; then
    echo "usage: $0 AFMT MKFILES WORKDIR" >&2
    exit 2
fi
AFMT=$1
MKFILES=$2
W=$3
PY=${AFMT_PYTHON:-}
# The TAP helpers (ok, bad, t, rc_is, has, err_has, out_is, mpi: Open MPI's -q keeps
# mpirun's own notes about non-zero exit codes off stderr).
# shellcheck source=tests/tap.sh
source "$(cd "$(dirname "$0")" && pwd)/../tap.sh"

rm -rf "$W"
mkdir -p "$W"
cd "$W" || exit 2

# Checks on the last t besides tap.sh's (out_is: with the expected text on failure).
lacks() { if grep -qF -- "$1" out; then bad "$name: output has '$1'"; else ok "$name: output lacks '$1'"; fi; }
out_is() {
    if [ "$(cat out)" = "$1" ]; then ok "$name: output is exact"; else
        bad "$name: output differs from"$'\n'"$1"
    fi
}
# One line on stderr, "afmt: ...", and nothing that looks like MPI noise.
one_line() {
    local lines
    lines=$(wc -l <err)
    if [ "$lines" -eq 1 ] && grep -q '^afmt: ' err && ! grep -qiE 'mpi|abort|signal|core' err; then
        ok "$name: one-line error"
    else
        bad "$name: stderr is $lines lines, expected one 'afmt: ...' line"
    fi
}
no_err() { if [ -s err ]; then bad "$name: unexpected stderr"; else ok "$name: no stderr"; fi; }
json_ok() {
    if [ -z "$PY" ]; then
        ok "$name: JSON not validated (no python3) # SKIP"
    elif "$PY" -m json.tool <out >/dev/null 2>&1; then
        ok "$name: valid JSON"
    else
        bad "$name: invalid JSON"
    fi
}
# Flips (xor 0xff) the byte at offset $2 of file $1.
flip() {
    local b nb
    b=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
    nb=$((b ^ 255))
    # shellcheck disable=SC2059
    printf "$(printf '\\%03o' "$nb")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
fsize() { wc -c <"$1" | tr -d ' '; }

# ---- the files --------------------------------------------------------------------------
if ! mpi 2 "$MKFILES" "$W" >mk.log 2>&1; then
    echo "Bail out! mkfiles failed:"
    cat mk.log
    exit 1
fi
B=$W/basic.afmt

# ---- help, version, usage errors -----------------------------------------------------------
t "--help" "$AFMT" --help
rc_is 0
for c in ls info dump verify stats diff compact rollback; do has "  $c"; done
t "--version" "$AFMT" --version
rc_is 0
if grep -qE '^afmt [0-9]+\.[0-9]+\.[0-9]+$' out; then ok "--version: prints the version"; else bad "--version: format"; fi
for c in ls info dump verify stats diff compact rollback; do
    t "help $c" "$AFMT" help "$c"
    rc_is 0
    has "usage: afmt $c"
    cp out help.txt
    t "$c --help" "$AFMT" "$c" --help
    if cmp -s out help.txt; then ok "$c --help equals help $c"; else bad "$c --help differs from help $c"; fi
done
t "no command" "$AFMT"
rc_is 2
t "unknown command" "$AFMT" frobnicate x
rc_is 2
one_line
t "unknown option" "$AFMT" ls --bogus "$B"
rc_is 2
one_line
t "missing argument" "$AFMT" dump "$B"
rc_is 2
one_line

# ---- ls ------------------------------------------------------------------------------------
t "ls" "$AFMT" ls "$B"
rc_is 0
no_err
if grep -qE '^temp +float64 +\[20,30\] +\[8,16\] +y,x +[0-9]+ +4800 ' out; then ok "ls: temp line"; else bad "ls: temp line"; fi
if grep -qE '^count +int32 +\[100\] +\[10\] +dim0 +[0-9]+ +400 ' out; then ok "ls: count line"; else bad "ls: count line"; fi
if grep -qE '^flag +int64 +\[\] +\[\] +- ' out; then ok "ls: scalar line"; else bad "ls: scalar line"; fi
if grep -qE '^late +uint16 +\[4\] .* none$' out; then ok "ls: late, stored raw"; else bad "ls: late line"; fi
if grep -q '^tmp ' out; then bad "ls: deleted array listed"; else ok "ls: deleted array not listed"; fi
if [ "$(grep -c . out)" -eq 7 ]; then ok "ls: header and 6 arrays"; else bad "ls: line count"; fi
stored_sum=$(awk 'NR > 1 { s += $6 } END { print s }' out)
t "ls -l" "$AFMT" ls -l "$B"
rc_is 0
has 'units (uint8) = "K"'
has 'scale (float64) = [1.5, -2]'
has 'title (uint8) = "cli test"'
has 'version (int32) = 3'
has 'fill: -1'
has 'chunks written: 1 of 5'
t "ls --json" "$AFMT" ls --json "$B"
rc_is 0
json_ok
has '"name": "temp"'
has '"shape": [20, 30]'
has '"units": "K"'

# ---- info ----------------------------------------------------------------------------------
t "info" "$AFMT" info "$B"
rc_is 0
has "layers:          3"
has "format version:  2"
has "size:            $(fsize "$B") bytes"
if grep -qE '^ +1 +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z +[0-9]+ +[0-9]+ +[0-9]+ +2 +2 +2 +[12] +-$' out; then
    ok "info: layer 1 written by 2 ranks, blocks of 2 ranks, format 2, its segments"
else bad "info: layer 1 line"; fi
if grep -qE '^ +3 +' out; then ok "info: layer 3 listed"; else bad "info: layer 3"; fi
live=$(awk '$1 == "live" { print $3 }' out)
if [ -n "$live" ] && [ $((stored_sum - live)) -le 6 ] && [ $((live - stored_sum)) -le 6 ]; then
    ok "info: live data ($live) = sum of ls STORED ($stored_sum)"
else bad "info: live data $live vs ls STORED sum $stored_sum"; fi
tot=$(awk '$1 == "superblock" || $1 == "metadata" || $1 == "unreferenced" { s += $2 } $1 == "live" || $1 == "dead" { s += $3 } END { print s }' out)
if [ "$tot" = "$(fsize "$B")" ]; then ok "info: the parts add up to the file size"; else bad "info: parts $tot"; fi
t "info --json --blocks" "$AFMT" info --json --blocks "$B"
rc_is 0
json_ok
if [ "$(grep -o '"id": [0-9]*' out | wc -l)" -eq 3 ]; then ok "info --json: 3 layers"; else bad "info --json: layers"; fi
cp out info.json
newest_footer=$(grep -o '"footer_offset": [0-9]*' out | tail -1 | grep -o '[0-9]*$')
t "info --blocks" "$AFMT" info --blocks "$B"
rc_is 0
has 'blocks of the chain:'
cline=$(grep '"count"' out | head -1)
coff=$(echo "$cline" | sed -n 's/.*offset \([0-9]*\), stored \([0-9]*\),.*/\1/p')
clen=$(echo "$cline" | sed -n 's/.*offset \([0-9]*\), stored \([0-9]*\),.*/\2/p')
if [ -n "$coff" ] && [ -n "$clen" ]; then ok "info --blocks: a block of count at $coff"; else bad "info --blocks: no block of count"; fi

# ---- info: layer provenance (host, ranks, Slurm job) ------------------------------------------
# Every commit records it; basic.afmt has host and rank count. mkfiles again, through env(1)
# so that only the ranks (not the launcher) see the Slurm variables of a pretend job.
t "info provenance" "$AFMT" info "$B"
has "provenance: host $(hostname), 2 ranks"
t "info --json provenance" "$AFMT" info --json "$B"
has '"provenance": {"host": '
has '"nranks": 2, "time_ns": '
mkdir -p prov
if mpi 2 env SLURM_JOB_ID=4242 SLURM_ARRAY_TASK_ID=7 SLURM_JOB_NUM_NODES=1 "$MKFILES" "$W/prov" \
    >prov.log 2>&1; then
    t "info provenance (Slurm)" "$AFMT" info prov/basic.afmt
    rc_is 0
    if [ "$(grep -c 'provenance: host .*, 2 ranks, Slurm job 4242, array task 7, 1 node$' out)" -eq 3 ]; then
        ok "info: 3 layers written by Slurm job 4242, array task 7, on 1 node"
    else bad "info: Slurm provenance lines"; fi
    t "info --json provenance (Slurm)" "$AFMT" info --json prov/basic.afmt
    rc_is 0
    json_ok
    has '"slurm_job_id": "4242", "slurm_array_task_id": "7", "slurm_job_num_nodes": "1"}'
else
    bad "mkfiles with Slurm variables failed: $(tail -3 prov.log)"
fi

# ---- dump ----------------------------------------------------------------------------------
t "dump text" "$AFMT" dump "$B" temp --start 2,3 --count 3,4
rc_is 0
out_is "[2,3] 203.5 204.5 205.5 206.5
[3,3] 303.5 304.5 305.5 306.5
[4,3] 403.5 404.5 405.5 406.5"
t "dump csv" "$AFMT" dump "$B" temp --start 18,28 --count 2,2 --format csv
rc_is 0
out_is "1828.5,1829.5
1928.5,1929.5"
t "dump raw" "$AFMT" dump "$B" count --format raw
rc_is 0
if [ "$(fsize out)" -eq 400 ]; then ok "dump raw: 400 bytes"; else bad "dump raw: size"; fi
if [ "$(od -An -v -td4 out | tr -s ' \n' '\n' | grep -v '^$' | tr '\n' ' ')" = "$(seq -s ' ' 1 100) " ]; then
    ok "dump raw: values 1..100"
else bad "dump raw: values"; fi
t "dump newest" "$AFMT" dump "$B" step
rc_is 0
out_is "[0] 0 1 2 -1 4 5 6 7 8 9"
t "dump --layer 1" "$AFMT" dump "$B" step --layer 1
rc_is 0
out_is "[0] 0 1 2 3 4 5 6 7 8 9"
t "dump --layer 1 deleted later" "$AFMT" dump "$B" tmp --layer 2 --start 14
rc_is 0
out_is "[14] 14 15"
t "dump --layer 2 of a later array" "$AFMT" dump "$B" late --layer 2
rc_is 2
one_line
err_has 'no array "late" as of layer 2'
t "dump --layer 9" "$AFMT" dump "$B" step --layer 9
rc_is 2
one_line
err_has 'no layer 9'
t "dump scalar" "$AFMT" dump "$B" flag
out_is "-42"
t "dump fill" "$AFMT" dump "$B" sparse --start 8 --count 4
out_is "[8] -1 -1 1 2"
t "dump float32" "$AFMT" dump "$B" sparse --start 19 --count 1 --format csv
out_is "10"
t "dump multi-slab" env AFMT_CLI_SLAB_BYTES=24 "$AFMT" dump "$B" temp
rc_is 0
cp out slabbed.txt
t "dump one slab" "$AFMT" dump "$B" temp
if cmp -s out slabbed.txt; then ok "dump: slab size does not change the output"; else bad "dump: slabs differ"; fi
if [ "$(wc -l <out)" -eq 20 ] && head -1 out | grep -q '^\[0,0\] 0.5 1.5 '; then ok "dump: 20 rows"; else bad "dump: rows"; fi
t "dump unknown array" "$AFMT" dump "$B" nosuch
rc_is 2
one_line
t "dump bad start" "$AFMT" dump "$B" temp --start 20,0
rc_is 2
one_line
t "dump bad count" "$AFMT" dump "$B" temp --start 0,0 --count 5
rc_is 2
one_line
t "dump bad format" "$AFMT" dump "$B" temp --format xml
rc_is 2
one_line

# ---- stats ---------------------------------------------------------------------------------
t "stats" "$AFMT" stats "$B"
rc_is 0
if grep -qE '^count +int32 +100 +100 +0 +1 +100 +50.5$' out; then ok "stats: count exact"; else bad "stats: count"; fi
if grep -qE '^sparse +float32 +50 +10 +0 +1 +10 +5.5$' out; then ok "stats: non-fill of sparse"; else bad "stats: sparse"; fi
if grep -qE '^temp +float64 +600 +600 +0 +0.5 +1929.5 +965$' out; then ok "stats: temp"; else bad "stats: temp"; fi
if grep -qE '^flag +int64 +1 +1 +0 +-42 +-42 +-42$' out; then ok "stats: scalar"; else bad "stats: flag"; fi
cp out stats1.txt
t "stats small slabs" env AFMT_CLI_SLAB_BYTES=16 "$AFMT" stats "$B"
if cmp -s out stats1.txt; then ok "stats: slab size does not change the result"; else bad "stats: slabs"; fi
t "stats np3" mpi 3 "$AFMT" stats "$B"
rc_is 0
if cmp -s out stats1.txt; then ok "stats: 3 ranks give the same result"; else bad "stats: np3 differs"; fi
t "stats np3 small slabs" mpi 3 env AFMT_CLI_SLAB_BYTES=40 "$AFMT" stats "$B"
if cmp -s out stats1.txt; then ok "stats: 3 ranks, small slabs"; else bad "stats: np3 small slabs"; fi
t "stats ARRAY --json" "$AFMT" stats "$B" count --json
rc_is 0
json_ok
has '"min": 1, "max": 100, "mean": 50.5'
t "stats unknown array" "$AFMT" stats "$B" nosuch
rc_is 2
one_line

# ---- diff ----------------------------------------------------------------------------------
t "diff equal" "$AFMT" diff "$B" "$W/copy.afmt"
rc_is 0
if [ -s out ]; then bad "diff equal: prints"; else ok "diff equal: silent"; fi
t "diff one value" "$AFMT" diff "$B" "$W/diff1.afmt"
rc_is 1
has 'array "temp": 1 of 600 values differ; first at [3,4]: 304.5 vs 305.5'
cp out diff1.txt
t "diff np3" mpi 3 "$AFMT" diff "$B" "$W/diff1.afmt"
rc_is 1
if cmp -s out diff1.txt; then ok "diff: 3 ranks report the same"; else bad "diff: np3 differs"; fi
t "diff atol" "$AFMT" diff "$B" "$W/diff1.afmt" --atol 1
rc_is 0
t "diff rtol" "$AFMT" diff "$B" "$W/diff1.afmt" --rtol 0.01
rc_is 0
t "diff small atol" "$AFMT" diff "$B" "$W/diff1.afmt" --atol 0.5
rc_is 1
t "diff quiet" "$AFMT" diff -q "$B" "$W/diff1.afmt"
rc_is 1
if [ -s out ]; then bad "diff -q: prints"; else ok "diff -q: silent"; fi
t "diff other" "$AFMT" diff "$B" "$W/other.afmt"
rc_is 1
has "array \"count\" only in $B"
has "array \"extra\" only in $W/other.afmt"
has 'attribute "units" differs: "K" (uint8) vs "C" (uint8)'
t "diff missing" "$AFMT" diff "$B" "$W/nosuch.afmt"
rc_is 2
one_line
t "diff one value: maxima" "$AFMT" diff "$B" "$W/diff1.afmt"
has 'first at [3,4]: 304.5 vs 305.5; max abs diff 1, max rel diff 0.003273322'
t "diff atol: how close" "$AFMT" diff "$B" "$W/diff1.afmt" --atol 1
rc_is 0
out_is 'array "temp": equal within the tolerances; max abs diff 1, max rel diff 0.003273322'
t "diff quiet atol" "$AFMT" diff -q "$B" "$W/diff1.afmt" --atol 1
rc_is 0
if [ -s out ]; then bad "diff -q --atol: prints"; else ok "diff -q --atol: silent"; fi
for o in "--atol=-1" "--rtol=x" "--atol=nan"; do
    t "diff $o" "$AFMT" diff "$B" "$W/diff1.afmt" "$o"
    rc_is 2
    one_line
done

# ---- diff tolerances (tol_*.afmt, see mkfiles.c): |a - b| <= atol + rtol |b|, numpy.isclose ---------
TA=$W/tol_a.afmt
TB=$W/tol_b.afmt
TC=$W/tol_c.afmt
XD='array "x": 2 of 8 values differ; first at [1]: 2.001953125 vs 2; max abs diff 0.00390625, max rel diff 9.765625e-4'
XE='array "x": equal within the tolerances; max abs diff 0.00390625, max rel diff 9.765625e-4'
BD='array "big": 1 of 4 values differ; first at [1]: 4611686018427387905 vs 4611686018427387904; max abs diff 1, max rel diff 2.168404e-19'
BE='array "big": equal within the tolerances; max abs diff 1, max rel diff 2.168404e-19'
ND='array "n": 1 of 4 values differ; first at [3]: 4 vs 5; max abs diff 1, max rel diff 0.2'
NE='array "n": equal within the tolerances; max abs diff 1, max rel diff 0.2'
t "diff exact" "$AFMT" diff "$TA" "$TB"
rc_is 1
out_is "$XD
$BD
$ND"
t "diff exact np3" mpi 3 "$AFMT" diff "$TA" "$TB"
rc_is 1
out_is "$XD
$BD
$ND"
t "diff --atol above every difference" "$AFMT" diff "$TA" "$TB" --atol 1
rc_is 0
out_is "$XE
$BE
$NE"
t "diff --atol above x's differences" "$AFMT" diff "$TA" "$TB" --atol 0.004
rc_is 1
has "$XE"
t "diff --atol between x's differences" "$AFMT" diff "$TA" "$TB" --atol 0.003
rc_is 1
has 'array "x": 1 of 8 values differ; first at [3]: 8.00390625 vs 8; max abs diff 0.00390625'
t "diff --atol 0.5: integers by their exact difference" "$AFMT" diff "$TA" "$TB" --atol 0.5
rc_is 1
has "$BD"
has "$XE"
t "diff --rtol above" "$AFMT" diff "$TA" "$TB" --rtol 0.001
rc_is 1
has "$XE"
has "$BE"
has "$ND"
t "diff --rtol at the bound (<=)" "$AFMT" diff "$TA" "$TB" --rtol 0.2
rc_is 0
has "$NE"
t "diff --rtol below" "$AFMT" diff "$TA" "$TB" --rtol 0.19
rc_is 1
has "$ND"
t "diff --rtol below x's" "$AFMT" diff "$TA" "$TB" --rtol 0.0009 --atol 1e-9
rc_is 1
has 'array "x": 1 of 8 values differ; first at [1]: 2.001953125 vs 2'
t "diff --rtol scales |b| (B is the reference)" "$AFMT" diff "$TB" "$TA" --rtol 0.2
rc_is 1
has 'array "n": 1 of 4 values differ; first at [3]: 5 vs 4; max abs diff 1, max rel diff 0.25'
lacks 'array "nan"'
t "diff NaN and inf at the same positions" "$AFMT" diff "$TB" "$TC" --atol 1
lacks 'array "x"'
has 'array "nan": 2 of 6 values differ; first at [3]: nan vs 4; max abs diff 0, max rel diff 0; 2 of them with NaN or infinity'
rc_is 1
t "diff NaN at other positions, any tolerance" "$AFMT" diff "$TB" "$TC" --atol 1e300 --rtol 1e300
rc_is 1
has 'array "nan": 2 of 6 values differ'
t "diff NaN positions np3" mpi 3 "$AFMT" diff "$TC" "$TB"
rc_is 1
out_is 'array "nan": 2 of 6 values differ; first at [3]: 4 vs nan; max abs diff 0, max rel diff 0; 2 of them with NaN or infinity'

# ---- per-array compression (codecs.afmt, made with afmt_define_with; see mkfiles.c) ------------------
C=$W/codecs.afmt
CR=$W/codecs_ref.afmt
ZFP=1
[ -e "$W/nozfp" ] && ZFP=0
# comp NAME: the "compression:" line of array NAME in ls -l output
comp() { awk -v n="$1" '$1 == n && NF >= 9 { f = 1; next } f && /^    compression: / { print; exit }' out; }
comp_is() {
    local got
    got=$(comp "$1")
    if [ "$got" = "    compression: $2" ]; then ok "$name: $1 is '$2'"; else bad "$name: $1 is '$got', expected '$2'"; fi
}
t "ls -l compression" "$AFMT" ls -l "$C"
rc_is 0
no_err
comp_is d "default, shuffle"
comp_is r "bitround 10 + zstd level 3, shuffle; lossy, |error| <= 2^-11 |value| = 4.8828125e-4 |value|"
comp_is n "none"
if [ "$ZFP" = 1 ]; then
    comp_is t "zfp accuracy 1e-4; lossy, |error| <= 1e-4"
    comp_is p "zfp precision 16; lossy, no error bound recorded (precision mode: the error depends on the values' range)"
    comp_is q "zfp rate 8; lossy, no error bound (rate mode: a fixed size per value)"
    comp_is v "zfp reversible"
    NARR=7
else
    ok "ls -l: ZFP arrays # SKIP this build lacks ZFP"
    NARR=3
fi
t "ls compression: the table keeps its columns" "$AFMT" ls "$C"
rc_is 0
if [ "$(grep -c . out)" -eq $((NARR + 1)) ]; then ok "$name: header and $NARR arrays"; else bad "$name: line count"; fi
if grep -qE '^r +float32 +\[64\] +\[16\] +dim0 +[0-9]+ +256 +[0-9.]+ +[a-z0-9,]+$' out; then ok "$name: r line"; else bad "$name: r line"; fi
lacks 'compression'
t "ls -l default arrays" "$AFMT" ls -l "$B"
if [ "$(grep -c '^    compression: default, shuffle$' out)" -eq 6 ]; then ok "$name: 6 default arrays"; else bad "$name: default lines"; fi
t "ls --json compression" "$AFMT" ls --json "$C"
rc_is 0
json_ok
has '"compression": {"codec": "zstd", "codec_id": 2, "level": 3, "shuffle": true, "zfp_mode": null, "zfp_param": null, "bitround": 10, "lossy": true, "abs_bound": null, "rel_bound": 4.8828125e-4, "text": "bitround 10 + zstd level 3, shuffle"}'
has '"compression": {"codec": null, "codec_id": null, "level": null, "shuffle": true, "zfp_mode": null, "zfp_param": null, "bitround": null, "lossy": false, "abs_bound": null, "rel_bound": null, "text": "default, shuffle"}'
if [ "$ZFP" = 1 ]; then
    has '"compression": {"codec": "zfp", "codec_id": 3, "level": 0, "shuffle": false, "zfp_mode": "accuracy", "zfp_param": 1e-4, "bitround": null, "lossy": true, "abs_bound": 1e-4, "rel_bound": null, "text": "zfp accuracy 1e-4"}'
fi
t "info compression" "$AFMT" info "$C"
rc_is 0
has 'compression:'
has '  "d": default, shuffle'
has '  "r": bitround 10 + zstd level 3, shuffle; lossy, |error| <= 2^-11 |value| = 4.8828125e-4 |value|'
has '  "n": none'
if [ "$ZFP" = 1 ]; then has '  "t": zfp accuracy 1e-4; lossy, |error| <= 1e-4'; fi
tot=$(awk '$1 == "superblock" || $1 == "metadata" || $1 == "unreferenced" { s += $2 } $1 == "live" || $1 == "dead" { s += $3 } END { print s }' out)
if [ "$tot" = "$(fsize "$C")" ]; then ok "$name: the parts still add up to the file size"; else bad "$name: parts $tot"; fi
t "info compression grouped" "$AFMT" info "$B"
has 'compression:'
has '  "temp", "count", "sparse", "step", "flag", "late": default, shuffle'
t "info --json compression" "$AFMT" info --json "$C"
rc_is 0
json_ok
has '"compression": ['
has '{"text": "none", "setting": {"codec": "none", "codec_id": 0, "level": 0, "shuffle": false,'
has '"arrays": ["n"]}'
RECORDED='(recorded; the values are not checked against originals, which the file does not keep)'
t "verify lossy" "$AFMT" verify "$C"
rc_is 0
has "$C: OK"
has "array \"r\": bitround 10 + zstd level 3, |error| <= 2^-11 |value| = 4.8828125e-4 |value| $RECORDED"
if [ "$ZFP" = 1 ]; then
    has "array \"t\": zfp accuracy 1e-4, |error| <= 1e-4 $RECORDED"
    has 'array "p": zfp precision 16, lossy, no error bound recorded'
    has 'array "q": zfp rate 8, lossy, no error bound (rate mode: a fixed size per value)'
fi
lacks 'array "d"'
lacks 'array "v"'
lacks 'array "n"'
has 'blocks: '
cp out verifyc.txt
t "verify lossy np3" mpi 3 "$AFMT" verify "$C"
rc_is 0
if cmp -s out verifyc.txt; then ok "$name: the same report"; else bad "$name: report differs"; fi
t "verify -q lossy" "$AFMT" verify -q "$C"
rc_is 0
out_is "$C: OK"
t "verify lossless" "$AFMT" verify "$B"
lacks 'recorded;'
# The writer applies the settings: the lossy arrays differ from the lossless reference, but
# only within the bounds that ls -l shows.
t "diff lossy vs lossless, exact" "$AFMT" diff "$C" "$CR"
rc_is 1
has 'array "r": '
lacks 'array "d"'
lacks 'array "n"'
lacks 'array "v"'
t "diff lossy vs lossless within the recorded bounds" "$AFMT" diff "$C" "$CR" --atol 1e-4 --rtol 4.9e-4
rc_is 0
has 'array "r": equal within the tolerances; max abs diff '
t "diff lossy vs lossless, rtol below the bit-rounding bound" "$AFMT" diff "$C" "$CR" --atol 1e-4 --rtol 1e-4
rc_is 1
has 'array "r": '

# ---- arrays far larger than their data: only written chunks are read -------------------------
# h, never and plane have 2^50 elements each; a walk over every element would never end.
H=$W/huge.afmt
NH=1125899906842624
t "stats huge" timeout 120 "$AFMT" stats "$H"
rc_is 0
if grep -qE "^h +float32 +$NH +4 +0 +-4 +3 +0.5$" out; then ok "stats huge: h"; else bad "stats huge: h"; fi
if grep -qE "^never +uint8 +$NH +0 +0 +- +- +-$" out; then ok "stats huge: never written"; else bad "stats huge: never"; fi
if grep -qE "^plane +int16 +$NH +12 +0 +1 +12 +6.5$" out; then ok "stats huge: plane"; else bad "stats huge: plane"; fi
cp out statsh.txt
t "stats huge np3 small slabs" mpi 3 env AFMT_CLI_SLAB_BYTES=4096 timeout 120 "$AFMT" stats "$H"
rc_is 0
if cmp -s out statsh.txt; then ok "stats huge: 3 ranks, 4 KiB slabs, same result"; else bad "stats huge: np3 differs"; fi
t "diff huge" timeout 120 "$AFMT" diff "$H" "$W/huge2.afmt"
rc_is 1
has "array \"h\": 1 of $NH values differ; first at [1125899906842622]: 2 vs 5"
has "array \"never\": $NH of $NH values differ; first at [0]: 9 vs 8"
has "array \"plane\": 1 of $NH values differ; first at [16777217,16777218]: 7 vs 70"
cp out diffh.txt
t "diff huge np3 small slabs" mpi 3 env AFMT_CLI_SLAB_BYTES=4096 timeout 120 "$AFMT" diff "$H" "$W/huge2.afmt"
rc_is 1
if cmp -s out diffh.txt; then ok "diff huge: 3 ranks, 4 KiB slabs, same report"; else bad "diff huge: np3 differs"; fi
t "diff huge atol" timeout 120 "$AFMT" diff "$H" "$W/huge2.afmt" --atol 100
rc_is 1
has 'array "never": fill value 9 vs 8'
lacks 'values differ'
t "diff huge itself" timeout 120 "$AFMT" diff "$H" "$H"
rc_is 0
t "dump huge tail" "$AFMT" dump "$H" h --start 1125899906842620 --count 4
out_is "[1125899906842620] 0 1 2 3"

# ---- a valid 4.6 KB file whose one chunk has 2^64 bytes, fill 1.5: slabs stay bounded --------
BC=$W/bigchunk.afmt
t "ls 2^64-byte chunk" "$AFMT" ls "$BC"
if [ "$rc" -eq 0 ]; then
    t "stats 2^64-byte chunk" timeout 120 "$AFMT" stats "$BC"
    rc_is 0
    if grep -qE '^x +float64 +2305843009213693952 +0 +0 +- +- +-$' out; then ok "stats 2^64-byte chunk: all fill"; else bad "stats 2^64-byte chunk"; fi
    t "diff 2^64-byte chunk" timeout 120 "$AFMT" diff "$BC" "$BC"
    rc_is 0
    t "dump 2^64-byte chunk" bash -c "timeout 60 '$AFMT' dump '$BC' x | head -c 24"
    out_is "[0] 1.5 1.5 1.5 1.5 1.5 "
    t "dump 2^64-byte chunk small slabs" bash -c "AFMT_CLI_SLAB_BYTES=64 timeout 60 '$AFMT' dump '$BC' x | head -c 24"
    out_is "[0] 1.5 1.5 1.5 1.5 1.5 "
    t "dump 2^64-byte chunk tail" "$AFMT" dump "$BC" x --start 2305843009213693950
    out_is "[2305843009213693950] 1.5 1.5"
else # a library that refuses such a chunk at open: a one-line error, no crash
    rc_is 2
    one_line
    for c in stats "dump:x" "diff:$BC"; do
        IFS=: read -r -a cmd <<<"$c"
        t "${cmd[0]} 2^64-byte chunk" timeout 120 "$AFMT" "${cmd[0]}" "$BC" "${cmd[@]:1}"
        rc_is 2
        one_line
    done
fi

# ---- names that would act on a terminal are escaped ------------------------------------------
E=$W/esc.afmt
# No control character but the newline, no C1 control, valid UTF-8, in out and err.
clean() {
    if LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f]' out err || LC_ALL=C grep -q $'\xc2[\x80-\x9f]' out err ||
        ! iconv -f UTF-8 -t UTF-8 out >/dev/null 2>&1 || ! iconv -f UTF-8 -t UTF-8 err >/dev/null 2>&1; then
        bad "$name: raw control characters or invalid UTF-8 printed"
    else ok "$name: escaped"; fi
}
t "ls escapes" "$AFMT" ls -l "$E"
rc_is 0
clean
has 'e\x1b[31mred\x1b[0m '
has 'bad\xff '
has 'bad\xfe '
has 'c1\xc2\x9b2J '
has 'nl\nx '
has 'q"b\\ '
has ' d\tim '
has 'attribute k\x07ey (uint8) = "v\xc2\x9b[2Jx"'
has 't\x1b]0;pwned\x07 (int32) = 1'
t "ls --json escapes" "$AFMT" ls --json "$E"
rc_is 0
clean
json_ok
has '"name": "bad\udcff"'
has '"name": "bad\udcfe"'
has '"name": "e\u001b[31mred\u001b[0m"'
has '"name": "c1\u009b2J"'
has '"k\u0007ey": "v\u009b[2Jx"'
t "info --blocks escapes" "$AFMT" info --blocks "$E"
rc_is 0
clean
has '"q\"b\\" 0'
has 't\x1b]0;pwned\x07 (int32) = 1'
t "stats escapes" "$AFMT" stats "$E"
rc_is 0
clean
if grep -qE '^nl\\nx +int32 +3 +3 +0 +4 +4 +4$' out; then ok "stats escapes: nl\\nx line"; else bad "stats escapes: line"; fi
t "diff escapes" "$AFMT" diff "$E" "$B"
rc_is 1
clean
has 'array "q\"b\\" only in'
has 'file: attribute "t\x1b]0;pwned\x07" only in'
t "dump escapes in the error" "$AFMT" dump "$E" $'no\x1b[2Jsuch'
rc_is 2
one_line
clean
err_has 'no array "no\x1b[2Jsuch"'
# verify names the arrays of a damaged block: escaped too.
cp "$E" "$W/escd.afmt"
flip "$W/escd.afmt" 4100
t "verify escapes" "$AFMT" verify "$W/escd.afmt"
rc_is 1
clean
has 'array "e\x1b[31mred\x1b[0m" chunk 0'
has 'array "bad\xff" chunk 0'

# ---- verify on a whole file ------------------------------------------------------------------
t "verify" "$AFMT" verify "$B"
rc_is 0
has "$B: OK"
has "slot A (offset 0): generation 4, 3 layers"
has "layer chain: 3 layers"
t "verify np3" mpi 3 "$AFMT" verify "$B"
rc_is 0
has "$B: OK"
if [ "$(grep -c "$B: OK" out)" -eq 1 ]; then ok "verify np3: rank 0 prints once"; else bad "verify np3: printed by several ranks"; fi

# ---- written with an alignment (afmt_opts_set_alignment 4096): gaps are unreferenced -----------
AL="$W/aligned.afmt"
t "diff aligned" "$AFMT" diff "$B" "$AL"
rc_is 0
t "verify aligned" "$AFMT" verify "$AL"
rc_is 0
has "$AL: OK"
t "info aligned" "$AFMT" info "$AL"
rc_is 0
tot=$(awk '$1 == "superblock" || $1 == "metadata" || $1 == "unreferenced" { s += $2 } $1 == "live" || $1 == "dead" { s += $3 } END { print s }' out)
if [ "$tot" = "$(fsize "$AL")" ]; then ok "info aligned: the parts add up to the file size"; else bad "info aligned: parts $tot"; fi
if awk '$1 == "unreferenced" { exit !($2 > 0) }' out; then ok "info aligned: the gaps are unreferenced"; else bad "info aligned: unreferenced"; fi
t "info --json --blocks aligned" "$AFMT" info --json --blocks "$AL"
rc_is 0
json_ok
# Every footer, and each rank's first block of each layer, at a multiple of 4096.
if grep -o '"footer_offset": [0-9]*' out | awk '{ n++; if ($2 % 4096) b++ } END { exit !(n == 3 && !b) }'; then
    ok "info aligned: 3 footers at multiples of 4096"
else bad "info aligned: footer offsets"; fi
if sed -n 's/.*"layer": \([0-9]*\), "offset": \([0-9]*\),.*"rank": \([0-9]*\),.*/\1 \3 \2/p' out |
    awk '{ k = $1 " " $2; if (!(k in lo) || $3 < lo[k]) lo[k] = $3 } END { for (k in lo) { n++; if (lo[k] % 4096) b++ } exit !(n >= 4 && !b) }'; then
    ok "info aligned: each rank's first block of a layer at a multiple of 4096"
else bad "info aligned: block offsets"; fi

# ---- damaged: a byte of a block ----------------------------------------------------------------
cp "$B" blk.afmt
flip blk.afmt $((coff + clen / 2))
t "verify block" "$AFMT" verify blk.afmt
rc_is 1
has "damaged: layer 1, block"
has "at offset $coff"
has 'fail their checksum'
has 'array "count" chunk'
has "blk.afmt: DAMAGED (1 problem)"
t "verify block np3" mpi 3 "$AFMT" verify -q blk.afmt
rc_is 1
has 'array "count" chunk'
has "blk.afmt: DAMAGED (1 problem)"
t "dump damaged array" "$AFMT" dump blk.afmt count
rc_is 2
one_line
err_has 'fails its checksum'
err_has 'afmt_read("count"): chunk'
t "dump undamaged array" "$AFMT" dump blk.afmt late
rc_is 0
out_is "[0] 1 2 3 4"
t "stats damaged" "$AFMT" stats blk.afmt count
rc_is 2
one_line
t "stats damaged np3" mpi 3 "$AFMT" stats blk.afmt
rc_is 2
one_line
t "diff damaged" "$AFMT" diff blk.afmt "$B"
rc_is 2
one_line

# ---- damaged: a byte of the newest footer --------------------------------------------------------
cp "$B" foot.afmt
flip foot.afmt $((newest_footer + 20))
for c in ls info stats; do
    t "$c on damaged footer" "$AFMT" "$c" foot.afmt
    rc_is 2
    one_line
    err_has "footer"
done
t "dump on damaged footer" "$AFMT" dump foot.afmt count
rc_is 2
one_line
t "verify footer" "$AFMT" verify foot.afmt
rc_is 1
has "damaged: newest footer (of slot A) at offset $newest_footer"
has "checking the chain of slot B"
t "verify footer np3" mpi 3 "$AFMT" verify foot.afmt
rc_is 1
has "damaged: newest footer (of slot A) at offset $newest_footer"

# ---- damaged: a byte of the oldest footer (the chain breaks below the newer layers) --------------
oldest_footer=$(grep -o '"footer_offset": [0-9]*' info.json | head -1 | grep -o '[0-9]*$')
cp "$B" foot1.afmt
flip foot1.afmt $((oldest_footer + 100))
t "ls on damaged older footer" "$AFMT" ls foot1.afmt
rc_is 2
one_line
t "verify older footer" "$AFMT" verify foot1.afmt
rc_is 1
has "damaged: footer 3 of the chain of slot A, counted from the newest, at offset $oldest_footer"
has "foot1.afmt: DAMAGED (1 problem)"

# ---- damaged: superblock slots ---------------------------------------------------------------------
cp "$B" slots.afmt
flip slots.afmt 40
flip slots.afmt $((2048 + 40))
t "ls both slots" "$AFMT" ls slots.afmt
rc_is 2
one_line
err_has "no valid slot"
t "ls both slots np3" mpi 3 "$AFMT" ls slots.afmt
rc_is 2
one_line
t "verify both slots" "$AFMT" verify slots.afmt
rc_is 1
has "damaged: slot A (offset 0): bad checksum"
has "damaged: slot B (offset 2048): bad checksum"
cp "$B" slotb.afmt
flip slotb.afmt $((2048 + 40)) # the older slot: the file reads as before
t "verify slot B" "$AFMT" verify slotb.afmt
rc_is 1
has "damaged: slot B (offset 2048): bad checksum"
has "slot A (offset 0): generation 4, 3 layers, eof $(fsize "$B"): valid, current"
t "diff after slot B damage" "$AFMT" diff slotb.afmt "$B"
rc_is 0
cp "$B" slota.afmt
flip slota.afmt 40 # the current slot: the file opens from slot B (before layer 3)
t "ls slot A damaged" "$AFMT" ls slota.afmt
rc_is 0
lacks "late"
t "verify slot A" "$AFMT" verify slota.afmt
rc_is 1
has "damaged: slot A (offset 0): bad checksum"
has "the file opens from slot B, generation 3"

# ---- damaged: truncated tail -------------------------------------------------------------------------
cp "$B" trunc.afmt
truncate -s $(($(fsize "$B") - 10)) trunc.afmt
t "ls truncated" "$AFMT" ls trunc.afmt
rc_is 0 # slot A's eof is past the end: the file opens from slot B (format.md 3.3)
lacks "late"
t "verify truncated" "$AFMT" verify trunc.afmt
rc_is 1
has "truncated (10 bytes missing)"
t "verify truncated np3" mpi 3 "$AFMT" verify trunc.afmt
rc_is 1
has "truncated (10 bytes missing)"

# ---- not afmt files ----------------------------------------------------------------------------------
echo "just some text" >text.txt
: >empty.afmt
mkdir -p adir
head -c 8192 /dev/zero >zeros.bin
for f in text.txt empty.afmt adir nosuch.afmt zeros.bin; do
    for c in ls info verify stats compact "dump:count" "rollback:--to-layer:1" "diff:$B"; do
        IFS=: read -r -a cmd <<<"$c"
        t "${cmd[0]} $f" "$AFMT" "${cmd[0]}" "$f" "${cmd[@]:1}"
        rc_is 2
        one_line
        err_has "afmt: $f: "
    done
done
t "verify text np3" mpi 3 "$AFMT" verify text.txt
rc_is 2
one_line

# ---- rollback ------------------------------------------------------------------------------------------
cp "$B" rb.afmt
t "rollback" "$AFMT" rollback rb.afmt --to-layer 1
rc_is 0
has "rolled back to layer 1"
t "dump after rollback" "$AFMT" dump rb.afmt step
out_is "[0] 0 1 2 3 4 5 6 7 8 9"
t "ls after rollback" "$AFMT" ls rb.afmt
lacks "late"
has "tmp"
t "info after rollback" "$AFMT" info rb.afmt
has "layers:          1"
if awk '$1 == "unreferenced" { exit !($2 > 0) }' out; then ok "info: rolled-back layers are unreferenced"; else bad "info: unreferenced"; fi
t "verify after rollback" "$AFMT" verify rb.afmt
rc_is 0
t "rollback unknown layer" "$AFMT" rollback rb.afmt --to-layer 3
rc_is 2
one_line
t "rollback without layer" "$AFMT" rollback rb.afmt
rc_is 2
one_line
cp "$B" rb3.afmt
t "rollback np3" mpi 3 "$AFMT" rollback rb3.afmt --to-layer 2
rc_is 0
t "dump after rollback np3" "$AFMT" dump rb3.afmt step
out_is "[0] 0 1 2 -1 4 5 6 7 8 9"
t "ls after rollback to 2" "$AFMT" ls rb3.afmt
has "tmp"

# ---- compact ----------------------------------------------------------------------------------------------
cp "$B" cp.afmt
t "compact" "$AFMT" compact cp.afmt
rc_is 0
has "3 layers -> 1"
if [ "$(fsize cp.afmt)" -lt "$(fsize "$B")" ]; then ok "compact: smaller"; else bad "compact: not smaller"; fi
t "diff after compact" "$AFMT" diff cp.afmt "$B"
rc_is 0
t "info after compact" "$AFMT" info cp.afmt
has "layers:          1"
has "BASE"
t "verify after compact" "$AFMT" verify cp.afmt
rc_is 0
t "dump --layer after compact" "$AFMT" dump cp.afmt step --layer 1
rc_is 2
one_line
cp "$B" ck.afmt
t "compact --keep 1" "$AFMT" compact ck.afmt --keep 1
rc_is 0
has "3 layers -> 2"
t "diff after compact --keep 1" "$AFMT" diff ck.afmt "$B"
rc_is 0
t "verify after compact --keep 1" "$AFMT" verify ck.afmt
rc_is 0
t "dump --layer 2 after compact --keep 1" "$AFMT" dump ck.afmt step --layer 2
rc_is 0
t "dump --layer 1 after compact --keep 1" "$AFMT" dump ck.afmt step --layer 1
rc_is 2
t "compact --keep: not a number" "$AFMT" compact ck.afmt --keep x
rc_is 2
t "compact --keep np3" mpi 3 "$AFMT" compact ck.afmt --keep 5
rc_is 0
has "2 layers -> 2"
t "compact np3" mpi 3 "$AFMT" compact rb.afmt
rc_is 0
t "verify compacted np3" mpi 3 "$AFMT" verify rb.afmt
rc_is 0
t "dump compacted rollback" "$AFMT" dump rb.afmt step
out_is "[0] 0 1 2 3 4 5 6 7 8 9"

# ---- unlock (the writer lock FILE.lock) -------------------------------------------------------------------
t "help unlock" "$AFMT" help unlock
rc_is 0
has "usage: afmt unlock FILE [--force]"
t "--help lists unlock" "$AFMT" --help
has "  unlock"
cp "$B" lk.afmt
t "unlock: not locked" "$AFMT" unlock lk.afmt
rc_is 0
out_is "lk.afmt: not locked"
no_err
t "unlock: no such file" "$AFMT" unlock nofile.afmt
rc_is 2
one_line
t "unlock: no FILE" "$AFMT" unlock
rc_is 2
one_line
HOST=$(hostname)
DEAD=$(((1 << 22) + 12345))
while kill -0 "$DEAD" 2>/dev/null; do DEAD=$((DEAD + 1)); done
# stale: this host, the pid is gone
echo "host=$HOST pid=$DEAD job=4711 time=2026-01-01T00:00:00Z" >lk.afmt.lock
t "unlock: stale lock" "$AFMT" unlock lk.afmt
rc_is 0
has "removed the lock of host=$HOST pid=$DEAD job=4711 since 2026-01-01T00:00:00Z"
has "stale"
if [ -e lk.afmt.lock ]; then bad "unlock: stale lock still there"; else ok "unlock: stale lock removed"; fi
# live on this host (this shell): refused, kept
echo "host=$HOST pid=$$ job=- time=2026-01-01T00:00:00Z" >lk.afmt.lock
t "unlock: live lock on this host" "$AFMT" unlock lk.afmt
rc_is 1
one_line
err_has "locked for writing by host=$HOST pid=$$ job=- since 2026-01-01T00:00:00Z"
err_has "process $$ is alive on this host (once it has ended, the next writer or afmt unlock lk.afmt removes the lock)"
if [ -e lk.afmt.lock ]; then ok "unlock: live lock kept"; else bad "unlock: live lock removed"; fi
# another host's: refused, kept; writers refused with the holder named, readers fine
echo "host=elsewhere pid=123 job=777 time=2026-01-01T00:00:00Z" >lk.afmt.lock
t "unlock: foreign lock" "$AFMT" unlock lk.afmt
rc_is 1
one_line
err_has "host=elsewhere pid=123 job=777"
err_has "cannot be checked from here; if job 777 has ended (squeue -j 777 shows it no more), run: afmt unlock lk.afmt --force"
echo "host=elsewhere pid=123 job=- time=2026-01-01T00:00:00Z" >lk.afmt.lock
t "unlock: foreign lock, no job id" "$AFMT" unlock lk.afmt
rc_is 1
one_line
err_has "if process 123 there has ended, run: afmt unlock lk.afmt --force"
echo "host=elsewhere pid=123 job=777 time=2026-01-01T00:00:00Z" >lk.afmt.lock
if [ -e lk.afmt.lock ]; then ok "unlock: foreign lock kept"; else bad "unlock: foreign lock removed"; fi
t "unlock: foreign lock np3" mpi 3 "$AFMT" unlock lk.afmt
rc_is 1
one_line
t "compact: locked by another writer" "$AFMT" compact lk.afmt
rc_is 2
one_line
err_has "locked for writing by host=elsewhere pid=123 job=777"
err_has "run \"afmt unlock lk.afmt --force\""
t "rollback: locked by another writer" "$AFMT" rollback lk.afmt --to-layer 1
rc_is 2
one_line
t "dump while locked" "$AFMT" dump lk.afmt step
rc_is 0
out_is "[0] 0 1 2 -1 4 5 6 7 8 9"
# --force removes it; then writers get in
t "unlock --force" "$AFMT" unlock lk.afmt --force
rc_is 0
has "removed the lock of host=elsewhere pid=123 job=777"
has "--force"
if [ -e lk.afmt.lock ]; then bad "unlock --force: lock still there"; else ok "unlock --force: removed"; fi
t "compact after unlock" "$AFMT" compact lk.afmt
rc_is 0
if [ -e lk.afmt.lock ]; then bad "compact left its lock"; else ok "compact released its lock"; fi
echo "host=elsewhere pid=123 job=777 time=2026-01-01T00:00:00Z" >lk.afmt.lock
t "unlock --force np3" mpi 3 "$AFMT" unlock --force lk.afmt
rc_is 0
if [ "$(grep -c 'removed the lock' out)" -eq 1 ]; then ok "unlock np3: printed once"; else bad "unlock np3: printed $(grep -c 'removed the lock' out) times"; fi
if [ -e lk.afmt.lock ]; then bad "unlock --force np3: lock still there"; else ok "unlock --force np3: removed"; fi
# a lock without a holder (empty): refused without --force
: >lk.afmt.lock
t "unlock: empty lock" "$AFMT" unlock lk.afmt
rc_is 1
one_line
err_has "unknown holder"
t "unlock --force: empty lock" "$AFMT" unlock lk.afmt --force
rc_is 0
if [ -e lk.afmt.lock ]; then bad "unlock --force: empty lock still there"; else ok "unlock --force: empty lock removed"; fi

echo "1..$n"
if [ "$fails" -ne 0 ]; then
    echo "# $fails of $n checks failed"
    exit 1
fi
echo "# all $n checks passed"
exit 0
