/* SPDX-License-Identifier: MIT */
/*
 * libqueue/paths.c - app names, where state and config live, and the
 * private directories that hold them.
 *
 * The app name ends up as a path component and in environment variable
 * names, so it is checked before anything is built from it: nothing that
 * could climb out of the state root ("..", "/") or hide ('.') gets through.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "erasure.h"
#include "internal.h"

#define APP_MAX 64

int tel__app_check(const char *app)
{
    if (app == NULL)
        return tel__fail(TEL_ERR_INVALID, "app name is missing");
    /* strnlen so that a huge or unterminated-looking argument is measured
     * only as far as it matters for the message. */
    size_t n = strnlen(app, 4096);
    if (n == 0)
        return tel__fail(TEL_ERR_INVALID, "app name is empty");
    if (n > APP_MAX)
        return tel__fail(TEL_ERR_INVALID, "app name is %s%zu bytes long; at most %d allowed",
                         n >= 4096 ? "at least " : "", n, APP_MAX);
    if (app[0] == '.')
        return tel__fail(TEL_ERR_INVALID, "app name may not start with '.'");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)app[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
            continue;
        if (c >= 'A' && c <= 'Z')
            return tel__fail(TEL_ERR_INVALID,
                             "app name has an upper-case letter at byte %zu; use [a-z0-9._-]", i);
        /* The offending byte is named, not the whole value: the name may be
         * a path someone tried to smuggle in. */
        if (c > 0x20 && c < 0x7f)
            return tel__fail(TEL_ERR_INVALID,
                             "app name has '%c' at byte %zu; use [a-z0-9._-]", c, i);
        return tel__fail(TEL_ERR_INVALID,
                         "app name has byte 0x%02x at byte %zu; use [a-z0-9._-]", c, i);
    }
    return TEL_OK;
}

/*
 * The base directory of an XDG kind: $<xdg_var> when it is absolute (the
 * spec says a relative value must be ignored), else $HOME/<home_rel>.
 * Trailing slashes are dropped so that joined paths stay canonical.
 */
static int xdg_base(const char *xdg_var, const char *home_rel, char *out, size_t size)
{
    const char *x = getenv(xdg_var);
    int n;
    if (x != NULL && x[0] == '/') {
        n = snprintf(out, size, "%s", x);
    } else {
        const char *home = getenv("HOME");
        if (home == NULL || home[0] == '\0')
            return tel__fail(TEL_ERR_NOSTATE, "HOME is not set, so there is no state directory");
        if (home[0] != '/')
            return tel__fail(TEL_ERR_NOSTATE, "HOME is not an absolute path");
        n = snprintf(out, size, "%s/%s", home, home_rel);
    }
    if (n < 0 || (size_t)n >= size)
        return tel__fail(TEL_ERR_NOSTATE, "the %s directory path is too long",
                         strcmp(xdg_var, "XDG_STATE_HOME") == 0 ? "state" : "config");
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return TEL_OK;
}

/* base "/" b ["/" c], where a base of "/" must not give "//b". */
static int join(char *out, size_t size, const char *what, const char *base, const char *b,
                const char *c)
{
    const char *sep = strcmp(base, "/") == 0 ? "" : "/";
    int n = c ? snprintf(out, size, "%s%s%s/%s", base, sep, b, c)
              : snprintf(out, size, "%s%s%s", base, sep, b);
    if (n < 0 || (size_t)n >= size)
        return tel__fail(TEL_ERR_NOSTATE, "the %s path is too long", what);
    return TEL_OK;
}

int tel__state_root(char *out, size_t size)
{
    return xdg_base("XDG_STATE_HOME", ".local/state", out, size);
}

int tel__state_dir_env(const char *app, char *out, size_t size)
{
    char name[TEL_MAX_NAME + 32];
    tel__env_name(app, "STATE_DIR", name, sizeof name);
    const char *v = getenv(name);
    if (!v || !v[0])
        return TEL_ERR_NOTFOUND;
    /* Like a relative XDG_STATE_HOME, a relative value is ignored. */
    if (v[0] != '/' || strlen(v) >= size || strlen(v) > TEL_PATH_MAX - 64)
        return TEL_ERR_INVALID;
    strcpy(out, v);
    return TEL_OK;
}

