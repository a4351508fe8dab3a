! f_box.f90 - afmt_write_box and afmt_read_box (fortran.box): each rank writes the
! interior of its ghosted slab u(0:nx+1, 0:nyl+1) of a 2-D field; a plain afmt_read gives
! back exactly the interior, and afmt_read_box into a ghosted buffer fills the interior
! and leaves the halo as it was. Also an int32 specific and a box outside the buffer.
! Run on 1-4 ranks: mpiexec -n N f_box DIR. Exit status 0 if every check holds.
program f_box
    use, intrinsic :: iso_fortran_env, only: int32, int64, real64, error_unit
    use mpi
    use afmt
    implicit none
    integer, parameter :: nx = 13, nyl = 7
    integer :: rank, nranks, ierr, rc, errors, total, i, j
    character(len=512) :: dir, path
    type(afmt_file) :: f
    real(real64) :: u(0:nx + 1, 0:nyl + 1), w(0:nx + 1, 0:nyl + 1), v(nx, nyl)
    integer(int32) :: k(0:nx + 1, 0:nyl + 1), kv(nx, nyl)
    integer(int64) :: y0

    call MPI_Init(ierr)
    call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
    call MPI_Comm_size(MPI_COMM_WORLD, nranks, ierr)
    errors = 0
    call get_command_argument(1, dir)
    path = trim(dir)//'/f_box.afmt'
    y0 = int(rank*nyl + 1, int64) ! this rank's first global y (1-based)

    ! The halo holds values that must never reach the file.
    u = -1
    k = -1
    do j = 1, nyl
        do i = 1, nx
            u(i, j) = i + 100.0_real64*(y0 + j - 1)
            k(i, j) = int(i - 1000*(y0 + j - 1), int32)
        end do
    end do

    call afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, f, ierr=rc)
    call ok(rc, 'afmt_create')
    ! Chunks that straddle the ranks' slabs, so the box rows land in shared chunks.
    call afmt_define(f, 'u', AFMT_FLOAT64, [int(nx, int64), int(nyl*nranks, int64)], &
                     chunk=[5_int64, 3_int64], ierr=rc)
    call ok(rc, 'afmt_define u')
    call afmt_define(f, 'k', AFMT_INT32, [int(nx, int64), int(nyl*nranks, int64)], ierr=rc)
    call ok(rc, 'afmt_define k')
    call afmt_write_box(f, 'u', u, [2_int64, 2_int64], [int(nx, int64), int(nyl, int64)], &
                        start=[1_int64, y0], ierr=rc)
    call ok(rc, 'afmt_write_box u')
    call afmt_write_box(f, 'k', k, [2_int64, 2_int64], [int(nx, int64), int(nyl, int64)], &
                        start=[1_int64, y0], ierr=rc)
    call ok(rc, 'afmt_write_box k')
    ! A box past buf's last column (box_start(2) - 1 + count(2) = nyl + 3 > nyl + 2).
    call afmt_write_box(f, 'u', u, [2_int64, 3_int64], [int(nx, int64), int(nyl + 1, int64)], &
                        start=[1_int64, y0], ierr=rc)
    call want(rc, AFMT_EINVAL, 'afmt_write_box outside the buffer')
    call afmt_write_box(f, 'u', u, [0_int64, 2_int64], [1_int64, 1_int64], ierr=rc)
    call want(rc, AFMT_EINVAL, 'afmt_write_box with box_start 0')
    call afmt_commit(f, rc)
    call ok(rc, 'afmt_commit')

    ! A plain read gives back the interior and nothing of the halo.
    v = 0
    call afmt_read(f, 'u', v, start=[1_int64, y0], ierr=rc)
    call ok(rc, 'afmt_read u')
    if (any(v /= u(1:nx, 1:nyl))) call bad('afmt_read u /= the interior written')
    kv = 0
    call afmt_read(f, 'k', kv, start=[1_int64, y0], ierr=rc)
    call ok(rc, 'afmt_read k')
    if (any(kv /= k(1:nx, 1:nyl))) call bad('afmt_read k /= the interior written')

    ! afmt_read_box of the neighbouring rank's slab (the same slab on 1 rank) into the
    ! interior of a ghosted buffer: the halo keeps its -7.
    y0 = int(mod(rank + 1, nranks)*nyl + 1, int64)
    w = -7
    call afmt_read_box(f, 'u', w, [2_int64, 2_int64], [int(nx, int64), int(nyl, int64)], &
                       start=[1_int64, y0], ierr=rc)
    call ok(rc, 'afmt_read_box u')
    do j = 1, nyl
        do i = 1, nx
            if (w(i, j) /= i + 100.0_real64*(y0 + j - 1)) then
                call bad('afmt_read_box: the interior differs')
                exit
            end if
        end do
    end do
    if (any(w(0, :) /= -7) .or. any(w(nx + 1, :) /= -7) .or. any(w(:, 0) /= -7) .or. &
        any(w(:, nyl + 1) /= -7)) call bad('afmt_read_box touched the halo')
    ! A box of one corner: only w(1:2, 1:1) changes.
    w = -7
    call afmt_read_box(f, 'u', w, [2_int64, 2_int64], [2_int64, 1_int64], &
                       start=[1_int64, y0], ierr=rc)
    call ok(rc, 'afmt_read_box corner')
    if (w(1, 1) /= 1 + 100.0_real64*y0 .or. w(2, 1) /= 2 + 100.0_real64*y0 .or. &
        count(w /= -7) /= 2) call bad('afmt_read_box corner: wrong elements changed')
    call afmt_read_box(f, 'k', w, [2_int64, 2_int64], [2_int64, 1_int64], ierr=rc)
    call want(rc, AFMT_ETYPE, 'afmt_read_box of an int32 array into real64')

    call afmt_close(f, rc)
    call ok(rc, 'afmt_close')
    call MPI_Allreduce(errors, total, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
    if (rank == 0) then
        write (*, '(a,i0,a)') 'f_box: ', total, ' failures'
        open (newunit=i, file=path, status='old', iostat=rc)
        if (rc == 0) close (i, status='delete')
    end if
    call MPI_Finalize(ierr)
    if (total /= 0) error stop 1

contains

    subroutine bad(what)
        character(len=*), intent(in) :: what
        errors = errors + 1
        write (error_unit, '(a,i0,a,a)') 'f_box[', rank, ']: FAILED: ', what
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
end program f_box
