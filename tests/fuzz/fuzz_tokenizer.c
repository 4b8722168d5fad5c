/*
 * fuzz_tokenizer.c - libFuzzer target for the tokenizer (index and query
 * text alike: a retrieval query goes through exactly this code).
 *
 * The first input byte picks the options (stemmer none/english/porter, stop
 * words on/off); the rest is the text. Checks the invariants tokenizer.h
 * and bm25.c rely on: every term is non-empty, at most TOK_MAX_TERM bytes,
 * valid UTF-8 and free of 0x00 (a postings key is "term 0x00 first");
 * offsets lie inside the text, do not go backwards and never overlap;
 * positions count up by one; a second run gives the same tokens; and the
 * span a token came from, tokenised alone, gives that same term again
 * (queries and documents meet). Any breach aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/tokenizer.h"
#include "util/common.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TOKENS 4096

typedef struct seen {
    char terms[MAX_TOKENS][TOK_MAX_TERM];
    size_t lens[MAX_TOKENS];
    size_t starts[MAX_TOKENS], ends[MAX_TOKENS];
    size_t n;
    size_t text_len;
    uint32_t next_pos;
    size_t last_end;
    int overflow;
} seen_t;

static int collect(const tok_token_t *t, void *ud)
{
    seen_t *s = ud;
    if (t->len == 0 || t->len > TOK_MAX_TERM) abort();
    if (memchr(t->term, 0, t->len)) abort();
    if (!utf8_valid(t->term, t->len)) abort();
    if (t->start >= t->end || t->end > s->text_len) abort();
    if (t->start < s->last_end) abort();
    if (t->position != s->next_pos) abort();
    s->next_pos++;
    s->last_end = t->end;
    if (s->n == MAX_TOKENS) { s->overflow = 1; return 0; }
    memcpy(s->terms[s->n], t->term, t->len);
    s->lens[s->n] = t->len;
    s->starts[s->n] = t->start;
    s->ends[s->n] = t->end;
    s->n++;
    return 0;
}

static seen_t a, b, one;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    static const char *const stemmers[] = {NULL, "english", "porter", ""};
    tok_options_t opt = {stemmers[data[0] & 3], (data[0] >> 2) & 1};
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    tokenizer_t *tok = NULL;
    if (tokenizer_new_ex(&opt, &tok) != 0) return 0; /* out of memory only */

    memset(&a, 0, sizeof a);
    a.text_len = len;
    int rc = tokenizer_run(tok, text, len, collect, &a);
    if (rc != 0 && rc != ENGRAM_ENOMEM) abort();
    if (rc == 0) {
        memset(&b, 0, sizeof b);
        b.text_len = len;
        if (tokenizer_run(tok, text, len, collect, &b) != 0) abort();
        if (a.n != b.n || a.next_pos != b.next_pos) abort();
        for (size_t i = 0; i < a.n; i++)
            if (a.lens[i] != b.lens[i] || memcmp(a.terms[i], b.terms[i], a.lens[i]) ||
                a.starts[i] != b.starts[i] || a.ends[i] != b.ends[i])
                abort();
        for (size_t i = 0; i < a.n && i < 64; i++) {
            memset(&one, 0, sizeof one);
            one.text_len = a.ends[i] - a.starts[i];
            if (tokenizer_run(tok, text + a.starts[i], one.text_len, collect, &one) != 0) abort();
            if (one.n != 1 || one.lens[0] != a.lens[i] ||
                memcmp(one.terms[0], a.terms[i], a.lens[i]) != 0)
                abort();
        }
    }
    tokenizer_free(tok);
    return 0;
}
