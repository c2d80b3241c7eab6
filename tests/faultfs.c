/* SPDX-License-Identifier: MIT */
/*
 * tests/faultfs.c - an LD_PRELOAD shim that makes storage calls fail on
 * demand, for tests/t_faults.sh.
 *
 *   cc -shared -fPIC -O1 -o faultfs.so tests/faultfs.c -ldl
 *   LD_PRELOAD=./faultfs.so FAULT_OP=pwrite,writev FAULT_ERRNO=ENOSPC \
 *       FAULT_AFTER=1 FAULT_COUNT=1 FAULT_PATH_SUBSTR=telemetry/ tel emit ...
 *
 * FAULT_OP            comma list: open write pwrite writev fdatasync fsync
 *                     mmap msync ftruncate
 * FAULT_ERRNO         ENOSPC (default), EIO, EDQUOT, EACCES, EROFS, ENOMEM
 * FAULT_AFTER=N       the first N matching calls succeed (default 0)
 * FAULT_COUNT=M       then M calls fail (default 0: every later one; a
 *                     persistent fault); the calls after those succeed
 * FAULT_PATH_SUBSTR=S only calls on a path containing S count (for file
 *                     descriptors, the path the descriptor was opened as)
 * FAULT_MALLOC_AFTER=N  malloc, calloc and realloc fail from their N-th
 *                     call after the program's constructors ran, for
 *                     FAULT_COUNT calls (default: for good)
 * FAULT_LOG=F         append one line "<op>" per injected failure to F
 * FAULT_SNAPSHOT_DIR=D  after every successful fdatasync of a data.mdb,
 *                     copy the file to D/<FAULT_SNAPSHOT_TAG>.<n> (and the
 *                     time, in ms, to D/<tag>.<n>.t): what a
 *                     disk honouring fdatasync holds if the power goes
 *                     right then (see docs/RELIABILITY.md)
 *
 * The shim's own work (reading /proc/self/fd, logging, copying) goes
 * through raw system calls, so it never recurses into itself nor counts
 * as a call of the program.  LMDB is a shared library calling libc
 * through the PLT, so its pwrite, writev and fdatasync are caught here
 * too; calls libc makes internally (mkostemp's open, stdio's write) are
 * not, which is why the tests match on paths under telemetry/.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { OP_OPEN, OP_WRITE, OP_PWRITE, OP_WRITEV, OP_FDATASYNC, OP_FSYNC, OP_MMAP, OP_MSYNC,
       OP_FTRUNCATE, OP_N };
static const char *const op_names[OP_N] = { "open", "write", "pwrite", "writev", "fdatasync",
                                            "fsync", "mmap", "msync", "ftruncate" };

static int armed[OP_N];
static int fault_errno = ENOSPC;
static long fault_after, fault_count;
static long matched, failed;
static const char *path_substr;
static const char *log_path;
static const char *snap_dir;
static const char *snap_tag;
static long snap_seq;
static long malloc_after = -1, malloc_calls, malloc_failed;
static int ready;

static void raw_log(const char *what)
{
    if (!log_path)
        return;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char line[64];
    int n = snprintf(line, sizeof line, "%s\n", what);
    if (n > 0)
        syscall(SYS_write, fd, line, (size_t)n);
    syscall(SYS_close, fd);
}

__attribute__((constructor)) static void faultfs_init(void)
{
    const char *ops = getenv("FAULT_OP");
    if (ops) {
        for (int i = 0; i < OP_N; i++) {
            size_t n = strlen(op_names[i]);
            for (const char *p = ops; (p = strstr(p, op_names[i])); p += n)
                if ((p == ops || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
                    armed[i] = 1;
        }
    }
    const char *e = getenv("FAULT_ERRNO");
    if (e) {
        static const struct { const char *n; int v; } names[] = {
            { "ENOSPC", ENOSPC }, { "EIO", EIO }, { "EDQUOT", EDQUOT },
            { "EACCES", EACCES }, { "EROFS", EROFS }, { "ENOMEM", ENOMEM },
        };
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (strcmp(e, names[i].n) == 0)
                fault_errno = names[i].v;
    }
    if ((e = getenv("FAULT_AFTER")))
        fault_after = atol(e);
    if ((e = getenv("FAULT_COUNT")))
        fault_count = atol(e);
    if ((e = getenv("FAULT_MALLOC_AFTER")) && *e)
        malloc_after = atol(e);
    path_substr = getenv("FAULT_PATH_SUBSTR");
    log_path = getenv("FAULT_LOG");
    snap_dir = getenv("FAULT_SNAPSHOT_DIR");
    snap_tag = getenv("FAULT_SNAPSHOT_TAG");
    ready = 1;
}

static int path_matches(const char *path)
{
    return !path_substr || !*path_substr || (path && strstr(path, path_substr));
}

static int fd_path(int fd, char *buf, size_t size)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    long n = syscall(SYS_readlinkat, AT_FDCWD, link, buf, size - 1);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

static int fd_matches(int fd)
{
    if (!path_substr || !*path_substr)
        return 1;
    char p[4096];
    return fd_path(fd, p, sizeof p) == 0 && path_matches(p);
}

/* Decides whether this call of `op` fails; sets errno when it does. */
static int should_fail(int op, int matches)
{
    if (!ready || !armed[op] || !matches)
        return 0;
    long n = matched++;
    if (n < fault_after)
        return 0;
    if (fault_count > 0 && failed >= fault_count)
        return 0;
    failed++;
    raw_log(op_names[op]);
    errno = fault_errno;
    return 1;
}

