! f_api.f90 - the module's routines that fortran.interop.* does not reach (fortran.api):
! layers and time travel (afmt_open_layer, afmt_rollback), afmt_discard, afmt_delete,
! afmt_compact, asynchronous commits (afmt_commit_start, afmt_commit_wait), the signal
! flag, a user codec written in Fortran (bind(c) callbacks), and per-array compression
! (afmt_array_opts_*, afmt_define_with: ZFP and bit rounding; afmt_inquire_codec), and
! retention as an option (afmt_opts_set_retention).
! Run on 2 ranks: mpiexec -n 2 f_api DIR. Exit status 0 if every check holds.
module f_api_codec
    use, intrinsic :: iso_c_binding
    implicit none
    integer, save :: ncompress = 0
contains
    ! A codec that stores the bytes reversed: any mistake in the callbacks' plumbing
    ! (arguments, lengths) garbles the data read back.
    function rev_bound(src_len) result(r) bind(c)
        integer(c_size_t), value :: src_len
        integer(c_size_t) :: r
        r = src_len
    end function rev_bound
    function rev_compress(src, src_len, dst, dst_cap, dst_len, level) result(r) bind(c)
        type(c_ptr), value :: src, dst
        integer(c_size_t), value :: src_len, dst_cap
        integer(c_size_t), intent(out) :: dst_len
        integer(c_int), value :: level
        integer(c_int) :: r
        integer(c_signed_char), pointer :: s(:), d(:)
        dst_len = 0
        r = 1
        if (dst_cap < src_len .or. level < 0) return
        call c_f_pointer(src, s, [src_len])
        call c_f_pointer(dst, d, [src_len])
        d = s(src_len:1:-1)
        dst_len = src_len
        ncompress = ncompress + 1
        r = 0
    end function rev_compress
    function rev_decompress(src, src_len, dst, dst_len) result(r) bind(c)
        type(c_ptr), value :: src, dst
        integer(c_size_t), value :: src_len, dst_len
        integer(c_int) :: r
        integer(c_signed_char), pointer :: s(:), d(:)
        r = 1
        if (src_len /= dst_len) return
        call c_f_pointer(src, s, [src_len])
        call c_f_pointer(dst, d, [dst_len])
        d = s(src_len:1:-1)
        r = 0
    end function rev_decompress
end module f_api_codec

