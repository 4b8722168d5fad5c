/*
 * rerank.h - re-ordering retrieval candidates: the built-in lexical
 * reranker and a remote rerank service.
 *
 * Built-in: for each candidate text, coverage (the share of the query's
 * terms it contains, each term weighted by its rarity among the candidates)
 * and proximity (distinct query terms present / length of the smallest
 * window of words holding all of them). score = 0.7 coverage + 0.3
 * proximity, in [0, 1]. Uses the index tokenizer (stems, case folding), so
 * it costs one tokenisation per candidate: well under a millisecond for
 * 100 abstracts.
 *
 * Remote: POST url with {"query": q, "documents": [texts], "top_n": n,
 * "return_documents": false} (the shape text-embeddings-inference, Jina and
 * Cohere accept; "texts" is sent too for text-embeddings-inference). The
 * answer may be [{"index","score"}] (text-embeddings-inference),
 * {"results":[{"index","relevance_score"}]} (Jina, Cohere) or
 * {"scores":[...]}; every candidate must get exactly one finite score.
 * A url ending in "rerank" is used as it is, else "/rerank" is appended.
 * Calls and failures count in engram_rerank_calls_total /
 * engram_rerank_errors_total.
 *
 * Thread-safe (the tokenizer is the caller's, one per thread).
 */
#ifndef ENGRAM_RERANK_H
#define ENGRAM_RERANK_H

#include <stddef.h>

#include "index/tokenizer.h"

#define RERANK_MAX 100  /* candidates reranked at most */

/* scores[i] for texts[i]. 0 or ENGRAM_ENOMEM. */
int rerank_builtin(tokenizer_t *tok, const char *query, const char *const *texts,
                   const size_t *lens, size_t n, double *scores);

/* 0, ENGRAM_EUPSTREAM (transport, status, bad answer: err says which),
 * ENGRAM_EINVAL (bad url), ENGRAM_ENOMEM. timeout_ms 0: 10000. */
int rerank_remote(const char *url, const char *query, const char *const *texts,
                  const size_t *lens, size_t n, int timeout_ms, double *scores, char *err,
                  size_t errsz);

/* Parses a rerank answer for n documents (see above). ENGRAM_EINVAL when
 * it is not one. Exposed for tests. */
int rerank_parse_answer(const char *body, size_t len, size_t n, double *scores);

#endif
