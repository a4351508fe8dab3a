! heat2d.f90 - a 2-D heat-diffusion solver in Fortran that checkpoints with the afmt module
! and restarts from its newest checkpoint on any rank count, bit-identical to an
! uninterrupted run.
!
!   mpiexec -n 3 heat2d --file run.afmt --steps 20 --every 10
!   mpiexec -n 4 heat2d --file run.afmt --steps 40 --every 10 --restart
!   mpiexec -n 4 heat2d --file run.afmt --steps 40 --every 10 --async
!
! The model: u_t = laplacian(u) on NX x NY points (spacing 1, diffusivity 1), explicit
! Euler with the 5-point stencil and dt = 1/8 (stable: the limit is 1/4). The boundary
! points are a wall held at T_WALL; the interior starts at T_WALL plus two Gaussian hot
! spots. Time is step * dt, never accumulated.
!
! Decomposition: MPI_Dims_create + MPI_Cart_create over both dimensions; each rank owns a
! box u(1:lnx, 1:lny) of its local array u(0:lnx+1, 0:lny+1) (one halo layer, exchanged
! with MPI_Sendrecv before every step). The boxes need not follow the chunks of the file.
!
! Bit-identical restart: a point's new value depends only on itself and its 4 neighbours,
! always in the same order of operations (Fortran honours the parentheses), so it does not
! depend on the decomposition or on where a run was restarted. CMake compiles this file
! with -ffp-contract=off so that no multiply-add is fused differently.
!
! The file: array "u" real64 (NX, NY) in Fortran order (C sees shape {NY, NX}), dims "x"
! and "y", chunk shape --chunk; file attributes "step" (int64), "time" and "dt" (real64),
! array attribute "units". A checkpoint writes the whole field (each rank its box), sets
! step and time and commits: one layer. Checkpoints happen when step is a multiple of
! --every, and always at the last step.
!
! --async: a checkpoint starts its commit with afmt_commit_start and the solver goes on
! computing while this rank's blocks are written and synced in the background; the next
! checkpoint, and the end of the run, first wait for it (afmt_commit_wait), so at most one
! checkpoint is in flight. afmt_write has copied the field, so the steps computed
! meanwhile do not touch it: the file is bit-identical to a run without --async.
!
! Exit status: 0 done, 1 an afmt or MPI error (the message is printed; every rank stops:
! an error in the middle of a checkpoint must not be committed by a close), 2 usage.
program heat2d
    use, intrinsic :: iso_fortran_env, only: int64, real64, error_unit, output_unit
    use mpi
    use afmt
    implicit none

    real(real64), parameter :: T_WALL = 300.0_real64, DT = 0.125_real64
    character(len=*), parameter :: ARRAY = 'u'

    ! options
    character(len=1024) :: path = 'heat2d.afmt'
    integer(int64) :: nx = 96, ny = 64, cx = 16, cy = 16, steps = 100, every = 10
    logical :: restart = .false., quiet = .false., async = .false.

    ! decomposition
    integer :: cart, rank, nranks, dims(2), coords(2), xlo, xhi, ylo, yhi
    integer :: lnx, lny             ! this rank's box
    integer(int64) :: ix0, iy0      ! global index of the box's (0, 0) (box starts at +1)
    real(real64), allocatable :: u(:, :), v(:, :)

    type(afmt_file) :: f
    integer(int64) :: step, first
    integer :: ierr, rc
    real(real64) :: umax, lmax

    call MPI_Init(ierr)
    call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
    call MPI_Comm_size(MPI_COMM_WORLD, nranks, ierr)
    call parse_args()

    if (restart) then
        call open_checkpoint()
    else
        call create_checkpoint()
    end if
    call decompose()
    if (restart) then
        call read_checkpoint()
    else
        call initial_field()
        step = 0
    end if
    first = step

    do while (step < steps)
        call exchange_halos()
        call stencil()
        step = step + 1
        if (mod(step, every) == 0 .or. step == steps) call write_checkpoint()
    end do
    if (step == first .and. .not. restart) call write_checkpoint() ! --steps 0
    if (async) then
        call afmt_commit_wait(f, rc) ! the last checkpoint durable before the close
        call die_on(rc, 'afmt_commit_wait')
    end if

    call afmt_close(f, rc)
    call die_on(rc, 'afmt_close')
    lmax = maxval(u(1:lnx, 1:lny))
    call MPI_Reduce(lmax, umax, 1, MPI_DOUBLE_PRECISION, MPI_MAX, 0, cart, ierr)
    if (rank == 0) write (output_unit, '(a,i0,a,i0,a,i0,a,es24.16)') 'heat2d: step ', step, &
        ' (from ', first, ') on ', nranks, ' ranks, max u = ', umax
    ! Variables of the main program are never deallocated on their own (LeakSanitizer).
    deallocate (u, v)
    call MPI_Finalize(ierr)