int tel__exec_id_env(const char *app, uint8_t out[TEL_ID_LEN])
{
    char name[TEL_MAX_NAME + 32];
    tel__env_name(app, "EXEC_ID", name, sizeof name);
    const char *v = getenv(name);
    if (!v || !v[0])
        return TEL_ERR_NOTFOUND;
    return tel__uuid_parse(v, strnlen(v, 37), out) == 0 ? TEL_OK : TEL_ERR_INVALID;
}

int tel__state_dir(const char *app, char *out, size_t size)
{
    char base[TEL_PATH_MAX];
    int rc = tel__app_check(app);
    if (rc != TEL_OK)
        return rc;
    if (tel__state_dir_env(app, out, size) == TEL_OK)
        return TEL_OK;
    rc = tel__state_root(base, sizeof base);
    if (rc != TEL_OK)
        return rc;
    return join(out, size, "state directory", base, app, NULL);
}

int tel__config_path(const char *app, char *out, size_t size)
{
    char base[TEL_PATH_MAX];
    int rc = tel__app_check(app);
    if (rc != TEL_OK)
        return rc;
    rc = xdg_base("XDG_CONFIG_HOME", ".config", base, sizeof base);
    if (rc != TEL_OK)
        return rc;
    return join(out, size, "config file", base, app, "telemetry.conf");
}

/*
 * Directories are walked with *at() calls from a descriptor of the parent,
 * so a component cannot be swapped for a symlink between the check and
 * the use.  Parents that already exist are only traversed (O_PATH needs no
 * read permission, and a $HOME reached through a symlink is the user's own
 * business); what this function creates is opened with O_NOFOLLOW, and so
 * is the last component whether created or not.
 */
#ifdef O_PATH
#define WALK_FLAGS (O_PATH | O_DIRECTORY | O_CLOEXEC)
#else
#define WALK_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)
#endif

/* Makes a just-created directory 0700 whatever the umask did to it. */
static int make_private(int parent, const char *name)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES)
        /* A umask that removed the owner's own bits: fix them by name;
         * AT_SYMLINK_NOFOLLOW keeps a swapped-in symlink untouched. */
        return fchmodat(parent, name, 0700, AT_SYMLINK_NOFOLLOW);
    if (fd < 0)
        return -1;
    int rc = fchmod(fd, 0700);
    close(fd);
    return rc;
}

int tel__mkdir_private(const char *path)
{
    char buf[TEL_PATH_MAX];
    if (path == NULL || path[0] == '\0')
        return tel__fail(TEL_ERR_NOSTATE, "no directory was given");
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return tel__fail(TEL_ERR_NOSTATE, "the directory path is too long");
    memcpy(buf, path, len + 1);

    int dirfd = open(buf[0] == '/' ? "/" : ".", WALK_FLAGS);
    if (dirfd < 0)
        return tel__fail(TEL_ERR_NOSTATE, "cannot open the directory's parent (errno %d)", errno);

    char *p = buf;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        char *name = p;
        while (*p != '\0' && *p != '/')
            p++;
        char *end = p;
        while (*p == '/')
            p++;
        int last = (*p == '\0');
        *end = '\0';

        int flags = WALK_FLAGS | (last ? O_NOFOLLOW : 0);
        int fd = openat(dirfd, name, flags);
        if (fd < 0 && errno == ENOENT) {
            if (mkdirat(dirfd, name, 0700) == 0) {
                if (make_private(dirfd, name) != 0) {
                    int e = errno;
                    close(dirfd);
                    return tel__fail(TEL_ERR_NOSTATE, "cannot make a new directory private (errno %d)", e);
                }
                fd = openat(dirfd, name, WALK_FLAGS | O_NOFOLLOW);
            } else if (errno == EEXIST) {
                /* Someone else made it first: treat it as pre-existing. */
                fd = openat(dirfd, name, flags);
            } else {
                int e = errno;
                close(dirfd);
                return tel__fail(TEL_ERR_NOSTATE, "cannot create a directory (%s)", strerror(e));
            }
        }
        /* An existing directory of ours that others may write to could
         * have the cookie or the queue swapped under us: tighten it, as
         * the queue tightens its own.  Someone else's is left alone (and
         * refused further on where it matters). */
        struct stat est;
        if (fd >= 0 && last && fstat(fd, &est) == 0 && S_ISDIR(est.st_mode) &&
            est.st_uid == geteuid() && (est.st_mode & 077))
            make_private(dirfd, name);
        if (fd < 0) {
            int e = errno;
            close(dirfd);
            if (e == ELOOP || e == ENOTDIR)
                return tel__fail(TEL_ERR_NOSTATE, "%s is a symlink or not a directory",
                                 last ? "the directory" : "a parent of the directory");
            return tel__fail(TEL_ERR_NOSTATE, "cannot open a directory (%s)", strerror(e));
        }
        close(dirfd);
        dirfd = fd;
    }

    /* O_DIRECTORY already refused anything else; fstat makes the promise
     * explicit and catches a path made only of "/" or ".". */
    struct stat st;
    int ok = fstat(dirfd, &st) == 0 && S_ISDIR(st.st_mode);
    close(dirfd);
    if (!ok)
        return tel__fail(TEL_ERR_NOSTATE, "the directory is not a directory");
    return TEL_OK;
}

