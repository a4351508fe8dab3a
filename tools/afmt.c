/* afmt.c - the afmt command-line tool: main, command dispatch and the help texts.
 * Help and --version are answered before MPI_Init (fast, and without a process
 * manager); every other path runs between MPI_Init and MPI_Finalize and never aborts. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

cli_ctx cli = {MPI_COMM_NULL, 0, 1};

#ifndef AFMT_HAVE_HDF5
static int no_hdf5(const char *cmd) {
    return cli_error(cmd, "this afmt was built without HDF5 (install libhdf5-openmpi-dev and "
                          "rebuild)");
}
int cmd_export(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return no_hdf5("export");
}
int cmd_import(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return no_hdf5("import");
}
#endif

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
    const char *help;
} command;

static const command commands[] = {
    {"ls", cmd_ls, "list the live arrays: shape, chunks, sizes, codecs",
     "usage: afmt ls FILE [-l] [--json]\n"
     "\n"
     "Lists the live arrays of FILE in definition order, one line each:\n"
     "  NAME DTYPE SHAPE CHUNK DIMS STORED RAW RATIO CODECS\n"
     "RAW is the sum of the raw (uncompressed) sizes of the array's written chunks. STORED\n"
     "apportions each block's stored size to the chunks in it by raw size (stored_size *\n"
     "chunk_raw / block_raw), so the STORED column adds up to the file's live data (see\n"
     "afmt info). RATIO is RAW / STORED. Chunks never written read as the fill value and\n"
     "take no space. CODECS lists the codecs of the blocks that hold the array's chunks\n"
     "(\"-\" if none is written).\n"
     "With -l (and --json) each array's compression setting as the file records it\n"
     "(afmt_define_with): the codec and its level, or \"default\" where none is recorded\n"
     "(the writer's codec: each block names its own, see CODECS); \", shuffle\" when the\n"
     "chunks are byte-shuffled; a lossy setting's mode and parameter and its error bound:\n"
     "  compression: zstd level 3, shuffle\n"
     "  compression: zfp accuracy 1e-4; lossy, |error| <= 1e-4\n"
     "  compression: bitround 7 + zstd; lossy, |error| <= 2^-8 |value| = 0.00390625 |value|\n"
     "  compression: zfp rate 8; lossy, no error bound (rate mode: a fixed size per value)\n"
     "(zfp precision N: no bound recorded either; zfp reversible is lossless).\n"
     "\n"
     "Options:\n"
     "  -l, --long   also the fill value, the number of written chunks of the grid, the\n"
     "               compression setting, the array's attributes (uint8 values that are\n"
     "               printable text are shown as strings) and, first, the file's attributes\n"
     "  --json       everything as one JSON object: {\"file\", \"attributes\", \"arrays\":\n"
     "               [{\"name\", \"dtype\", \"shape\", \"chunk\", \"dims\", \"fill\",\n"
     "               \"shuffle\", \"chunks_written\", \"chunks_total\", \"stored_bytes\",\n"
     "               \"raw_bytes\", \"ratio\", \"codecs\", \"compression\", \"attributes\"}]};\n"
     "               compression: {\"codec\" (null: default), \"codec_id\", \"level\",\n"
     "               \"shuffle\", \"zfp_mode\", \"zfp_param\", \"bitround\", \"lossy\",\n"
     "               \"abs_bound\", \"rel_bound\" (null where none), \"text\"}\n"
     "  -h, --help   this text\n"},
    {"info", cmd_info, "format, superblock, layers and where the bytes go",
     "usage: afmt info FILE [--blocks] [--json]\n"
     "\n"
     "Shows the format version, UUID, file size, superblock generation and committed end,\n"
     "the layers of the chain (oldest first: id, commit time in UTC, bytes the commit\n"
     "added, blocks, chunk records, ranks of the writing communicator and distinct ranks\n"
     "among its blocks, BASE for a compacted layer) and where the bytes of the file go:\n"
     "  superblock    the 4096-byte superblock region\n"
     "  metadata      footers and trailers of the layers in the chain\n"
     "  live data     stored bytes of the blocks in the chain, apportioned to the current\n"
     "                chunks of live arrays by raw size (as in afmt ls)\n"
     "  dead data     the rest of those blocks: chunks overwritten by later layers, chunks\n"
     "                of deleted arrays\n"
     "  unreferenced  bytes no layer of the chain covers: layers undone by a rollback, the\n"
     "                tail of an interrupted commit, the gaps of aligned commits\n"
     "                (afmt_opts_set_alignment; holes on most file systems)\n"
     "  total         the file size = superblock + metadata + live + dead + unreferenced\n"
     "  reclaimable   about what afmt compact frees: total minus the estimated size of the\n"
     "                compacted file (superblock, live data and one footer; compaction may\n"
     "                also recompress, so this is an estimate)\n"
     "Last (after the file's attributes and the blocks), the live arrays by compression\n"
     "setting (as afmt ls -l shows it; at most 8 names a line), e.g.\n"
     "  \"temp\", \"count\": default, shuffle\n"
     "  \"t\": zfp accuracy 1e-4; lossy, |error| <= 1e-4\n"
     "\n"
     "Options:\n"
     "  --blocks     also list every block of the chain: layer, offset, stored and raw\n"
     "               bytes, codec, writer rank, live chunks and the chunks it holds\n"
     "  --json       everything as one JSON object (\"compression\": [{\"text\",\n"
     "               \"setting\" (as in afmt ls --json), \"arrays\": [names]}])\n"
     "  -h, --help   this text\n"},
    {"dump", cmd_dump, "print the values of an array or a hyperslab",
     "usage: afmt dump FILE ARRAY [--start i,j,..] [--count a,b,..] [--format text|csv|raw]\n"
     "                 [--layer K]\n"
     "\n"
     "Prints the values of ARRAY, or of the hyperslab [start, start+count) of it.\n"
     "\n"
     "Options:\n"
     "  --start i,j,..  first element, one index per dimension (default: all 0)\n"
     "  --count a,b,..  elements per dimension (default: up to the end of each dimension)\n"
     "  --format F      text (default): C order, one innermost row per line, prefixed by\n"
     "                  the index of the row's first element, e.g. \"[2,0] 1.5 2 2.5\";\n"
     "                  a scalar prints its value alone\n"
     "                  csv: the same rows without the prefix, values separated by commas\n"
     "                  raw: the native bytes (C order, this machine's byte order)\n"
     "  --layer K       read the file as it was right after the commit of layer K (an id\n"
     "                  of afmt info); later layers are ignored. Works until the file is\n"
     "                  compacted.\n"
     "  -h, --help      this text\n"
     "Integers print in decimal, bool as 0/1, floats in the shortest form that reads back\n"
     "to the same value (nan, inf, -inf for the special values). The array is read in\n"
     "slabs, so memory stays bounded whatever its size.\n"},
    {"verify", cmd_verify, "check every slot, footer, block and chunk reference",
     "usage: afmt verify FILE [-q]\n"
     "\n"
     "Checks all of FILE with its own reader (not the library's open, so it works on files\n"
     "the library refuses):\n"
     "  - both superblock slots; the state of each is reported, and a damaged slot counts\n"
     "    as damage even when the other one is good (an empty slot is fine)\n"
     "  - the committed end of file against the file size (truncation)\n"
     "  - the footer chain from the current slot: each footer's checksum, structure and\n"
     "    trailer, the chain pointers, the layer ids and the layer count\n"
     "  - every chunk record of every layer of the chain, also of chunks that later layers\n"
     "    overwrote: a live array, an index within the grid, the size of the chunk's extent,\n"
     "    inside its block\n"
     "  - every block of every layer: inside its layer's data range, not overlapping\n"
     "    another, the checksum of its stored bytes, decompression to exactly its raw size\n"
     "If the chain from the current slot is broken, the chain from the other valid slot is\n"
     "checked as well, so older layers are still examined.\n"
     "For each live array with a lossy compression setting (afmt ls -l) the recorded bound\n"
     "is reported, e.g.\n"
     "  array \"t\": zfp accuracy 1e-4, |error| <= 1e-4 (recorded; the values are not\n"
     "  checked against originals, which the file does not keep)\n"
     "(not with -q): the decoded values are checked like any others, but whether they are\n"
     "within the bound of the values once written cannot be told from the file.\n"
     "With mpirun -np N the blocks are divided among the ranks by bytes; rank 0 reads the\n"
     "metadata, shares it and prints the report. When stderr is a terminal and the file is\n"
     "large (64 MiB of blocks), a progress bar is drawn on stderr.\n"
     "Exit status: 0 if the file is whole; 1 if damage was found (one line per damaged item,\n"
     "naming the layer, array, chunk and file offset where they apply); 2 if FILE is\n"
     "missing or not an afmt file.\n"
     "\n"
     "Options:\n"
     "  -q, --quiet  print only the damaged items and the verdict\n"
     "  -h, --help   this text\n"},
    {"stats", cmd_stats, "min, max, mean and count of non-fill values",
     "usage: afmt stats FILE [ARRAY] [--json]\n"
     "\n"
     "For each live array (or only ARRAY): its element count, the count of non-fill values\n"
     "(elements whose value differs from the array's fill value), and the min, max and mean\n"
     "of the non-fill values. NaN values are counted apart and left out of min, max and\n"
     "mean. The mean is a compensated sum in double precision; min and max are exact.\n"
     "Only the chunks the file holds are read (runs of chunks of about 64 MiB), so memory\n"
     "stays bounded and never-written parts cost nothing; with mpirun -np N the runs are\n"
     "divided among the ranks and the results reduced.\n"
     "\n"
     "Options:\n"
     "  --json       the same as one JSON object\n"
     "  -h, --help   this text\n"},
    {"diff", cmd_diff, "compare the arrays of two files",
     "usage: afmt diff A B [--atol X] [--rtol Y] [-q]\n"
     "\n"
     "Compares files A and B: arrays only in A, only in B, of a different dtype or shape,\n"
     "with a different fill value or attributes (and the files' own attributes), and, for\n"
     "arrays in both, their values. Values a (of A) and b (of B, the reference) are equal\n"
     "if a == b or both are NaN (NaN equals NaN only at the same position). Without\n"
     "--atol and --rtol that is all: the comparison is exact. With them, also when\n"
     "  |a - b| <= atol + rtol * |b|\n"
     "as numpy.isclose(a, b, rtol, atol, equal_nan=True) decides (not symmetric: rtol\n"
     "scales |b|); a NaN or an infinity is never close to another value. Integer arrays\n"
     "compare exactly unless a tolerance is given, then as doubles, by their exact\n"
     "difference (2^62 + 1 and 2^62 differ under --atol 0.5).\n"
     "An array whose values differ is reported with the number of differing elements, the\n"
     "first in C order with both values, the largest |a - b| and |a - b| / |b| over the\n"
     "pairs of finite values (7 significant digits), and how many differing pairs have a\n"
     "NaN or an infinity:\n"
     "  array \"x\": 2 of 8 values differ; first at [1]: 2.001953125 vs 2; max abs diff\n"
     "  0.00390625, max rel diff 9.765625e-4\n"
     "With tolerances, an array that is equal only within them says how close it is:\n"
     "  array \"x\": equal within the tolerances; max abs diff 0.00390625, max rel diff ...\n"
     "Chunk shapes, codecs and layers may differ. Only chunks written in A or B are read\n"
     "(in slabs); elsewhere both read their fill values, compared once. With mpirun -np N\n"
     "the slabs are divided among the ranks.\n"
     "Exit status: 0 if equal (within the tolerances), 1 if different, 2 on error.\n"
     "\n"
     "Options:\n"
     "  --atol X     absolute tolerance (>= 0; default 0)\n"
     "  --rtol Y     relative tolerance (>= 0; default 0), of |b|\n"
     "  -q, --quiet  print nothing; only the exit status tells\n"
     "  -h, --help   this text\n"},
    {"compact", cmd_compact, "rewrite the live data as one layer",
     "usage: afmt compact FILE [--keep K]\n"
     "\n"
     "Rewrites the live arrays, chunks and attributes of FILE into a new file next to it\n"
     "as one self-contained layer, with FILE's mode and group, and renames it over FILE\n"
     "(afmt_compact; a crash leaves either the old or the new file whole). Dead data,\n"
     "deleted arrays and older layers are gone afterwards (so are the older states that\n"
     "dump --layer and rollback reach). Prints the size and layer count before and after.\n"
     "\n"
     "Options:\n"
     "  --keep K     checkpoint retention (afmt_compact_keep): keep the K newest layers as\n"
     "               they were (same ids: dump --layer and rollback still reach them) and\n"
     "               fold the older ones into one base layer under the id of the newest\n"
     "               folded; 0 (the default): everything into one layer\n"
     "  -h, --help   this text\n"},
    {"rollback", cmd_rollback, "make an older layer the newest",
     "usage: afmt rollback FILE --to-layer K\n"
     "\n"
     "Makes layer K (an id listed by afmt info) the newest, with afmt_rollback: the file\n"
     "then reads as right after layer K's commit, the later layers become dead space\n"
     "(reclaimed by afmt compact), and the next commit continues from K with a fresh layer\n"
     "id. Crash-safe like a commit: one superblock slot write decides.\n"
     "\n"
     "Options:\n"
     "  --to-layer K  the layer id to return to (required)\n"
     "  -h, --help    this text\n"},
    {"export", cmd_export, "write the arrays as HDF5 / netCDF-4 (ParaView, VisIt, h5py)",
     "usage: afmt export FILE OUT.h5|OUT.nc [--layer K] [--deflate N]\n"
     "\n"
     "Writes every live array of FILE to OUT (replaced if it exists) as an HDF5 dataset of\n"
     "the same name, shape, chunk shape and fill value, uncompressed, in the native type\n"
     "(bool as uint8 0/1: HDF5 and netCDF have no bool). Array attributes become dataset\n"
     "attributes, file attributes attributes of the root group (uint8 values that are text\n"
     "as strings, bool as uint8). OUT follows the netCDF-4 conventions, whatever its\n"
     "suffix, so ncdump, xarray, ParaView and VisIt read it as netCDF and h5py as HDF5:\n"
     "creation order tracked, every dimension name a dimension scale attached to the\n"
     "arrays (a 1-D dataset of that name, without values, whose NAME says it is a netCDF\n"
     "dimension, unless a 1-D array of that name over it is its coordinate variable).\n"
     "A dimension name used with two lengths (e.g. the default dim0) keeps the name for\n"
     "the first length seen (coordinate variables first, then definition order) and is\n"
     "NAME_LEN for the others. A scalar is a scalar dataset. Values are read in slabs of\n"
     "about 64 MiB, so memory stays bounded. Rank 0 writes; with mpirun only it works.\n"
     "Built only with HDF5 (libhdf5-openmpi-dev); otherwise exit 2.\n"
     "\n"
     "Options:\n"
     "  --layer K    export FILE as it was right after the commit of layer K\n"
     "  --deflate N  compress the datasets with shuffle + deflate (gzip) level N (1..9;\n"
     "               0, the default: uncompressed), which every HDF5 and netCDF-4 reader\n"
     "               decodes\n"
     "  -h, --help   this text\n"},
    {"import", cmd_import, "make an afmt file of the numeric datasets of an HDF5 file",
     "usage: afmt import IN.h5 FILE [--force]\n"
     "\n"
     "Creates FILE (exit 2 if it exists, unless --force) with one array per numeric dataset\n"
     "of IN (an HDF5 or netCDF-4 file), in all groups: a dataset in a group keeps its path\n"
     "without the leading '/' (\"grp/t\") as its name. Shape, integer or float type (4 or 8\n"
     "bytes; h5py's bool enum as bool) and fill value are kept; the chunk shape is the\n"
     "dataset's chunking, or about 4 MiB chunks for a contiguous dataset. Dimension names\n"
     "are the names of the first dimension scale attached to each dimension, else dim0,\n"
     "dim1, ... Numeric attributes become afmt attributes of the same type, string\n"
     "attributes uint8 text; the root group's attributes are the file's. netCDF-4 pure\n"
     "dimensions (\"This is a netCDF dimension but not a netCDF variable\") and the\n"
     "HDF5/netCDF bookkeeping attributes (DIMENSION_LIST, REFERENCE_LIST, CLASS, NAME,\n"
     "_Netcdf4Dimid, _NCProperties, _FillValue, ...) are left out. Datasets of other types\n"
     "(strings, compound, other enums, ...) or with an empty dimension are skipped with one\n"
     "warning line each on stderr; so are other attributes. Everything is one commit. With\n"
     "mpirun -np N every rank reads the metadata and the slabs of values are divided among\n"
     "the ranks.\n"
     "Built only with HDF5 (libhdf5-openmpi-dev); otherwise exit 2.\n"
     "\n"
     "Options:\n"
     "  --force      replace FILE if it exists\n"
     "  -h, --help   this text\n"},
    {"unlock", cmd_unlock, "show and remove a writer lock left by a dead job",
     "usage: afmt unlock FILE [--force]\n"
     "\n"
     "A writable handle (afmt_create, afmt_open with AFMT_RDWR, afmt compact, afmt\n"
     "rollback) holds the writer lock FILE.lock, one line naming its holder:\n"
     "  host=n01 pid=1234 job=5678 time=2026-11-24T17:00:00Z\n"
     "Another writer then gets AFMT_EBUSY. A lock whose process is gone on the same host\n"
     "is broken by the next writer by itself; a lock left by a job that died on another\n"
     "node is not, as its process cannot be checked from here.\n"
     "\n"
     "afmt unlock shows the holder and removes the lock if it is stale (the holder ran on\n"
     "this host and its pid no longer exists) or with --force; otherwise it refuses with\n"
     "the holder's line and exit status 1. Make sure the job named is gone before --force:\n"
     "two writers at once lose or damage commits. Readers never need this.\n"
     "Prints \"FILE: not locked\" (exit 0) if there is no lock.\n"
     "Exit status: 0 removed or not locked, 1 refused, 2 error.\n"
     "\n"
     "Options:\n"
     "  --force      remove the lock whoever holds it\n"
     "  -h, --help   this text\n"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const command *find_command(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void main_help(FILE *out) {
    fprintf(out, "usage: afmt COMMAND [OPTIONS] FILE...\n"
                 "       mpirun -q -np N afmt COMMAND ...\n"
                 "\n"
                 "Looks inside, checks and maintains afmt files (arrays stored with libafmt).\n"
                 "\n"
                 "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n", "help", "help of a command: afmt help COMMAND");
    fprintf(out,
            "\n"
            "Options:\n"
            "  -h, --help     this text (afmt COMMAND --help: the help of a command)\n"
            "  -V, --version  the version of afmt and libafmt\n"
            "\n"
            "Every command runs on one process or under mpirun; verify, stats and diff divide\n"
            "their reading among the ranks, rank 0 prints (Open MPI's mpirun -q keeps its own\n"
            "notes about non-zero exit codes away, so that errors stay one line).\n"
            "Exit status: 0 success (verify: whole; diff: equal), 1 verify found damage,\n"
            "diff found differences or unlock refused, 2 error (usage, missing, damaged or\n"
            "unreadable file).\n"
            "See afmt(1).\n");
}

int cli_help(const char *cmd, FILE *out) {
    if (!cmd) {
        main_help(out);
        return 0;
    }
    const command *c = find_command(cmd);
    if (!c) return -1;
    fputs(c->help, out);
    return 0;
}

/* The MPI rank before MPI_Init, from the launcher's environment (0 if none). */
static int launcher_rank(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

/* Answers what needs no MPI: help, version, unknown commands. Returns -1 to go on. */
static int early(int argc, char **argv) {
    int quiet = launcher_rank() != 0;
    if (argc < 2) {
        if (!quiet) {
            fprintf(stderr, "afmt: no command given\n");
            main_help(stderr);
        }
        return CLI_ERROR;
    }
    const char *a = argv[1];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
        if (!quiet) main_help(stdout);
        return CLI_OK;
    }
    if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
        if (!quiet) printf("afmt %s\n", afmt_version());
        return CLI_OK;
    }
    if (!strcmp(a, "help")) {
        if (argc == 2) {
            if (!quiet) main_help(stdout);
            return CLI_OK;
        }
        if (!find_command(argv[2]) || argc > 3) {
            char e[CLI_ESC_SIZE(256)];
            if (!quiet)
                fprintf(stderr, "afmt: help: %s '%s' (commands: afmt --help)\n",
                        argc > 3 ? "too many arguments after" : "no command",
                        cli_esc(argv[2], e, sizeof e));
            return CLI_ERROR;
        }
        if (!quiet) cli_help(argv[2], stdout);
        return CLI_OK;
    }
    const command *c = find_command(a);
    if (!c) {
        char e[CLI_ESC_SIZE(256)];
        if (!quiet)
            fprintf(stderr, "afmt: '%s' is not a command (see afmt --help)\n",
                    cli_esc(a, e, sizeof e));
        return CLI_ERROR;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            if (!quiet) fputs(c->help, stdout);
            return CLI_OK;
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    int rc = early(argc, argv);
    if (rc >= 0) return rc;
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "afmt: MPI_Init failed\n");
        return CLI_ERROR;
    }
    /* Errors come back as codes (the library checks them), never abort the job. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    cli.comm = MPI_COMM_WORLD;
    MPI_Comm_rank(cli.comm, &cli.rank);
    MPI_Comm_size(cli.comm, &cli.size);
    const command *c = find_command(argv[1]);
    rc = c->fn(argc - 1, argv + 1);
    rc = cli_agree(rc);
    fflush(stdout);
    fflush(stderr);
    MPI_Finalize();
    return rc;
}
