/*
 * zip.h - a small, bounded reader for zip archives held in memory (DOCX).
 *
 * zip_open() finds the end-of-central-directory record, checks that the
 * central directory lies inside the bytes, and indexes its entries; every
 * offset and length read from the file is checked against the buffer before
 * use. zip_read() checks the entry's local header, then returns the entry's
 * bytes: stored as is, or deflated through zlib's inflate, verifying the
 * CRC-32.
 *
 * Limits, each failing with ENGRAM_ETOOBIG (zip bombs fail cleanly, having
 * cost at most the limits): entries in the directory (max_entries), bytes
 * of one entry (max_size argument of zip_read), bytes inflated by all reads
 * of one archive together (max_total), and, for entries over 1 MiB, the
 * ratio of uncompressed to compressed size (max_ratio). The declared size
 * is an upper bound that is enforced while inflating: an entry that
 * inflates to more than it declared is malformed.
 *
 * Not supported (ENGRAM_EUNSUPPORTED): ZIP64, multi-disk archives,
 * encrypted entries, methods other than stored (0) and deflate (8).
 * Malformed archives are ENGRAM_EINVAL; *why (when not NULL) then points to
 * a static phrase for messages ("the central directory is truncated").
 *
 * The archive borrows the bytes given to zip_open: they must outlive it.
 * Not thread-safe per archive (the running total); archives are
 * independent.
 */
#ifndef ENGRAM_ZIP_H
#define ENGRAM_ZIP_H

#include <stddef.h>
#include <stdint.h>

typedef struct zip_entry {
    const char *name;   /* points into the archive's bytes, not NUL-terminated */
    size_t name_len;
    uint16_t method;
    uint16_t flags;
    uint32_t crc;
    uint32_t csize, usize;
    uint32_t local_off;
} zip_entry_t;

typedef struct zip {
    const unsigned char *p;
    size_t n;
    zip_entry_t *entries;
    size_t n_entries;
    size_t max_total, total;
    uint32_t max_ratio;
} zip_t;

/* Indexes the archive p[0..n). On success free with zip_close. */
int zip_open(zip_t *z, const void *p, size_t n, size_t max_entries, size_t max_total,
             uint32_t max_ratio, const char **why);
/* Index of the entry named name (exact, case-sensitive), or -1. */
long zip_find(const zip_t *z, const char *name);
/* Reads entry idx into a new buffer (*out, *out_len; NUL-terminated for
 * convenience; free with eg_free). Fails with ENGRAM_ETOOBIG when the entry
 * declares more than max_size bytes or breaks the archive's limits. */
int zip_read(zip_t *z, size_t idx, size_t max_size, unsigned char **out, size_t *out_len,
             const char **why);
void zip_close(zip_t *z);

#endif
