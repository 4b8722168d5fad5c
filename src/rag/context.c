/*
 * context.c - packs the chat prompt within a token budget (see context.h).
 *
 * How it works. Costs are computed first (each memory line, each turn,
 * each chunk with its "[n] title" header), then the budget is handed out
 * in the order of context.h: fixed part, memories by type, recent turns,
 * chunks, older turns. Only then is the system message written, so the
 * estimate and the text cannot disagree: the system message's cost is the
 * sum of the parts' costs (every part is a whole number of tokens since
 * each is estimated on its own and ends on a newline).
 */
#include "rag/context.h"

#include <stdio.h>
#include <string.h>

#include "util/common.h"
#include "util/utf8.h"

const char ctx_instructions[] =
    "You are engram's assistant. Answer the user's question using the numbered sources "
    "below. After each statement that uses a source, cite it with its number in square "
    "brackets, like [1] or [2][3]. Use only what the sources say; if they do not answer the "
    "question, say that you could not find it in this collection. Be concise.\n";

static const char *const mem_heading[CTX_MEM__COUNT] = {
    "About the user:\n", "Facts the user told you:\n", "Past events:\n",
    "How the user likes things done:\n"};
static const char no_sources[] = "No sources were found in the collection for this question.\n";
static const int mem_default_budget[CTX_MEM__COUNT] = {600, 1500, 1500, 400};

int ctx_estimate_tokens(const char *s, size_t len)
{
    size_t ascii = 0, other = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x80) ascii++;
        else if ((ch & 0xC0) != 0x80) other++; /* a lead byte: one code point */
    }
    size_t t = (ascii + 3) / 4 + other;
    return t > 1000000000u ? 1000000000 : (int)t;
}

static int est(const char *s) { return s ? ctx_estimate_tokens(s, strlen(s)) : 0; }

/* Longest prefix of s[0..len) costing at most tokens, cut after a space
 * when there is one in the last fifth; never splits a code point. */
static size_t cut_to_tokens(const char *s, size_t len, int tokens)
{
    if (tokens <= 0) return 0;
    size_t ascii = 0, other = 0, i = 0, last_space = 0;
    for (; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch & 0xC0) != 0x80) {
            size_t a = ascii + (ch < 0x80), o = other + (ch >= 0x80);
            if ((a + 3) / 4 + o > (size_t)tokens) break;
            ascii = a;
            other = o;
            if (ch == ' ' || ch == '\n') last_space = i;
        }
    }
    while (i > 0 && i < len && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    if (i < len && last_space > i - i / 5) i = last_space;
    return i;
}

static void append_chunk(buf_t *b, size_t n, const ctx_chunk_t *c, size_t len)
{
    buf_printf(b, "[%zu] %s\n", n, c->title && c->title[0] ? c->title : "(untitled)");
    buf_append(b, c->text, len);
    if (len < c->len) buf_puts(b, " ...");
    buf_puts(b, "\n\n");
}

/* Cost of chunk i written with len bytes of its text. */
static int chunk_cost(size_t n, const ctx_chunk_t *c, size_t len)
{
    buf_t b = BUF_INIT;
    append_chunk(&b, n, c, len);
    int t = b.err ? 1000000000 : ctx_estimate_tokens(b.data, b.len);
    buf_free(&b);
    return t;
}