program f_api
    use, intrinsic :: iso_fortran_env, only: int32, int64, real32, real64, error_unit
    use mpi
    use afmt
    use f_api_codec
    implicit none
    integer :: rank, nranks, ierr, rc, errors, total, i, k
    character(len=512) :: dir, path
    type(afmt_file) :: f, g
    type(afmt_opts) :: o
    type(afmt_info) :: info
    integer(int32) :: a(64), b(64), c(64)
    integer :: lo, hi
    real(real64) :: wrong(64)
    integer(int64) :: n, id1, id2, id3, id4, step
    logical :: pending
    type(afmt_array_opts) :: ao
    type(afmt_array_codec) :: cc
    real(real64) :: z(30, 20), zb(30, 20)
    real(real32) :: r(30, 20), rb(30, 20)
    integer :: j

    call MPI_Init(ierr)
    call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
    call MPI_Comm_size(MPI_COMM_WORLD, nranks, ierr)
    errors = 0
    call get_command_argument(1, dir)
    path = trim(dir)//'/f_api.afmt'
    a = [(int(i*7 - 100, int32), i=1, 64)]

    ! A user codec, then a file written with it (each rank one half of "a").
    call afmt_codec_register(300, 'reverse', rev_bound, rev_compress, rev_decompress, rc)
    call ok(rc, 'afmt_codec_register')
    call afmt_codec_register(300, 'again', rev_bound, rev_compress, rev_decompress, rc)
    call want(rc, AFMT_EEXIST, 'afmt_codec_register twice')
    call afmt_opts_create(o, rc)
    call ok(rc, 'afmt_opts_create')
    call afmt_opts_set_codec(o, 300, 0, rc)
    call ok(rc, 'afmt_opts_set_codec(300)')
    call afmt_opts_set_shuffle(o, .false., rc)
    call ok(rc, 'afmt_opts_set_shuffle')
    call afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, f, o, rc)
    call ok(rc, 'afmt_create')
    call afmt_opts_free(o, rc)
    call afmt_define(f, 'a', AFMT_INT32, [64_int64], ierr=rc)
    call ok(rc, 'afmt_define a')
    call afmt_define(f, 'tmp', AFMT_FLOAT64, [3_int64], ierr=rc)
    call ok(rc, 'afmt_define tmp')
    call afmt_write(f, 'a', a(1 + 64*rank/nranks:64*(rank + 1)/nranks), &
                    start=[int(1 + 64*rank/nranks, int64)], ierr=rc)
    call ok(rc, 'write a, layer 1')
    call afmt_set_attr(f, '', 'step', 1_int64, ierr=rc)
    call afmt_commit(f, rc)
    call ok(rc, 'commit 1')
    if (ncompress < 1 .and. rank == 0) call bad('the Fortran codec was never called')

    ! afmt_discard drops a staged write; afmt_delete removes an array.
    call afmt_write(f, 'a', -a(1:32), ierr=rc, count=[32_int64])
    call ok(rc, 'write to discard')
    call afmt_discard(f, rc)
    call ok(rc, 'afmt_discard')
    b = 0
    call afmt_read(f, 'a', b(1:32), count=[32_int64], ierr=rc)
    if (any(b(1:32) /= a(1:32))) call bad('afmt_discard did not drop the write')
    call afmt_delete(f, 'tmp', rc)
    call ok(rc, 'afmt_delete')
    ! Layer 2: the second half rewritten by rank 0.
    if (rank == 0) then
        call afmt_write(f, 'a', a(33:64)*2, start=[33_int64], ierr=rc)
        call ok(rc, 'write a, layer 2')
    end if
    call afmt_set_attr(f, '', 'step', 2_int64, ierr=rc)
    call afmt_commit(f, rc)
    call ok(rc, 'commit 2')
    call afmt_layers(f, n, rc)
    if (n /= 2) call bad('two layers expected')
    call afmt_read(f, 'a', b, ierr=rc)
    if (any(b(1:32) /= a(1:32)) .or. any(b(33:64) /= 2*a(33:64))) call bad('layer 2 content')
    ! afmt_read_all (collective): rank 0 the first half, the others the second; then a
    ! selection of nothing on every rank; then a buffer kind this module refuses on the
    ! last rank only: every rank fails (no rank left waiting in the collective).
    b = 0
    if (rank == 0) then
        call afmt_read_all(f, 'a', b(1:32), count=[32_int64], ierr=rc)
        call ok(rc, 'afmt_read_all, first half')
        if (any(b(1:32) /= a(1:32))) call bad('afmt_read_all content, first half')
    else
        call afmt_read_all(f, 'a', b(33:64), start=[33_int64], count=[32_int64], ierr=rc)
        call ok(rc, 'afmt_read_all, second half')
        if (any(b(33:64) /= 2*a(33:64))) call bad('afmt_read_all content, second half')
    end if
    call afmt_read_all(f, 'a', b(1:0), count=[0_int64], ierr=rc)
    call ok(rc, 'afmt_read_all of nothing')
    if (rank == nranks - 1) then
        call afmt_read_all(f, 'a', wrong, ierr=rc)
        call want(rc, AFMT_ETYPE, 'afmt_read_all into a real64 buffer')
    else
        call afmt_read_all(f, 'a', b, ierr=rc)
        call want(rc, AFMT_EINVAL, 'afmt_read_all while another rank fails')
    end if
    call afmt_layer_id(f, 1_int64, id1, ierr=rc)
    call afmt_layer_id(f, 2_int64, id2, ierr=rc)
    call afmt_inquire(f, 'tmp', info, rc)
    call want(rc, AFMT_ENOTFOUND, 'inquire a deleted array')

    ! Time travel: layer 1 as it was; then roll back to it.
    call afmt_open_layer(MPI_COMM_WORLD, path, id1, g, ierr=rc)
    call ok(rc, 'afmt_open_layer')
    call afmt_read(g, 'a', b, ierr=rc)
    call ok(rc, 'read layer 1')
    if (any(b /= a)) call bad('layer 1 content')
    call afmt_close(g, rc)
    call afmt_rollback(f, id1, rc)
    call ok(rc, 'afmt_rollback')
    call afmt_read(f, 'a', b, ierr=rc)
    if (any(b /= a)) call bad('content after rollback')
    call afmt_get_attr(f, '', 'step', step, ierr=rc)
    if (step /= 1) call bad('step after rollback')
    ! Retention: two more layers (rank 0 rewrites a as it is), keep the newest: a base
    ! and that layer, the content unchanged.
    do k = 1, 2
        if (rank == 0) call afmt_write(f, 'a', a, ierr=rc)
        call afmt_commit(f, rc)
        call ok(rc, 'commit before afmt_compact_keep')
    end do
    call afmt_compact_keep(f, 1_int64, rc)
    call ok(rc, 'afmt_compact_keep')
    call afmt_layers(f, n, rc)
    if (n /= 2) call bad('two layers after afmt_compact_keep(1)')
    call afmt_read(f, 'a', b, ierr=rc)
    if (any(b /= a)) call bad('content after afmt_compact_keep')
    call afmt_compact(f, rc)
    call ok(rc, 'afmt_compact')
    call afmt_layers(f, n, rc)
    if (n /= 1) call bad('one layer after compaction')
    call afmt_read(f, 'a', b, ierr=rc)
    if (any(b /= a)) call bad('content after compaction')

    ! Asynchronous commits. Each rank writes 3*a on its slice lo:hi and starts the commit;
    ! while it is in flight rank 0 writes 5*a on 1:16 (the next layer's) and each rank
    ! reads its slice back (the commit in flight plus its own writes since).
    lo = 1 + 64*rank/nranks
    hi = 64*(rank + 1)/nranks
    call afmt_write(f, 'a', 3*a(lo:hi), start=[int(lo, int64)], ierr=rc)
    call ok(rc, 'write a, async layer')
    call afmt_commit_start(f, rc)
    call ok(rc, 'afmt_commit_start')
    call afmt_layers(f, n, rc)
    if (n /= 1) call bad('a started commit is a layer before afmt_commit_wait')
    if (rank == 0) then
        call afmt_write(f, 'a', 5*a(1:16), count=[16_int64], ierr=rc)
        call ok(rc, 'write during afmt_commit_start')
    end if
    c = 3*a
    if (rank == 0) c(1:16) = 5*a(1:16)
    b = 0
    call afmt_read(f, 'a', b(lo:hi), start=[int(lo, int64)], ierr=rc)
    call ok(rc, 'read during the commit')
    if (any(b(lo:hi) /= c(lo:hi))) call bad('read during the commit: content')
    call afmt_commit_wait(f, rc)
    call ok(rc, 'afmt_commit_wait')
    call afmt_layers(f, n, rc)
    if (n /= 2) call bad('two layers after afmt_commit_wait')
    call afmt_commit_wait(f, rc)
    call ok(rc, 'afmt_commit_wait with nothing in flight')
    call afmt_layers(f, n, rc)
    if (n /= 2) call bad('afmt_commit_wait with nothing in flight made a layer')
    call afmt_layer_id(f, 2_int64, id3, ierr=rc)
    call afmt_commit(f, rc) ! the write made during the commit: its own layer
    call ok(rc, 'commit after afmt_commit_wait')
    call afmt_layers(f, n, rc)
    if (n /= 3) call bad('three layers after the commit of the writes made in flight')
    ! Then a commit in flight that afmt_close finishes.
    call afmt_write(f, 'a', -a(lo:hi), start=[int(lo, int64)], ierr=rc)
    call afmt_commit_start(f, rc)
    call ok(rc, 'afmt_commit_start before afmt_close')
    call afmt_close(f, rc)
    call ok(rc, 'afmt_close')
    ! Read back through other handles: layer id3 holds only what was written before its
    ! start, the next one the write made in flight, the newest what close finished.
    call afmt_open_layer(MPI_COMM_WORLD, path, id3, g, ierr=rc)
    call ok(rc, 'afmt_open_layer(async layer)')
    b = 0
    call afmt_read(g, 'a', b, ierr=rc)
    call ok(rc, 'read the async layer')
    if (any(b /= 3*a)) call bad('the async layer holds more than the writes before its start')
    call afmt_close(g, rc)
    call afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, g, ierr=rc)
    call ok(rc, 'afmt_open after afmt_close finished a commit')
    call afmt_layers(g, n, rc)
    if (n /= 4) call bad('afmt_close did not make the commit in flight durable')
    call afmt_layer_id(g, 3_int64, id4, ierr=rc)
    b = 0
    call afmt_read(g, 'a', b, ierr=rc)
    if (any(b /= -a)) call bad('the layer afmt_close finished: content')
    call afmt_commit_wait(g, rc)
    call want(rc, AFMT_EREADONLY, 'afmt_commit_wait on a read-only handle')
    call afmt_close(g, rc)
    call afmt_open_layer(MPI_COMM_WORLD, path, id4, g, ierr=rc)
    call ok(rc, 'afmt_open_layer(layer after the async one)')
    b = 0
    call afmt_read(g, 'a', b, ierr=rc)
    if (any(b(1:16) /= 5*a(1:16)) .or. any(b(17:64) /= 3*a(17:64))) &
        call bad('the writes made during the commit did not land in the next layer')
    call afmt_close(g, rc)

    ! Per-array compression: "z" with ZFP in accuracy mode (1e-3), "r" bit-rounded to 10
    ! mantissa bits with zstd level 3 and shuffle, "p" as afmt_define makes it; each rank
    ! writes its columns, with the bound checked at write (afmt_opts_set_check_bounds).
    ! Every value reads back within its array's bound (exactly, where libafmt stores the
    ! array losslessly), and afmt_inquire_codec gives the setting, also after reopening.
    path = trim(dir)//'/f_api_zfp.afmt'
    do j = 1, 20
        do i = 1, 30
            z(i, j) = 100*sin(0.1_real64*i)*cos(0.07_real64*j) + 1.0e-3_real64*mod(i*j, 7)
        end do
    end do
    r = real(z*3.7_real64, real32)
    call afmt_opts_create(o, rc)
    call afmt_opts_set_check_bounds(o, .true., rc)
    call ok(rc, 'afmt_opts_set_check_bounds')
    call afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, f, o, rc)
    call ok(rc, 'afmt_create (compression)')
    call afmt_opts_free(o, rc)
    call afmt_array_opts_create(ao, rc)
    call ok(rc, 'afmt_array_opts_create')
    call afmt_array_opts_set_zfp(ao, AFMT_ZFP_ACCURACY, 1.0e-3_real64, rc)
    call ok(rc, 'afmt_array_opts_set_zfp')
    call afmt_define_with(f, 'z', AFMT_FLOAT64, [30_int64, 20_int64], ao, &
                          chunk=[8_int64, 7_int64], dims=['x', 'y'], ierr=rc)
    call ok(rc, 'afmt_define_with z (ZFP)')
    call afmt_define_with(f, 'i', AFMT_INT32, [4_int64], ao, ierr=rc)
    call want(rc, AFMT_EINVAL, 'afmt_define_with: lossy ZFP on an int32 array')
    call afmt_array_opts_free(ao, rc)
    call afmt_array_opts_create(ao, rc)
    call afmt_array_opts_set_bitround(ao, 10, rc)
    call ok(rc, 'afmt_array_opts_set_bitround')
    call afmt_array_opts_set_codec(ao, AFMT_CODEC_ZSTD, 3, rc)
    call ok(rc, 'afmt_array_opts_set_codec')
    call afmt_array_opts_set_shuffle(ao, .true., rc)
    call ok(rc, 'afmt_array_opts_set_shuffle')
    call afmt_define_with(f, 'r', AFMT_FLOAT32, [30_int64, 20_int64], ao, &
                          chunk=[16_int64, 16_int64], ierr=rc)
    call ok(rc, 'afmt_define_with r (bit rounding)')
    call afmt_array_opts_set_zfp(ao, 9, 1.0_real64, rc)
    call want(rc, AFMT_EINVAL, 'afmt_array_opts_set_zfp(unknown mode)')
    call afmt_array_opts_set_codec(ao, AFMT_CODEC_ZFP, 0, rc)
    call want(rc, AFMT_EINVAL, 'afmt_array_opts_set_codec(AFMT_CODEC_ZFP)')
    call afmt_array_opts_set_bitround(ao, 53, rc)
    call want(rc, AFMT_EINVAL, 'afmt_array_opts_set_bitround(53)')
    call afmt_array_opts_set_bitround(ao, 30, rc)
    call afmt_define_with(f, 'r30', AFMT_FLOAT32, [4_int64], ao, ierr=rc)
    call want(rc, AFMT_EINVAL, 'afmt_define_with: 30 mantissa bits of a float32')
    call afmt_array_opts_free(ao, rc)
    call afmt_define(f, 'p', AFMT_FLOAT64, [3_int64], ierr=rc)
    lo = 1 + 20*rank/nranks
    hi = 20*(rank + 1)/nranks
    call afmt_write(f, 'z', z(:, lo:hi), start=[1_int64, int(lo, int64)], ierr=rc)
    call ok(rc, 'write z')
    call afmt_write(f, 'r', r(:, lo:hi), start=[1_int64, int(lo, int64)], ierr=rc)
    call ok(rc, 'write r')
    call afmt_commit(f, rc)
    call ok(rc, 'commit (compression)')
    do i = 1, 2
        if (i == 2) then
            call afmt_close(f, rc)
            call ok(rc, 'afmt_close (compression)')
            call afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, f, ierr=rc)
            call ok(rc, 'afmt_open (compression)')
        end if
        zb = 0
        call afmt_read(f, 'z', zb, ierr=rc)
        call ok(rc, 'read z')
        if (maxval(abs(zb - z)) > 1.0e-3_real64) call bad('z: a value off by more than 1e-3')
        rb = 0
        call afmt_read(f, 'r', rb, ierr=rc)
        call ok(rc, 'read r')
        if (any(abs(real(rb, real64) - r) > 2.0_real64**(-11)*abs(real(r, real64)))) &
            call bad('r: a value off by more than 2**-11 of itself')
        call afmt_inquire_codec(f, 'z', cc, rc)
        call ok(rc, 'afmt_inquire_codec z')
        if (cc%codec /= AFMT_CODEC_ZFP .or. cc%zfp_mode /= AFMT_ZFP_ACCURACY .or. &
            cc%zfp_param /= 1.0e-3_real64 .or. cc%abs_bound /= 1.0e-3_real64 .or. &
            cc%shuffle .or. cc%bitround /= 0 .or. cc%rel_bound /= 0) &
            call bad('afmt_inquire_codec z: fields')
        call afmt_inquire_codec(f, 'r', cc, rc)
        call ok(rc, 'afmt_inquire_codec r')
        if (cc%codec /= AFMT_CODEC_ZSTD .or. cc%level /= 3 .or. .not. cc%shuffle .or. &
            cc%bitround /= 10 .or. cc%rel_bound /= 2.0_real64**(-11) .or. &
            cc%zfp_mode /= 0 .or. cc%abs_bound /= 0) &
            call bad('afmt_inquire_codec r: fields')
        call afmt_inquire_codec(f, 'p', cc, rc)
        call ok(rc, 'afmt_inquire_codec p')
        if (cc%codec /= AFMT_CODEC_UNSET) call bad('afmt_inquire_codec p: not AFMT_CODEC_UNSET')
        call afmt_inquire_codec(f, 'nothing', cc, rc)
        call want(rc, AFMT_ENOTFOUND, 'afmt_inquire_codec of no array')
    end do
    call afmt_close(f, rc)
    if (rank == 0) then
        open (newunit=i, file=path, status='old', iostat=rc)
        if (rc == 0) close (i, status='delete')
    end if
    path = trim(dir)//'/f_api.afmt'

    ! Retention as an option: keep 1 leaves at most 2 layers after each commit, and the
    ! newest reads back; a dead fraction of 1 is refused.
    path = trim(dir)//'/f_api_keep.afmt'
    call afmt_opts_create(o, rc)
    call afmt_opts_set_retention(o, 1_int64, 1.0_real64, rc)
    call want(rc, AFMT_EINVAL, 'afmt_opts_set_retention(dead fraction 1)')
    call afmt_opts_set_retention(o, 1_int64, 0.0_real64, rc)
    call ok(rc, 'afmt_opts_set_retention')
    call afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, f, o, rc)
    call ok(rc, 'afmt_create (retention)')
    call afmt_opts_free(o, rc)
    call afmt_define(f, 'a', AFMT_INT32, [64_int64], ierr=rc)
    do k = 1, 4
        if (rank == 0) call afmt_write(f, 'a', k*a, ierr=rc)
        call afmt_commit(f, rc)
        call ok(rc, 'commit with retention')
        call afmt_layers(f, n, rc)
        if (n /= min(k, 2)) call bad('layers after a commit with keep 1')
    end do
    call afmt_read(f, 'a', b, ierr=rc)
    if (any(b /= 4*a)) call bad('content after automatic retention')
    call afmt_close(f, rc)
    call ok(rc, 'close (retention)')
    if (rank == 0) then
        open (newunit=i, file=path, status='old', iostat=rc)
        if (rc == 0) close (i, status='delete')
    end if
    path = trim(dir)//'/f_api.afmt'

    ! The signal flag: armed, raised on rank 0 only, seen by every rank.
    call afmt_signal_arm(10, rc) ! SIGUSR1 on Linux
    call ok(rc, 'afmt_signal_arm')
    call afmt_signal_pending(MPI_COMM_WORLD, pending, rc)
    if (pending) call bad('pending before any signal')
    if (rank == 0) call raise_usr1()
    call afmt_signal_pending(MPI_COMM_WORLD, pending, rc)
    call ok(rc, 'afmt_signal_pending')
    if (.not. pending) call bad('signal on rank 0 not seen by every rank')
    call afmt_signal_clear(rc)
    call ok(rc, 'afmt_signal_clear')
    call afmt_signal_arm(9, rc)
    call want(rc, AFMT_EINVAL, 'afmt_signal_arm(SIGKILL)')

    call MPI_Allreduce(errors, total, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
    if (rank == 0) then
        write (*, '(a,i0,a)') 'f_api: ', total, ' failures'
        open (newunit=i, file=path, status='old', iostat=rc)
        if (rc == 0) close (i, status='delete')
    end if
    call MPI_Finalize(ierr)
    if (total /= 0) error stop 1

contains

    subroutine raise_usr1()
        interface
            function c_raise(sig) result(r) bind(c, name='raise')
                import :: c_int
                integer(c_int), value :: sig
                integer(c_int) :: r
            end function c_raise
        end interface
        if (c_raise(10_c_int) /= 0) call bad('raise(SIGUSR1)')
    end subroutine raise_usr1

    subroutine bad(what)
        character(len=*), intent(in) :: what
        errors = errors + 1
        write (error_unit, '(a,i0,a,a)') 'f_api[', rank, ']: FAILED: ', what
    end subroutine bad

    subroutine ok(code, what)
        integer, intent(in) :: code
        character(len=*), intent(in) :: what
        if (code /= AFMT_OK) call bad(what//': '//afmt_strerror(code)//': '//afmt_errmsg(f))
    end subroutine ok

    subroutine want(code, expected, what)
        integer, intent(in) :: code, expected
        character(len=*), intent(in) :: what
        if (code /= expected) call bad(what//': unexpected code')
    end subroutine want
end program f_api
