/*
 * backup.c - `engram backup`, `engram restore` and the temporary copy
 * behind POST /admin/backup (see backup.h).
 *
 * Restore never writes into DIR/data.mdb in place: it copies SRC into a
 * staging directory DIR/.restore-tmp, opens the copy read-only through
 * store_open (which checks the magic and the format version exactly as a
 * server start would), and only then renames it to DIR/data.mdb and removes
 * DIR/lock.mdb (LMDB's reader table, rebuilt at the next open). The
 * directory's engram.lock is held throughout, so a server cannot start on
 * DIR meanwhile and a running one makes restore refuse.
 */
#include "ops/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h"
#include "util/hash.h"

int backup_to_temp(store_t *st, const char *dir, char *path, size_t pathsz)
{
    unsigned char r[8];
    char hex[17];
    hash_random(r, sizeof r);
    hash_hex(r, sizeof r, hex);
    int n = snprintf(path, pathsz, "%s/.backup-%s.mdb", dir, hex);
    if (n < 0 || (size_t)n >= pathsz) return ENGRAM_ETOOBIG;
    return store_backup(st, path);
}

static const char *default_data(void)
{
    const char *d = getenv("ENGRAM_DATA");
    return d && *d ? d : "./engram-data";
}

int backup_main(int argc, char **argv)
{
    const char *dest = NULL, *data = default_data();
    int force = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--force")) force = 1;
        else if (argv[i][0] != '-' && !dest) dest = argv[i];
        else {
            fprintf(stderr, "usage: engram backup DEST [--data DIR] [--force]\n");
            return 2;
        }
    }
    if (!dest) {
        fprintf(stderr, "usage: engram backup DEST [--data DIR] [--force]\n");
        return 2;
    }
    struct stat sb;
    if (!force && stat(dest, &sb) == 0) {
        fprintf(stderr, "engram backup: %s exists (use --force to replace it)\n", dest);
        return 1;
    }
    store_t *st = NULL;
    store_options_t o = {.read_only = 1};
    int rc = store_open(data, &o, &st);
    if (rc) {
        fprintf(stderr, "engram backup: %s\n", store_last_error());
        return 1;
    }
    rc = store_backup(st, dest);
    store_close(st);
    if (rc) {
        fprintf(stderr, "engram backup: cannot write %s: %s\n", dest, engram_strerror(rc));
        return 1;
    }
    if (stat(dest, &sb) != 0) sb.st_size = 0;
    printf("backup of %s written to %s (%lld bytes)\n", data, dest, (long long)sb.st_size);
    return 0;
}

/* ---- restore ------------------------------------------------------------- */

static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 1 : 0;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

static int copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -errno;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return -e;
    }
    int status = 0;
    char *buf = eg_malloc(1 << 20);
    if (!buf) { status = ENGRAM_ENOMEM; goto done; }
    for (;;) {
        ssize_t n = read(in, buf, 1 << 20);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { status = -errno; goto done; }
        if (n == 0) break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) { status = -errno; goto done; }
            off += w;
        }
    }
    if (fsync(out) != 0) status = -errno;
done:
    eg_free(buf);
    close(in);
    if (close(out) != 0 && !status) status = -errno;
    return status;
}

static void remove_staging(const char *staging)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/data.mdb", staging);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", staging);
    unlink(p);
    rmdir(staging);
}

int restore_main(int argc, char **argv)
{
    const char *src = NULL, *data = default_data();
    int force = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--force")) force = 1;
        else if (argv[i][0] != '-' && !src) src = argv[i];
        else {
            fprintf(stderr, "usage: engram restore SRC [--data DIR] [--force]\n");
            return 2;
        }
    }
    if (!src || strlen(data) > 4000) {
        fprintf(stderr, "usage: engram restore SRC [--data DIR] [--force]\n");
        return 2;
    }
    struct stat sb;
    if (stat(src, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "engram restore: %s is not a readable file\n", src);
        return 1;
    }
    if (!dir_is_empty(data) && !force) {
        fprintf(stderr, "engram restore: %s is not empty; use --force to replace its database\n", data);
        return 1;
    }
    if (mkdir(data, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "engram restore: cannot create %s: %s\n", data, strerror(errno));
        return 1;
    }
    char path[4300], staging[4100], dst[4300];
    snprintf(path, sizeof path, "%s/engram.lock", data);
    int lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "engram restore: %s is in use by a running engram; stop it first\n", data);
        if (lock >= 0) close(lock);
        return 1;
    }
    int status = 1;
    snprintf(staging, sizeof staging, "%s/.restore-tmp", data);
    remove_staging(staging);
    if (mkdir(staging, 0700) != 0) {
        fprintf(stderr, "engram restore: cannot create %s: %s\n", staging, strerror(errno));
        goto done;
    }
    snprintf(path, sizeof path, "%s/data.mdb", staging);
    int rc = copy_file(src, path);
    if (rc) {
        fprintf(stderr, "engram restore: cannot copy %s: %s\n", src, engram_strerror(rc));
        goto cleanup;
    }
    store_t *st = NULL;
    store_options_t o = {.read_only = 1};
    rc = store_open(staging, &o, &st);
    if (rc) {
        fprintf(stderr, "engram restore: %s is not a usable engram backup: %s\n", src,
                store_last_error());
        goto cleanup;
    }
    store_close(st);
    snprintf(dst, sizeof dst, "%s/data.mdb", data);
    if (rename(path, dst) != 0) {
        fprintf(stderr, "engram restore: cannot install %s: %s\n", dst, strerror(errno));
        goto cleanup;
    }
    snprintf(path, sizeof path, "%s/lock.mdb", data);
    unlink(path);
    int dfd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    printf("restored %s into %s (%lld bytes)\n", src, data, (long long)sb.st_size);
    status = 0;
cleanup:
    remove_staging(staging);
done:
    close(lock); /* releases the flock */
    return status;
}
