/*
 * tokenizer.h - the one tokenizer used for indexing and for queries.
 *
 * Text -> utf8proc normalisation (NFKC, case fold, marks stripped) -> words
 * at Unicode word boundaries (runs of letters/digits, with inner apostrophes
 * and the like handled as UAX #29 does for the common cases; each CJK
 * ideograph a word of its own) -> (optionally) English stop words dropped
 * -> Snowball stemming. Defaults: Snowball "english", stop words kept
 * (the best SciFact nDCG@10; see tokenizer.c). Invalid UTF-8 bytes are
 * treated as separators, never an error.
 *
 * A tokenizer_t holds the stemmer and scratch space: one per thread (not
 * thread-safe), cheap to keep.
 */
#ifndef ENGRAM_TOKENIZER_H
#define ENGRAM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#define TOK_MAX_TERM 64 /* longer words are truncated to this many bytes */

typedef struct tokenizer tokenizer_t;

typedef struct tok_token {
    const char *term;   /* normalised, stemmed; valid only during the callback */
    size_t len;
    uint32_t position;  /* index among the kept tokens */
    size_t start, end;  /* byte offsets of the word in the original text */
} tok_token_t;

/* Return non-zero from the callback to stop early (that value is returned). */
typedef int (*tok_fn)(const tok_token_t *t, void *ud);

int tokenizer_new(tokenizer_t **out);

/* Options for experiments (eval). The index and its queries must use the
 * same options. tokenizer_new() uses TOK_OPTIONS_DEFAULT. */
typedef struct tok_options {
    const char *stemmer; /* Snowball algorithm ("porter", "english"), NULL/"" = none */
    int stopwords;       /* 1: drop the English stop words */
} tok_options_t;
#define TOK_OPTIONS_DEFAULT ((tok_options_t){"english", 0}) /* measured best, see tokenizer.c */
/* ENGRAM_EINVAL for an unknown stemmer. opt may be NULL. */
int tokenizer_new_ex(const tok_options_t *opt, tokenizer_t **out);
void tokenizer_free(tokenizer_t *t);
/* Calls fn for each kept token of text[0..len). Returns 0, fn's non-zero
 * value, or ENGRAM_ENOMEM. */
int tokenizer_run(tokenizer_t *t, const char *text, size_t len, tok_fn fn, void *ud);
/* 1 if the (already normalised) word is a stop word. */
int tokenizer_is_stopword(const char *w, size_t len);

#endif
