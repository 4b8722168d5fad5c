/*
 * extractive.h - answers made of the retrieved chunks' own sentences, for
 * when no LLM is configured; and the bag-of-terms helpers chat and
 * memories share.
 *
 * extractive_answer splits the sources into sentences, weighs the
 * question's content terms (the tokenizer's stems, question words and
 * stop words left out) by an idf over those sentences, and picks greedily
 * the sentences that add the most not-yet-covered question weight, skipping
 * near-duplicates (Jaccard of stems >= 0.6) and stopping after
 * EXTRACTIVE_MAX_SENTENCES or when the next gain is small. The picks are
 * then put in reading order (by source, then position in it), each
 * followed by its source marker " [n]". When the question has no content
 * term (a greeting, "thanks") or no sentence covers at least
 * EXTRACTIVE_MIN_COVERAGE of its weight, the answer is the single piece
 * EXTRACTIVE_NOTHING_FOUND and found = 0.
 *
 * Pure and thread-safe given one tokenizer per thread.
 */
#ifndef ENGRAM_EXTRACTIVE_H
#define ENGRAM_EXTRACTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "index/tokenizer.h"

#define EXTRACTIVE_NOTHING_FOUND "I couldn't find anything about that in this collection."
#define EXTRACTIVE_MAX_SENTENCES 4
#define EXTRACTIVE_MIN_COVERAGE 0.4

/* A set of distinct terms with their counts (terms by 64-bit hash). */
typedef struct term_bag {
    uint64_t *h;
    uint32_t *tf;
    size_t n, cap;
    size_t total;        /* tokens counted, duplicates included */
} term_bag_t;

/* Fills bag (reset first) with the stems of text. content_only: drop stop
 * words and question words ("what", "how", "please", ...) so that only
 * words that carry meaning remain. 0 or ENGRAM_ENOMEM. */
int term_bag_build(tokenizer_t *tok, const char *text, size_t len, int content_only,
                   term_bag_t *bag);
/* Index of term hash h in bag, or -1. */
long term_bag_find(const term_bag_t *bag, uint64_t h);
/* Cosine of the two bags' term-frequency vectors, 0..1. */
double term_bag_cosine(const term_bag_t *a, const term_bag_t *b);
void term_bag_free(term_bag_t *bag);

typedef struct extractive_source {
    const char *text;
    size_t len;
} extractive_source_t;

typedef struct extractive_answer {
    char **pieces;   /* the deltas in order; joined they are the answer */
    size_t n;
    int found;       /* 0: the nothing-found answer */
} extractive_answer_t;

/* Sources are numbered 1..n_src in the given (rank) order. Returns 0 or
 * ENGRAM_ENOMEM; free with extractive_answer_free. */
int extractive_answer(tokenizer_t *tok, const char *question, const extractive_source_t *src,
                      size_t n_src, extractive_answer_t *out);
void extractive_answer_free(extractive_answer_t *a);

#endif
