/* file_write_threads.c - whether a commit's data write could go faster on more threads:
 * N bytes written to a new file by one thread, then by T threads each writing its own
 * contiguous part with pwrite, REPS times alternating (docs/performance.md 5.4.2). On
 * tmpfs and ext4 a buffered write holds the file's inode lock, so T threads take as long
 * as one; a parallel file system may differ. No afmt inside.
 *   file_write_threads PATH [MIB] [THREADS] [REPS]   (default 175 MiB, 2 threads, 5) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    const char *buf;
    size_t off, len;
    int err;
} part;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *write_part(void *arg) {
    part *p = arg;
    for (size_t done = 0; done < p->len;) {
        ssize_t r = pwrite(p->fd, p->buf + p->off + done, p->len - done, (off_t)(p->off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            p->err = r < 0 ? errno : ENOSPC;
            return NULL;
        }
        done += (size_t)r;
    }
    return NULL;
}

/* Seconds to write n bytes of buf to a new path with t threads; < 0 on failure. */
static double timed_write(const char *path, const char *buf, size_t n, int t) {
    unlink(path);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0) return -1;
    part parts[64];
    pthread_t th[64];
    int started[64];
    double t0 = now();
    for (int i = 0; i < t; i++) {
        size_t lo = n / (size_t)t * (size_t)i,
               hi = i == t - 1 ? n : n / (size_t)t * (size_t)(i + 1);
        parts[i] = (part){fd, buf, lo, hi - lo, 0};
        started[i] = pthread_create(&th[i], NULL, write_part, &parts[i]) == 0;
    }
    int err = 0;
    for (int i = 0; i < t; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            err = EAGAIN;
        if (parts[i].err) err = parts[i].err;
    }
    double s = now() - t0;
    close(fd);
    unlink(path);
    return err ? -1 : s;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: file_write_threads PATH [MIB] [THREADS] [REPS]\n");
        return 2;
    }
    size_t n = (size_t)(argc > 2 ? atol(argv[2]) : 175) << 20;
    int t = argc > 3 ? atoi(argv[3]) : 2, reps = argc > 4 ? atoi(argv[4]) : 5;
    if (t < 1 || t > 64 || reps < 1 || reps > 100 || n == 0) return 2;
    char *buf = malloc(n);
    if (!buf) return 1;
    for (size_t i = 0; i < n; i++) buf[i] = (char)(i * 2654435761u >> 24);
    double one[100], many[100];
    for (int r = 0; r < reps; r++) {
        one[r] = timed_write(argv[1], buf, n, 1);
        many[r] = timed_write(argv[1], buf, n, t);
        if (one[r] < 0 || many[r] < 0) {
            fprintf(stderr, "file_write_threads: writing %s failed\n", argv[1]);
            return 1;
        }
        printf("run %d: 1 thread %.4f s, %d threads %.4f s\n", r + 1, one[r], t, many[r]);
    }
    qsort(one, (size_t)reps, sizeof *one, cmp);
    qsort(many, (size_t)reps, sizeof *many, cmp);
    printf("%zu MiB to %s: median 1 thread %.4f s, %d threads %.4f s: %.2fx\n", n >> 20, argv[1],
           one[reps / 2], t, many[reps / 2], one[reps / 2] / many[reps / 2]);
    free(buf);
    return 0;
}
