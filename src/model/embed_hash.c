/*
 * embed_hash.c - the built-in "hash" embedder: signed feature hashing of
 * words, word pairs and character n-grams into a fixed dimension.
 *
 * It is a LEXICAL embedding, not a semantic model: two texts are close when
 * they share words, adjacent word pairs and pieces of words (so "diffusion"
 * and "diffusivity" meet through their common n-grams), never because they
 * mean the same thing in different words. It needs no model file and no
 * service, and is the same on every machine.
 *
 * How it works. The words of a text come from the project's tokenizer (the
 * BM25 view: NFKC, case fold, stripped marks, Snowball "english" stems), or
 * from a light ASCII normalisation (see embed_hash_params_t); English
 * function words (the tokenizer's 33 stop words and about 110 more) carry
 * no topic and are dropped. Each remaining word gives
 *   - its unigram,
 *   - the bigram with the word before it,
 *   - the character n-grams (char_min..char_max code points) of "<word>",
 *     the angle brackets marking the word's boundaries.
 * Each feature is hashed (FNV-1a 64 over a kind seed and the bytes, then the
 * splitmix64 finaliser) to 64 bits: the high 32 bits pick the bucket
 * (multiply-shift onto [0, dim)), bit 31 the sign (+1/-1) so collisions
 * cancel on average instead of piling up, and the low 2 bits are replaced by
 * the feature kind. The hashes of a text are sorted; each distinct feature,
 * seen tf times, adds sign * w_kind * (1 + ln tf) to its bucket (sublinear
 * term frequency), and the vector is scaled to unit length. A text without
 * features is the zero vector.
 *
 * Measured on BEIR SciFact (5,183 documents embedded whole, 300 test
 * queries, exact cosine search, nDCG@10 / Recall@100), dim 384:
 *   words from the tokenizer (stemmed), Lucene's 33 stop words dropped:
 *     u + b(0.5) + c3-5(0.35)                              0.4390 / 0.766
 *     unigrams only                                        0.4330 / 0.733
 *     u + b(0.5)                                           0.4067 / 0.715
 *     u + c3-5(0.35)                                       0.4505 / 0.791
 *   + the function-word list, u + b(0.25) + c3-4(0.5)      0.4856 / 0.804  <- v1
 *     the same with all stop words kept                    0.4387 / 0.758
 *     light words (no stemming), function words dropped    0.4287 / 0.764
 *   v1 at dim 128 / 256 / 768 / 1024: 0.2886 / 0.4211 / 0.5553 / 0.5522
 *   (BM25 on the same data: 0.6850.) Hash collisions are what costs most at
 *   small dimensions; weighting words by length did not help (0.4745).
 * So v1 takes the tokenizer's words (BM25's view) without function words;
 * see docs/EMBEDDINGS.md.
 * Changing anything here that changes vectors must change the id
 * ("hash-v1-<dim>"): stored indexes and caches are keyed by it.
 *
 * Thread-safety: the parameters are immutable; tokenizers (one per running
 * call) come from a small pool under a mutex; everything else is per call.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "index/tokenizer.h"
#include "model/embed_internal.h"
#include "util/common.h"

#define POOL_MAX 32
#define SEED_UNIGRAM 0x75ULL
#define SEED_BIGRAM 0x62ULL
#define SEED_CHAR 0x63ULL
#define KIND_UNIGRAM 0
#define KIND_BIGRAM 1
#define KIND_CHAR 2

struct embed_hash {
    embed_hash_params_t p;
    tok_options_t tok;
    pthread_mutex_t lock;    /* guards pool/npool only */
    tokenizer_t *pool[POOL_MAX];
    int npool;
};

