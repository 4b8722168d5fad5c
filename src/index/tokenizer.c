/*
 * tokenizer.c - words out of text, for the BM25 index and its queries.
 *
 * How it works. Segmentation runs on the ORIGINAL bytes so every token can
 * report where it came from: code points are decoded with utf8proc_iterate
 * (an invalid byte is skipped and acts as a separator) and grouped into words
 * with the common cases of UAX #29:
 *   - a word is a run of letters and digits (categories L*, N*);
 *   - combining marks (Mn, Mc, Me) continue a word; a connector (Pc, like
 *     "_") joins two word characters;
 *   - an apostrophe (' or U+2019) or a full stop between two letters, and a
 *     full stop or comma between two digits, stay inside the word
 *     ("o'neil", "e.g", "3.14", "1,000");
 *   - each Han ideograph, Hiragana and Katakana character is a word alone.
 * Each word is then normalised on its own: pure ASCII words are lower-cased
 * (which is exactly NFKC + case fold for ASCII); others go through
 * utf8proc_decompose_custom + utf8proc_reencode with COMPOSE | COMPAT |
 * CASEFOLD | STRIPMARK ("Café" -> "cafe", "ﬁle" -> "file"), right single
 * quotes mapped to ASCII apostrophes on the way. Like Lucene's English
 * possessive filter a trailing "'s" is removed ("curie's" -> "curie"); other
 * apostrophes are then dropped ("don't" -> "dont") so the typed and the
 * typographic forms meet. Words longer than TOK_MAX_TERM bytes are cut at a
 * code point boundary. Stop words (Lucene's classic English set of 33), when
 * enabled, are dropped and do not take a position; the rest are stemmed.
 *
 * Defaults, chosen by measurement (BEIR SciFact, 300 test queries, BM25
 * k1=0.9 b=0.4, engram eval --beir; see bench/README.md), nDCG@10:
 *     Snowball "porter" (Anserini's choice), stop words dropped   0.6781
 *     "porter", stop words kept                                    0.6811
 *     "english" (Porter2), stop words dropped                      0.6825
 *     "english", stop words kept                                   0.6850  <- default
 * so the default stems with "english" and keeps stop words (the 33-word
 * set is still here, switchable through tokenizer_new_ex). Keeping them
 * costs index space and some query time (p50 0.4 -> 0.8 ms there), still
 * far below SQLite FTS5's on the same run.
 *
 * Invariants: emitted terms are non-empty, at most TOK_MAX_TERM bytes, valid
 * UTF-8 and never contain a 0x00 byte (NUL is a control character, hence a
 * separator, and normalisation never produces one).
 */
#include "index/tokenizer.h"

#include <libstemmer.h>
#include <utf8proc.h>

#include "util/common.h"

struct tokenizer {
    struct sb_stemmer *stem;   /* NULL: no stemming */
    int stopwords;
    utf8proc_int32_t *cps;     /* scratch for normalisation */
    size_t cps_cap;
    char word[4 * TOK_MAX_TERM + 8];
};

/* Lucene's classic English stop set (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET). */
static const char *const stop_words[] = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in",
    "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the",
    "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
};

int tokenizer_is_stopword(const char *w, size_t len)
{
    if (!w || len == 0 || len > 5) return 0;
    for (size_t i = 0; i < EG_ARRAY_LEN(stop_words); i++) {
        const char *s = stop_words[i];
        if (s[0] == w[0] && strlen(s) == len && memcmp(s, w, len) == 0) return 1;
    }
    return 0;
}

int tokenizer_new_ex(const tok_options_t *opt, tokenizer_t **out)
{
    if (!out) return ENGRAM_EINVAL;
    *out = NULL;
    tok_options_t o = opt ? *opt : TOK_OPTIONS_DEFAULT;
    tokenizer_t *t = eg_calloc(1, sizeof *t);
    if (!t) return ENGRAM_ENOMEM;
    t->stopwords = o.stopwords;
    if (o.stemmer && o.stemmer[0]) {
        t->stem = sb_stemmer_new(o.stemmer, "UTF_8");
        if (!t->stem) {
            eg_free(t);
            return ENGRAM_EINVAL; /* unknown algorithm (or out of memory) */
        }
    }
    *out = t;
    return 0;
}

