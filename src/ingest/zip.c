/*
 * zip.c - the bounded zip reader (zip.h).
 *
 * Layout read (PKWARE APPNOTE 4.3): the end-of-central-directory record
 * (EOCD, "PK\5\6", 22 bytes + a comment of up to 65,535) sits at the end;
 * it gives the number of entries and the central directory's offset and
 * size. Each central header ("PK\1\2", 46 bytes + name + extra + comment)
 * gives an entry's method, CRC, sizes and its local header's offset. The
 * local header ("PK\3\4", 30 bytes + name + extra) precedes the data; its
 * own sizes may be zero (data descriptor), so the central directory's are
 * used.
 *
 * Every read of a field goes through rd16/rd32 after a range check written
 * as "len <= n - off" (never off + len, which could wrap).
 */
#include "ingest/zip.h"

#include <string.h>
#include <zlib.h>

#include "util/common.h"

#define EOCD_SIZE 22
#define CEN_SIZE 46
#define LOC_SIZE 30
#define RATIO_FLOOR (1u << 20) /* entries smaller than this skip the ratio check */

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* 1 when [off, off + len) lies inside [0, n). */
static int in_range(size_t n, size_t off, size_t len) { return off <= n && len <= n - off; }

#define FAIL(code, phrase) do { rc = (code); if (why) *why = (phrase); goto fail; } while (0)

int zip_open(zip_t *z, const void *p, size_t n, size_t max_entries, size_t max_total,
             uint32_t max_ratio, const char **why)
{
    int rc = 0;
    memset(z, 0, sizeof *z);
    z->p = p;
    z->n = n;
    z->max_total = max_total;
    z->max_ratio = max_ratio;
    const unsigned char *b = p;
    if (n < EOCD_SIZE) FAIL(ENGRAM_EINVAL, "the file is too short to be a zip archive");

    /* The EOCD is the last "PK\5\6" whose comment length reaches the end. */
    size_t eocd = (size_t)-1;
    size_t lowest = n - EOCD_SIZE > 65535 ? n - EOCD_SIZE - 65535 : 0;
    for (size_t i = n - EOCD_SIZE + 1; i-- > lowest;) {
        if (b[i] == 'P' && memcmp(b + i, "PK\5\6", 4) == 0 &&
            i + EOCD_SIZE + rd16(b + i + 20) == n) {
            eocd = i;
            break;
        }
    }
    if (eocd == (size_t)-1) {
        /* tolerate trailing garbage: any EOCD signature at all */
        for (size_t i = n - EOCD_SIZE + 1; i-- > lowest;)
            if (b[i] == 'P' && memcmp(b + i, "PK\5\6", 4) == 0) { eocd = i; break; }
    }
    if (eocd == (size_t)-1) FAIL(ENGRAM_EINVAL, "the zip directory is missing (truncated file?)");
    const unsigned char *e = b + eocd;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0 || rd16(e + 8) != rd16(e + 10))
        FAIL(ENGRAM_EUNSUPPORTED, "multi-part zip archives are not supported");
    size_t count = rd16(e + 10);
    uint32_t cd_size = rd32(e + 12), cd_off = rd32(e + 16);
    if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu)
        FAIL(ENGRAM_EUNSUPPORTED, "ZIP64 archives are not supported");
    if (count > max_entries) FAIL(ENGRAM_ETOOBIG, "the archive has too many entries");
    if (!in_range(eocd, cd_off, cd_size))
        FAIL(ENGRAM_EINVAL, "the zip directory is truncated or misplaced");
    if (count == 0) return 0;
    z->entries = eg_calloc(count, sizeof *z->entries);
    if (!z->entries) FAIL(ENGRAM_ENOMEM, "out of memory");

    size_t off = cd_off, end = (size_t)cd_off + cd_size;
    for (size_t k = 0; k < count; k++) {
        if (!in_range(end, off, CEN_SIZE) || memcmp(b + off, "PK\1\2", 4) != 0)
            FAIL(ENGRAM_EINVAL, "the zip directory is corrupt");
        const unsigned char *c = b + off;
        size_t nl = rd16(c + 28), xl = rd16(c + 30), cl = rd16(c + 32);
        if (!in_range(end, off + CEN_SIZE, nl + xl + cl))
            FAIL(ENGRAM_EINVAL, "the zip directory is truncated");
        zip_entry_t *en = &z->entries[k];
        en->flags = rd16(c + 8);
        en->method = rd16(c + 10);
        en->crc = rd32(c + 16);
        en->csize = rd32(c + 20);
        en->usize = rd32(c + 24);
        en->local_off = rd32(c + 42);
        en->name = (const char *)c + CEN_SIZE;
        en->name_len = nl;
        if (en->csize == 0xFFFFFFFFu || en->usize == 0xFFFFFFFFu || en->local_off == 0xFFFFFFFFu)
            FAIL(ENGRAM_EUNSUPPORTED, "ZIP64 archives are not supported");
        off += CEN_SIZE + nl + xl + cl;
    }
    z->n_entries = count;
    return 0;