embed_hash_params_t embed_hash_default_params(uint32_t dim)
{
    embed_hash_params_t p;
    memset(&p, 0, sizeof p);
    p.dim = dim ? dim : EMBED_HASH_DEFAULT_DIM;
    p.words = EMBED_HASH_WORDS_TOKENIZER;
    p.stopwords = 1;
    p.function_words = 1;
    p.w_unigram = 1.0f;
    p.w_bigram = 0.25f;
    p.w_char = 0.5f;
    p.char_min = 3;
    p.char_max = 4;
    return p;
}

/* ---- hashing --------------------------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static inline uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= FNV_PRIME;
    }
    return h;
}

static inline uint64_t fnv_byte(uint64_t h, unsigned char c)
{
    h ^= c;
    return h * FNV_PRIME;
}

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t feature(uint64_t h, unsigned kind)
{
    return (mix64(h) & ~(uint64_t)3) | kind;
}

/* ---- feature collection ---------------------------------------------------- */

typedef struct feats {
    const embed_hash_params_t *p;
    uint64_t *h;
    size_t n, cap;
    uint64_t prev;           /* unigram hash of the previous word */
    int have_prev;
    int err;
} feats_t;

static int feats_push(feats_t *f, uint64_t h)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 1024;
        uint64_t *nh = eg_realloc(f->h, cap * sizeof *nh);
        if (!nh) {
            f->err = ENGRAM_ENOMEM;
            return ENGRAM_ENOMEM;
        }
        f->h = nh;
        f->cap = cap;
    }
    f->h[f->n++] = h;
    return 0;
}

/* Length of the UTF-8 sequence starting with byte c (1 for anything odd:
 * words from the tokenizer are valid UTF-8, light words may not be). */
static inline size_t cp_len(unsigned char c)
{
    if (c < 0xC0) return 1;
    if (c < 0xE0) return 2;
    if (c < 0xF0) return 3;
    return 4;
}

/* Character n-grams of "<w>" in code points. */
static int add_char_grams(feats_t *f, const char *w, size_t len)
{
    const embed_hash_params_t *p = f->p;
    if (p->char_min <= 0 || p->char_max < p->char_min) return 0;
    /* Code point starts of "<" w ">" as offsets into a virtual string where
     * offset 0 is '<', 1..len is w and len + 1 is '>'. */
    size_t starts[4 * TOK_MAX_TERM + 8];
    size_t ns = 0;
    starts[ns++] = 0;
    for (size_t i = 0; i < len && ns < EG_ARRAY_LEN(starts) - 2;) {
        starts[ns++] = i + 1;
        size_t k = cp_len((unsigned char)w[i]);
        i += k <= len - i ? k : len - i;
    }
    starts[ns++] = len + 1;
    size_t total = len + 2; /* bytes of the virtual string */
    for (int n = p->char_min; n <= p->char_max; n++) {
        if ((size_t)n > ns) break;
        for (size_t s = 0; s + (size_t)n <= ns; s++) {
            size_t from = starts[s];
            size_t to = s + (size_t)n < ns ? starts[s + (size_t)n] : total;
            uint64_t h = fnv_byte(FNV_OFFSET, SEED_CHAR);
            for (size_t b = from; b < to; b++) {
                unsigned char c = b == 0 ? '<' : b == len + 1 ? '>' : (unsigned char)w[b - 1];
                h = fnv_byte(h, c);
            }
            if (feats_push(f, feature(h, KIND_CHAR))) return f->err;
        }
    }
    return 0;
}

/* Frequent English function words, as the tokenizer emits them (lower
 * case; Porter2 stems where they differ: "onli", "veri", "becaus"...). */
static const char *const function_words[] = {
    "about", "abov", "after", "again", "against", "all", "also", "am", "among", "ani", "any",
    "because", "becaus", "been", "befor", "before", "being", "below", "between", "both", "can",
    "could", "did", "do", "doe", "does", "doing", "down", "dure", "during", "each", "few", "from",
    "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him",
    "himself", "his", "how", "howev", "however", "i", "its", "itself", "may", "me", "might", "more",
    "most", "must", "my", "myself", "nor", "now", "onli", "only", "other", "our", "ours", "out",
    "over", "own", "same", "shall", "she", "should", "so", "some", "than", "themselv", "them",
    "those", "through", "thus", "too", "under", "until", "up", "upon", "us", "veri", "very", "via",
    "we", "were", "what", "when", "where", "whether", "which", "while", "who", "whom", "whose",
    "why", "within", "without", "would", "you", "your", "yet", "either",
};

