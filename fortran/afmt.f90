!> afmt - Fortran bindings of libafmt (include/afmt.h), an MPI parallel I/O library
!> that stores many named n-dimensional arrays in one file, compressed, layered and
!> crash-safe. The reference is docs/fortran.md; the C API is docs/api.md.
!>
!> Conventions of this module:
!>  - Every routine is a subroutine with `integer, intent(out), optional :: ierr`: AFMT_OK
!>    (0) or a negative AFMT_E* code, the same codes as the C API. Like the C library,
!>    the module never prints, stops or aborts: if ierr is absent an error is silently
!>    dropped, so pass ierr and check it. afmt_errmsg(f) returns the detailed message.
!>  - Fortran order everywhere: shapes, chunks, dimension names, starts and counts are
!>    given in the order of the Fortran array's subscripts, and starts are 1-based. The
!>    module reverses them (and subtracts 1 from starts) for the C API, whose arrays are
!>    row-major. A Fortran array a(nx, ny) is the afmt array of C shape {ny, nx}; its
!>    element a(i, j) is C element [j-1][i-1]. The bytes in memory are the same, so no
!>    data is transposed and a C program reads exactly what Fortran wrote:
!>
!>        real(real64) :: t(100, 50)        ! x fastest
!>        call afmt_define(f, "t", AFMT_FLOAT64, [100_int64, 50_int64], &
!>                         chunk=[25_int64, 10_int64], dims=["x", "y"], ierr=ierr)
!>        ! C: shape {50, 100}, chunk {10, 25}, dims {"y", "x"}
!>        call afmt_write(f, "t", t(:, 11:20), start=[1_int64, 11_int64], ierr=ierr)
!>        ! C: start {10, 0}, count {10, 100}
!>
!>  - Indexes of lists are 1-based too: afmt_info_at(f, 1, ...) is the first array,
!>    afmt_layer_id(f, 1_int64, ...) the oldest layer. Layer ids (afmt_open_layer,
!>    afmt_rollback) are ids, not indexes, and are the C values.
!>  - MPI communicators and info objects are integer handles (`use mpi`; with mpi_f08 pass
!>    comm%MPI_VAL). A small C shim converts them with MPI_Comm_f2c / MPI_Info_f2c.
!>  - Names are character arguments; trailing blanks are ignored. For attributes, an empty
!>    array name ("") means the file itself (NULL in C).
!>  - Data buffers are assumed-rank (any rank 0..15, scalars included) arrays of kinds
!>    real32, real64, int8, int16, int32 and int64; non-contiguous sections are copied in
!>    (and out, for reads) by the compiler. The kind must match the array's dtype (int32
!>    for AFMT_INT32 and AFMT_UINT32 and so on; int8 also for AFMT_BOOL): AFMT_ETYPE
!>    otherwise, checked before any data moves.
!>  - COLLECTIVE: every rank of the file's communicator calls it, in the same order, with
!>    the same arguments. INDEPENDENT: a rank calls it alone. The same as in C.
!>  - A handle is used by one thread at a time (the module's own error message of
!>    argument checks is global, like the rest of Fortran's state).
module afmt
    use, intrinsic :: iso_c_binding
    use, intrinsic :: iso_fortran_env, only: int8, int16, int32, int64, real32, real64
    implicit none
    private

    ! ---- version, error codes, limits, dtypes, codecs, flags (values as in afmt.h) ----
    include 'afmt_version.inc'
    integer, parameter, public :: AFMT_OK = 0, AFMT_EINVAL = -1, AFMT_ENOTFOUND = -2, &
                                  AFMT_EEXIST = -3, AFMT_ETYPE = -4, AFMT_ERANGE = -5, &
                                  AFMT_EIO = -6, AFMT_ECORRUPT = -7, AFMT_EVERSION = -8, &
                                  AFMT_ENOMEM = -9, AFMT_ECODEC = -10, AFMT_EMPI = -11, &
                                  AFMT_EREADONLY = -12, AFMT_ESTATE = -13, AFMT_EBUSY = -14
    integer, parameter, public :: AFMT_E_LAST = AFMT_EBUSY
    integer, parameter, public :: AFMT_MAX_NDIM = 32, AFMT_MAX_NAME = 255, &
                                  AFMT_MAX_DIMNAME = 63
    integer, parameter, public :: AFMT_BOOL = 0, AFMT_INT8 = 1, AFMT_INT16 = 2, &
                                  AFMT_INT32 = 3, AFMT_INT64 = 4, AFMT_UINT8 = 5, &
                                  AFMT_UINT16 = 6, AFMT_UINT32 = 7, AFMT_UINT64 = 8, &
                                  AFMT_FLOAT32 = 9, AFMT_FLOAT64 = 10
    integer, parameter, public :: AFMT_CODEC_NONE = 0, AFMT_CODEC_LZ4 = 1, &
                                  AFMT_CODEC_ZSTD = 2, AFMT_CODEC_ZFP = 3
    ! afmt_array_codec%codec of an array without a setting of its own (C: UINT32_MAX).
    integer, parameter, public :: AFMT_CODEC_UNSET = -1
    integer, parameter, public :: AFMT_ZFP_ACCURACY = 1, AFMT_ZFP_PRECISION = 2, &
                                  AFMT_ZFP_RATE = 3, AFMT_ZFP_REVERSIBLE = 4
    integer, parameter, public :: AFMT_RDONLY = 1, AFMT_RDWR = 2, AFMT_TRUNC = 4

    !> An open file (afmt_file * in C). Default-initialized to "not open".
    type, public :: afmt_file
        private
        type(c_ptr) :: p = c_null_ptr
    end type afmt_file

    !> An options object (afmt_opts * in C). Default-initialized to "none".
    type, public :: afmt_opts
        private
        type(c_ptr) :: p = c_null_ptr
    end type afmt_opts

    !> An array's own compression (afmt_array_opts * in C), for afmt_define_with.
    !> Default-initialized to "none".
    type, public :: afmt_array_opts
        private
        type(c_ptr) :: p = c_null_ptr
    end type afmt_array_opts

    !> An array's compression as the file records it (afmt_inquire_codec).
    type, public :: afmt_array_codec
        integer :: codec = AFMT_CODEC_UNSET  !< AFMT_CODEC_* or a user id; AFMT_CODEC_UNSET:
        !!                                      the writer's default (each block says)
        integer :: level = 0                 !< the codec's level (0: its default)
        logical :: shuffle = .false.         !< the chunks are byte-shuffled
        integer :: zfp_mode = 0              !< AFMT_ZFP_* with AFMT_CODEC_ZFP, else 0
        real(real64) :: zfp_param = 0        !< the mode's parameter
        integer :: bitround = 0              !< mantissa bits kept, 0: no bit rounding
        real(real64) :: abs_bound = 0        !< absolute error bound (ZFP accuracy), else 0
        real(real64) :: rel_bound = 0        !< relative error bound (bit rounding), else 0
    end type afmt_array_codec

    ! The C afmt_array_codec, byte for byte (codec is a uint32_t: UINT32_MAX reads as -1).
    type, bind(c) :: c_array_codec
        integer(c_int32_t) :: codec
        integer(c_int) :: level, shuffle, zfp_mode
        real(c_double) :: zfp_param
        integer(c_int) :: bitround
        real(c_double) :: abs_bound, rel_bound
        integer(c_int64_t) :: reserved(8)
    end type c_array_codec

    !> The descriptor of an array, in Fortran order: shape(1:ndim), chunk(1:ndim) and
    !> dims(1:ndim) follow the Fortran subscripts (reversed from C's afmt_info).
    type, public :: afmt_info
        character(len=AFMT_MAX_NAME) :: name = ''
        integer :: dtype = -1
        integer :: ndim = 0
        integer(int64) :: shape(AFMT_MAX_NDIM) = 0
        integer(int64) :: chunk(AFMT_MAX_NDIM) = 0
        character(len=AFMT_MAX_DIMNAME) :: dims(AFMT_MAX_NDIM) = ''
    end type afmt_info

    ! The C afmt_info, byte for byte.
    type, bind(c) :: c_info
        character(kind=c_char) :: name(AFMT_MAX_NAME + 1)
        integer(c_int) :: dtype
        integer(c_int) :: ndim
        integer(c_int64_t) :: shape(AFMT_MAX_NDIM)
        integer(c_int64_t) :: chunk(AFMT_MAX_NDIM)
        character(kind=c_char) :: dims(AFMT_MAX_DIMNAME + 1, AFMT_MAX_NDIM)
        integer(c_int64_t) :: reserved(16)
    end type c_info

    ! The C afmt_codec_desc (version AFMT_CODEC_DESC_VERSION = 1).
    type, bind(c) :: c_codec_desc
        integer(c_int32_t) :: version
        integer(c_int32_t) :: id
        type(c_ptr) :: name
        type(c_funptr) :: bound, compress, decompress
    end type c_codec_desc

    !> User codec callbacks (afmt_codec_desc in C): bind(c) functions with these
    !> interfaces. compress returns 0, or nonzero when it fails or the output does not
    !> fit in dst_cap bytes (the block is then stored raw); decompress must produce
    !> exactly dst_len bytes and return 0. bound is the largest output of compress.
    abstract interface
        function afmt_codec_bound_fn(src_len) result(r) bind(c)
            import :: c_size_t
            integer(c_size_t), value :: src_len
            integer(c_size_t) :: r
        end function afmt_codec_bound_fn
        function afmt_codec_compress_fn(src, src_len, dst, dst_cap, dst_len, level) &
            result(r) bind(c)
            import :: c_ptr, c_size_t, c_int
            type(c_ptr), value :: src, dst
            integer(c_size_t), value :: src_len, dst_cap
            integer(c_size_t), intent(out) :: dst_len
            integer(c_int), value :: level
            integer(c_int) :: r
        end function afmt_codec_compress_fn
        function afmt_codec_decompress_fn(src, src_len, dst, dst_len) result(r) bind(c)
            import :: c_ptr, c_size_t, c_int
            type(c_ptr), value :: src, dst
            integer(c_size_t), value :: src_len, dst_len
            integer(c_int) :: r
        end function afmt_codec_decompress_fn
    end interface
    public :: afmt_codec_bound_fn, afmt_codec_compress_fn, afmt_codec_decompress_fn

    public :: afmt_opts_create, afmt_opts_set_codec, afmt_opts_set_shuffle, &
              afmt_opts_set_block_size, afmt_opts_set_mem_budget, afmt_opts_set_spill_dir, &
              afmt_opts_set_mpi_info, afmt_opts_set_cache_size, afmt_opts_set_alignment, &
              afmt_opts_set_index_cache, &
              afmt_opts_set_check_collective, afmt_opts_set_threads, &
              afmt_opts_set_check_bounds, afmt_opts_set_retention, afmt_opts_free
    public :: afmt_array_opts_create, afmt_array_opts_set_codec, afmt_array_opts_set_shuffle, &
              afmt_array_opts_set_zfp, afmt_array_opts_set_bitround, afmt_array_opts_free
    public :: afmt_create, afmt_open, afmt_open_layer, afmt_rollback, afmt_close, &
              afmt_is_open
    public :: afmt_define, afmt_define_with, afmt_write, afmt_read, afmt_read_all, &
              afmt_write_box, afmt_read_box, &
              afmt_commit, afmt_discard, &
              afmt_commit_start, afmt_commit_wait, &
              afmt_delete, afmt_compact, afmt_compact_keep, afmt_set_attr, afmt_get_attr
    public :: afmt_count, afmt_info_at, afmt_inquire, afmt_inquire_codec, afmt_layers, &
              afmt_layer_id, &
              afmt_layer_attr
    public :: afmt_signal_arm, afmt_signal_pending, afmt_signal_clear
    public :: afmt_codec_register
    public :: afmt_strerror, afmt_err_name, afmt_errmsg, afmt_version, &
              afmt_lib_version_number

    ! Kind classes of the data buffers (what a buffer's kind may be stored as).
    integer, parameter :: KC_R4 = 1, KC_R8 = 2, KC_I1 = 3, KC_I2 = 4, KC_I4 = 5, KC_I8 = 6

    !> INDEPENDENT. Stages buf as the hyperslab start .. start+count-1 of array name for the
    !> next commit. start and count are in Fortran order, start 1-based; start absent = all
    !> 1, count absent = shape(buf) (then rank(buf) must be the array's ndim). size(buf)
    !> must be product(count); the buffer's kind must fit the dtype. Any rank may write any
    !> region; regions of different ranks in one commit must not overlap (afmt_commit
    !> reports AFMT_EINVAL). buf may be reused when the call returns. Errors: ENOTFOUND,
    !> EINVAL (region, buffer), ETYPE (kind), EREADONLY, ENOMEM, EIO (spill file).
    interface afmt_write
        module procedure afmt_write_r4, afmt_write_r8, afmt_write_i1, afmt_write_i2, &
            afmt_write_i4, afmt_write_i8
    end interface afmt_write

    !> INDEPENDENT. Reads the hyperslab start .. start+count-1 (as afmt_write) as of the last
    !> commit plus this rank's own staged writes into buf. Never-written elements read as
    !> the fill value. Errors: ENOTFOUND, EINVAL, ETYPE, ECORRUPT (damaged block), ECODEC, EIO.
    interface afmt_read
        module procedure afmt_read_r4, afmt_read_r8, afmt_read_i1, afmt_read_i2, &
            afmt_read_i4, afmt_read_i8
    end interface afmt_read

    !> INDEPENDENT. afmt_write from a box of a larger array in memory (the interior of a
    !> ghosted field) without copying it: buf is the whole memory array (contiguous; a
    !> section is copied in by the compiler), box_start the 1-based position of the box's
    !> first element counted from buf's first element along each dimension (for
    !> u(0:nx+1, 0:ny+1), interior u(1:nx, 1:ny): box_start = [2, 2], count = [nx, ny]),
    !> count the box's extents, start the 1-based file position (absent = all 1); Fortran
    !> order, rank(buf) = the array's ndim. Errors: those of afmt_write, and EINVAL (a box
    !> outside buf).
    interface afmt_write_box
        module procedure afmt_write_box_r4, afmt_write_box_r8, afmt_write_box_i1, &
            afmt_write_box_i2, afmt_write_box_i4, afmt_write_box_i8
    end interface afmt_write_box

    !> INDEPENDENT. afmt_read into a box of buf (as afmt_write_box); the rest of buf (the
    !> halo) is left as it was. Errors: those of afmt_read, and EINVAL (a box outside buf).
    interface afmt_read_box
        module procedure afmt_read_box_r4, afmt_read_box_r8, afmt_read_box_i1, &
            afmt_read_box_i2, afmt_read_box_i4, afmt_read_box_i8
    end interface afmt_read_box

    !> COLLECTIVE. afmt_read of each rank's own hyperslab (the selections may overlap,
    !> differ or be empty: a count with a 0 extent and a buffer of size 0), with the index
    !> segments the selections need read once per node and shared by its ranks instead of
    !> once per rank (a restart); data blocks are read by each rank. Every rank returns the
    !> same code: an argument this module refuses on one rank (kind, count) makes every rank
    !> return an error (AFMT_EINVAL on the others). Errors: as afmt_read, and ECORRUPT on
    !> every rank for a damaged index segment (naming its layer and segment), EMPI.
    interface afmt_read_all
        module procedure afmt_read_all_r4, afmt_read_all_r8, afmt_read_all_i1, &
            afmt_read_all_i2, afmt_read_all_i4, afmt_read_all_i8
    end interface afmt_read_all

    !> COLLECTIVE. Sets attribute key of array ("" = of the file) to the values (a scalar or
    !> an array of any rank, stored flat in array element order) with the dtype of their
    !> kind (real64 -> AFMT_FLOAT64, int32 -> AFMT_INT32, ...; dtype= overrides it with one
    !> that fits, e.g. AFMT_UINT64 for int64), or to a string (AFMT_UINT8 bytes, trailing
    !> blanks not stored). Visible at once, durable at the next commit.
    interface afmt_set_attr
        module procedure afmt_set_attr_r4, afmt_set_attr_r8, afmt_set_attr_i1, &
            afmt_set_attr_i2, afmt_set_attr_i4, afmt_set_attr_i8, afmt_set_attr_str
    end interface afmt_set_attr

    !> INDEPENDENT. Reads attribute key of array ("" = of the file) into values, whose size is
    !> the capacity (a string: its length; blank-padded); n = number stored, also when the
    !> capacity is too small (then AFMT_ERANGE). The dtype is the kind's unless dtype= says
    !> otherwise; a dtype other than the stored one converts the values (docs/api.md 10),
    !> ERANGE when one does not fit. ENOTFOUND.
    interface afmt_get_attr
        module procedure afmt_get_attr_r4, afmt_get_attr_r8, afmt_get_attr_i1, &
            afmt_get_attr_i2, afmt_get_attr_i4, afmt_get_attr_i8, afmt_get_attr_str
    end interface afmt_get_attr

    !> INDEPENDENT. Layer provenance: attribute key of committed layer number index (1 =
    !> oldest), like afmt_get_attr. Every commit records "host" (string), "nranks" (int64),
    !> "time_ns" (dtype=AFMT_UINT64 into int64) and, when set, "slurm_job_id",
    !> "slurm_array_task_id", "slurm_job_num_nodes" (strings). ERANGE, ENOTFOUND.
    interface afmt_layer_attr
        module procedure afmt_layer_attr_r4, afmt_layer_attr_r8, afmt_layer_attr_i1, &
            afmt_layer_attr_i2, afmt_layer_attr_i4, afmt_layer_attr_i8, afmt_layer_attr_str
    end interface afmt_layer_attr

    ! The message of the last failure that the module itself detected (argument checks
    ! before the C call), and the handle it belongs to (null: none). afmt_errmsg prefers
    ! it while it is the newest failure on that handle.
    character(len=:), allocatable, save :: wmsg
    type(c_ptr), save :: whandle = c_null_ptr
    logical, save :: wset = .false.

    ! ---- the C functions ----
    interface
        function c_afmt_opts_create(o) result(rc) bind(c, name="afmt_opts_create")
            import :: c_ptr, c_int
            type(c_ptr), intent(out) :: o
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_codec(o, c, level) result(rc) &
            bind(c, name="afmt_opts_set_codec")
            import :: c_ptr, c_int
            type(c_ptr), value :: o
            integer(c_int), value :: c, level
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_shuffle(o, on) result(rc) bind(c, name="afmt_opts_set_shuffle")
            import :: c_ptr, c_int
            type(c_ptr), value :: o
            integer(c_int), value :: on
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_block_size(o, b) result(rc) &
            bind(c, name="afmt_opts_set_block_size")
            import :: c_ptr, c_int, c_int64_t
            type(c_ptr), value :: o
            integer(c_int64_t), value :: b
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_mem_budget(o, b) result(rc) &
            bind(c, name="afmt_opts_set_mem_budget")
            import :: c_ptr, c_int, c_int64_t
            type(c_ptr), value :: o
            integer(c_int64_t), value :: b
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_spill_dir(o, dir) result(rc) &
            bind(c, name="afmt_opts_set_spill_dir")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: o
            character(kind=c_char), intent(in) :: dir(*)
            integer(c_int) :: rc
        end function
        function c_afmt_f_opts_set_mpi_info(o, info) result(rc) &
            bind(c, name="afmt_f_opts_set_mpi_info")
            import :: c_ptr, c_int
            type(c_ptr), value :: o
            integer(c_int), value :: info
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_cache_size(o, b) result(rc) &
            bind(c, name="afmt_opts_set_cache_size")
            import :: c_ptr, c_int, c_int64_t
            type(c_ptr), value :: o
            integer(c_int64_t), value :: b
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_alignment(o, b) result(rc) &
            bind(c, name="afmt_opts_set_alignment")
            import :: c_ptr, c_int, c_int64_t
            type(c_ptr), value :: o
            integer(c_int64_t), value :: b
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_index_cache(o, b) result(rc) &
            bind(c, name="afmt_opts_set_index_cache")
            import :: c_ptr, c_int, c_int64_t
            type(c_ptr), value :: o
            integer(c_int64_t), value :: b
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_check_collective(o, on) result(rc) &
            bind(c, name="afmt_opts_set_check_collective")
            import :: c_ptr, c_int
            type(c_ptr), value :: o
            integer(c_int), value :: on
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_threads(o, n) result(rc) &
            bind(c, name="afmt_opts_set_threads")
            import :: c_ptr, c_int
            type(c_ptr), value :: o
            integer(c_int), value :: n
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_check_bounds(o, on) result(rc) &
            bind(c, name="afmt_opts_set_check_bounds")
            import :: c_ptr, c_int
            type(c_ptr), value :: o
            integer(c_int), value :: on
            integer(c_int) :: rc
        end function
        function c_afmt_opts_set_retention(o, keep, frac) result(rc) &
            bind(c, name="afmt_opts_set_retention")
            import :: c_ptr, c_int, c_int64_t, c_double
            type(c_ptr), value :: o
            integer(c_int64_t), value :: keep
            real(c_double), value :: frac
            integer(c_int) :: rc
        end function
        function c_afmt_opts_free(o) result(rc) bind(c, name="afmt_opts_free")
            import :: c_ptr, c_int
            type(c_ptr), value :: o
            integer(c_int) :: rc
        end function
        function c_afmt_array_opts_create(ao) result(rc) bind(c, name="afmt_array_opts_create")
            import :: c_ptr, c_int
            type(c_ptr), intent(out) :: ao
            integer(c_int) :: rc
        end function
        function c_afmt_array_opts_set_codec(ao, c, level) result(rc) &
            bind(c, name="afmt_array_opts_set_codec")
            import :: c_ptr, c_int
            type(c_ptr), value :: ao
            integer(c_int), value :: c, level
            integer(c_int) :: rc
        end function
        function c_afmt_array_opts_set_shuffle(ao, on) result(rc) &
            bind(c, name="afmt_array_opts_set_shuffle")
            import :: c_ptr, c_int
            type(c_ptr), value :: ao
            integer(c_int), value :: on
            integer(c_int) :: rc
        end function
        function c_afmt_array_opts_set_zfp(ao, mode, param) result(rc) &
            bind(c, name="afmt_array_opts_set_zfp")
            import :: c_ptr, c_int, c_double
            type(c_ptr), value :: ao
            integer(c_int), value :: mode
            real(c_double), value :: param
            integer(c_int) :: rc
        end function
        function c_afmt_array_opts_set_bitround(ao, keepbits) result(rc) &
            bind(c, name="afmt_array_opts_set_bitround")
            import :: c_ptr, c_int
            type(c_ptr), value :: ao
            integer(c_int), value :: keepbits
            integer(c_int) :: rc
        end function
        function c_afmt_array_opts_free(ao) result(rc) bind(c, name="afmt_array_opts_free")
            import :: c_ptr, c_int
            type(c_ptr), value :: ao
            integer(c_int) :: rc
        end function
        function c_afmt_f_create(comm, path, flags, opts, f) result(rc) &
            bind(c, name="afmt_f_create")
            import :: c_ptr, c_int, c_char
            integer(c_int), value :: comm, flags
            character(kind=c_char), intent(in) :: path(*)
            type(c_ptr), value :: opts
            type(c_ptr), intent(out) :: f
            integer(c_int) :: rc
        end function
        function c_afmt_f_open(comm, path, mode, opts, f) result(rc) bind(c, name="afmt_f_open")
            import :: c_ptr, c_int, c_char
            integer(c_int), value :: comm, mode
            character(kind=c_char), intent(in) :: path(*)
            type(c_ptr), value :: opts
            type(c_ptr), intent(out) :: f
            integer(c_int) :: rc
        end function
        function c_afmt_f_open_layer(comm, path, layer, opts, f) result(rc) &
            bind(c, name="afmt_f_open_layer")
            import :: c_ptr, c_int, c_char, c_int64_t
            integer(c_int), value :: comm
            character(kind=c_char), intent(in) :: path(*)
            integer(c_int64_t), value :: layer
            type(c_ptr), value :: opts
            type(c_ptr), intent(out) :: f
            integer(c_int) :: rc
        end function
        function c_afmt_rollback(f, layer) result(rc) bind(c, name="afmt_rollback")
            import :: c_ptr, c_int, c_int64_t
            type(c_ptr), value :: f
            integer(c_int64_t), value :: layer
            integer(c_int) :: rc
        end function
        function c_afmt_close(f) result(rc) bind(c, name="afmt_close")
            import :: c_ptr, c_int
            type(c_ptr), value :: f
            integer(c_int) :: rc
        end function
        function c_afmt_define(f, name, t, ndim, shape, chunk, dims, fill) result(rc) &
            bind(c, name="afmt_define")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: f
            character(kind=c_char), intent(in) :: name(*)
            integer(c_int), value :: t, ndim
            type(c_ptr), value :: shape, chunk, dims, fill
            integer(c_int) :: rc
        end function
        function c_afmt_define_with(f, name, t, ndim, shape, chunk, dims, fill, ao) result(rc) &
            bind(c, name="afmt_define_with")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: f
            character(kind=c_char), intent(in) :: name(*)
            integer(c_int), value :: t, ndim
            type(c_ptr), value :: shape, chunk, dims, fill, ao
            integer(c_int) :: rc
        end function
        function c_afmt_write(f, name, start, count, buf) result(rc) bind(c, name="afmt_write")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: f
            character(kind=c_char), intent(in) :: name(*)
            type(c_ptr), value :: start, count, buf
            integer(c_int) :: rc
        end function
        function c_afmt_read(f, name, start, count, buf) result(rc) bind(c, name="afmt_read")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: f
            character(kind=c_char), intent(in) :: name(*)
            type(c_ptr), value :: start, count, buf
            integer(c_int) :: rc
        end function
        function c_afmt_write_box(f, name, start, count, mshape, mstart, buf) result(rc) &
            bind(c, name="afmt_write_box")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: f
            character(kind=c_char), intent(in) :: name(*)
            type(c_ptr), value :: start, count, mshape, mstart, buf
            integer(c_int) :: rc
        end function
        function c_afmt_read_box(f, name, start, count, mshape, mstart, buf) result(rc) &
            bind(c, name="afmt_read_box")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: f
            character(kind=c_char), intent(in) :: name(*)
            type(c_ptr), value :: start, count, mshape, mstart, buf
            integer(c_int) :: rc
        end function
        function c_afmt_read_all(f, name, start, count, buf) result(rc) &
            bind(c, name="afmt_read_all")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: f
            character(kind=c_char), intent(in) :: name(*)
            type(c_ptr), value :: start, count, buf
            integer(c_int) :: rc
        end function
        function c_afmt_commit(f) result(rc) bind(c, name="afmt_commit")
            import :: c_ptr, c_int
            type(c_ptr), value :: f
            integer(c_int) :: rc
        end function
        function c_afmt_commit_start(f) result(rc) bind(c, name="afmt_commit_start")
            import :: c_ptr, c_int
            type(c_ptr), value :: f
            integer(c_int) :: rc
        end function
        function c_afmt_commit_wait(f) result(rc) bind(c, name="afmt_commit_wait")
            import :: c_ptr, c_int
            type(c_ptr), value :: f
            integer(c_int) :: rc
        end function
        function c_afmt_discard(f) result(rc) bind(c, name="afmt_discard")
            import :: c_ptr, c_int
            type(c_ptr), value :: f
            integer(c_int) :: rc
        end function
        function c_afmt_delete(f, name) result(rc) bind(c, name="afmt_delete")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: f
            character(kind=c_char), intent(in) :: name(*)
            integer(c_int) :: rc
        end function
        function c_afmt_compact(f) result(rc) bind(c, name="afmt_compact")
            import :: c_ptr, c_int
            type(c_ptr), value :: f
            integer(c_int) :: rc
        end function
        function c_afmt_compact_keep(f, keep) result(rc) bind(c, name="afmt_compact_keep")
            import :: c_ptr, c_int, c_int64_t
            type(c_ptr), value :: f
            integer(c_int64_t), value :: keep
            integer(c_int) :: rc
        end function
        function c_afmt_set_attr(f, array, key, t, n, values) result(rc) &
            bind(c, name="afmt_set_attr")
            import :: c_ptr, c_int, c_char, c_int64_t
            type(c_ptr), value :: f, array
            character(kind=c_char), intent(in) :: key(*)
            integer(c_int), value :: t
            integer(c_int64_t), value :: n
            type(c_ptr), value :: values
            integer(c_int) :: rc
        end function
        function c_afmt_get_attr(f, array, key, t, n, values) result(rc) &
            bind(c, name="afmt_get_attr")
            import :: c_ptr, c_int, c_char, c_int64_t
            type(c_ptr), value :: f, array
            character(kind=c_char), intent(in) :: key(*)
            integer(c_int), value :: t
            integer(c_int64_t), intent(inout) :: n
            type(c_ptr), value :: values
            integer(c_int) :: rc
        end function
        function c_afmt_count(f, n) result(rc) bind(c, name="afmt_count")
            import :: c_ptr, c_int
            type(c_ptr), value :: f
            integer(c_int), intent(out) :: n
            integer(c_int) :: rc
        end function
        function c_afmt_info_at(f, index, info) result(rc) bind(c, name="afmt_info_at")
            import :: c_ptr, c_int, c_info
            type(c_ptr), value :: f
            integer(c_int), value :: index
            type(c_info), intent(out) :: info
            integer(c_int) :: rc
        end function
        function c_afmt_inquire(f, name, info) result(rc) bind(c, name="afmt_inquire")
            import :: c_ptr, c_int, c_char, c_info
            type(c_ptr), value :: f
            character(kind=c_char), intent(in) :: name(*)
            type(c_info), intent(out) :: info
            integer(c_int) :: rc
        end function
        function c_afmt_inquire_codec(f, name, out) result(rc) &
            bind(c, name="afmt_inquire_codec")
            import :: c_ptr, c_int, c_char, c_array_codec
            type(c_ptr), value :: f
            character(kind=c_char), intent(in) :: name(*)
            type(c_array_codec), intent(out) :: out
            integer(c_int) :: rc
        end function
        function c_afmt_layers(f, n) result(rc) bind(c, name="afmt_layers")
            import :: c_ptr, c_int, c_int64_t
            type(c_ptr), value :: f
            integer(c_int64_t), intent(out) :: n
            integer(c_int) :: rc
        end function
        function c_afmt_layer_id(f, index, id, time_ns) result(rc) bind(c, name="afmt_layer_id")
            import :: c_ptr, c_int, c_int64_t
            type(c_ptr), value :: f
            integer(c_int64_t), value :: index
            integer(c_int64_t), intent(out) :: id, time_ns
            integer(c_int) :: rc
        end function
        function c_afmt_layer_attr(f, index, key, t, n, values) result(rc) &
            bind(c, name="afmt_layer_attr")
            import :: c_ptr, c_int, c_char, c_int64_t
            type(c_ptr), value :: f
            integer(c_int64_t), value :: index
            character(kind=c_char), intent(in) :: key(*)
            integer(c_int), value :: t
            integer(c_int64_t), intent(inout) :: n
            type(c_ptr), value :: values
            integer(c_int) :: rc
        end function
        function c_afmt_signal_arm(signum) result(rc) bind(c, name="afmt_signal_arm")
            import :: c_int
            integer(c_int), value :: signum
            integer(c_int) :: rc
        end function
        function c_afmt_f_signal_pending(comm, pending) result(rc) &
            bind(c, name="afmt_f_signal_pending")
            import :: c_int
            integer(c_int), value :: comm
            integer(c_int), intent(out) :: pending
            integer(c_int) :: rc
        end function
        function c_afmt_signal_clear() result(rc) bind(c, name="afmt_signal_clear")
            import :: c_int
            integer(c_int) :: rc
        end function
        function c_afmt_codec_register(desc) result(rc) bind(c, name="afmt_codec_register")
            import :: c_int, c_codec_desc
            type(c_codec_desc), intent(in) :: desc
            integer(c_int) :: rc
        end function
        function c_afmt_strerror(code) result(s) bind(c, name="afmt_strerror")
            import :: c_int, c_ptr
            integer(c_int), value :: code
            type(c_ptr) :: s
        end function
        function c_afmt_errmsg(f) result(s) bind(c, name="afmt_errmsg")
            import :: c_ptr
            type(c_ptr), value :: f
            type(c_ptr) :: s
        end function
        function c_afmt_version() result(s) bind(c, name="afmt_version")
            import :: c_ptr
            type(c_ptr) :: s
        end function
        function c_afmt_version_number() result(n) bind(c, name="afmt_version_number")
            import :: c_int
            integer(c_int) :: n ! unsigned in C; the value is far below 2^31
        end function
        function c_afmt_err_name(code) result(s) bind(c, name="afmt_err_name")
            import :: c_int, c_ptr
            integer(c_int), value :: code
            type(c_ptr) :: s
        end function
        function c_strlen(s) result(n) bind(c, name="strlen")
            import :: c_ptr, c_size_t
            type(c_ptr), value :: s
            integer(c_size_t) :: n
        end function
    end interface

contains

    ! ==== helpers ======================================================================

    ! A Fortran name as a NUL-terminated C string (trailing blanks dropped).
    pure function cstr(s) result(r)
        character(len=*), intent(in) :: s
        character(kind=c_char, len=:), allocatable :: r
        r = trim(s)//c_null_char
    end function cstr

    ! Like cstr, into a target buffer; returns its address, or NULL for a blank name
    ! (the file's attributes in afmt_set_attr & co.).
    function opt_cstr(s, buf) result(p)
        character(len=*), intent(in) :: s
        character(kind=c_char), allocatable, target, intent(out) :: buf(:)
        type(c_ptr) :: p
        integer :: i, n
        n = len_trim(s)
        if (n == 0) then
            p = c_null_ptr
            return
        end if
        allocate (buf(n + 1))
        do i = 1, n
            buf(i) = s(i:i)
        end do
        buf(n + 1) = c_null_char
        p = c_loc(buf)
    end function opt_cstr

    ! A NUL-terminated C string (NULL: "") as a Fortran string.
    function fstr(p) result(s)
        type(c_ptr), intent(in) :: p
        character(len=:), allocatable :: s
        character(kind=c_char), pointer :: chars(:)
        integer :: i, n
        if (.not. c_associated(p)) then
            s = ''
            return
        end if
        n = int(c_strlen(p))
        call c_f_pointer(p, chars, [n])
        allocate (character(len=n) :: s)
        do i = 1, n
            s(i:i) = chars(i)
        end do
    end function fstr

    ! A NUL-terminated fixed C char array as a Fortran string.
    function fixed_str(chars) result(s)
        character(kind=c_char), intent(in) :: chars(:)
        character(len=:), allocatable :: s
        integer :: i, n
        n = 0
        do i = 1, size(chars)
            if (chars(i) == c_null_char) exit
            n = i
        end do
        allocate (character(len=n) :: s)
        do i = 1, n
            s(i:i) = chars(i)
        end do
    end function fixed_str

    logical function same_handle(a, b)
        type(c_ptr), intent(in) :: a, b
        same_handle = (.not. c_associated(a) .and. .not. c_associated(b))
        if (.not. same_handle) same_handle = c_associated(a, b)
    end function same_handle

    ! Every wrapper ends here with the C call's code: a failure of the C library on h is
    ! newer than any message of ours on h, so ours is dropped.
    subroutine finish(h, rc, ierr)
        type(c_ptr), intent(in) :: h
        integer(c_int), intent(in) :: rc
        integer, intent(out), optional :: ierr
        if (rc /= AFMT_OK .and. wset) then
            if (same_handle(h, whandle)) wset = .false.
        end if
        if (present(ierr)) ierr = int(rc)
    end subroutine finish

    ! A failure found by the module before calling C: remember the message for
    ! afmt_errmsg(h) and return code.
    subroutine fail(h, code, msg, ierr)
        type(c_ptr), intent(in) :: h
        integer, intent(in) :: code
        character(len=*), intent(in) :: msg
        integer, intent(out), optional :: ierr
        wmsg = msg
        whandle = h
        wset = .true.
        if (present(ierr)) ierr = code
    end subroutine fail

    ! Whether a buffer of kind class kc may hold elements of dtype t.
    logical function kind_fits(t, kc)
        integer, intent(in) :: t, kc
        select case (kc)
        case (KC_R4)
            kind_fits = t == AFMT_FLOAT32
        case (KC_R8)
            kind_fits = t == AFMT_FLOAT64
        case (KC_I1)
            kind_fits = t == AFMT_INT8 .or. t == AFMT_UINT8 .or. t == AFMT_BOOL
        case (KC_I2)
            kind_fits = t == AFMT_INT16 .or. t == AFMT_UINT16
        case (KC_I4)
            kind_fits = t == AFMT_INT32 .or. t == AFMT_UINT32
        case (KC_I8)
            kind_fits = t == AFMT_INT64 .or. t == AFMT_UINT64
        case default
            kind_fits = .false.
        end select
    end function kind_fits

    ! The dtype a buffer of kind class kc is stored as unless the caller says otherwise.
    integer function kind_dtype(kc)
        integer, intent(in) :: kc
        integer, parameter :: map(6) = [AFMT_FLOAT32, AFMT_FLOAT64, AFMT_INT8, AFMT_INT16, &
                                        AFMT_INT32, AFMT_INT64]
        kind_dtype = map(kc)
    end function kind_dtype

    character(len=14) function kind_name(kc)
        integer, intent(in) :: kc
        character(len=14), parameter :: names(6) = [character(len=14) :: 'real(real32)', &
            'real(real64)', 'integer(int8)', 'integer(int16)', 'integer(int32)', 'integer(int64)']
        kind_name = names(kc)
    end function kind_name

    function itoa(i) result(s)
        integer(int64), intent(in) :: i
        character(len=:), allocatable :: s
        character(len=24) :: b
        write (b, '(i0)') i
        s = trim(b)
    end function itoa

    ! Fortran-order, 1-based start/count of a hyperslab -> C-order, 0-based; checks them
    ! against the array (ndim, dtype) and the buffer (rank, shape, number of elements).
    subroutine slab(f, name, what, kc, bshape, nelem, start, count, cstart, ccount, rc)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name, what
        integer, intent(in) :: kc
        integer(int64), intent(in) :: bshape(:), nelem
        integer(int64), intent(in), optional :: start(:), count(:)
        integer(c_int64_t), intent(out) :: cstart(AFMT_MAX_NDIM), ccount(AFMT_MAX_NDIM)
        integer, intent(out) :: rc
        type(c_info) :: ci
        integer :: nd, d
        integer(int64) :: fs(AFMT_MAX_NDIM), fc(AFMT_MAX_NDIM)
        integer(c_int) :: crc

        rc = AFMT_OK
        if (.not. c_associated(f%p)) then
            call fail(f%p, AFMT_EINVAL, what//': the file is not open', rc)
            return
        end if
        crc = c_afmt_inquire(f%p, cstr(name), ci)
        if (crc /= AFMT_OK) then
            call finish(f%p, crc, rc)
            return
        end if
        nd = ci%ndim
        if (.not. kind_fits(int(ci%dtype), kc)) then
            call fail(f%p, AFMT_ETYPE, what//': array "'//trim(name)//'" has dtype '// &
                      itoa(int(ci%dtype, int64))//'; a '//trim(kind_name(kc))// &
                      ' buffer does not fit it', rc)
            return
        end if
        if (present(count)) then
            if (size(count) /= nd) then
                call fail(f%p, AFMT_EINVAL, what//': array "'//trim(name)//'" has '// &
                          itoa(int(nd, int64))//' dimensions, count has '// &
                          itoa(size(count, kind=int64)), rc)
                return
            end if
            fc(1:nd) = count
        else
            if (size(bshape) /= nd) then
                call fail(f%p, AFMT_EINVAL, what//': array "'//trim(name)//'" has '// &
                          itoa(int(nd, int64))//' dimensions, the buffer rank '// &
                          itoa(size(bshape, kind=int64))//' (pass count)', rc)
                return
            end if
            fc(1:nd) = bshape
        end if
        if (present(start)) then
            if (size(start) /= nd) then
                call fail(f%p, AFMT_EINVAL, what//': array "'//trim(name)//'" has '// &
                          itoa(int(nd, int64))//' dimensions, start has '// &
                          itoa(size(start, kind=int64)), rc)
                return
            end if
            fs(1:nd) = start
        else
            fs(1:nd) = 1
        end if
        do d = 1, nd
            if (fs(d) < 1 .or. fc(d) < 0) then
                call fail(f%p, AFMT_EINVAL, what//': array "'//trim(name)//'": start('// &
                          itoa(int(d, int64))//') = '//itoa(fs(d))//', count = '// &
                          itoa(fc(d))//' (starts are 1-based)', rc)
                return
            end if
        end do
        if (product(fc(1:nd)) /= nelem) then
            call fail(f%p, AFMT_EINVAL, what//': array "'//trim(name)//'": count holds '// &
                      itoa(product(fc(1:nd)))//' elements, the buffer '//itoa(nelem), rc)
            return
        end if
        do d = 1, nd
            cstart(nd + 1 - d) = fs(d) - 1
            ccount(nd + 1 - d) = fc(d)
        end do
    end subroutine slab

    subroutine write_any(f, name, kc, bshape, nelem, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer, intent(in) :: kc
        integer(int64), intent(in) :: bshape(:), nelem
        type(c_ptr), intent(in) :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        integer(c_int64_t), target :: cstart(AFMT_MAX_NDIM), ccount(AFMT_MAX_NDIM)
        integer :: rc
        call slab(f, name, 'afmt_write', kc, bshape, nelem, start, count, cstart, ccount, rc)
        if (rc /= AFMT_OK) then
            if (present(ierr)) ierr = rc
            return
        end if
        call finish(f%p, c_afmt_write(f%p, cstr(name), c_loc(cstart), c_loc(ccount), buf), &
                    ierr)
    end subroutine write_any

    subroutine read_any(f, name, kc, bshape, nelem, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer, intent(in) :: kc
        integer(int64), intent(in) :: bshape(:), nelem
        type(c_ptr), intent(in) :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        integer(c_int64_t), target :: cstart(AFMT_MAX_NDIM), ccount(AFMT_MAX_NDIM)
        integer :: rc
        call slab(f, name, 'afmt_read', kc, bshape, nelem, start, count, cstart, ccount, rc)
        if (rc /= AFMT_OK) then
            if (present(ierr)) ierr = rc
            return
        end if
        call finish(f%p, c_afmt_read(f%p, cstr(name), c_loc(cstart), c_loc(ccount), buf), &
                    ierr)
    end subroutine read_any

    ! afmt_write_box / afmt_read_box: slab checks kind, count and start; here the rank of
    ! buf and the box within it, then shape(buf) and box_start - 1 are reversed for C.
    subroutine box_any(f, name, what, kc, bshape, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name, what
        integer, intent(in) :: kc
        integer(int64), intent(in) :: bshape(:), box_start(:), count(:)
        type(c_ptr), intent(in) :: buf
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        integer(c_int64_t), target :: cstart(AFMT_MAX_NDIM), ccount(AFMT_MAX_NDIM), &
            mshape(AFMT_MAX_NDIM), mstart(AFMT_MAX_NDIM)
        integer :: rc, nd, d
        call slab(f, name, what, kc, bshape, product(count), start, count, cstart, ccount, rc)
        nd = size(count)
        if (rc == AFMT_OK .and. (size(bshape) /= nd .or. size(box_start) /= nd)) then
            call fail(f%p, AFMT_EINVAL, what//': array "'//trim(name)//'" has '// &
                      itoa(int(nd, int64))//' dimensions, the buffer rank '// &
                      itoa(size(bshape, kind=int64))//', box_start '// &
                      itoa(size(box_start, kind=int64)), rc)
        end if
        if (rc == AFMT_OK) then
            do d = 1, nd
                if (box_start(d) < 1 .or. box_start(d) - 1 + count(d) > bshape(d)) then
                    call fail(f%p, AFMT_EINVAL, what//': array "'//trim(name)// &
                              '": box_start('//itoa(int(d, int64))//') = '// &
                              itoa(box_start(d))//', count = '//itoa(count(d))// &
                              ' is outside the buffer''s extent '//itoa(bshape(d))// &
                              ' (box_start counts from 1)', rc)
                    exit
                end if
                mshape(nd + 1 - d) = bshape(d)
                mstart(nd + 1 - d) = box_start(d) - 1
            end do
        end if
        if (rc /= AFMT_OK) then
            if (present(ierr)) ierr = rc
            return
        end if
        if (what == 'afmt_write_box') then
            call finish(f%p, c_afmt_write_box(f%p, cstr(name), c_loc(cstart), c_loc(ccount), &
                                              c_loc(mshape), c_loc(mstart), buf), ierr)
        else
            call finish(f%p, c_afmt_read_box(f%p, cstr(name), c_loc(cstart), c_loc(ccount), &
                                             c_loc(mshape), c_loc(mstart), buf), ierr)
        end if
    end subroutine box_any

    subroutine read_all_any(f, name, kc, bshape, nelem, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer, intent(in) :: kc
        integer(int64), intent(in) :: bshape(:), nelem
        type(c_ptr), intent(in) :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        integer(c_int64_t), target :: cstart(AFMT_MAX_NDIM), ccount(AFMT_MAX_NDIM)
        integer :: rc
        integer(c_int) :: crc
        call slab(f, name, 'afmt_read_all', kc, bshape, nelem, start, count, cstart, ccount, &
                  rc)
        if (rc /= AFMT_OK) then
            ! The other ranks are in the collective call: take part with no buffer, which
            ! the library refuses on every rank, and keep this rank's own message.
            crc = c_afmt_read_all(f%p, cstr(name), c_null_ptr, c_null_ptr, c_null_ptr)
            if (present(ierr)) ierr = rc
            return
        end if
        call finish(f%p, c_afmt_read_all(f%p, cstr(name), c_loc(cstart), c_loc(ccount), buf), &
                    ierr)
    end subroutine read_all_any

    ! The dtype of an attribute: the caller's (checked against the buffer) or the kind's.
    subroutine attr_dtype(h, what, kc, dtype, t, rc)
        type(c_ptr), intent(in) :: h
        character(len=*), intent(in) :: what
        integer, intent(in) :: kc
        integer, intent(in), optional :: dtype
        integer, intent(out) :: t, rc
        rc = AFMT_OK
        t = kind_dtype(kc)
        if (present(dtype)) then
            t = dtype
            if (.not. kind_fits(t, kc)) then
                call fail(h, AFMT_ETYPE, what//': dtype '//itoa(int(t, int64))// &
                          ' does not fit a '//trim(kind_name(kc))//' buffer', rc)
            end if
        end if
    end subroutine attr_dtype

    subroutine set_attr_any(f, array, key, kc, n, values, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        integer, intent(in) :: kc
        integer(int64), intent(in) :: n
        type(c_ptr), intent(in) :: values
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        character(kind=c_char), allocatable, target :: abuf(:)
        integer :: t, rc
        call attr_dtype(f%p, 'afmt_set_attr', kc, dtype, t, rc)
        if (rc /= AFMT_OK) then
            if (present(ierr)) ierr = rc
            return
        end if
        call finish(f%p, c_afmt_set_attr(f%p, opt_cstr(array, abuf), cstr(key), int(t, c_int), &
                                         n, values), ierr)
    end subroutine set_attr_any

    ! get_attr (layer false) and layer_attr (layer true, index 1-based) share this.
    subroutine get_attr_any(f, layer, index, array, key, kc, cap, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        logical, intent(in) :: layer
        integer(int64), intent(in) :: index
        character(len=*), intent(in) :: array, key
        integer, intent(in) :: kc
        integer(int64), intent(in) :: cap
        type(c_ptr), intent(in) :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        character(kind=c_char), allocatable, target :: abuf(:)
        integer(c_int64_t) :: cn
        integer :: t, rc
        integer(c_int) :: crc
        if (present(n)) n = 0
        call attr_dtype(f%p, 'afmt_get_attr', kc, dtype, t, rc)
        if (rc /= AFMT_OK) then
            if (present(ierr)) ierr = rc
            return
        end if
        cn = cap
        if (.not. layer) then
            crc = c_afmt_get_attr(f%p, opt_cstr(array, abuf), cstr(key), int(t, c_int), cn, &
                                  values)
        else if (index < 1) then
            call fail(f%p, AFMT_ERANGE, 'afmt_layer_attr: layer index '//itoa(index)// &
                      ' < 1 (indexes are 1-based)', ierr)
            return
        else
            crc = c_afmt_layer_attr(f%p, index - 1, cstr(key), int(t, c_int), cn, values)
        end if
        if (present(n)) n = cn
        call finish(f%p, crc, ierr)
    end subroutine get_attr_any

    ! Strings are n bytes of AFMT_UINT8; the value is blank-padded to len(value).
    subroutine get_attr_str_any(f, layer, index, array, key, value, n, ierr)
        type(afmt_file), intent(in) :: f
        logical, intent(in) :: layer
        integer(int64), intent(in) :: index
        character(len=*), intent(in) :: array, key
        character(len=*), intent(out) :: value
        integer(int64), intent(out), optional :: n
        integer, intent(out), optional :: ierr
        character(kind=c_char), allocatable, target :: buf(:)
        integer(int64) :: got
        integer :: i, rc
        allocate (buf(max(1, len(value))))
        call get_attr_any(f, layer, index, array, key, KC_I1, int(len(value), int64), &
                          c_loc(buf), got, AFMT_UINT8, rc)
        value = ''
        if (rc == AFMT_OK) then
            do i = 1, int(min(got, int(len(value), int64)))
                value(i:i) = buf(i)
            end do
        end if
        if (present(n)) n = got
        if (present(ierr)) ierr = rc
    end subroutine get_attr_str_any

    subroutine to_info(ci, info)
        type(c_info), intent(in) :: ci
        type(afmt_info), intent(out) :: info
        integer :: d, nd
        info%name = fixed_str(ci%name)
        info%dtype = int(ci%dtype)
        nd = int(ci%ndim)
        info%ndim = nd
        do d = 1, nd
            info%shape(d) = ci%shape(nd + 1 - d)
            info%chunk(d) = ci%chunk(nd + 1 - d)
            info%dims(d) = fixed_str(ci%dims(:, nd + 1 - d))
        end do
    end subroutine to_info

    ! ==== options (all INDEPENDENT; an options object is local to the caller) =========

    !> INDEPENDENT. Creates an options object with the defaults: LZ4, shuffle on, 4 MiB
    !> blocks, 512 MiB memory budget, spill directory $TMPDIR or /tmp, 64 MiB block cache,
    !> no MPI_Info hints. Errors: ENOMEM.
    subroutine afmt_opts_create(o, ierr)
        type(afmt_opts), intent(out) :: o
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_create(o%p), ierr)
    end subroutine afmt_opts_create

    !> INDEPENDENT. Codec for new blocks (AFMT_CODEC_*, or a registered user codec id).
    !> level is the codec's own scale, 0 = its default (none: 0 only; LZ4: < 0 is the
    !> acceleration of LZ4 fast, 1 = default, 2..12 = LZ4 HC; zstd: its levels).
    !> Errors: EINVAL (level out of the codec's range), ECODEC (unknown codec id).
    subroutine afmt_opts_set_codec(o, codec, level, ierr)
        type(afmt_opts), intent(in) :: o
        integer, intent(in) :: codec
        integer, intent(in), optional :: level
        integer, intent(out), optional :: ierr
        integer(c_int) :: lv
        lv = 0
        if (present(level)) lv = int(level, c_int)
        call finish(c_null_ptr, c_afmt_opts_set_codec(o%p, int(codec, c_int), lv), ierr)
    end subroutine afmt_opts_set_codec

    !> INDEPENDENT. Byte-shuffle pre-filter for arrays defined with these options.
    subroutine afmt_opts_set_shuffle(o, on, ierr)
        type(afmt_opts), intent(in) :: o
        logical, intent(in) :: on
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_set_shuffle(o%p, merge(1_c_int, 0_c_int, on)), ierr)
    end subroutine afmt_opts_set_shuffle

    !> INDEPENDENT. Target raw bytes per block (>= 1 KiB, <= 1 GiB). A chunk never spans
    !> blocks, so a chunk larger than the target makes a block of its own.
    subroutine afmt_opts_set_block_size(o, bytes, ierr)
        type(afmt_opts), intent(in) :: o
        integer(int64), intent(in) :: bytes
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_set_block_size(o%p, bytes), ierr)
    end subroutine afmt_opts_set_block_size

    !> INDEPENDENT. Compressed bytes a rank keeps in memory before commit; past it blocks
    !> spill to a file in the spill directory. 0 = spill every block at once.
    subroutine afmt_opts_set_mem_budget(o, bytes, ierr)
        type(afmt_opts), intent(in) :: o
        integer(int64), intent(in) :: bytes
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_set_mem_budget(o%p, bytes), ierr)
    end subroutine afmt_opts_set_mem_budget

    !> INDEPENDENT. Directory of the spill file (a node-local disk is best). Copied.
    subroutine afmt_opts_set_spill_dir(o, dir, ierr)
        type(afmt_opts), intent(in) :: o
        character(len=*), intent(in) :: dir
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_set_spill_dir(o%p, cstr(dir)), ierr)
    end subroutine afmt_opts_set_spill_dir

    !> INDEPENDENT. MPI_Info hints (a Fortran integer info handle) given to MPI_File_open
    !> (duplicated; the caller keeps its own). afmt's own hints: "afmt_collective_write"
    !> = "true" writes data blocks with MPI_File_write_at_all.
    subroutine afmt_opts_set_mpi_info(o, info, ierr)
        type(afmt_opts), intent(in) :: o
        integer, intent(in) :: info
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_f_opts_set_mpi_info(o%p, int(info, c_int)), ierr)
    end subroutine afmt_opts_set_mpi_info

    !> INDEPENDENT. Bytes of decompressed blocks a handle caches for reads (0 disables).
    subroutine afmt_opts_set_cache_size(o, bytes, ierr)
        type(afmt_opts), intent(in) :: o
        integer(int64), intent(in) :: bytes
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_set_cache_size(o%p, bytes), ierr)
    end subroutine afmt_opts_set_cache_size

    !> INDEPENDENT. File-system placement: each rank's region of a layer and the footer
    !> start at a multiple of bytes (the Lustre stripe size, the GPFS block size); 0 (the
    !> default) = back to back. bytes is 0 or a power of two in [512, 1 GiB] (else
    !> AFMT_EINVAL); every rank must give the same value.
    subroutine afmt_opts_set_alignment(o, bytes, ierr)
        type(afmt_opts), intent(in) :: o
        integer(int64), intent(in) :: bytes
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_set_alignment(o%p, bytes), ierr)
    end subroutine afmt_opts_set_alignment

    !> INDEPENDENT. Bytes of index metadata (the index segments reads load, format v2) a
    !> handle keeps (default 64 MiB; 0: only the segment in use).
    subroutine afmt_opts_set_index_cache(o, bytes, ierr)
        type(afmt_opts), intent(in) :: o
        integer(int64), intent(in) :: bytes
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_set_index_cache(o%p, bytes), ierr)
    end subroutine afmt_opts_set_index_cache

    !> INDEPENDENT. Whether commits first check that every rank made the same define,
    !> delete and set_attr calls (on by default; a mismatch is AFMT_EINVAL on every rank).
    subroutine afmt_opts_set_check_collective(o, on, ierr)
        type(afmt_opts), intent(in) :: o
        logical, intent(in) :: on
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_set_check_collective(o%p, merge(1_c_int, 0_c_int, on)), &
                    ierr)
    end subroutine afmt_opts_set_check_collective

    !> INDEPENDENT. Threads of work per handle for compressing blocks and decompressing
    !> the blocks a read needs: n = 1 none but the caller's, 0 (default) this rank's share
    !> of its node's cores. The file is the same whatever n (AFMT_EINVAL if n < 0).
    subroutine afmt_opts_set_threads(o, n, ierr)
        type(afmt_opts), intent(in) :: o
        integer, intent(in) :: n
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_set_threads(o%p, int(n, c_int)), ierr)
    end subroutine afmt_opts_set_threads

    !> INDEPENDENT. Whether every lossy block is checked before the commit (default
    !> .false.): a block of a ZFP array in accuracy mode is decoded again and every value
    !> compared with what was written, bit-rounded values with the originals; a value off
    !> by more than the array's bound makes the afmt_write (or the commit that seals the
    !> block) fail with AFMT_ECODEC. Costs a decode of every lossy block.
    subroutine afmt_opts_set_check_bounds(o, on, ierr)
        type(afmt_opts), intent(in) :: o
        logical, intent(in) :: on
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_set_check_bounds(o%p, merge(1_c_int, 0_c_int, on)), &
                    ierr)
    end subroutine afmt_opts_set_check_bounds

    !> INDEPENDENT. Retention after every afmt_commit, afmt_commit_wait and afmt_close:
    !> keep > 0 runs afmt_compact_keep(f, keep) once there are more than keep + 1 layers;
    !> dead_fraction in (0, 1) compacts once more than that share of the file is dead; both
    !> set: both must hold; 0 and 0 (default): never. The commit is durable before; a failed
    !> compaction is the call's error (the commit stands). Every rank must give the same
    !> setting (else AFMT_EINVAL at create/open). AFMT_EINVAL if dead_fraction is outside
    !> [0, 1).
    subroutine afmt_opts_set_retention(o, keep, dead_fraction, ierr)
        type(afmt_opts), intent(in) :: o
        integer(int64), intent(in) :: keep
        real(real64), intent(in) :: dead_fraction
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_opts_set_retention(o%p, keep, real(dead_fraction, c_double)), &
                    ierr)
    end subroutine afmt_opts_set_retention

    !> INDEPENDENT. Frees o (one never created is fine) and resets it.
    subroutine afmt_opts_free(o, ierr)
        type(afmt_opts), intent(inout) :: o
        integer, intent(out), optional :: ierr
        integer(c_int) :: rc
        rc = c_afmt_opts_free(o%p)
        o%p = c_null_ptr
        call finish(c_null_ptr, rc, ierr)
    end subroutine afmt_opts_free

    ! ==== array options (INDEPENDENT; local to the caller), for afmt_define_with =======

    !> INDEPENDENT. Creates array options with nothing set: what is not set comes from the
    !> handle's options (afmt_opts_set_codec, afmt_opts_set_shuffle). Errors: ENOMEM.
    subroutine afmt_array_opts_create(ao, ierr)
        type(afmt_array_opts), intent(out) :: ao
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_array_opts_create(ao%p), ierr)
    end subroutine afmt_array_opts_create

    !> INDEPENDENT. Lossless codec and level of the array, as afmt_opts_set_codec
    !> (AFMT_CODEC_NONE, _LZ4, _ZSTD or a user codec id; ZFP is set with
    !> afmt_array_opts_set_zfp). Clears a ZFP setting. Errors: EINVAL (level out of range,
    !> AFMT_CODEC_ZFP), ECODEC (unknown codec).
    subroutine afmt_array_opts_set_codec(ao, codec, level, ierr)
        type(afmt_array_opts), intent(in) :: ao
        integer, intent(in) :: codec
        integer, intent(in), optional :: level
        integer, intent(out), optional :: ierr
        integer(c_int) :: lv
        lv = 0
        if (present(level)) lv = int(level, c_int)
        call finish(c_null_ptr, c_afmt_array_opts_set_codec(ao%p, int(codec, c_int), lv), ierr)
    end subroutine afmt_array_opts_set_codec

    !> INDEPENDENT. Byte shuffle of the array's chunks. Ignored by ZFP.
    subroutine afmt_array_opts_set_shuffle(ao, on, ierr)
        type(afmt_array_opts), intent(in) :: ao
        logical, intent(in) :: on
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_array_opts_set_shuffle(ao%p, merge(1_c_int, 0_c_int, on)), &
                    ierr)
    end subroutine afmt_array_opts_set_shuffle

    !> INDEPENDENT. ZFP for the array (lossy modes: AFMT_FLOAT32 or AFMT_FLOAT64 only):
    !> mode AFMT_ZFP_ACCURACY (param: the absolute error bound, > 0), AFMT_ZFP_PRECISION
    !> (param: bit planes kept, 1..64), AFMT_ZFP_RATE (param: bits per value, > 0) or
    !> AFMT_ZFP_REVERSIBLE (lossless; param ignored, may be absent). Each chunk is one ZFP
    !> field of its own dimensions. Errors: EINVAL (unknown mode, parameter out of range),
    !> ECODEC (libafmt built without ZFP).
    subroutine afmt_array_opts_set_zfp(ao, mode, param, ierr)
        type(afmt_array_opts), intent(in) :: ao
        integer, intent(in) :: mode
        real(real64), intent(in), optional :: param
        integer, intent(out), optional :: ierr
        real(c_double) :: p
        p = 0
        if (present(param)) p = real(param, c_double)
        call finish(c_null_ptr, c_afmt_array_opts_set_zfp(ao%p, int(mode, c_int), p), ierr)
    end subroutine afmt_array_opts_set_zfp

    !> INDEPENDENT. Bit rounding (BitRound): each AFMT_FLOAT32 / AFMT_FLOAT64 value keeps its
    !> keepbits most significant mantissa bits (round to nearest, ties to even) before
    !> shuffle and the lossless codec: relative error at most 2**-(keepbits+1). 0 turns it
    !> off. Errors: EINVAL (keepbits < 0 or > 52; with ZFP, another dtype, or more than 23
    !> bits for AFMT_FLOAT32: at afmt_define_with).
    subroutine afmt_array_opts_set_bitround(ao, keepbits, ierr)
        type(afmt_array_opts), intent(in) :: ao
        integer, intent(in) :: keepbits
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_array_opts_set_bitround(ao%p, int(keepbits, c_int)), ierr)
    end subroutine afmt_array_opts_set_bitround

    !> INDEPENDENT. Frees ao (one never created is fine) and resets it.
    subroutine afmt_array_opts_free(ao, ierr)
        type(afmt_array_opts), intent(inout) :: ao
        integer, intent(out), optional :: ierr
        integer(c_int) :: rc
        rc = c_afmt_array_opts_free(ao%p)
        ao%p = c_null_ptr
        call finish(c_null_ptr, rc, ierr)
    end subroutine afmt_array_opts_free

    ! ==== files =========================================================================

    !> COLLECTIVE. Creates path (AFMT_EEXIST if it exists, unless flags has AFMT_TRUNC)
    !> and writes an empty file (superblock, no layer). opts may be absent (defaults); it
    !> is copied. On failure f is not open and afmt_errmsg() tells why. Like every
    !> writable handle it takes the writer lock "<path>.lock" until afmt_close: AFMT_EBUSY,
    !> naming the holder, if a live writer holds it.
    subroutine afmt_create(comm, path, flags, f, opts, ierr)
        integer, intent(in) :: comm, flags
        character(len=*), intent(in) :: path
        type(afmt_file), intent(out) :: f
        type(afmt_opts), intent(in), optional :: opts
        integer, intent(out), optional :: ierr
        type(c_ptr) :: op
        op = c_null_ptr
        if (present(opts)) op = opts%p
        call finish(c_null_ptr, c_afmt_f_create(int(comm, c_int), cstr(path), &
                                                int(flags, c_int), op, f%p), ierr)
    end subroutine afmt_create

    !> COLLECTIVE. Opens an existing file; mode is AFMT_RDONLY or AFMT_RDWR. comm may
    !> have any size, unrelated to the writers'. AFMT_RDWR takes the writer lock
    !> "<path>.lock" until afmt_close; AFMT_RDONLY takes none. On failure f is not open
    !> and afmt_errmsg() tells why. Errors: ENOTFOUND, ECORRUPT, EVERSION, EIO, EINVAL,
    !> EBUSY.
    subroutine afmt_open(comm, path, mode, f, opts, ierr)
        integer, intent(in) :: comm, mode
        character(len=*), intent(in) :: path
        type(afmt_file), intent(out) :: f
        type(afmt_opts), intent(in), optional :: opts
        integer, intent(out), optional :: ierr
        type(c_ptr) :: op
        op = c_null_ptr
        if (present(opts)) op = opts%p
        call finish(c_null_ptr, c_afmt_f_open(int(comm, c_int), cstr(path), int(mode, c_int), &
                                              op, f%p), ierr)
    end subroutine afmt_open

    !> COLLECTIVE. Opens the file read-only as it was right after the commit of layer id
    !> layer (afmt_layer_id lists the ids): newer layers are ignored. Errors as
    !> afmt_open, plus AFMT_ERANGE if no layer of that id is in the file's chain.
    subroutine afmt_open_layer(comm, path, layer, f, opts, ierr)
        integer, intent(in) :: comm
        character(len=*), intent(in) :: path
        integer(int64), intent(in) :: layer
        type(afmt_file), intent(out) :: f
        type(afmt_opts), intent(in), optional :: opts
        integer, intent(out), optional :: ierr
        type(c_ptr) :: op
        op = c_null_ptr
        if (present(opts)) op = opts%p
        call finish(c_null_ptr, c_afmt_f_open_layer(int(comm, c_int), cstr(path), layer, op, &
                                                    f%p), ierr)
    end subroutine afmt_open_layer

    !> COLLECTIVE. Makes layer id layer the newest, crash-safe like a commit; the later
    !> layers become dead space and the next commit goes on from it with a fresh id.
    !> Errors: EREADONLY, ESTATE (uncommitted changes on some rank), ERANGE.
    subroutine afmt_rollback(f, layer, ierr)
        type(afmt_file), intent(in) :: f
        integer(int64), intent(in) :: layer
        integer, intent(out), optional :: ierr
        call finish(f%p, c_afmt_rollback(f%p, layer), ierr)
    end subroutine afmt_rollback

    !> COLLECTIVE. Commits pending writes first (if any, and the file is writable), then
    !> frees f, also when that commit fails (its code is returned; its message is in
    !> afmt_errmsg(), as f is gone). f is not open afterwards.
    subroutine afmt_close(f, ierr)
        type(afmt_file), intent(inout) :: f
        integer, intent(out), optional :: ierr
        integer(c_int) :: rc
        rc = c_afmt_close(f%p)
        f%p = c_null_ptr
        call finish(c_null_ptr, rc, ierr)
    end subroutine afmt_close

    !> INDEPENDENT. Whether f is an open handle (not in the C API: a Fortran handle
    !> cannot be compared with NULL).
    logical function afmt_is_open(f)
        type(afmt_file), intent(in) :: f
        afmt_is_open = c_associated(f%p)
    end function afmt_is_open

    ! ==== arrays ========================================================================

    !> COLLECTIVE. Defines an array of dtype (AFMT_INT8 ... AFMT_FLOAT64, AFMT_BOOL) and
    !> shape(1:ndim) in Fortran order (size(shape) = 0: a scalar). chunk absent = the rule of
    !> the C afmt_define (one chunk up to 4 MiB, else chunks of 1-2 MiB made of whole leading
    !> dimensions, the fastest in Fortran order); dims absent = "dim0".."dimN-1" (C
    !> numbering); fill absent = zero, else one value of the kind that fits dtype (int32
    !> for AFMT_INT32 / AFMT_UINT32, ...). The array is visible at once and durable at the
    !> next commit. Errors: EEXIST (name live), EINVAL (name, dtype, ndim, shape 0, chunk 0
    !> or > shape, dimension names, fill of the wrong kind), EREADONLY.
    subroutine afmt_define(f, name, dtype, shape, chunk, dims, fill, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer, intent(in) :: dtype
        integer(int64), intent(in) :: shape(:)
        integer(int64), intent(in), optional :: chunk(:)
        character(len=*), intent(in), optional :: dims(:)
        class(*), intent(in), optional :: fill
        integer, intent(out), optional :: ierr
        call define_any('afmt_define', f, name, dtype, shape, c_null_ptr, chunk, dims, fill, ierr)
    end subroutine afmt_define

    !> COLLECTIVE. afmt_define with the array's own compression ao (afmt_array_opts_*),
    !> recorded in the file: every later writer, on any rank count, and compaction use it;
    !> readers need nothing (afmt_inquire_codec shows it). Every rank must pass the same
    !> setting. ao comes right after shape; chunk, dims, fill as afmt_define. Errors: those
    !> of afmt_define, EINVAL (a lossy setting on an integer array, bit rounding beyond the
    !> dtype's mantissa or with ZFP), ECODEC (ZFP in a libafmt built without it).
    subroutine afmt_define_with(f, name, dtype, shape, ao, chunk, dims, fill, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer, intent(in) :: dtype
        integer(int64), intent(in) :: shape(:)
        type(afmt_array_opts), intent(in) :: ao
        integer(int64), intent(in), optional :: chunk(:)
        character(len=*), intent(in), optional :: dims(:)
        class(*), intent(in), optional :: fill
        integer, intent(out), optional :: ierr
        call define_any('afmt_define_with', f, name, dtype, shape, ao%p, chunk, dims, fill, ierr)
    end subroutine afmt_define_with

    ! afmt_define (ao NULL) and afmt_define_with: the arguments in C order. fn names the
    ! caller in messages.
    subroutine define_any(fn, f, name, dtype, shape, ao, chunk, dims, fill, ierr)
        character(len=*), intent(in) :: fn
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer, intent(in) :: dtype
        integer(int64), intent(in) :: shape(:)
        type(c_ptr), intent(in) :: ao
        integer(int64), intent(in), optional :: chunk(:)
        character(len=*), intent(in), optional :: dims(:)
        class(*), intent(in), optional :: fill
        integer, intent(out), optional :: ierr
        integer(c_int64_t), target :: cshape(AFMT_MAX_NDIM), cchunk(AFMT_MAX_NDIM)
        character(kind=c_char), allocatable, target :: dbuf(:, :)
        type(c_ptr), target :: dptr(AFMT_MAX_NDIM)
        type(c_ptr) :: pshape, pchunk, pdims, pfill
        real(real32), target :: f4
        real(real64), target :: f8
        integer(int8), target :: i1
        integer(int16), target :: i2
        integer(int32), target :: i4
        integer(int64), target :: i8
        integer :: nd, d, k, kc, l

        nd = size(shape)
        if (nd > AFMT_MAX_NDIM) then
            call fail(f%p, AFMT_EINVAL, fn//': array "'//trim(name)//'": ndim '// &
                      itoa(int(nd, int64))//' > AFMT_MAX_NDIM', ierr)
            return
        end if
        do d = 1, nd
            cshape(nd + 1 - d) = shape(d)
        end do
        pchunk = c_null_ptr
        if (present(chunk)) then
            if (size(chunk) /= nd) then
                call fail(f%p, AFMT_EINVAL, fn//': array "'//trim(name)// &
                          '": size(chunk) /= size(shape)', ierr)
                return
            end if
            do d = 1, nd
                cchunk(nd + 1 - d) = chunk(d)
            end do
            pchunk = c_loc(cchunk)
        end if
        pdims = c_null_ptr
        if (present(dims)) then
            if (size(dims) /= nd) then
                call fail(f%p, AFMT_EINVAL, fn//': array "'//trim(name)// &
                          '": size(dims) /= size(shape)', ierr)
                return
            end if
            allocate (dbuf(len(dims) + 1, max(nd, 1)))
            do d = 1, nd
                l = len_trim(dims(d))
                do k = 1, l
                    dbuf(k, d) = dims(d) (k:k)
                end do
                dbuf(l + 1, d) = c_null_char
                dptr(nd + 1 - d) = c_loc(dbuf(1, d))
            end do
            pdims = c_loc(dptr)
        end if
        pfill = c_null_ptr
        if (present(fill)) then
            select type (fill)
            type is (real(real32))
                f4 = fill
                pfill = c_loc(f4)
                kc = KC_R4
            type is (real(real64))
                f8 = fill
                pfill = c_loc(f8)
                kc = KC_R8
            type is (integer(int8))
                i1 = fill
                pfill = c_loc(i1)
                kc = KC_I1
            type is (integer(int16))
                i2 = fill
                pfill = c_loc(i2)
                kc = KC_I2
            type is (integer(int32))
                i4 = fill
                pfill = c_loc(i4)
                kc = KC_I4
            type is (integer(int64))
                i8 = fill
                pfill = c_loc(i8)
                kc = KC_I8
            class default
                kc = 0
            end select
            if (kc == 0) then
                call fail(f%p, AFMT_EINVAL, fn//': array "'//trim(name)// &
                          '": fill must be real(real32/real64) or integer(int8..int64)', ierr)
                return
            end if
            if (.not. kind_fits(dtype, kc)) then
                call fail(f%p, AFMT_EINVAL, fn//': array "'//trim(name)// &
                          '": a '//trim(kind_name(kc))//' fill does not fit dtype '// &
                          itoa(int(dtype, int64)), ierr)
                return
            end if
        end if
        pshape = c_null_ptr
        if (nd > 0) pshape = c_loc(cshape)
        if (c_associated(ao)) then
            call finish(f%p, c_afmt_define_with(f%p, cstr(name), int(dtype, c_int), &
                                                int(nd, c_int), pshape, pchunk, pdims, pfill, &
                                                ao), ierr)
        else
            call finish(f%p, c_afmt_define(f%p, cstr(name), int(dtype, c_int), int(nd, c_int), &
                                           pshape, pchunk, pdims, pfill), ierr)
        end if
    end subroutine define_any

    !> COLLECTIVE. Makes everything staged on every rank durable as one new layer,
    !> atomically. Every rank returns the same code. Nothing staged: no layer, AFMT_OK.
    !> On failure the file is as after the previous commit and the staged changes are kept.
    subroutine afmt_commit(f, ierr)
        type(afmt_file), intent(in) :: f
        integer, intent(out), optional :: ierr
        call finish(f%p, c_afmt_commit(f%p), ierr)
    end subroutine afmt_commit

    !> COLLECTIVE. Starts a commit and returns as soon as the program may go on: the part
    !> that needs every rank runs here, this rank's writes and sync on a helper thread of
    !> the library (no MPI calls: any MPI thread level). The layer exists once
    !> afmt_commit_wait, or the next collective call on f (afmt_close included), has
    !> finished it; until then afmt_write stages into the next layer and afmt_read sees the
    !> commit in flight plus the writes since. A failure here is afmt_commit's. Nothing
    !> staged: AFMT_OK, nothing starts.
    subroutine afmt_commit_start(f, ierr)
        type(afmt_file), intent(in) :: f
        integer, intent(out), optional :: ierr
        call finish(f%p, c_afmt_commit_start(f%p), ierr)
    end subroutine afmt_commit_start

    !> COLLECTIVE. Waits for the commit afmt_commit_start started and makes it durable
    !> (none in flight: AFMT_OK at once). Every rank returns the same code; after a failure
    !> in the background the file is as the previous commit left it and f has dropped that
    !> commit's changes and the writes staged since it started (write them again).
    subroutine afmt_commit_wait(f, ierr)
        type(afmt_file), intent(in) :: f
        integer, intent(out), optional :: ierr
        call finish(f%p, c_afmt_commit_wait(f%p), ierr)
    end subroutine afmt_commit_wait

    !> COLLECTIVE. Drops everything staged since the last commit on every rank (writes,
    !> defines, deletes, attributes): the handle reads as the last commit again. EREADONLY.
    subroutine afmt_discard(f, ierr)
        type(afmt_file), intent(in) :: f
        integer, intent(out), optional :: ierr
        call finish(f%p, c_afmt_discard(f%p), ierr)
    end subroutine afmt_discard

    !> COLLECTIVE. Deletes an array: it disappears at once from this handle, the deletion
    !> is durable at the next commit. Its staged writes are dropped. ENOTFOUND, EREADONLY.
    subroutine afmt_delete(f, name, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer, intent(out), optional :: ierr
        call finish(f%p, c_afmt_delete(f%p, cstr(name)), ierr)
    end subroutine afmt_delete

    !> COLLECTIVE. Commits pending writes, rewrites all live data as one layer into
    !> "<path>.compact" and renames it over path; afterwards afmt_layers is 1.
    subroutine afmt_compact(f, ierr)
        type(afmt_file), intent(in) :: f
        integer, intent(out), optional :: ierr
        call finish(f%p, c_afmt_compact(f%p), ierr)
    end subroutine afmt_compact

    !> COLLECTIVE. Checkpoint retention (afmt_compact_keep): folds every layer but the
    !> newest keep into one base layer and keeps those as they were, with their ids
    !> (afmt_open_layer and afmt_rollback still reach them); keep 0 is afmt_compact.
    subroutine afmt_compact_keep(f, keep, ierr)
        type(afmt_file), intent(in) :: f
        integer(int64), intent(in) :: keep
        integer, intent(out), optional :: ierr
        call finish(f%p, c_afmt_compact_keep(f%p, int(keep, c_int64_t)), ierr)
    end subroutine afmt_compact_keep

    !> INDEPENDENT. Number of live arrays.
    subroutine afmt_count(f, n, ierr)
        type(afmt_file), intent(in) :: f
        integer, intent(out) :: n
        integer, intent(out), optional :: ierr
        integer(c_int) :: cn, rc
        cn = 0
        rc = c_afmt_count(f%p, cn)
        n = int(cn)
        call finish(f%p, rc, ierr)
    end subroutine afmt_count

    !> INDEPENDENT. Live array number index (1-based, in definition order), in Fortran
    !> order. ERANGE.
    subroutine afmt_info_at(f, index, info, ierr)
        type(afmt_file), intent(in) :: f
        integer, intent(in) :: index
        type(afmt_info), intent(out) :: info
        integer, intent(out), optional :: ierr
        type(c_info) :: ci
        integer(c_int) :: rc
        rc = c_afmt_info_at(f%p, int(index - 1, c_int), ci)
        if (rc == AFMT_OK) call to_info(ci, info)
        call finish(f%p, rc, ierr)
    end subroutine afmt_info_at

    !> INDEPENDENT. Descriptor of a live array, in Fortran order; ENOTFOUND if absent.
    subroutine afmt_inquire(f, name, info, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        type(afmt_info), intent(out) :: info
        integer, intent(out), optional :: ierr
        type(c_info) :: ci
        integer(c_int) :: rc
        rc = c_afmt_inquire(f%p, cstr(name), ci)
        if (rc == AFMT_OK) call to_info(ci, info)
        call finish(f%p, rc, ierr)
    end subroutine afmt_inquire

    !> INDEPENDENT. The compression of a live array as the file records it: codec
    !> (AFMT_CODEC_UNSET for an array defined with afmt_define: the writer's default, each
    !> block says), level, shuffle, zfp_mode and zfp_param, bitround, and the error bounds
    !> (abs_bound for ZFP accuracy, rel_bound for bit rounding; 0 where there is none).
    !> Errors: ENOTFOUND, ECORRUPT (the record's parameters are damaged).
    subroutine afmt_inquire_codec(f, name, codec, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        type(afmt_array_codec), intent(out) :: codec
        integer, intent(out), optional :: ierr
        type(c_array_codec) :: cc
        integer(c_int) :: rc
        rc = c_afmt_inquire_codec(f%p, cstr(name), cc)
        if (rc == AFMT_OK) then
            codec%codec = int(cc%codec)
            codec%level = int(cc%level)
            codec%shuffle = cc%shuffle /= 0
            codec%zfp_mode = int(cc%zfp_mode)
            codec%zfp_param = real(cc%zfp_param, real64)
            codec%bitround = int(cc%bitround)
            codec%abs_bound = real(cc%abs_bound, real64)
            codec%rel_bound = real(cc%rel_bound, real64)
        end if
        call finish(f%p, rc, ierr)
    end subroutine afmt_inquire_codec

    !> INDEPENDENT. Number of committed layers (layers visible to this handle).
    subroutine afmt_layers(f, n, ierr)
        type(afmt_file), intent(in) :: f
        integer(int64), intent(out) :: n
        integer, intent(out), optional :: ierr
        integer(c_int) :: rc
        n = 0
        rc = c_afmt_layers(f%p, n)
        call finish(f%p, rc, ierr)
    end subroutine afmt_layers

    !> INDEPENDENT. The id of committed layer number index (1 = oldest, afmt_layers =
    !> newest) and its commit time in Unix nanoseconds. ERANGE.
    subroutine afmt_layer_id(f, index, id, time_ns, ierr)
        type(afmt_file), intent(in) :: f
        integer(int64), intent(in) :: index
        integer(int64), intent(out), optional :: id, time_ns
        integer, intent(out), optional :: ierr
        integer(c_int64_t) :: cid, ct
        integer(c_int) :: rc
        cid = 0
        ct = 0
        rc = c_afmt_layer_id(f%p, index - 1, cid, ct)
        if (present(id)) id = cid
        if (present(time_ns)) time_ns = ct
        call finish(f%p, rc, ierr)
    end subroutine afmt_layer_id

    ! ==== checkpoint on a signal ========================================================

    !> INDEPENDENT, process-wide. Installs a handler for signum (e.g. SIGUSR1 = 10 on
    !> Linux) that only sets a flag, and clears the flag. EINVAL (SIGKILL, SIGSTOP, bad).
    subroutine afmt_signal_arm(signum, ierr)
        integer, intent(in) :: signum
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_signal_arm(int(signum, c_int)), ierr)
    end subroutine afmt_signal_arm

    !> COLLECTIVE over comm. pending = .true. on every rank if the armed signal reached
    !> ANY rank (a logical OR). The flag stays set; afmt_signal_clear resets it.
    !> Errors: EINVAL, EMPI.
    subroutine afmt_signal_pending(comm, pending, ierr)
        integer, intent(in) :: comm
        logical, intent(out) :: pending
        integer, intent(out), optional :: ierr
        integer(c_int) :: p, rc
        p = 0
        rc = c_afmt_f_signal_pending(int(comm, c_int), p)
        pending = p /= 0
        call finish(c_null_ptr, rc, ierr)
    end subroutine afmt_signal_pending

    !> INDEPENDENT. Resets this process's flag.
    subroutine afmt_signal_clear(ierr)
        integer, intent(out), optional :: ierr
        call finish(c_null_ptr, c_afmt_signal_clear(), ierr)
    end subroutine afmt_signal_clear

    ! ==== codecs ========================================================================

    !> INDEPENDENT, process-wide. Registers a user codec (id >= 256, stable on disk) made
    !> of bind(c) functions with the interfaces afmt_codec_bound_fn, afmt_codec_compress_fn
    !> and afmt_codec_decompress_fn, so that files may be written with
    !> afmt_opts_set_codec(o, id, level) and read. Errors: EINVAL (id < 256, empty name),
    !> EEXIST (id taken), ENOMEM (also: 64 codecs registered already).
    subroutine afmt_codec_register(id, name, bound, compress, decompress, ierr)
        integer, intent(in) :: id
        character(len=*), intent(in) :: name
        procedure(afmt_codec_bound_fn) :: bound
        procedure(afmt_codec_compress_fn) :: compress
        procedure(afmt_codec_decompress_fn) :: decompress
        integer, intent(out), optional :: ierr
        type(c_codec_desc) :: d
        character(kind=c_char), allocatable, target :: nbuf(:)
        if (id < 0) then
            call fail(c_null_ptr, AFMT_EINVAL, 'afmt_codec_register: id '// &
                      itoa(int(id, int64))//' < 0', ierr)
            return
        end if
        d%version = 1_c_int32_t ! the layout of c_codec_desc
        d%id = int(id, c_int32_t)
        d%name = opt_cstr(name, nbuf) ! the C side copies the name
        d%bound = c_funloc(bound)
        d%compress = c_funloc(compress)
        d%decompress = c_funloc(decompress)
        call finish(c_null_ptr, c_afmt_codec_register(d), ierr)
    end subroutine afmt_codec_register

    ! ==== messages ======================================================================

    !> INDEPENDENT. A fixed text for an error code.
    function afmt_strerror(code) result(s)
        integer, intent(in) :: code
        character(len=:), allocatable :: s
        s = fstr(c_afmt_strerror(int(code, c_int)))
    end function afmt_strerror

    !> INDEPENDENT. The name of an error code, "AFMT_ECORRUPT"; "unknown" for no code.
    function afmt_err_name(code) result(s)
        integer, intent(in) :: code
        character(len=:), allocatable :: s
        s = fstr(c_afmt_err_name(int(code, c_int)))
    end function afmt_err_name

    !> INDEPENDENT. The detailed message of the last failure on f, or (f absent or not
    !> open) of this thread: after afmt_create, afmt_open, afmt_open_layer, afmt_close,
    !> options and afmt_codec_register.
    function afmt_errmsg(f) result(s)
        type(afmt_file), intent(in), optional :: f
        character(len=:), allocatable :: s
        type(c_ptr) :: h
        h = c_null_ptr
        if (present(f)) h = f%p
        if (wset) then
            if (same_handle(h, whandle)) then
                s = wmsg
                return
            end if
        end if
        s = fstr(c_afmt_errmsg(h))
    end function afmt_errmsg

    !> INDEPENDENT. The library's version, "MAJOR.MINOR.PATCH".
    function afmt_version() result(s)
        character(len=:), allocatable :: s
        s = fstr(c_afmt_version())
    end function afmt_version

    !> INDEPENDENT. The library's version as MAJOR * 10000 + MINOR * 100 + PATCH: C's
    !> afmt_version_number, renamed as Fortran names ignore case and AFMT_VERSION_NUMBER
    !> (the module's, to compare with) takes the name.
    function afmt_lib_version_number() result(n)
        integer :: n
        n = int(c_afmt_version_number())
    end function afmt_lib_version_number

    ! ==== the generic specifics, one per kind ==========================================

    !> INDEPENDENT. afmt_write of a real(real32) buffer.
    subroutine afmt_write_r4(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        real(real32), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call write_any(f, name, KC_R4, shape(buf, kind=int64), size(buf, kind=int64), p, &
                       start, count, ierr)
    end subroutine afmt_write_r4

    !> INDEPENDENT. afmt_write of a real(real64) buffer.
    subroutine afmt_write_r8(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        real(real64), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call write_any(f, name, KC_R8, shape(buf, kind=int64), size(buf, kind=int64), p, &
                       start, count, ierr)
    end subroutine afmt_write_r8

    !> INDEPENDENT. afmt_write of a integer(int8) buffer.
    subroutine afmt_write_i1(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int8), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call write_any(f, name, KC_I1, shape(buf, kind=int64), size(buf, kind=int64), p, &
                       start, count, ierr)
    end subroutine afmt_write_i1

    !> INDEPENDENT. afmt_write of a integer(int16) buffer.
    subroutine afmt_write_i2(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int16), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call write_any(f, name, KC_I2, shape(buf, kind=int64), size(buf, kind=int64), p, &
                       start, count, ierr)
    end subroutine afmt_write_i2

    !> INDEPENDENT. afmt_write of a integer(int32) buffer.
    subroutine afmt_write_i4(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int32), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call write_any(f, name, KC_I4, shape(buf, kind=int64), size(buf, kind=int64), p, &
                       start, count, ierr)
    end subroutine afmt_write_i4

    !> INDEPENDENT. afmt_write of a integer(int64) buffer.
    subroutine afmt_write_i8(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int64), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call write_any(f, name, KC_I8, shape(buf, kind=int64), size(buf, kind=int64), p, &
                       start, count, ierr)
    end subroutine afmt_write_i8

    !> INDEPENDENT. afmt_read into a real(real32) buffer.
    subroutine afmt_read_r4(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        real(real32), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_any(f, name, KC_R4, shape(buf, kind=int64), size(buf, kind=int64), p, &
                      start, count, ierr)
    end subroutine afmt_read_r4

    !> INDEPENDENT. afmt_read into a real(real64) buffer.
    subroutine afmt_read_r8(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        real(real64), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_any(f, name, KC_R8, shape(buf, kind=int64), size(buf, kind=int64), p, &
                      start, count, ierr)
    end subroutine afmt_read_r8

    !> INDEPENDENT. afmt_read into a integer(int8) buffer.
    subroutine afmt_read_i1(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int8), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_any(f, name, KC_I1, shape(buf, kind=int64), size(buf, kind=int64), p, &
                      start, count, ierr)
    end subroutine afmt_read_i1

    !> INDEPENDENT. afmt_read into a integer(int16) buffer.
    subroutine afmt_read_i2(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int16), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_any(f, name, KC_I2, shape(buf, kind=int64), size(buf, kind=int64), p, &
                      start, count, ierr)
    end subroutine afmt_read_i2

    !> INDEPENDENT. afmt_read into a integer(int32) buffer.
    subroutine afmt_read_i4(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int32), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_any(f, name, KC_I4, shape(buf, kind=int64), size(buf, kind=int64), p, &
                      start, count, ierr)
    end subroutine afmt_read_i4

    !> INDEPENDENT. afmt_read into a integer(int64) buffer.
    subroutine afmt_read_i8(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int64), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_any(f, name, KC_I8, shape(buf, kind=int64), size(buf, kind=int64), p, &
                      start, count, ierr)
    end subroutine afmt_read_i8

    !> INDEPENDENT. afmt_write_box from a real(real32) buffer.
    subroutine afmt_write_box_r4(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        real(real32), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_write_box', KC_R4, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_write_box_r4

    !> INDEPENDENT. afmt_write_box from a real(real64) buffer.
    subroutine afmt_write_box_r8(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        real(real64), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_write_box', KC_R8, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_write_box_r8

    !> INDEPENDENT. afmt_write_box from a integer(int8) buffer.
    subroutine afmt_write_box_i1(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int8), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_write_box', KC_I1, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_write_box_i1

    !> INDEPENDENT. afmt_write_box from a integer(int16) buffer.
    subroutine afmt_write_box_i2(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int16), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_write_box', KC_I2, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_write_box_i2

    !> INDEPENDENT. afmt_write_box from a integer(int32) buffer.
    subroutine afmt_write_box_i4(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int32), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_write_box', KC_I4, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_write_box_i4

    !> INDEPENDENT. afmt_write_box from a integer(int64) buffer.
    subroutine afmt_write_box_i8(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int64), dimension(..), intent(in), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_write_box', KC_I8, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_write_box_i8

    !> INDEPENDENT. afmt_read_box into a real(real32) buffer.
    subroutine afmt_read_box_r4(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        real(real32), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_read_box', KC_R4, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_read_box_r4

    !> INDEPENDENT. afmt_read_box into a real(real64) buffer.
    subroutine afmt_read_box_r8(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        real(real64), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_read_box', KC_R8, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_read_box_r8

    !> INDEPENDENT. afmt_read_box into a integer(int8) buffer.
    subroutine afmt_read_box_i1(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int8), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_read_box', KC_I1, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_read_box_i1

    !> INDEPENDENT. afmt_read_box into a integer(int16) buffer.
    subroutine afmt_read_box_i2(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int16), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_read_box', KC_I2, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_read_box_i2

    !> INDEPENDENT. afmt_read_box into a integer(int32) buffer.
    subroutine afmt_read_box_i4(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int32), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_read_box', KC_I4, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_read_box_i4

    !> INDEPENDENT. afmt_read_box into a integer(int64) buffer.
    subroutine afmt_read_box_i8(f, name, buf, box_start, count, start, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int64), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in) :: box_start(:), count(:)
        integer(int64), intent(in), optional :: start(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call box_any(f, name, 'afmt_read_box', KC_I8, shape(buf, kind=int64), p, box_start, &
                     count, start, ierr)
    end subroutine afmt_read_box_i8

    !> COLLECTIVE. afmt_read_all into a real(real32) buffer.
    subroutine afmt_read_all_r4(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        real(real32), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_all_any(f, name, KC_R4, shape(buf, kind=int64), size(buf, kind=int64), p, &
                          start, count, ierr)
    end subroutine afmt_read_all_r4

    !> COLLECTIVE. afmt_read_all into a real(real64) buffer.
    subroutine afmt_read_all_r8(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        real(real64), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_all_any(f, name, KC_R8, shape(buf, kind=int64), size(buf, kind=int64), p, &
                          start, count, ierr)
    end subroutine afmt_read_all_r8

    !> COLLECTIVE. afmt_read_all into a integer(int8) buffer.
    subroutine afmt_read_all_i1(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int8), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_all_any(f, name, KC_I1, shape(buf, kind=int64), size(buf, kind=int64), p, &
                          start, count, ierr)
    end subroutine afmt_read_all_i1

    !> COLLECTIVE. afmt_read_all into a integer(int16) buffer.
    subroutine afmt_read_all_i2(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int16), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_all_any(f, name, KC_I2, shape(buf, kind=int64), size(buf, kind=int64), p, &
                          start, count, ierr)
    end subroutine afmt_read_all_i2

    !> COLLECTIVE. afmt_read_all into a integer(int32) buffer.
    subroutine afmt_read_all_i4(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int32), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_all_any(f, name, KC_I4, shape(buf, kind=int64), size(buf, kind=int64), p, &
                          start, count, ierr)
    end subroutine afmt_read_all_i4

    !> COLLECTIVE. afmt_read_all into a integer(int64) buffer.
    subroutine afmt_read_all_i8(f, name, buf, start, count, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: name
        integer(int64), dimension(..), intent(inout), target, contiguous :: buf
        integer(int64), intent(in), optional :: start(:), count(:)
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(buf) > 0) p = c_loc(buf)
        call read_all_any(f, name, KC_I8, shape(buf, kind=int64), size(buf, kind=int64), p, &
                          start, count, ierr)
    end subroutine afmt_read_all_i8

    !> COLLECTIVE. afmt_set_attr of real(real32) values.
    subroutine afmt_set_attr_r4(f, array, key, values, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        real(real32), dimension(..), intent(in), target, contiguous :: values
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call set_attr_any(f, array, key, KC_R4, size(values, kind=int64), p, dtype, ierr)
    end subroutine afmt_set_attr_r4

    !> COLLECTIVE. afmt_set_attr of real(real64) values.
    subroutine afmt_set_attr_r8(f, array, key, values, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        real(real64), dimension(..), intent(in), target, contiguous :: values
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call set_attr_any(f, array, key, KC_R8, size(values, kind=int64), p, dtype, ierr)
    end subroutine afmt_set_attr_r8

    !> COLLECTIVE. afmt_set_attr of integer(int8) values.
    subroutine afmt_set_attr_i1(f, array, key, values, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        integer(int8), dimension(..), intent(in), target, contiguous :: values
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call set_attr_any(f, array, key, KC_I1, size(values, kind=int64), p, dtype, ierr)
    end subroutine afmt_set_attr_i1

    !> COLLECTIVE. afmt_set_attr of integer(int16) values.
    subroutine afmt_set_attr_i2(f, array, key, values, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        integer(int16), dimension(..), intent(in), target, contiguous :: values
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call set_attr_any(f, array, key, KC_I2, size(values, kind=int64), p, dtype, ierr)
    end subroutine afmt_set_attr_i2

    !> COLLECTIVE. afmt_set_attr of integer(int32) values.
    subroutine afmt_set_attr_i4(f, array, key, values, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        integer(int32), dimension(..), intent(in), target, contiguous :: values
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call set_attr_any(f, array, key, KC_I4, size(values, kind=int64), p, dtype, ierr)
    end subroutine afmt_set_attr_i4

    !> COLLECTIVE. afmt_set_attr of integer(int64) values.
    subroutine afmt_set_attr_i8(f, array, key, values, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        integer(int64), dimension(..), intent(in), target, contiguous :: values
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call set_attr_any(f, array, key, KC_I8, size(values, kind=int64), p, dtype, ierr)
    end subroutine afmt_set_attr_i8

    !> COLLECTIVE. afmt_set_attr of a string (AFMT_UINT8 bytes; trailing blanks dropped).
    subroutine afmt_set_attr_str(f, array, key, value, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key, value
        integer, intent(out), optional :: ierr
        character(kind=c_char), allocatable, target :: buf(:)
        integer :: i, n
        n = len_trim(value)
        allocate (buf(max(1, n)))
        do i = 1, n
            buf(i) = value(i:i)
        end do
        call set_attr_any(f, array, key, KC_I1, int(n, int64), c_loc(buf), AFMT_UINT8, ierr)
    end subroutine afmt_set_attr_str

    !> INDEPENDENT. afmt_get_attr into real(real32) values.
    subroutine afmt_get_attr_r4(f, array, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        real(real32), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .false., 0_int64, array, key, KC_R4, size(values, kind=int64), p, &
                          n, dtype, ierr)
    end subroutine afmt_get_attr_r4

    !> INDEPENDENT. afmt_get_attr into real(real64) values.
    subroutine afmt_get_attr_r8(f, array, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        real(real64), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .false., 0_int64, array, key, KC_R8, size(values, kind=int64), p, &
                          n, dtype, ierr)
    end subroutine afmt_get_attr_r8

    !> INDEPENDENT. afmt_get_attr into integer(int8) values.
    subroutine afmt_get_attr_i1(f, array, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        integer(int8), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .false., 0_int64, array, key, KC_I1, size(values, kind=int64), p, &
                          n, dtype, ierr)
    end subroutine afmt_get_attr_i1

    !> INDEPENDENT. afmt_get_attr into integer(int16) values.
    subroutine afmt_get_attr_i2(f, array, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        integer(int16), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .false., 0_int64, array, key, KC_I2, size(values, kind=int64), p, &
                          n, dtype, ierr)
    end subroutine afmt_get_attr_i2

    !> INDEPENDENT. afmt_get_attr into integer(int32) values.
    subroutine afmt_get_attr_i4(f, array, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        integer(int32), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .false., 0_int64, array, key, KC_I4, size(values, kind=int64), p, &
                          n, dtype, ierr)
    end subroutine afmt_get_attr_i4

    !> INDEPENDENT. afmt_get_attr into integer(int64) values.
    subroutine afmt_get_attr_i8(f, array, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        integer(int64), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .false., 0_int64, array, key, KC_I8, size(values, kind=int64), p, &
                          n, dtype, ierr)
    end subroutine afmt_get_attr_i8

    !> INDEPENDENT. afmt_get_attr of a string, blank-padded to len(value); n = its length.
    subroutine afmt_get_attr_str(f, array, key, value, n, ierr)
        type(afmt_file), intent(in) :: f
        character(len=*), intent(in) :: array, key
        character(len=*), intent(out) :: value
        integer(int64), intent(out), optional :: n
        integer, intent(out), optional :: ierr
        call get_attr_str_any(f, .false., 0_int64, array, key, value, n, ierr)
    end subroutine afmt_get_attr_str

    !> INDEPENDENT. afmt_layer_attr into real(real32) values.
    subroutine afmt_layer_attr_r4(f, index, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        integer(int64), intent(in) :: index
        character(len=*), intent(in) :: key
        real(real32), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .true., index, '', key, KC_R4, size(values, kind=int64), p, n, &
                          dtype, ierr)
    end subroutine afmt_layer_attr_r4

    !> INDEPENDENT. afmt_layer_attr into real(real64) values.
    subroutine afmt_layer_attr_r8(f, index, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        integer(int64), intent(in) :: index
        character(len=*), intent(in) :: key
        real(real64), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .true., index, '', key, KC_R8, size(values, kind=int64), p, n, &
                          dtype, ierr)
    end subroutine afmt_layer_attr_r8

    !> INDEPENDENT. afmt_layer_attr into integer(int8) values.
    subroutine afmt_layer_attr_i1(f, index, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        integer(int64), intent(in) :: index
        character(len=*), intent(in) :: key
        integer(int8), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .true., index, '', key, KC_I1, size(values, kind=int64), p, n, &
                          dtype, ierr)
    end subroutine afmt_layer_attr_i1

    !> INDEPENDENT. afmt_layer_attr into integer(int16) values.
    subroutine afmt_layer_attr_i2(f, index, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        integer(int64), intent(in) :: index
        character(len=*), intent(in) :: key
        integer(int16), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .true., index, '', key, KC_I2, size(values, kind=int64), p, n, &
                          dtype, ierr)
    end subroutine afmt_layer_attr_i2

    !> INDEPENDENT. afmt_layer_attr into integer(int32) values.
    subroutine afmt_layer_attr_i4(f, index, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        integer(int64), intent(in) :: index
        character(len=*), intent(in) :: key
        integer(int32), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .true., index, '', key, KC_I4, size(values, kind=int64), p, n, &
                          dtype, ierr)
    end subroutine afmt_layer_attr_i4

    !> INDEPENDENT. afmt_layer_attr into integer(int64) values.
    subroutine afmt_layer_attr_i8(f, index, key, values, n, dtype, ierr)
        type(afmt_file), intent(in) :: f
        integer(int64), intent(in) :: index
        character(len=*), intent(in) :: key
        integer(int64), dimension(..), intent(inout), target, contiguous :: values
        integer(int64), intent(out), optional :: n
        integer, intent(in), optional :: dtype
        integer, intent(out), optional :: ierr
        type(c_ptr) :: p
        p = c_null_ptr
        if (size(values) > 0) p = c_loc(values)
        call get_attr_any(f, .true., index, '', key, KC_I8, size(values, kind=int64), p, n, &
                          dtype, ierr)
    end subroutine afmt_layer_attr_i8

    !> INDEPENDENT. afmt_layer_attr of a string, blank-padded to len(value).
    subroutine afmt_layer_attr_str(f, index, key, value, n, ierr)
        type(afmt_file), intent(in) :: f
        integer(int64), intent(in) :: index
        character(len=*), intent(in) :: key
        character(len=*), intent(out) :: value
        integer(int64), intent(out), optional :: n
        integer, intent(out), optional :: ierr
        call get_attr_str_any(f, .true., index, '', key, value, n, ierr)
    end subroutine afmt_layer_attr_str

end module afmt