int ctx_build(const ctx_input_t *in, ctx_prompt_t *out)
{
    memset(out, 0, sizeof *out);
    if (!in || !in->question) return ENGRAM_EINVAL;
    int rc = ENGRAM_ENOMEM;
    int budget = in->budget > 0 ? in->budget : CTX_DEFAULT_BUDGET;
    int hist_pct = in->history_pct > 0 ? in->history_pct : 25;
    int mem_budget[CTX_MEM__COUNT];
    int any_mem_budget = 0;
    for (int t = 0; t < CTX_MEM__COUNT; t++) any_mem_budget |= in->mem_budget[t] != 0;
    for (int t = 0; t < CTX_MEM__COUNT; t++)
        mem_budget[t] = any_mem_budget ? in->mem_budget[t] : mem_default_budget[t];

    buf_t sys = BUF_INIT;
    if (in->n_memories) {
        out->memory_used = eg_calloc(in->n_memories, 1);
        if (!out->memory_used) goto fail;
    }

    /* 1. The fixed part: instructions, the custom instruction, the question. */
    const char *custom = in->custom_instruction && in->custom_instruction[0] ? in->custom_instruction : NULL;
    size_t custom_len = custom ? cut_to_tokens(custom, strlen(custom), budget / 4) : 0;
    int used = est(ctx_instructions) + CTX_MSG_OVERHEAD;
    if (custom_len) used += ctx_estimate_tokens(custom, custom_len) + 1;
    used += est(in->question) + CTX_MSG_OVERHEAD;
    used += est(no_sources); /* reserved: replaced by "Sources:" when there are some */
    int left = budget - used;

    /* 2. Memories per type (each line "- content\n"; a heading when any). */
    int mem_heading_cost[CTX_MEM__COUNT] = {0};
    for (int t = 0; t < CTX_MEM__COUNT; t++) {
        int hc = est(mem_heading[t]), spent = 0;
        for (size_t i = 0; i < in->n_memories; i++) {
            const ctx_memory_t *m = &in->memories[i];
            if (m->type != t || !m->content) continue;
            int c = ctx_estimate_tokens(m->content, strlen(m->content)) + 1 /* "- " + "\n" */;
            int extra = spent ? 0 : hc;
            if (spent + extra + c > mem_budget[t] || extra + c > left) continue;
            spent += extra + c;
            left -= extra + c;
            out->memory_used[i] = 1;
            out->n_memories_used++;
        }
        if (spent) mem_heading_cost[t] = hc;
    }

    /* 3. The newest turns, up to hist_pct of the budget. */
    int hist_cap = (int)((long)budget * hist_pct / 100);
    int hist_spent = 0;
    size_t first_turn = in->n_turns;
    while (first_turn > 0) {
        const ctx_turn_t *t = &in->turns[first_turn - 1];
        int c = est(t->content) + CTX_MSG_OVERHEAD;
        if (hist_spent + c > hist_cap || c > left) break;
        hist_spent += c;
        left -= c;
        first_turn--;
    }

    /* 4. Chunks in rank order. */
    int sources_heading = 0; /* within the no_sources reservation */
    size_t n_chunks = 0;
    size_t last_len = 0;
    for (size_t i = 0; i < in->n_chunks; i++) {
        const ctx_chunk_t *c = &in->chunks[i];
        int head = n_chunks ? 0 : sources_heading;
        int cost = chunk_cost(i + 1, c, c->len) + head;
        if (cost <= left) {
            left -= cost;
            n_chunks++;
            last_len = c->len;
            continue;
        }
        int room = left - head - chunk_cost(i + 1, c, 0);
        if (room >= CTX_MIN_CUT) {
            size_t len = cut_to_tokens(c->text, c->len, room - 1);
            while (len > 0 && chunk_cost(i + 1, c, len) + head > left) len = cut_to_tokens(c->text, len, room - 1 - 8);
            if (len > 0) {
                left -= chunk_cost(i + 1, c, len) + head;
                n_chunks++;
                last_len = len;
                out->last_chunk_cut = 1;
            }
        }
        break;
    }

    /* 5. Older turns with what is left (only contiguous with the newest). */
    while (first_turn > 0) {
        int c = est(in->turns[first_turn - 1].content) + CTX_MSG_OVERHEAD;
        if (c > left) break;
        left -= c;
        first_turn--;
    }
    out->first_turn = first_turn;
    out->n_chunks = n_chunks;

    /* Write the system message. */
    buf_puts(&sys, ctx_instructions);
    if (custom_len) {
        buf_append(&sys, custom, custom_len);
        buf_putc(&sys, '\n');
    }
    for (int t = 0; t < CTX_MEM__COUNT; t++) {
        if (!mem_heading_cost[t]) continue;
        buf_puts(&sys, mem_heading[t]);
        for (size_t i = 0; i < in->n_memories; i++) {
            if (!out->memory_used[i] || in->memories[i].type != t) continue;
            buf_puts(&sys, "- ");
            buf_puts(&sys, in->memories[i].content);
            buf_putc(&sys, '\n');
        }
    }
    if (n_chunks) buf_puts(&sys, "Sources:\n");
    else buf_puts(&sys, no_sources);
    for (size_t i = 0; i < n_chunks; i++) {
        const ctx_chunk_t *c = &in->chunks[i];
        append_chunk(&sys, i + 1, c, i + 1 == n_chunks ? last_len : c->len);
    }
    if (sys.err) goto fail;
    out->system_len = sys.len;
    out->system = buf_detach(&sys, NULL);
    int total = ctx_estimate_tokens(out->system, out->system_len) + CTX_MSG_OVERHEAD;
    for (size_t i = first_turn; i < in->n_turns; i++) total += est(in->turns[i].content) + CTX_MSG_OVERHEAD;
    total += est(in->question) + CTX_MSG_OVERHEAD;
    out->tokens = total;
    return 0;
fail:
    buf_free(&sys);
    ctx_prompt_free(out);
    return rc;
}

void ctx_prompt_free(ctx_prompt_t *p)
{
    if (!p) return;
    eg_free(p->system);
    eg_free(p->memory_used);
    memset(p, 0, sizeof *p);
}
