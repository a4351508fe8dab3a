! f_interop.f90 - the Fortran half of the interoperability tests (fortran.interop.*).
!
!   mpiexec -n P f_interop write FILE   writes the reference file with the Fortran module
!   mpiexec -n P f_interop read FILE    checks a file written by c_interop.c
!
! The arrays, values and attributes are those of c_interop.c (see its header), given as
! functions of the Fortran subscripts. Besides the data, both modes check the module's
! own behaviour: argument errors (kind, count, start), error codes and messages, the
! Fortran-order descriptors, 1-based indexes, reads into non-contiguous sections.
! Exit status 0 if everything matches on every rank, 1 otherwise.
program f_interop
    use, intrinsic :: iso_fortran_env, only: int32, int64, real32, real64, error_unit
    use mpi
    use afmt
    implicit none

    integer :: rank, nranks, ierr, errors, total
    character(len=16) :: mode
    character(len=512) :: path

    call MPI_Init(ierr)
    call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
    call MPI_Comm_size(MPI_COMM_WORLD, nranks, ierr)
    errors = 0
    if (command_argument_count() /= 2) then
        if (rank == 0) write (error_unit, '(a)') 'usage: f_interop write|read FILE'
        call MPI_Finalize(ierr)
        error stop 2
    end if
    call get_command_argument(1, mode)
    call get_command_argument(2, path)
    select case (trim(mode))
    case ('write')
        call do_write()
    case ('read')
        call do_read()
    case default
        call fail('unknown mode '//trim(mode))
    end select
    call MPI_Allreduce(errors, total, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
    if (rank == 0) write (*, '(a,a,a,a,a,i0,a)') 'f_interop ', trim(mode), ' ', trim(path), &
        ': '//merge('FAILED', 'ok    ', total /= 0)//' (', total, ' mismatches)'
    call MPI_Finalize(ierr)
    if (total /= 0) error stop 1

contains

    subroutine fail(what)
        character(len=*), intent(in) :: what
        errors = errors + 1
        if (errors <= 20) write (error_unit, '(a,i0,a,a)') 'f_interop[', rank, ']: MISMATCH: ', what
    end subroutine fail

    ! A failed afmt call that must not fail: print why and stop every rank.
    subroutine check(rc, what, f)
        integer, intent(in) :: rc
        character(len=*), intent(in) :: what
        type(afmt_file), intent(in), optional :: f
        integer :: e
        if (rc == AFMT_OK) return
        write (error_unit, '(a,i0,a,a,a,a,a,a)') 'f_interop[', rank, ']: ', what, ' failed: ', &
            afmt_strerror(rc), ': ', afmt_errmsg(f)
        call MPI_Abort(MPI_COMM_WORLD, 1, e)
    end subroutine check

    ! A call that must fail with code want.
    subroutine expect(rc, want, what)
        integer, intent(in) :: rc, want
        character(len=*), intent(in) :: what
        character(len=80) :: b
        if (rc /= want) then
            write (b, '(a,i0,a,i0)') ': got ', rc, ', expected ', want
            call fail(what//trim(b))
        end if
    end subroutine expect

    pure real(real64) function vd2(i, j)
        integer, intent(in) :: i, j
        vd2 = real(i + 100*j, real64) + 0.5_real64
    end function vd2
    pure real(real32) function vf2(i, j)
        integer, intent(in) :: i, j
        vf2 = real(i + 100*j, real32) + 0.25_real32
    end function vf2
    pure integer(int32) function vi3(i, j, k)
        integer, intent(in) :: i, j, k
        vi3 = int(i + 10*j + 100*k - 500, int32)
    end function vi3
    pure integer(int64) function vl1(i)
        integer, intent(in) :: i
        vl1 = int(i, int64)*3000000007_int64 - 5_int64
    end function vl1
    pure integer(int64) function vl4(i, j, k, l)
        integer, intent(in) :: i, j, k, l
        vl4 = int(i + 10*j + 100*k + 1000*l, int64) + 2_int64**40
    end function vl4

    ! The reference arrays, whole.
    subroutine reference(d2, f2, i3, l1, l4, fl)
        real(real64), intent(out) :: d2(37, 11)
        real(real32), intent(out) :: f2(37, 11)
        integer(int32), intent(out) :: i3(5, 7, 3), fl(6, 4)
        integer(int64), intent(out) :: l1(100), l4(3, 4, 2, 5)
        integer :: i, j, k, l
        do j = 1, 11
            do i = 1, 37
                d2(i, j) = vd2(i, j)
                f2(i, j) = vf2(i, j)
            end do
        end do
        do k = 1, 3
            do j = 1, 7
                do i = 1, 5
                    i3(i, j, k) = vi3(i, j, k)
                end do
            end do
        end do
        do i = 1, 100
            l1(i) = vl1(i)
        end do
        do l = 1, 5
            do k = 1, 2
                do j = 1, 4
                    do i = 1, 3
                        l4(i, j, k, l) = vl4(i, j, k, l)
                    end do
                end do
            end do
        end do
        fl = -7
        fl(2, 3) = 42
    end subroutine reference

    ! [lo, hi] of rank r's share of 1..n.
    subroutine split(n, lo, hi)
        integer, intent(in) :: n
        integer, intent(out) :: lo, hi
        lo = n*rank/nranks + 1
        hi = n*(rank + 1)/nranks
    end subroutine split

    subroutine do_write()
        type(afmt_file) :: f
        type(afmt_opts) :: o
        real(real64) :: d2(37, 11), s, coeffs(3)
        real(real32) :: f2(37, 11)
        integer(int32) :: i3(5, 7, 3), fl(6, 4), one(1)
        integer(int64) :: l1(100), l4(3, 4, 2, 5), flat(120)
        integer :: rc, lo, hi
        character(len=:), allocatable :: msg

        call reference(d2, f2, i3, l1, l4, fl)
        ! Options: every setter once (zstd 1, small blocks so that several are written).
        call afmt_opts_create(o, rc)
        call check(rc, 'afmt_opts_create')
        call afmt_opts_set_codec(o, AFMT_CODEC_ZSTD, 1, rc)
        call check(rc, 'afmt_opts_set_codec')
        call afmt_opts_set_shuffle(o, .true., rc)
        call check(rc, 'afmt_opts_set_shuffle')
        call afmt_opts_set_block_size(o, 4096_int64, rc)
        call check(rc, 'afmt_opts_set_block_size')
        call afmt_opts_set_mem_budget(o, 65536_int64, rc)
        call check(rc, 'afmt_opts_set_mem_budget')
        call afmt_opts_set_spill_dir(o, '/tmp', rc)
        call check(rc, 'afmt_opts_set_spill_dir')
        call afmt_opts_set_cache_size(o, 1048576_int64, rc)
        call check(rc, 'afmt_opts_set_cache_size')
        call afmt_opts_set_check_collective(o, .true., rc)
        call check(rc, 'afmt_opts_set_check_collective')
        call afmt_opts_set_threads(o, -1, rc)
        if (rc /= AFMT_EINVAL) call check(AFMT_EINVAL, 'afmt_opts_set_threads(-1) is not EINVAL')
        call afmt_opts_set_threads(o, 2, rc)
        call check(rc, 'afmt_opts_set_threads')
        call afmt_opts_set_alignment(o, 4096_int64, rc)
        call check(rc, 'afmt_opts_set_alignment')
        call afmt_opts_set_index_cache(o, 1048576_int64, rc)
        call check(rc, 'afmt_opts_set_index_cache')
        call afmt_opts_set_alignment(o, 4000_int64, rc)
        call expect(rc, AFMT_EINVAL, 'afmt_opts_set_alignment(4000)')
        call afmt_opts_set_codec(o, AFMT_CODEC_NONE, 5, rc)
        call expect(rc, AFMT_EINVAL, 'afmt_opts_set_codec(none, 5)')
        call afmt_opts_set_codec(o, AFMT_CODEC_ZSTD, 1, rc)
        call check(rc, 'afmt_opts_set_codec')

        call afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, f, o, rc)
        call check(rc, 'afmt_create')
        call afmt_opts_free(o, rc)
        call check(rc, 'afmt_opts_free')
        if (.not. afmt_is_open(f)) call fail('afmt_is_open after afmt_create')

        call afmt_define(f, 'd2', AFMT_FLOAT64, [37_int64, 11_int64], [8_int64, 4_int64], &
                         ['x', 'y'], ierr=rc)
        call check(rc, 'define d2', f)
        call afmt_define(f, 'f2', AFMT_FLOAT32, [37_int64, 11_int64], [8_int64, 4_int64], ierr=rc)
        call check(rc, 'define f2', f)
        call afmt_define(f, 'i3', AFMT_INT32, [5_int64, 7_int64, 3_int64], &
                         [2_int64, 3_int64, 2_int64], ierr=rc)
        call check(rc, 'define i3', f)
        call afmt_define(f, 'l1', AFMT_INT64, [100_int64], [16_int64], ierr=rc)
        call check(rc, 'define l1', f)
        call afmt_define(f, 'l4', AFMT_INT64, [3_int64, 4_int64, 2_int64, 5_int64], &
                         [2_int64, 2_int64, 2_int64, 2_int64], ierr=rc)
        call check(rc, 'define l4', f)
        call afmt_define(f, 's', AFMT_FLOAT64, [integer(int64) ::], ierr=rc)
        call check(rc, 'define s', f)
        ! A fill of the wrong kind is refused before C sees it.
        call afmt_define(f, 'fill', AFMT_INT32, [6_int64, 4_int64], [3_int64, 2_int64], &
                         fill=-7.0_real64, ierr=rc)
        call expect(rc, AFMT_EINVAL, 'define fill with a real64 fill')
        call afmt_define(f, 'fill', AFMT_INT32, [6_int64, 4_int64], [3_int64, 2_int64], &
                         fill=-7_int32, ierr=rc)
        call check(rc, 'define fill', f)

        ! d2: rank r writes columns lo..hi (contiguous); f2: rows lo..hi (a strided section).
        call split(11, lo, hi)
        if (hi >= lo) then
            call afmt_write(f, 'd2', d2(:, lo:hi), start=[1_int64, int(lo, int64)], ierr=rc)
            call check(rc, 'write d2', f)
        end if
        call split(37, lo, hi)
        if (hi >= lo) then
            call afmt_write(f, 'f2', f2(lo:hi, :), start=[int(lo, int64), 1_int64], ierr=rc)
            call check(rc, 'write f2', f)
        end if
        call split(100, lo, hi)
        if (hi >= lo) then
            call afmt_write(f, 'l1', l1(lo:hi), start=[int(lo, int64)], ierr=rc)
            call check(rc, 'write l1', f)
        end if
        if (rank == nranks - 1) then
            call afmt_write(f, 'i3', i3, ierr=rc) ! start and count default to the whole
            call check(rc, 'write i3', f)
            s = 3.25_real64
            call afmt_write(f, 's', s, ierr=rc)
            call check(rc, 'write s', f)
            one = 42
            call afmt_write(f, 'fill', one, start=[2_int64, 3_int64], count=[1_int64, 1_int64], &
                            ierr=rc)
            call check(rc, 'write fill', f)
        end if
        if (rank == 0) then
            ! A buffer of another rank than the array: count gives the shape.
            flat = reshape(l4, [120])
            call afmt_write(f, 'l4', flat, count=[3_int64, 4_int64, 2_int64, 5_int64], ierr=rc)
            call check(rc, 'write l4', f)
        end if

        ! Errors the module detects itself, and one of the C library.
        call afmt_write(f, 'd2', f2, ierr=rc)
        call expect(rc, AFMT_ETYPE, 'write real32 into d2')
        msg = afmt_errmsg(f)
        if (index(msg, 'afmt_write') == 0 .or. index(msg, 'd2') == 0) &
            call fail('errmsg after ETYPE: '//msg)
        call afmt_write(f, 'd2', d2(:, 1:2), count=[37_int64, 3_int64], ierr=rc)
        call expect(rc, AFMT_EINVAL, 'write with count /= size(buf)')
        call afmt_write(f, 'd2', d2(:, 1:2), start=[0_int64, 1_int64], ierr=rc)
        call expect(rc, AFMT_EINVAL, 'write with start 0')
        call afmt_write(f, 'd2', d2(:, 1), ierr=rc)
        call expect(rc, AFMT_EINVAL, 'write a rank-1 buffer without count into a 2-D array')
        call afmt_write(f, 'nosuch', d2, ierr=rc)
        call expect(rc, AFMT_ENOTFOUND, 'write to a missing array')
        msg = afmt_errmsg(f)
        if (len(msg) == 0 .or. index(msg, 'afmt_write:') == 1) &
            call fail('errmsg after ENOTFOUND should be the C library''s: '//msg)
        call afmt_write(f, 'd2', d2, start=[30_int64, 1_int64], ierr=rc)
        call expect(rc, AFMT_EINVAL, 'write past the end (C check)')

        coeffs = [0.5_real64, 1.5_real64, 2.5_real64]
        call afmt_set_attr(f, '', 'step', 17_int64, ierr=rc)
        call check(rc, 'set_attr step', f)
        call afmt_set_attr(f, '', 'coeffs', coeffs, ierr=rc)
        call check(rc, 'set_attr coeffs', f)
        call afmt_set_attr(f, '', 'title', 'interop test', rc)
        call check(rc, 'set_attr title', f)
        call afmt_set_attr(f, 'd2', 'units', 'kelvin    ', rc) ! trailing blanks are dropped
        call check(rc, 'set_attr units', f)
        call afmt_set_attr(f, '', 'bad', 1_int64, dtype=AFMT_FLOAT64, ierr=rc)
        call expect(rc, AFMT_ETYPE, 'set_attr int64 values as float64')
        call afmt_commit(f, rc)
        call check(rc, 'afmt_commit', f)
        call afmt_close(f, rc)
        call check(rc, 'afmt_close')
        if (afmt_is_open(f)) call fail('afmt_is_open after afmt_close')
    end subroutine do_write

    subroutine do_read()
        type(afmt_file) :: f
        type(afmt_info) :: info
        real(real64) :: d2(37, 11), rd2(37, 11), s, coeffs(4), small(2), big(0:40, 0:12)
        real(real32) :: f2(37, 11), rf2(37, 11)
        integer(int32) :: i3(5, 7, 3), ri3(5, 7, 3), fl(6, 4), rfl(6, 4)
        integer(int64) :: l1(100), rl1(100), l4(3, 4, 2, 5), flat(120), step, n, nl, id, t, nr
        integer :: rc, na, k, i0, j0
        character(len=8), parameter :: names(7) = [character(len=8) :: 'd2', 'f2', 'i3', 'l1', &
                                                    'l4', 's', 'fill']
        character(len=64) :: str
        character(len=3) :: short

        call reference(d2, f2, i3, l1, l4, fl)
        call afmt_open(MPI_COMM_WORLD, trim(path)//'.missing', AFMT_RDONLY, f, ierr=rc)
        call expect(rc, AFMT_ENOTFOUND, 'open a missing file')
        if (len(afmt_errmsg()) == 0) call fail('errmsg() after a failed open is empty')
        call afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, f, ierr=rc)
        call check(rc, 'afmt_open')

        ! Descriptors in Fortran order, list indexes 1-based.
        call afmt_count(f, na, rc)
        call check(rc, 'afmt_count', f)
        if (na /= 7) call fail('afmt_count')
        do k = 1, min(na, 7)
            call afmt_info_at(f, k, info, rc)
            call check(rc, 'afmt_info_at', f)
            if (info%name /= names(k)) call fail('afmt_info_at order: '//trim(info%name))
        end do
        call afmt_info_at(f, 0, info, rc)
        call expect(rc, AFMT_ERANGE, 'afmt_info_at(0)')
        call afmt_inquire(f, 'd2', info, rc)
        call check(rc, 'inquire d2', f)
        if (info%dtype /= AFMT_FLOAT64 .or. info%ndim /= 2 .or. any(info%shape(1:2) /= [37, 11]) &
            .or. any(info%chunk(1:2) /= [8, 4]) .or. info%dims(1) /= 'x' .or. info%dims(2) /= 'y') &
            call fail('inquire d2')
        call afmt_inquire(f, 'l4', info, rc)
        call check(rc, 'inquire l4', f)
        if (info%dtype /= AFMT_INT64 .or. info%ndim /= 4 .or. &
            any(info%shape(1:4) /= [3, 4, 2, 5])) call fail('inquire l4')
        call afmt_inquire(f, 's', info, rc)
        call check(rc, 'inquire s', f)
        if (info%ndim /= 0) call fail('inquire s')
        call afmt_inquire(f, 'nosuch', info, rc)
        call expect(rc, AFMT_ENOTFOUND, 'inquire a missing array')

        ! Whole arrays.
        rd2 = 0
        call afmt_read(f, 'd2', rd2, ierr=rc)
        call check(rc, 'read d2', f)
        if (any(rd2 /= d2)) call fail('d2 values')
        rf2 = 0
        call afmt_read(f, 'f2', rf2, ierr=rc)
        call check(rc, 'read f2', f)
        if (any(rf2 /= f2)) call fail('f2 values')
        ri3 = 0
        call afmt_read(f, 'i3', ri3, ierr=rc)
        call check(rc, 'read i3', f)
        if (any(ri3 /= i3)) call fail('i3 values')
        rl1 = 0
        call afmt_read(f, 'l1', rl1, ierr=rc)
        call check(rc, 'read l1', f)
        if (any(rl1 /= l1)) call fail('l1 values')
        flat = 0
        call afmt_read(f, 'l4', flat, count=[3_int64, 4_int64, 2_int64, 5_int64], ierr=rc)
        call check(rc, 'read l4', f)
        if (any(reshape(flat, [3, 4, 2, 5]) /= l4)) call fail('l4 values')
        s = 0
        call afmt_read(f, 's', s, ierr=rc)
        call check(rc, 'read s', f)
        if (s /= 3.25_real64) call fail('s value')
        rfl = 0
        call afmt_read(f, 'fill', rfl, ierr=rc)
        call check(rc, 'read fill', f)
        if (any(rfl /= fl)) call fail('fill values (fill -7, one 42)')

        ! A box that depends on the rank, into a non-contiguous section of a bigger array
        ! (the rest of which must stay untouched).
        i0 = 1 + mod(rank*5, 30)
        j0 = 1 + mod(rank, 8)
        big = -1
        call afmt_read(f, 'd2', big(3:3 + 37 - i0 - 1, 2:2 + 11 - j0 - 1), &
                       start=[int(i0, int64), int(j0, int64)], ierr=rc)
        call check(rc, 'read d2 box', f)
        if (any(big(3:3 + 37 - i0 - 1, 2:2 + 11 - j0 - 1) /= d2(i0:36, j0:10))) &
            call fail('d2 box values')
        if (any(big(0:2, :) /= -1) .or. any(big(:, 0:1) /= -1) .or. any(big(3 + 37 - i0:, :) /= -1) &
            .or. any(big(:, 2 + 11 - j0:) /= -1)) call fail('d2 box read outside the section')
        call afmt_read(f, 'd2', rf2, ierr=rc)
        call expect(rc, AFMT_ETYPE, 'read float64 into real32')

        ! Attributes.
        call afmt_get_attr(f, '', 'step', step, n, ierr=rc)
        call check(rc, 'get_attr step', f)
        if (step /= 17 .or. n /= 1) call fail('attribute step')
        coeffs = 0
        call afmt_get_attr(f, '', 'coeffs', coeffs, n, ierr=rc)
        call check(rc, 'get_attr coeffs', f)
        if (n /= 3 .or. any(coeffs(1:3) /= [0.5_real64, 1.5_real64, 2.5_real64])) &
            call fail('attribute coeffs')
        call afmt_get_attr(f, '', 'coeffs', small, n, ierr=rc)
        call expect(rc, AFMT_ERANGE, 'get_attr coeffs into 2 elements')
        if (n /= 3) call fail('get_attr ERANGE must report n = 3')
        call afmt_get_attr(f, '', 'step', s, ierr=rc)
        call check(rc, 'get_attr int64 step as real64 (converted)', f)
        if (s /= 17.0_real64) call fail('get_attr int64 step as real64')
        call afmt_get_attr(f, '', 'title', str, n, rc)
        call check(rc, 'get_attr title', f)
        if (str /= 'interop test' .or. n /= 12) call fail('attribute title: '//str)
        call afmt_get_attr(f, 'd2', 'units', str, n, rc)
        call check(rc, 'get_attr units', f)
        if (str /= 'kelvin' .or. n /= 6) call fail('attribute units: '//str)
        call afmt_get_attr(f, 'd2', 'units', short, n, rc)
        call expect(rc, AFMT_ERANGE, 'get_attr units into 3 characters')
        if (n /= 6) call fail('string ERANGE must report n = 6')
        call afmt_get_attr(f, '', 'nosuch', step, ierr=rc)
        call expect(rc, AFMT_ENOTFOUND, 'get_attr missing')

        ! Layers: one commit; its provenance, 1-based.
        call afmt_layers(f, nl, rc)
        call check(rc, 'afmt_layers', f)
        if (nl /= 1) call fail('afmt_layers')
        call afmt_layer_id(f, 1_int64, id, t, rc)
        call check(rc, 'afmt_layer_id', f)
        if (id < 1 .or. t <= 0) call fail('afmt_layer_id')
        call afmt_layer_id(f, 2_int64, id, ierr=rc)
        call expect(rc, AFMT_ERANGE, 'afmt_layer_id(2)')
        call afmt_layer_attr(f, 1_int64, 'nranks', nr, n, ierr=rc)
        call check(rc, 'afmt_layer_attr nranks', f)
        if (nr /= nranks) call fail('layer nranks (the test writes and reads on as many ranks)')
        call afmt_layer_attr(f, 1_int64, 'time_ns', nr, dtype=AFMT_UINT64, ierr=rc)
        call check(rc, 'afmt_layer_attr time_ns', f)
        if (nr /= t) call fail('layer time_ns /= afmt_layer_id time')
        call afmt_layer_attr(f, 1_int64, 'host', str, n, rc)
        call check(rc, 'afmt_layer_attr host', f)
        if (n < 1 .or. len_trim(str) < 1) call fail('layer host')
        call afmt_layer_attr(f, 0_int64, 'host', str, n, rc)
        call expect(rc, AFMT_ERANGE, 'afmt_layer_attr(0)')

        call afmt_write(f, 'd2', d2, ierr=rc)
        call expect(rc, AFMT_EREADONLY, 'write on a read-only handle')
        if (afmt_strerror(AFMT_ENOTFOUND) == '') call fail('afmt_strerror')
        if (afmt_version() == '') call fail('afmt_version')
        ! The module's generated parameters and the C library's build agree.
        if (afmt_lib_version_number() /= AFMT_VERSION_NUMBER) call fail('afmt_lib_version_number')
        if (afmt_err_name(AFMT_ECORRUPT) /= 'AFMT_ECORRUPT') call fail('afmt_err_name')
        if (afmt_err_name(AFMT_E_LAST - 1) /= 'unknown') call fail('afmt_err_name(E_LAST-1)')
        call afmt_close(f, rc)
        call check(rc, 'afmt_close')
    end subroutine do_read
end program f_interop