contains

    ! An afmt failure: print the message on the ranks that got it and stop all of them.
    subroutine die_on(code, what)
        integer, intent(in) :: code
        character(len=*), intent(in) :: what
        integer :: e
        if (code == AFMT_OK) return
        write (error_unit, '(a,i0,a,a,a,a,a,a)') 'heat2d[', rank, ']: ', what, ': ', &
            afmt_strerror(code), ': ', afmt_errmsg(f)
        call MPI_Abort(MPI_COMM_WORLD, 1, e)
    end subroutine die_on

    subroutine usage(code)
        integer, intent(in) :: code
        integer :: e
        if (rank == 0) write (error_unit, '(a)') &
            'usage: mpiexec -n P heat2d [--file PATH] [--nx N] [--ny N] [--chunk CXxCY]', &
            '       [--steps N] [--every K] [--restart] [--async] [--quiet]', &
            '  --restart continues from the newest layer of PATH (on any rank count);', &
            '  the grid and chunks then come from the file.', &
            '  --async commits each checkpoint in the background while computing on.'
        call MPI_Finalize(e)
        if (code == 0) stop
        error stop 2
    end subroutine usage

    integer(int64) function int_arg(s)
        character(len=*), intent(in) :: s
        integer :: ios
        read (s, *, iostat=ios) int_arg
        if (ios /= 0 .or. int_arg < 0) call usage(2)
    end function int_arg

    subroutine parse_args()
        character(len=1024) :: a, b
        integer :: i, n, x
        n = command_argument_count()
        i = 1
        do while (i <= n)
            call get_command_argument(i, a)
            b = ''
            if (i < n) call get_command_argument(i + 1, b)
            select case (trim(a))
            case ('--file')
                path = b
                i = i + 1
            case ('--nx')
                nx = int_arg(b)
                i = i + 1
            case ('--ny')
                ny = int_arg(b)
                i = i + 1
            case ('--chunk')
                x = index(b, 'x')
                if (x < 2) call usage(2)
                cx = int_arg(b(:x - 1))
                cy = int_arg(b(x + 1:))
                i = i + 1
            case ('--steps')
                steps = int_arg(b)
                i = i + 1
            case ('--every')
                every = int_arg(b)
                i = i + 1
            case ('--restart')
                restart = .true.
            case ('--async')
                async = .true.
            case ('--quiet')
                quiet = .true.
            case ('--help', '-h')
                call usage(0)
            case default
                call usage(2)
            end select
            i = i + 1
        end do
        if (nx < 3 .or. ny < 3 .or. cx < 1 .or. cy < 1 .or. every < 1) call usage(2)
    end subroutine parse_args

    subroutine create_checkpoint()
        call afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, f, ierr=rc)
        call die_on(rc, 'afmt_create '//trim(path))
        call afmt_define(f, ARRAY, AFMT_FLOAT64, [nx, ny], chunk=[min(cx, nx), min(cy, ny)], &
                         dims=['x', 'y'], ierr=rc)
        call die_on(rc, 'afmt_define')
        call afmt_set_attr(f, ARRAY, 'units', 'K', ierr=rc)
        call die_on(rc, 'afmt_set_attr units')
        call afmt_set_attr(f, '', 'dt', DT, ierr=rc)
        call die_on(rc, 'afmt_set_attr dt')
    end subroutine create_checkpoint

    ! The grid comes from the file: a restart may not change it.
    subroutine open_checkpoint()
        type(afmt_info) :: info
        call afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, f, ierr=rc)
        call die_on(rc, 'afmt_open '//trim(path))
        call afmt_inquire(f, ARRAY, info, rc)
        call die_on(rc, 'afmt_inquire')
        if (info%ndim /= 2 .or. info%dtype /= AFMT_FLOAT64) call die_on(AFMT_ETYPE, 'array u')
        nx = info%shape(1)
        ny = info%shape(2)
    end subroutine open_checkpoint

    ! [lo, hi] of part c (0-based) of 1..n split into p parts as evenly as possible.
    subroutine split(n, p, c, lo, hi)
        integer(int64), intent(in) :: n
        integer, intent(in) :: p, c
        integer, intent(out) :: lo, hi
        lo = int(n*c/p) + 1
        hi = int(n*(c + 1)/p)
    end subroutine split

    subroutine decompose()
        logical :: periods(2) = .false.
        dims = 0
        call MPI_Dims_create(nranks, 2, dims, ierr)
        call MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, .false., cart, ierr)
        call MPI_Comm_rank(cart, rank, ierr)
        call MPI_Cart_coords(cart, rank, 2, coords, ierr)
        call MPI_Cart_shift(cart, 0, 1, xlo, xhi, ierr)
        call MPI_Cart_shift(cart, 1, 1, ylo, yhi, ierr)
        block
            integer :: a, b, c, d
            call split(nx, dims(1), coords(1), a, b)
            call split(ny, dims(2), coords(2), c, d)
            ix0 = a - 1
            iy0 = c - 1
            lnx = b - a + 1
            lny = d - c + 1
        end block
        if (lnx < 1 .or. lny < 1) then
            if (rank == 0) write (error_unit, '(a)') 'heat2d: more ranks than grid points'
            call MPI_Abort(MPI_COMM_WORLD, 2, ierr)
        end if
        allocate (u(0:lnx + 1, 0:lny + 1), v(0:lnx + 1, 0:lny + 1))
        u = T_WALL
    end subroutine decompose

    subroutine initial_field()
        integer :: i, j
        real(real64) :: x, y
        do j = 1, lny
            do i = 1, lnx
                x = real(ix0 + i - 1, real64)/real(nx - 1, real64)
                y = real(iy0 + j - 1, real64)/real(ny - 1, real64)
                if (ix0 + i == 1 .or. ix0 + i == nx .or. iy0 + j == 1 .or. iy0 + j == ny) then
                    u(i, j) = T_WALL
                else
                    u(i, j) = T_WALL + 200.0_real64*exp(-((x - 0.3_real64)**2 + &
                                                           (y - 0.4_real64)**2)/0.01_real64) &
                              + 150.0_real64*exp(-((x - 0.7_real64)**2 + &
                                                   (y - 0.6_real64)**2)/0.02_real64)
                end if
            end do
        end do
    end subroutine initial_field

    subroutine read_checkpoint()
        real(real64) :: t
        call afmt_get_attr(f, '', 'step', step, ierr=rc)
        call die_on(rc, 'afmt_get_attr step')
        call afmt_get_attr(f, '', 'time', t, ierr=rc)
        call die_on(rc, 'afmt_get_attr time')
        ! Straight into the interior of the halo array: the module copies the section out.
        call afmt_read(f, ARRAY, u(1:lnx, 1:lny), start=[ix0 + 1, iy0 + 1], ierr=rc)
        call die_on(rc, 'afmt_read')
        if (rank == 0 .and. .not. quiet) write (output_unit, '(a,i0,a,es12.5,a,i0,a)') &
            'heat2d: restarting at step ', step, ' (t = ', t, ') on ', nranks, ' ranks'
    end subroutine read_checkpoint

    subroutine write_checkpoint()
        if (async) then
            ! The previous checkpoint durable first: one commit in flight at most.
            call afmt_commit_wait(f, rc)
            call die_on(rc, 'afmt_commit_wait')
        end if
        ! Each rank stages its own box (a strided section: the module copies it in).
        call afmt_write(f, ARRAY, u(1:lnx, 1:lny), start=[ix0 + 1, iy0 + 1], ierr=rc)
        call die_on(rc, 'afmt_write')
        call afmt_set_attr(f, '', 'step', step, ierr=rc)
        call die_on(rc, 'afmt_set_attr step')
        call afmt_set_attr(f, '', 'time', real(step, real64)*DT, ierr=rc)
        call die_on(rc, 'afmt_set_attr time')
        if (async) then
            call afmt_commit_start(f, rc) ! collective: the layer once waited for
            call die_on(rc, 'afmt_commit_start')
            if (rank == 0 .and. .not. quiet) write (output_unit, '(a,i0,a)') &
                'heat2d: checkpoint at step ', step, ' started'
            return
        end if
        call afmt_commit(f, rc) ! collective: one layer
        call die_on(rc, 'afmt_commit')
        if (rank == 0 .and. .not. quiet) write (output_unit, '(a,i0)') &
            'heat2d: checkpoint at step ', step
    end subroutine write_checkpoint

    ! One halo layer on each side. Boundary ranks talk to MPI_PROC_NULL (no-ops): the
    ! wall points are never updated, so their outer halo is never read.
    subroutine exchange_halos()
        real(real64) :: sbuf(lny), rbuf(lny)
        integer :: st(MPI_STATUS_SIZE)
        ! y: columns u(1:lnx, j) are contiguous.
        call MPI_Sendrecv(u(1:lnx, lny), lnx, MPI_DOUBLE_PRECISION, yhi, 1, &
                          u(1:lnx, 0), lnx, MPI_DOUBLE_PRECISION, ylo, 1, cart, st, ierr)
        call MPI_Sendrecv(u(1:lnx, 1), lnx, MPI_DOUBLE_PRECISION, ylo, 2, &
                          u(1:lnx, lny + 1), lnx, MPI_DOUBLE_PRECISION, yhi, 2, cart, st, ierr)
        ! x: rows u(i, 1:lny) are strided; copy them through buffers.
        sbuf = u(lnx, 1:lny)
        rbuf = u(0, 1:lny)
        call MPI_Sendrecv(sbuf, lny, MPI_DOUBLE_PRECISION, xhi, 3, &
                          rbuf, lny, MPI_DOUBLE_PRECISION, xlo, 3, cart, st, ierr)
        u(0, 1:lny) = rbuf
        sbuf = u(1, 1:lny)
        rbuf = u(lnx + 1, 1:lny)
        call MPI_Sendrecv(sbuf, lny, MPI_DOUBLE_PRECISION, xlo, 4, &
                          rbuf, lny, MPI_DOUBLE_PRECISION, xhi, 4, cart, st, ierr)
        u(lnx + 1, 1:lny) = rbuf
    end subroutine exchange_halos

    subroutine stencil()
        integer :: i, j, i1, i2, j1, j2
        ! Only interior points of the global grid change.
        i1 = merge(2, 1, ix0 == 0)
        i2 = merge(lnx - 1, lnx, ix0 + lnx == nx)
        j1 = merge(2, 1, iy0 == 0)
        j2 = merge(lny - 1, lny, iy0 + lny == ny)
        v = u
        do j = j1, j2
            do i = i1, i2
                v(i, j) = u(i, j) + DT*(((u(i - 1, j) + u(i + 1, j)) + &
                                         (u(i, j - 1) + u(i, j + 1))) - 4.0_real64*u(i, j))
            end do
        end do
        u = v
    end subroutine stencil
end program heat2d