void tel__env_name(const char *app, const char *suffix, char *out, size_t size)
{
    size_t o = 0;
    if (out == NULL || size == 0)
        return;
    for (const char *s = app ? app : ""; *s != '\0' && o + 1 < size; s++) {
        char c = *s;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (c == '.' || c == '-')
            c = '_';
        out[o++] = c;
    }
    /* The rest is copied whole, not byte by byte: every emit builds about
     * ten of these names. */
    const char *rest[2] = { "_TELEMETRY_", suffix ? suffix : "" };
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(rest[k]);
        if (n > size - 1 - o)
            n = size - 1 - o;
        memcpy(out + o, rest[k], n);
        o += n;
    }
    out[o] = '\0';
}

/* root/app/sub is a real directory (not a link). */
static int has_dir(const char *root, const char *app, const char *sub)
{
    char path[TEL_PATH_MAX + 80];
    struct stat st;
    return (size_t)snprintf(path, sizeof path, "%s/%s/%s", root, app, sub) < sizeof path &&
           lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int tel__each_app(void (*fn)(void *ud, const char *app), void *ud)
{
    char root[TEL_PATH_MAX];
    int rc = tel__state_root(root, sizeof root);
    if (rc != TEL_OK)
        return rc;
    struct dirent **names;
    int n = scandir(root, &names, NULL, alphasort);
    if (n < 0)
        return errno == ENOENT ? TEL_OK
                               : tel__fail(TEL_ERR_NOSTATE, "cannot list the state directory: %s",
                                           strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (name[0] != '.' && tel__app_check(name) == TEL_OK &&
            (has_dir(root, name, TEL_QUEUE_DIR) || has_dir(root, name, TEL_ERASURE_DIR)))
            fn(ud, name);
        free(names[i]);
    }
    free(names);
    return TEL_OK;
}

int tel__open_file(const char *path, int flags, mode_t mode)
{
    int fd = open(path, flags | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        /* A symlink, a FIFO without a peer, a socket, a directory. */
        if (errno == ELOOP || errno == ENXIO || errno == EISDIR)
            errno = EINVAL;
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

int tel__file_replaced(const char *path, dev_t dev, ino_t ino)
{
#ifdef STATX_INO
    /* Where statx() fails (a missing file, or a sandbox that refuses the
     * call), lstat() below decides. */
    struct statx stx;
    if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_INO, &stx) == 0)
        return makedev(stx.stx_dev_major, stx.stx_dev_minor) != dev || stx.stx_ino != ino;
#endif
    struct stat st;
    return lstat(path, &st) != 0 || st.st_dev != dev || st.st_ino != ino;
}

const char *tel__open_file_why(int err)
{
    return err == EINVAL ? "not a regular file (a symlink, FIFO, device or directory is never opened)"
                         : strerror(err);
}