fail:
    eg_free(z->entries);
    z->entries = NULL;
    return rc;
}

long zip_find(const zip_t *z, const char *name)
{
    size_t m = strlen(name);
    for (size_t i = 0; i < z->n_entries; i++)
        if (z->entries[i].name_len == m && memcmp(z->entries[i].name, name, m) == 0) return (long)i;
    return -1;
}

static void *zalloc(void *opaque, unsigned items, unsigned size)
{
    (void)opaque;
    return eg_calloc(items, size);
}
static void zfree(void *opaque, void *ptr)
{
    (void)opaque;
    eg_free(ptr);
}

/* Inflates src[0..sn) (raw deflate) into dst[0..dn); the output must be
 * exactly dn bytes. */
static int inflate_exact(const unsigned char *src, size_t sn, unsigned char *dst, size_t dn,
                         const char **why)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = zalloc;
    zs.zfree = zfree;
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
        if (why) *why = "out of memory";
        return ENGRAM_ENOMEM;
    }
    zs.next_in = (unsigned char *)src;
    zs.avail_in = (uInt)sn;
    zs.next_out = dst;
    zs.avail_out = (uInt)dn;
    int zr = inflate(&zs, Z_FINISH);
    int rc = 0;
    if (zr == Z_MEM_ERROR) {
        rc = ENGRAM_ENOMEM;
        if (why) *why = "out of memory";
    } else if (zr != Z_STREAM_END || zs.total_out != dn) {
        /* Z_BUF_ERROR with no room left: it wanted to write more than declared */
        rc = ENGRAM_EINVAL;
        if (why) *why = zs.avail_out == 0 && zr != Z_STREAM_END
                            ? "an entry inflates to more than its declared size"
                            : "an entry's compressed data is corrupt or truncated";
    }
    inflateEnd(&zs);
    return rc;
}

int zip_read(zip_t *z, size_t idx, size_t max_size, unsigned char **out, size_t *out_len,
             const char **why)
{
    int rc = 0;
    unsigned char *dst = NULL;
    *out = NULL;
    *out_len = 0;
    if (idx >= z->n_entries) FAIL(ENGRAM_EINVAL, "no such entry");
    const zip_entry_t *en = &z->entries[idx];
    if (en->flags & 1) FAIL(ENGRAM_EUNSUPPORTED, "the archive is encrypted");
    if (en->method != 0 && en->method != 8)
        FAIL(ENGRAM_EUNSUPPORTED, "an entry uses an unsupported compression method");
    if (en->usize > max_size) FAIL(ENGRAM_ETOOBIG, "an entry is larger than the limit");
    if (en->usize > z->max_total - z->total)
        FAIL(ENGRAM_ETOOBIG, "the archive inflates to more than the limit");
    if (en->usize >= RATIO_FLOOR && (uint64_t)en->usize > (uint64_t)en->csize * z->max_ratio)
        FAIL(ENGRAM_ETOOBIG, "an entry's compression ratio is suspiciously high (zip bomb?)");
    if (en->method == 0 && en->csize != en->usize)
        FAIL(ENGRAM_EINVAL, "a stored entry's sizes disagree");

    size_t lo = en->local_off;
    if (!in_range(z->n, lo, LOC_SIZE) || memcmp(z->p + lo, "PK\3\4", 4) != 0)
        FAIL(ENGRAM_EINVAL, "an entry's local header is missing (truncated file?)");
    size_t data = lo + LOC_SIZE + rd16(z->p + lo + 26) + rd16(z->p + lo + 28);
    if (!in_range(z->n, data, en->csize))
        FAIL(ENGRAM_EINVAL, "an entry's data is truncated");

    dst = eg_malloc((size_t)en->usize + 1);
    if (!dst) FAIL(ENGRAM_ENOMEM, "out of memory");
    if (en->method == 0) {
        memcpy(dst, z->p + data, en->usize);
    } else {
        rc = inflate_exact(z->p + data, en->csize, dst, en->usize, why);
        if (rc) goto fail;
    }
    if (crc32(0L, dst, en->usize) != en->crc)
        FAIL(ENGRAM_EINVAL, "an entry fails its CRC check (corrupt file)");
    z->total += en->usize;
    dst[en->usize] = '\0';
    *out = dst;
    *out_len = en->usize;
    return 0;
fail:
    eg_free(dst);
    return rc;
}

void zip_close(zip_t *z)
{
    if (!z) return;
    eg_free(z->entries);
    memset(z, 0, sizeof *z);
}
