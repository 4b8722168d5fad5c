/*
 * context.h - the chat prompt, packed within a token budget.
 *
 * ctx_build turns what chat gathered (instructions, the user's memories,
 * the retrieved chunks, the session's recent turns and the question) into
 * the messages sent to the LLM: one system message (instructions, the
 * caller's custom instruction, memories by type, the numbered sources
 * "[1] Title" ...), the recent turns as they were, and the question as the
 * last user message. The system message asks for [n] citations.
 *
 * Budget (estimated tokens over every message, ctx_estimate_tokens): the
 * instructions and the question always go in (the custom instruction is cut
 * to a quarter of the budget). What is left is filled in this order, each
 * part dropping its least relevant items first:
 *   1. memories, per type up to its own budget (profile 600, semantic 1,500,
 *      episodic 1,500, procedural 400 by default), in the given order
 *      (best first); an item that does not fit is skipped;
 *   2. the newest turns of the session, up to history_pct percent of the
 *      budget, whole turns only, newest first;
 *   3. the chunks in rank order; the first one that does not fit whole is
 *      cut at a word boundary when at least CTX_MIN_CUT tokens are left,
 *      and the rest are dropped;
 *   4. older turns with whatever is still left.
 * When the fixed part alone is over the budget nothing else is added.
 *
 * Everything here is pure (no I/O, no globals) and thread-safe.
 */
#ifndef ENGRAM_CONTEXT_H
#define ENGRAM_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define CTX_DEFAULT_BUDGET 5000
#define CTX_MIN_CUT 48
#define CTX_MSG_OVERHEAD 4 /* tokens a chat message costs besides its text */

/* Memory types, in the order the prompt lists them. */
enum { CTX_MEM_PROFILE = 0, CTX_MEM_SEMANTIC, CTX_MEM_EPISODIC, CTX_MEM_PROCEDURAL, CTX_MEM__COUNT };

typedef struct ctx_chunk {
    const char *title;    /* may be NULL or "" */
    const char *text;
    size_t len;
} ctx_chunk_t;

typedef struct ctx_memory {
    int type;             /* CTX_MEM_* */
    const char *content;
} ctx_memory_t;

typedef struct ctx_turn {
    const char *role;     /* "user", "assistant" (or "system") */
    const char *content;
} ctx_turn_t;

typedef struct ctx_input {
    const char *custom_instruction;   /* NULL: none */
    const ctx_memory_t *memories;     /* best first */
    size_t n_memories;
    const ctx_chunk_t *chunks;        /* rank order */
    size_t n_chunks;
    const ctx_turn_t *turns;          /* oldest first */
    size_t n_turns;
    const char *question;
    int budget;                       /* tokens; <= 0: CTX_DEFAULT_BUDGET */
    int mem_budget[CTX_MEM__COUNT];   /* all 0: the defaults above */
    int history_pct;                  /* 0: 25 */
} ctx_input_t;

typedef struct ctx_prompt {
    char *system;          /* the system message (owned; eg_free) */
    size_t system_len;
    size_t first_turn;     /* turns[first_turn..n_turns) are included */
    size_t n_chunks;       /* chunks[0..n_chunks) are sources [1]..[n_chunks] */
    int last_chunk_cut;    /* the last included chunk was shortened */
    unsigned char *memory_used; /* n_memories flags (owned; NULL when none) */
    size_t n_memories_used;
    int tokens;            /* estimated tokens of every message together */
} ctx_prompt_t;

/* Estimated tokens of text: a quarter of its ASCII bytes (rounded up) plus
 * one per non-ASCII code point, the usual ratios of BPE vocabularies. */
int ctx_estimate_tokens(const char *s, size_t len);

/* Builds the prompt. Returns 0, ENGRAM_EINVAL (no question) or
 * ENGRAM_ENOMEM; on failure *out is zeroed. Free with ctx_prompt_free. */
int ctx_build(const ctx_input_t *in, ctx_prompt_t *out);
void ctx_prompt_free(ctx_prompt_t *p);

/* The fixed instructions at the top of every system message. */
extern const char ctx_instructions[];

#endif
