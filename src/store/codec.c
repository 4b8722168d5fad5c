/*
 * codec.c - what the store puts into keys and values: the big-endian key
 * builder (skey_*), the zstd codec for stored text, and the mapping of LMDB
 * return codes into the project's status space.
 *
 * Keys: integers are written big-endian so that LMDB's bytewise order is
 * numeric order, and every tenant key starts with the workspace id. A key
 * never grows past 511 bytes (LMDB's key limit): an append that would not fit sets
 * overflow and writes nothing, and the caller checks overflow once at the
 * end (like buf_t's sticky error).
 *
 * Values: store_compress writes one zstd frame (level 3) that records its
 * content size and a checksum of it (frames without one, from older
 * builds, still decode); store_decompress trusts nothing in a frame: a missing,
 * unknown or too large declared size, a decoding error, a size that differs
 * from the declared one or trailing bytes are ENGRAM_ECORRUPT, never a
 * crash and never an allocation above max_out. Each thread keeps one zstd
 * compression and one decompression context for its life (zctx below):
 * creating them per call cost more than the work itself (a search answer
 * decodes ten chunk texts; profiles showed allocator and context set-up
 * taking a third of a keyword query's CPU).
 */
#include <errno.h>
#include <pthread.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "store/store.h"
#include "util/common.h"

#define CODEC_LEVEL 3

/* ---- status mapping ------------------------------------------------------ */

int store_status(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return 0;
    case MDB_NOTFOUND: return ENGRAM_ENOTFOUND;
    case MDB_KEYEXIST: return ENGRAM_EEXIST;
    case MDB_MAP_FULL: return ENGRAM_EFULL;
    case MDB_READERS_FULL: return ENGRAM_EAGAIN;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID: return ENGRAM_ECORRUPT;
    case MDB_VERSION_MISMATCH: return ENGRAM_EVERSION;
    default: break;
    }
    if (rc > 0) return -rc;                                     /* errno */
    if (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE) return ENGRAM_EIO; /* other MDB */
    return rc;                                                  /* already ours */
}

/* ---- zstd ---------------------------------------------------------------- */

/* The calling thread's contexts, made at first use and freed when the
 * thread ends (the key's destructor). Per-thread state of a pure cache: a
 * context carries no data from one call into the next (each call starts a
 * new frame). NULL when they cannot be made: the caller then makes a
 * context for the one call. */
typedef struct {
    ZSTD_CCtx *cc;
    ZSTD_DCtx *dc;
} zctx_t;

static pthread_key_t zctx_key;
static pthread_once_t zctx_once = PTHREAD_ONCE_INIT;
static int zctx_key_ok;

static void zctx_free(void *p)
{
    zctx_t *z = p;
    ZSTD_freeCCtx(z->cc);
    ZSTD_freeDCtx(z->dc);
    eg_free(z);
}

static void zctx_key_make(void) { zctx_key_ok = pthread_key_create(&zctx_key, zctx_free) == 0; }

static zctx_t *zctx(void)
{
    pthread_once(&zctx_once, zctx_key_make);
    if (!zctx_key_ok) return NULL;
    zctx_t *z = pthread_getspecific(zctx_key);
    if (z) return z;
    if (!(z = eg_calloc(1, sizeof *z))) return NULL;
    if (pthread_setspecific(zctx_key, z) != 0) {
        eg_free(z);
        return NULL;
    }
    return z;
}

/* A compression context with the codec's parameters: the thread's, or a
 * new one the caller frees (*own = 1). */
static ZSTD_CCtx *cctx_get(int *own)
{
    zctx_t *z = zctx();
    *own = 0;
    if (z && z->cc) return z->cc;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (!cc) return NULL;
    size_t n = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, CODEC_LEVEL);
    if (!ZSTD_isError(n)) n = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(n)) {
        ZSTD_freeCCtx(cc);
        return NULL;
    }
    if (z) z->cc = cc;
    else *own = 1;
    return cc;
}