#define REAL(ret, name, ...)                                             \
    static ret (*real_##name)(__VA_ARGS__);                              \
    if (!real_##name)                                                    \
        real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

/* ---------------------------------------------------------------- open */

/* The mode argument exists only when the flags create a file. */
#define OPEN_MODE(mode, flags)                                           \
    mode_t mode = 0;                                                     \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                               \
        va_list ap_;                                                     \
        va_start(ap_, flags);                                            \
        mode = (mode_t)va_arg(ap_, int);                                 \
        va_end(ap_);                                                     \
    }

static int open_common(int (*real)(const char *, int, ...), const char *path, int flags,
                       mode_t mode)
{
    if (should_fail(OP_OPEN, path_matches(path)))
        return -1;
    return real(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    REAL(int, open, const char *, int, ...);
    OPEN_MODE(mode, flags);
    return open_common(real_open, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    REAL(int, open64, const char *, int, ...);
    OPEN_MODE(mode, flags);
    return open_common(real_open64, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    REAL(int, openat, int, const char *, int, ...);
    OPEN_MODE(mode, flags);
    if (should_fail(OP_OPEN, path_matches(path)))
        return -1;
    return real_openat(dirfd, path, flags, mode);
}

/* --------------------------------------------------------------- writes */

ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(ssize_t, write, int, const void *, size_t);
    if (should_fail(OP_WRITE, armed[OP_WRITE] && fd_matches(fd)))
        return -1;
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
    if (should_fail(OP_PWRITE, armed[OP_PWRITE] && fd_matches(fd)))
        return -1;
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    REAL(ssize_t, pwrite64, int, const void *, size_t, off_t);
    if (should_fail(OP_PWRITE, armed[OP_PWRITE] && fd_matches(fd)))
        return -1;
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(ssize_t, writev, int, const struct iovec *, int);
    if (should_fail(OP_WRITEV, armed[OP_WRITEV] && fd_matches(fd)))
        return -1;
    return real_writev(fd, iov, cnt);
}

int ftruncate(int fd, off_t len)
{
    REAL(int, ftruncate, int, off_t);
    if (should_fail(OP_FTRUNCATE, armed[OP_FTRUNCATE] && fd_matches(fd)))
        return -1;
    return real_ftruncate(fd, len);
}

/* ---------------------------------------------------------------- syncs */

/* Copies the file behind fd, as the kernel has it now, into the snapshot
 * directory: right after fdatasync returned, that is the disk's content. */
static void snapshot(int fd)
{
    char p[4096];
    if (!snap_dir || fd_path(fd, p, sizeof p) != 0)
        return;
    size_t pl = strlen(p);
    if (pl < 9 || strcmp(p + pl - 9, "/data.mdb") != 0)
        return;
    char dst[4200];
    snprintf(dst, sizeof dst, "%s/%s.%ld", snap_dir, snap_tag ? snap_tag : "snap", snap_seq++);
    int out = (int)syscall(SYS_openat, AT_FDCWD, dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        return;
    static char buf[65536];
    off_t off = 0;
    for (;;) {
        long r = syscall(SYS_pread64, fd, buf, sizeof buf, off);
        if (r <= 0)
            break;
        if (syscall(SYS_write, out, buf, (size_t)r) != r)
            break;
        off += r;
    }
    syscall(SYS_close, out);
    /* The file's mtime is only as fine as the kernel's tick; the tests
     * compare this instant with a collector's clock in milliseconds. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char tpath[4300], line[32];
    snprintf(tpath, sizeof tpath, "%s.t", dst);
    int n = snprintf(line, sizeof line, "%lld\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    int tfd = (int)syscall(SYS_openat, AT_FDCWD, tpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (tfd >= 0) {
        syscall(SYS_write, tfd, line, (size_t)n);
        syscall(SYS_close, tfd);
    }
}

int fdatasync(int fd)
{
    REAL(int, fdatasync, int);
    if (should_fail(OP_FDATASYNC, armed[OP_FDATASYNC] && fd_matches(fd)))
        return -1;
    int rc = real_fdatasync(fd);
    if (rc == 0 && snap_dir)
        snapshot(fd);
    return rc;
}

int fsync(int fd)
{
    REAL(int, fsync, int);
    if (should_fail(OP_FSYNC, armed[OP_FSYNC] && fd_matches(fd)))
        return -1;
    int rc = real_fsync(fd);
    if (rc == 0 && snap_dir)
        snapshot(fd);
    return rc;
}

/* ---------------------------------------------------------------- maps */

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    REAL(void *, mmap, void *, size_t, int, int, int, off_t);
    if (fd >= 0 && should_fail(OP_MMAP, armed[OP_MMAP] && fd_matches(fd)))
        return MAP_FAILED;
    return real_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    REAL(void *, mmap64, void *, size_t, int, int, int, off_t);
    if (fd >= 0 && should_fail(OP_MMAP, armed[OP_MMAP] && fd_matches(fd)))
        return MAP_FAILED;
    return real_mmap64(addr, len, prot, flags, fd, off);
}

int msync(void *addr, size_t len, int flags)
{
    REAL(int, msync, void *, size_t, int);
    if (should_fail(OP_MSYNC, 1))
        return -1;
    return real_msync(addr, len, flags);
}

/* --------------------------------------------------------------- memory */

/* glibc's own entry points: dlsym would itself allocate. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static int malloc_fails(void)
{
    if (!ready || malloc_after < 0)
        return 0;
    if (malloc_calls++ < malloc_after)
        return 0;
    if (fault_count > 0 && malloc_failed >= fault_count)
        return 0;
    malloc_failed++;
    raw_log("malloc");
    errno = ENOMEM;
    return 1;
}

void *malloc(size_t n)
{
    return malloc_fails() ? NULL : __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    return malloc_fails() ? NULL : __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    return malloc_fails() ? NULL : __libc_realloc(p, n);
}