static int is_function_word(const char *w, size_t len)
{
    if (len > 9) return 0;
    for (size_t i = 0; i < EG_ARRAY_LEN(function_words); i++) {
        const char *s = function_words[i];
        if (s[0] == w[0] && strlen(s) == len && memcmp(s, w, len) == 0) return 1;
    }
    return tokenizer_is_stopword(w, len);
}

static int add_word(feats_t *f, const char *w, size_t len)
{
    if (f->p->function_words && is_function_word(w, len)) return 0;
    uint64_t u = fnv_bytes(fnv_byte(FNV_OFFSET, SEED_UNIGRAM), w, len);
    if (f->p->w_unigram > 0 && feats_push(f, feature(u, KIND_UNIGRAM))) return f->err;
    if (f->have_prev && f->p->w_bigram > 0) {
        uint64_t b = fnv_byte(FNV_OFFSET, SEED_BIGRAM);
        unsigned char pb[16];
        for (int i = 0; i < 8; i++) pb[i] = (unsigned char)(f->prev >> (8 * i));
        for (int i = 0; i < 8; i++) pb[8 + i] = (unsigned char)(u >> (8 * i));
        b = fnv_bytes(b, pb, sizeof pb);
        if (feats_push(f, feature(b, KIND_BIGRAM))) return f->err;
    }
    f->prev = u;
    f->have_prev = 1;
    if (f->p->w_char > 0) return add_char_grams(f, w, len);
    return 0;
}

static int on_token(const tok_token_t *t, void *ud)
{
    return add_word(ud, t->term, t->len);
}

/* Light words: runs of ASCII letters/digits (lower-cased) and non-ASCII
 * bytes; everything else separates. */
static int light_words(feats_t *f, const char *text, size_t len)
{
    char w[TOK_MAX_TERM];
    size_t wl = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)text[i] : ' ';
        int in = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || c >= 0x80;
        if (in) {
            if (wl < sizeof w) w[wl++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            continue;
        }
        if (wl == 0) continue;
        if (!(f->p->stopwords && tokenizer_is_stopword(w, wl))) {
            int rc = add_word(f, w, wl);
            if (rc) return rc;
        }
        wl = 0;
    }
    return 0;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts h[0..n) ascending: a byte-wise radix sort (the same order as
 * qsort, several times faster on the few thousand features of a chunk;
 * it was a third of ingestion time), qsort when there is no memory. */
static void sort_u64(uint64_t *h, size_t n)
{
    uint64_t *tmp = n > 64 ? eg_malloc(n * sizeof *tmp) : NULL;
    if (!tmp) {
        qsort(h, n, sizeof *h, u64_cmp);
        return;
    }
    uint64_t *src = h, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[256] = {0};
        for (size_t i = 0; i < n; i++) count[(src[i] >> shift) & 0xFF]++;
        if (count[(src[0] >> shift) & 0xFF] == n) continue; /* all equal in this byte */
        size_t sum = 0;
        for (int b = 0; b < 256; b++) {
            size_t c = count[b];
            count[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) dst[count[(src[i] >> shift) & 0xFF]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != h) memcpy(h, src, n * sizeof *h);
    eg_free(tmp);
}

/* Folds the sorted features into v (dim floats, zeroed here). */
static void fold(const embed_hash_params_t *p, uint64_t *h, size_t n, float *v)
{
    memset(v, 0, (size_t)p->dim * sizeof *v);
    if (n == 0) return;
    sort_u64(h, n);
    const float w[3] = {p->w_unigram, p->w_bigram, p->w_char};
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && h[j] == h[i]) j++;
        uint64_t x = h[i];
        uint32_t bucket = (uint32_t)(((x >> 32) * (uint64_t)p->dim) >> 32);
        float sign = (x >> 31) & 1 ? -1.0f : 1.0f;
        float tfw = 1.0f + logf((float)(j - i));
        v[bucket] += sign * w[x & 3] * tfw;
        i = j;
    }
}