int tokenizer_new(tokenizer_t **out)
{
    return tokenizer_new_ex(NULL, out);
}

void tokenizer_free(tokenizer_t *t)
{
    if (!t) return;
    if (t->stem) sb_stemmer_delete(t->stem);
    eg_free(t->cps);
    eg_free(t);
}

/* ---- character classes -------------------------------------------------- */

enum { C_SEP, C_LETTER, C_DIGIT, C_MARK, C_CONNECT, C_CJK };

static int is_cjk(utf8proc_int32_t c)
{
    return (c >= 0x3040 && c <= 0x30FF) ||   /* Hiragana, Katakana */
           (c >= 0x31F0 && c <= 0x31FF) ||   /* Katakana phonetic extensions */
           (c >= 0x3400 && c <= 0x4DBF) ||   /* CJK extension A */
           (c >= 0x4E00 && c <= 0x9FFF) ||   /* CJK unified ideographs */
           (c >= 0xF900 && c <= 0xFAFF) ||   /* compatibility ideographs */
           (c >= 0xFF66 && c <= 0xFF9F) ||   /* half-width Katakana */
           (c >= 0x20000 && c <= 0x3134F);   /* extensions B..G */
}

static int char_class(utf8proc_int32_t c)
{
    if (c < 0x80) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return C_LETTER;
        if (c >= '0' && c <= '9') return C_DIGIT;
        if (c == '_') return C_CONNECT;
        return C_SEP;
    }
    if (is_cjk(c)) return C_CJK;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return C_LETTER;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return C_DIGIT;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        return C_MARK;
    case UTF8PROC_CATEGORY_PC:
        return C_CONNECT;
    default:
        return C_SEP;
    }
}

/* Decodes the code point at text[i]; *n gets its byte length (1 for an
 * invalid byte, whose code point is reported as -1). */
static utf8proc_int32_t decode_at(const char *text, size_t len, size_t i, size_t *n)
{
    unsigned char b = (unsigned char)text[i];
    if (b < 0x80) { *n = 1; return b; }
    utf8proc_int32_t cp = -1;
    size_t avail = len - i;
    if (avail > 4) avail = 4;
    utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)text + i,
                                          (utf8proc_ssize_t)avail, &cp);
    if (r <= 0 || cp < 0) { *n = 1; return -1; }
    *n = (size_t)r;
    return cp;
}

/* ---- normalisation ------------------------------------------------------ */

static utf8proc_int32_t map_quotes(utf8proc_int32_t c, void *ud)
{
    (void)ud;
    if (c == 0x2019 || c == 0x2018 || c == 0x02BC || c == 0xFF07) return '\'';
    return c;
}

#define NORM_OPTS (UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK)

/* Normalises src[0..n) (valid UTF-8) into t->word; returns its length (0 if
 * nothing is left) or ENGRAM_ENOMEM. */
