/*
 * backup.h - hot backups and restores of a data directory.
 *
 * A backup is one LMDB data file made by store_backup (mdb_env_copyfd2 with
 * MDB_CP_COMPACT inside one read transaction): a consistent snapshot of
 * every committed transaction at the moment it started, free pages left
 * out, while the server keeps reading and writing (LMDB readers never block
 * the writer). It is exactly a data.mdb: restoring is putting it in an
 * empty directory under that name.
 *
 *   engram backup DEST [--data DIR]     beside a running server (opens the
 *                                       store read-only, takes no lock)
 *   engram restore SRC [--data DIR] [--force]
 *                                       checks SRC is an engram store of this
 *                                       format version, then installs it as
 *                                       DIR/data.mdb; refuses a non-empty DIR
 *                                       without --force, and always refuses a
 *                                       DIR a running server holds
 */
#ifndef ENGRAM_BACKUP_H
#define ENGRAM_BACKUP_H

#include <stddef.h>

#include "store/store.h"

/* Makes a backup of st into a new hidden file in dir (the data directory:
 * same file system, writable under the systemd sandbox) and writes its path
 * to path. The caller streams it and unlinks it. */
int backup_to_temp(store_t *st, const char *dir, char *path, size_t pathsz);

/* The commands; argv[0] is the command name. Return the exit code (0 ok,
 * 1 failure, 2 usage). */
int backup_main(int argc, char **argv);
int restore_main(int argc, char **argv);

#endif