/* ---- pool and entry points --------------------------------------------- */

static int pool_get(embed_hash_t *h, tokenizer_t **out)
{
    pthread_mutex_lock(&h->lock);
    tokenizer_t *t = h->npool > 0 ? h->pool[--h->npool] : NULL;
    pthread_mutex_unlock(&h->lock);
    if (t) {
        *out = t;
        return 0;
    }
    return tokenizer_new_ex(&h->tok, out);
}

static void pool_put(embed_hash_t *h, tokenizer_t *t)
{
    if (!t) return;
    pthread_mutex_lock(&h->lock);
    if (h->npool < POOL_MAX) {
        h->pool[h->npool++] = t;
        t = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    tokenizer_free(t);
}

int embed_hash_open(const embed_hash_params_t *p, embed_hash_t **out, char *err, size_t errsz)
{
    *out = NULL;
    if (p->dim < 1 || p->dim > EMBED_MAX_DIM)
        return embed_fail(err, errsz, ENGRAM_EINVAL, "hash embedder: dimension %u is out of 1..%u",
                          (unsigned)p->dim, (unsigned)EMBED_MAX_DIM);
    if (p->char_min < 0 || p->char_max > 16 || !(p->w_unigram >= 0) || !(p->w_bigram >= 0) ||
        !(p->w_char >= 0))
        return embed_fail(err, errsz, ENGRAM_EINVAL, "hash embedder: bad parameters");
    embed_hash_t *h = eg_calloc(1, sizeof *h);
    if (!h) return embed_fail(err, errsz, ENGRAM_ENOMEM, "out of memory");
    h->p = *p;
    h->tok = TOK_OPTIONS_DEFAULT;
    h->tok.stopwords = p->stopwords;
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        eg_free(h);
        return embed_fail(err, errsz, ENGRAM_ENOMEM, "hash embedder: cannot create a mutex");
    }
    *out = h;
    return 0;
}

void embed_hash_free(embed_hash_t *h)
{
    if (!h) return;
    for (int i = 0; i < h->npool; i++) tokenizer_free(h->pool[i]);
    pthread_mutex_destroy(&h->lock);
    eg_free(h);
}

int embed_hash_run(embed_hash_t *h, const char *const *texts, const size_t *lens, size_t n,
                   float *out, char *err, size_t errsz)
{
    int rc = 0;
    tokenizer_t *tok = NULL;
    feats_t f;
    memset(&f, 0, sizeof f);
    f.p = &h->p;
    if (h->p.words == EMBED_HASH_WORDS_TOKENIZER && (rc = pool_get(h, &tok))) goto fail;
    for (size_t i = 0; i < n; i++) {
        const char *t = texts[i] ? texts[i] : "";
        size_t len = !texts[i] ? 0 : lens ? lens[i] : strlen(t);
        f.n = 0;
        f.have_prev = 0;
        if (tok)
            rc = tokenizer_run(tok, t, len, on_token, &f);
        else
            rc = light_words(&f, t, len);
        if (rc == 0) rc = f.err;
        if (rc) goto fail;
        float *v = out + i * (size_t)h->p.dim;
        fold(&h->p, f.h, f.n, v);
        embed_normalize(v, h->p.dim); /* finite by construction */
    }
fail:
    pool_put(h, tok);
    eg_free(f.h);
    if (rc) return embed_fail(err, errsz, rc, "hash embedder: %s", engram_strerror(rc));
    return 0;
}