static int normalise_word(tokenizer_t *t, const char *src, size_t n)
{
    size_t out = 0;
    int ascii = 1;
    for (size_t i = 0; i < n; i++) if ((unsigned char)src[i] >= 0x80) { ascii = 0; break; }
    if (ascii) {
        if (n > sizeof t->word) n = sizeof t->word; /* cut again after the possessive */
        for (size_t i = 0; i < n; i++) {
            char c = src[i];
            t->word[out++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
    } else {
        utf8proc_ssize_t need = (utf8proc_ssize_t)n + 8;
        for (int tries = 0; tries < 3; tries++) {
            if ((size_t)need > t->cps_cap) {
                size_t cap = (size_t)need * 2;
                utf8proc_int32_t *p = eg_realloc(t->cps, cap * sizeof *p);
                if (!p) return ENGRAM_ENOMEM;
                t->cps = p;
                t->cps_cap = cap;
            }
            utf8proc_ssize_t r = utf8proc_decompose_custom(
                (const utf8proc_uint8_t *)src, (utf8proc_ssize_t)n, t->cps,
                (utf8proc_ssize_t)t->cps_cap, NORM_OPTS, map_quotes, NULL);
            if (r < 0) return 0; /* cannot happen on valid UTF-8: drop the word */
            if ((size_t)r <= t->cps_cap) { need = r; break; }
            need = r;
        }
        if ((size_t)need > t->cps_cap) return 0;
        utf8proc_ssize_t bytes = utf8proc_reencode(t->cps, need, NORM_OPTS);
        if (bytes <= 0) return 0;
        const char *s = (const char *)t->cps;
        size_t take = (size_t)bytes;
        if (take > sizeof t->word) {
            take = sizeof t->word;
            while (take > 0 && ((unsigned char)s[take] & 0xC0) == 0x80) take--;
        }
        memcpy(t->word, s, take);
        out = take;
    }
    /* English possessive, then the remaining apostrophes. */
    if (out >= 2 && t->word[out - 1] == 's' && t->word[out - 2] == '\'') out -= 2;
    size_t w = 0;
    for (size_t i = 0; i < out; i++) if (t->word[i] != '\'') t->word[w++] = t->word[i];
    return (int)w;
}

/* Cuts s[0..*n) to at most TOK_MAX_TERM bytes at a code point boundary. */
static void truncate_term(const char *s, size_t *n)
{
    if (*n <= TOK_MAX_TERM) return;
    size_t k = TOK_MAX_TERM;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    *n = k;
}

/* Normalises, filters and stems one word and hands it to fn. */
static int emit_word(tokenizer_t *t, const char *text, size_t start, size_t end,
                     uint32_t *pos, tok_fn fn, void *ud)
{
    int n = normalise_word(t, text + start, end - start);
    if (n < 0) return n;
    if (n == 0) return 0;
    size_t wl = (size_t)n;
    truncate_term(t->word, &wl);
    if (wl == 0) return 0;
    if (t->stopwords && tokenizer_is_stopword(t->word, wl)) return 0;
    const char *term = t->word;
    size_t tl = wl;
    if (t->stem) {
        const sb_symbol *s = sb_stemmer_stem(t->stem, (const sb_symbol *)t->word, (int)wl);
        if (!s) return ENGRAM_ENOMEM;
        int sl = sb_stemmer_length(t->stem);
        if (sl > 0) {
            term = (const char *)s;
            tl = (size_t)sl;
            truncate_term(term, &tl);
        }
    }
    tok_token_t tk = {term, tl, *pos, start, end};
    (*pos)++;
    return fn(&tk, ud);
}

int tokenizer_run(tokenizer_t *t, const char *text, size_t len, tok_fn fn, void *ud)
{
    if (!t || !fn || (!text && len)) return ENGRAM_EINVAL;
    uint32_t pos = 0;
    size_t i = 0;
    int in_word = 0, last = C_SEP; /* last: C_LETTER or C_DIGIT of the word's last base char */
    size_t wstart = 0, wend = 0;
    int rc;
    while (i < len) {
        size_t n;
        utf8proc_int32_t c = decode_at(text, len, i, &n);
        int cls = c < 0 ? C_SEP : char_class(c);
        if (cls == C_LETTER || cls == C_DIGIT) {
            if (!in_word) { in_word = 1; wstart = i; }
            last = cls;
            i += n;
            wend = i;
            continue;
        }
        if (in_word && cls == C_MARK) {
            i += n;
            wend = i;
            continue;
        }
        if (in_word && (cls == C_CONNECT || c == '\'' || c == 0x2019 || c == '.' || c == ',')
            && i + n < len) {
            size_t n2;
            utf8proc_int32_t c2 = decode_at(text, len, i + n, &n2);
            int cls2 = c2 < 0 ? C_SEP : char_class(c2);
            int join;
            if (cls == C_CONNECT) join = cls2 == C_LETTER || cls2 == C_DIGIT;
            else if (c == ',') join = last == C_DIGIT && cls2 == C_DIGIT;
            else if (c == '.') join = last == cls2 && (cls2 == C_LETTER || cls2 == C_DIGIT);
            else join = last == C_LETTER && cls2 == C_LETTER;
            if (join) {
                last = cls2;
                i += n + n2;
                wend = i;
                continue;
            }
        }
        if (in_word) {
            in_word = 0;
            if ((rc = emit_word(t, text, wstart, wend, &pos, fn, ud)) != 0) return rc;
        }
        if (cls == C_CJK) {
            if ((rc = emit_word(t, text, i, i + n, &pos, fn, ud)) != 0) return rc;
        }
        i += n;
    }
    if (in_word && (rc = emit_word(t, text, wstart, wend, &pos, fn, ud)) != 0) return rc;
    return 0;
}