static ZSTD_DCtx *dctx_get(int *own)
{
    zctx_t *z = zctx();
    *own = 0;
    if (z && z->dc) return z->dc;
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    if (!dc) return NULL;
    if (z) z->dc = dc;
    else *own = 1;
    return dc;
}

int store_compress(const void *src, size_t len, buf_t *out)
{
    if (!out || (!src && len)) return ENGRAM_EINVAL;
    if (out->err) return out->err;
    size_t bound = ZSTD_compressBound(len);
    if (ZSTD_isError(bound)) return ENGRAM_ETOOBIG;
    int status = buf_reserve(out, bound);
    if (status) return status;
    /* With a checksum (XXH64, 4 bytes) so damaged text is ECORRUPT on read,
     * not different text: without one about half of all single-bit flips in
     * a frame decoded "successfully" (docs/RELIABILITY.md). */
    int own;
    ZSTD_CCtx *cc = cctx_get(&own);
    if (!cc) return ENGRAM_ENOMEM;
    size_t n = ZSTD_compress2(cc, out->data + out->len, bound, src ? src : "", len);
    if (own) ZSTD_freeCCtx(cc);
    if (ZSTD_isError(n)) {
        return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? ENGRAM_ENOMEM : ENGRAM_EIO;
    }
    out->len += n;
    out->data[out->len] = '\0';
    return 0;
}

int store_decompress(const void *src, size_t len, size_t max_out, buf_t *out)
{
    if (!out || (!src && len)) return ENGRAM_EINVAL;
    if (out->err) return out->err;
    if (len == 0) return ENGRAM_ECORRUPT;
    unsigned long long size = ZSTD_getFrameContentSize(src, len);
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR) return ENGRAM_ECORRUPT;
    if (size > max_out) return ENGRAM_ECORRUPT;
    /* Exactly one frame: trailing bytes or a second frame are damage. */
    size_t frame = ZSTD_findFrameCompressedSize(src, len);
    if (ZSTD_isError(frame) || frame != len) return ENGRAM_ECORRUPT;
    int status = buf_reserve(out, (size_t)size);
    if (status) return status;
    int own;
    ZSTD_DCtx *dc = dctx_get(&own);
    if (!dc) return ENGRAM_ENOMEM;
    size_t n = ZSTD_decompressDCtx(dc, out->data + out->len, (size_t)size, src, len);
    if (own) ZSTD_freeDCtx(dc);
    if (ZSTD_isError(n)) {
        return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? ENGRAM_ENOMEM
                                                                     : ENGRAM_ECORRUPT;
    }
    if (n != size) return ENGRAM_ECORRUPT;
    out->len += n;
    out->data[out->len] = '\0';
    return 0;
}

/* ---- keys ---------------------------------------------------------------- */

void skey_init(store_key_t *k)
{
    k->len = 0;
    k->overflow = 0;
}

static unsigned char *skey_room(store_key_t *k, size_t n)
{
    /* 511: LMDB's default maximum key size (mdb_env_get_maxkeysize). */
    if (k->overflow || n > sizeof k->b - 1 - k->len) {
        k->overflow = 1;
        return NULL;
    }
    unsigned char *p = k->b + k->len;
    k->len += n;
    return p;
}

void skey_u64(store_key_t *k, uint64_t v)
{
    unsigned char *p = skey_room(k, 8);
    if (p) be64_put(p, v);
}

void skey_u32(store_key_t *k, uint32_t v)
{
    unsigned char *p = skey_room(k, 4);
    if (p) be32_put(p, v);
}

void skey_u8(store_key_t *k, uint8_t v)
{
    unsigned char *p = skey_room(k, 1);
    if (p) *p = v;
}

void skey_bytes(store_key_t *k, const void *src, size_t n)
{
    if (!src && n) { k->overflow = 1; return; }
    unsigned char *p = skey_room(k, n);
    if (p && n) memcpy(p, src, n);
}
