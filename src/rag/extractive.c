/*
 * extractive.c - the extractive answerer and the term bags (see
 * extractive.h).
 *
 * Sentences. Each source is cut at paragraph breaks, at line breaks that
 * start a list item or heading, and after ".", "!" or "?" (plus closing
 * quotes or brackets) followed by white space and then a capital, a digit,
 * an opening quote or bracket, a non-ASCII character or the end - unless
 * the word before the full stop is a usual abbreviation ("Fig.", "Dr.",
 * "e.g."). Sentences of fewer than 3 words or more than
 * SENT_MAX bytes, and headings, are not candidates. A sentence is shown with
 * its white space runs collapsed and list or heading markers removed.
 *
 * Weights. w(t) = ln(1 + (S - sf + 0.5) / (sf + 0.5)) over the S candidate
 * sentences, with sf = max(sentences containing t, 1) so a question word
 * found nowhere weighs like a rare one (it still counts against coverage,
 * which is how "the capital of Mars" finds nothing in a text on capitals).
 * Coverage of a sentence: the share of the question's weight it contains.
 * The greedy gain of a sentence multiplies the weight it adds (uncovered
 * terms fully, already covered ones at a quarter) by a length factor
 * (sentences over 35 words lose) and a small bonus for better-ranked
 * sources.
 */
#include "rag/extractive.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/common.h"

#define SENT_MAX 600
#define SENT_MIN_WORDS 3
#define NEAR_DUP 0.6
#define MAX_ANSWER_BYTES 1400

/* Question words, pronouns, auxiliaries, greetings: words that say how a
 * question is asked, not what it is about. Sorted for bsearch. */
static const char *const function_words[] = {
    "a", "about", "afternoon", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "been", "being", "but", "by", "bye", "can", "cheers", "could", "describe", "did",
    "do", "does", "doing", "done", "evening", "explain", "for", "from", "give", "good",
    "goodbye", "greetings", "had", "has", "have", "having", "he", "hello", "her", "here",
    "hers", "hey", "hi", "him", "his", "how", "i", "if", "im", "in", "into", "is", "it",
    "its", "ive", "just", "know", "let", "lets", "me", "mean", "means", "mine", "morning",
    "much", "my", "myself", "no", "not", "of", "ok", "okay", "on", "or", "our", "ours",
    "please", "said", "say", "she", "should", "show", "so", "some", "such", "tell", "than",
    "thank", "thanks", "that", "thats", "the", "their", "them", "then", "there", "these",
    "they", "this", "those", "to", "us", "very", "was", "we", "were", "what", "whats",
    "when", "where", "which", "who", "whom", "whose", "why", "will", "with", "would", "yeah",
    "yes", "you", "your", "yours",
};

static int cmp_word(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_function_word(const char *w, size_t len)
{
    char lower[16];
    if (len == 0 || len >= sizeof lower) return 0;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)w[i];
        if (ch == '\'') continue;
        if (ch >= 0x80) return 0;
        lower[j++] = (char)tolower(ch);
    }
    lower[j] = '\0';
    const char *key = lower;
    return bsearch(&key, function_words, EG_ARRAY_LEN(function_words), sizeof function_words[0],
                   cmp_word) != NULL;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- term bags ------------------------------------------------------- */

long term_bag_find(const term_bag_t *bag, uint64_t h)
{
    for (size_t i = 0; i < bag->n; i++)
        if (bag->h[i] == h) return (long)i;
    return -1;
}

static int bag_add(term_bag_t *bag, uint64_t h)
{
    bag->total++;
    long i = term_bag_find(bag, h);
    if (i >= 0) {
        bag->tf[i]++;
        return 0;
    }
    if (bag->n == bag->cap) {
        size_t cap = bag->cap ? bag->cap * 2 : 16;
        uint64_t *nh = eg_realloc(bag->h, cap * sizeof *nh);
        if (!nh) return ENGRAM_ENOMEM;
        bag->h = nh;
        uint32_t *nt = eg_realloc(bag->tf, cap * sizeof *nt);
        if (!nt) return ENGRAM_ENOMEM;
        bag->tf = nt;
        bag->cap = cap;
    }
    bag->h[bag->n] = h;
    bag->tf[bag->n++] = 1;
    return 0;
}

struct bag_ctx {
    term_bag_t *bag;
    const char *text;
    int content_only;
};

static int bag_token(const tok_token_t *t, void *ud)
{
    struct bag_ctx *c = ud;
    if (c->content_only) {
        if (is_function_word(c->text + t->start, t->end - t->start)) return 0;
        if (tokenizer_is_stopword(t->term, t->len)) return 0;
    }
    return bag_add(c->bag, fnv1a(t->term, t->len));
}

int term_bag_build(tokenizer_t *tok, const char *text, size_t len, int content_only,
                   term_bag_t *bag)
{
    bag->n = 0;
    bag->total = 0;
    struct bag_ctx c = {bag, text, content_only};
    return tokenizer_run(tok, text, len, bag_token, &c);
}

double term_bag_cosine(const term_bag_t *a, const term_bag_t *b)
{
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < a->n; i++) {
        na += (double)a->tf[i] * a->tf[i];
        long j = term_bag_find(b, a->h[i]);
        if (j >= 0) dot += (double)a->tf[i] * b->tf[j];
    }
    for (size_t i = 0; i < b->n; i++) nb += (double)b->tf[i] * b->tf[i];
    if (na == 0 || nb == 0) return 0;
    double c = dot / (sqrt(na) * sqrt(nb));
    return c > 1 ? 1 : c;
}

void term_bag_free(term_bag_t *bag)
{
    eg_free(bag->h);
    eg_free(bag->tf);
    memset(bag, 0, sizeof *bag);
}

/* ---- sentences ------------------------------------------------------- */

typedef struct sentence {
    size_t src, start, end;  /* bytes [start, end) of source src */
    term_bag_t bag;          /* content terms */
    double cov, factor;
    int picked;
} sentence_t;

static const char *const abbreviations[] = {
    "al", "approx", "cf", "dr", "e.g", "eq", "etc", "fig", "figs", "i.e", "inc", "jr", "ltd",
    "mr", "mrs", "ms", "no", "prof", "sr", "st", "vs"};

static int is_abbreviation(const char *t, size_t dot)
{
    size_t b = dot;
    while (b > 0 && (isalpha((unsigned char)t[b - 1]) || t[b - 1] == '.')) b--;
    size_t n = dot - b;
    if (n < 2 || n > 6) return 0;
    char w[8];
    for (size_t i = 0; i < n; i++) w[i] = (char)tolower((unsigned char)t[b + i]);
    w[n] = '\0';
    for (size_t i = 0; i < EG_ARRAY_LEN(abbreviations); i++)
        if (!strcmp(w, abbreviations[i])) return 1;
    return 0;
}

static int starts_item(const char *t, size_t i, size_t len)
{
    while (i < len && (t[i] == ' ' || t[i] == '\t')) i++;
    if (i >= len) return 0;
    char ch = t[i];
    if (ch == '#' || ch == '-' || ch == '*' || ch == '>' || ch == '|') return 1;
    if (!strncmp(t + i, "\xe2\x80\xa2", 3)) return 1; /* bullet */
    if (isdigit((unsigned char)ch)) {
        while (i < len && isdigit((unsigned char)t[i])) i++;
        return i < len && (t[i] == '.' || t[i] == ')');
    }
    return 0;
}

/* The end of the sentence starting at i (exclusive), and *next where the
 * following one may start. */
static size_t sentence_end(const char *t, size_t len, size_t i, size_t *next)
{
    for (; i < len; i++) {
        char ch = t[i];
        if (ch == '\n') {
            size_t j = i + 1;
            while (j < len && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r')) j++;
            if (j >= len || t[j] == '\n' || starts_item(t, j, len)) {
                *next = j;
                return i;
            }
            continue;
        }
        if (ch != '.' && ch != '!' && ch != '?') continue;
        size_t j = i + 1;
        while (j < len && (t[j] == '"' || t[j] == '\'' || t[j] == ')' || t[j] == ']')) j++;
        if (j < len && !isspace((unsigned char)t[j])) continue;
        size_t k = j;
        while (k < len && isspace((unsigned char)t[k])) k++;
        if (k < len) {
            unsigned char nx = (unsigned char)t[k];
            if (!(isupper(nx) || isdigit(nx) || nx == '"' || nx == '(' || nx == '[' || nx >= 0x80))
                continue;
        }
        if (ch == '.' && is_abbreviation(t, i)) continue;
        *next = k;
        return j;
    }
    *next = len;
    return len;
}

/* Appends the sentence tidied: white space collapsed, markers dropped. */
static void append_clean(buf_t *b, const char *t, size_t start, size_t end)
{
    while (start < end && (isspace((unsigned char)t[start]) || t[start] == '#' || t[start] == '>' ||
                           ((t[start] == '-' || t[start] == '*') && start + 1 < end &&
                            t[start + 1] == ' ')))
        start++;
    while (end > start && isspace((unsigned char)t[end - 1])) end--;
    int space = 0;
    for (size_t i = start; i < end; i++) {
        if (isspace((unsigned char)t[i])) {
            space = 1;
            continue;
        }
        if (space) buf_putc(b, ' ');
        space = 0;
        buf_putc(b, t[i]);
    }
}

typedef struct sentences {
    sentence_t *v;
    size_t n, cap;
} sentences_t;

/* Routes each token of a source to the sentence holding its first byte. */
struct route_ctx {
    sentence_t *v;
    size_t n, cur;
    const char *text;
};

static int route_token(const tok_token_t *t, void *ud)
{
    struct route_ctx *c = ud;
    while (c->cur < c->n && t->start >= c->v[c->cur].end) c->cur++;
    if (c->cur >= c->n || t->start < c->v[c->cur].start) return 0; /* between sentences */
    if (is_function_word(c->text + t->start, t->end - t->start)) return 0;
    if (tokenizer_is_stopword(t->term, t->len)) return 0;
    return bag_add(&c->v[c->cur].bag, fnv1a(t->term, t->len));
}

/* Appends the candidate sentences of source src. The source is tokenized
 * once (a call per sentence costs more than the words themselves). */
static int split_source(tokenizer_t *tok, size_t src, const char *t, size_t len, sentences_t *out)
{
    size_t first = out->n, i = 0;
    while (i < len) {
        while (i < len && isspace((unsigned char)t[i])) i++;
        if (i >= len) break;
        size_t next, end = sentence_end(t, len, i, &next);
        if (next <= i) next = i + 1;
        size_t words = 0; /* all words (function words too) decide "too short" */
        for (size_t k = i; k < end; k++)
            if (!isspace((unsigned char)t[k]) && (k == i || isspace((unsigned char)t[k - 1]))) words++;
        if (t[i] != '#' && end - i <= SENT_MAX && words >= SENT_MIN_WORDS) {
            if (out->n == out->cap) {
                size_t cap = out->cap ? out->cap * 2 : 32;
                sentence_t *nv = eg_realloc(out->v, cap * sizeof *nv);
                if (!nv) return ENGRAM_ENOMEM;
                out->v = nv;
                out->cap = cap;
            }
            sentence_t *s = &out->v[out->n++];
            memset(s, 0, sizeof *s);
            s->src = src;
            s->start = i;
            s->end = end;
        }
        i = next;
    }
    if (out->n == first) return 0;
    struct route_ctx c = {out->v + first, out->n - first, 0, t};
    int rc = tokenizer_run(tok, t, len, route_token, &c);
    if (rc) return rc;
    /* Sentences without a content word are no candidates. */
    size_t w = first;
    for (size_t r = first; r < out->n; r++) {
        if (out->v[r].bag.n == 0) {
            term_bag_free(&out->v[r].bag);
            continue;
        }
        out->v[w++] = out->v[r];
    }
    out->n = w;
    return 0;
}

static double jaccard(const term_bag_t *a, const term_bag_t *b)
{
    size_t inter = 0;
    for (size_t i = 0; i < a->n; i++)
        if (term_bag_find(b, a->h[i]) >= 0) inter++;
    size_t uni = a->n + b->n - inter;
    return uni ? (double)inter / (double)uni : 0;
}

static int cmp_reading(const void *pa, const void *pb)
{
    const sentence_t *a = *(const sentence_t *const *)pa, *b = *(const sentence_t *const *)pb;
    if (a->src != b->src) return a->src < b->src ? -1 : 1;
    return a->start < b->start ? -1 : a->start > b->start;
}

static int add_piece(extractive_answer_t *a, buf_t *b)
{
    if (b->err) return b->err;
    char **np = eg_realloc(a->pieces, (a->n + 1) * sizeof *np);
    if (!np) return ENGRAM_ENOMEM;
    a->pieces = np;
    a->pieces[a->n] = buf_detach(b, NULL);
    if (!a->pieces[a->n]) return ENGRAM_ENOMEM;
    a->n++;
    return 0;
}

static int nothing_found(extractive_answer_t *a)
{
    buf_t b = BUF_INIT;
    buf_puts(&b, EXTRACTIVE_NOTHING_FOUND);
    a->found = 0;
    return add_piece(a, &b);
}

int extractive_answer(tokenizer_t *tok, const char *question, const extractive_source_t *src,
                      size_t n_src, extractive_answer_t *out)
{
    memset(out, 0, sizeof *out);
    term_bag_t q = {0};
    sentences_t ss = {0};
    double *w = NULL;
    sentence_t **picked = NULL;
    int rc = term_bag_build(tok, question ? question : "", question ? strlen(question) : 0, 1, &q);
    if (rc) goto fail;
    if (q.n == 0 || n_src == 0) {
        rc = nothing_found(out);
        goto done;
    }
    for (size_t i = 0; i < n_src; i++) {
        rc = split_source(tok, i, src[i].text, src[i].len, &ss);
        if (rc) goto fail;
    }
    if (ss.n == 0) {
        rc = nothing_found(out);
        goto done;
    }
    w = eg_calloc(q.n, sizeof *w);
    if (!w) { rc = ENGRAM_ENOMEM; goto fail; }
    double total = 0;
    for (size_t t = 0; t < q.n; t++) {
        size_t sf = 0;
        for (size_t i = 0; i < ss.n; i++) sf += term_bag_find(&ss.v[i].bag, q.h[t]) >= 0;
        if (sf == 0) sf = 1;
        w[t] = log(1.0 + ((double)ss.n - (double)sf + 0.5) / ((double)sf + 0.5));
        total += w[t];
    }
    double best_cov = 0;
    for (size_t i = 0; i < ss.n; i++) {
        sentence_t *s = &ss.v[i];
        double m = 0;
        for (size_t t = 0; t < q.n; t++)
            if (term_bag_find(&s->bag, q.h[t]) >= 0) m += w[t];
        s->cov = total > 0 ? m / total : 0;
        double words = (double)s->bag.total;
        double lf = words > 35 ? 1.0 / (1.0 + (words - 35) / 35) : 1.0;
        s->factor = lf * (1.0 + 0.1 * (1.0 - (double)s->src / (double)n_src));
        if (s->cov > best_cov) best_cov = s->cov;
    }
    if (best_cov < EXTRACTIVE_MIN_COVERAGE) {
        rc = nothing_found(out);
        goto done;
    }
    unsigned char *covered = (unsigned char *)eg_calloc(q.n, 1);
    picked = eg_calloc(EXTRACTIVE_MAX_SENTENCES, sizeof *picked);
    if (!covered || !picked) {
        eg_free(covered);
        rc = ENGRAM_ENOMEM;
        goto fail;
    }
    size_t n_picked = 0, bytes = 0;
    double first_gain = 0;
    while (n_picked < EXTRACTIVE_MAX_SENTENCES) {
        sentence_t *best = NULL;
        double best_gain = 0;
        for (size_t i = 0; i < ss.n; i++) {
            sentence_t *s = &ss.v[i];
            if (s->picked || s->cov <= 0) continue;
            if (n_picked && s->cov < EXTRACTIVE_MIN_COVERAGE / 2) continue;
            double g = 0;
            for (size_t t = 0; t < q.n; t++)
                if (term_bag_find(&s->bag, q.h[t]) >= 0) g += covered[t] ? 0.25 * w[t] : w[t];
            g = g / total * s->factor;
            if (g > best_gain) {
                int dup = 0;
                for (size_t k = 0; k < n_picked && !dup; k++) dup = jaccard(&s->bag, &picked[k]->bag) >= NEAR_DUP;
                if (dup) continue;
                best = s;
                best_gain = g;
            }
        }
        if (!best) break;
        if (n_picked && best_gain < 0.3 * first_gain) break;
        if (n_picked && bytes + (best->end - best->start) > MAX_ANSWER_BYTES) break;
        if (!n_picked) first_gain = best_gain;
        best->picked = 1;
        picked[n_picked++] = best;
        bytes += best->end - best->start;
        for (size_t t = 0; t < q.n; t++)
            if (term_bag_find(&best->bag, q.h[t]) >= 0) covered[t] = 1;
    }
    eg_free(covered);
    qsort(picked, n_picked, sizeof *picked, cmp_reading);
    out->found = 1;
    for (size_t k = 0; k < n_picked; k++) {
        buf_t b = BUF_INIT;
        if (k) buf_putc(&b, ' ');
        append_clean(&b, src[picked[k]->src].text, picked[k]->start, picked[k]->end);
        buf_printf(&b, " [%zu]", picked[k]->src + 1);
        rc = add_piece(out, &b);
        if (rc) {
            buf_free(&b);
            goto fail;
        }
    }
done:
    if (rc) goto fail;
    for (size_t i = 0; i < ss.n; i++) term_bag_free(&ss.v[i].bag);
    eg_free(ss.v);
    eg_free(w);
    eg_free(picked);
    term_bag_free(&q);
    return 0;
fail:
    for (size_t i = 0; i < ss.n; i++) term_bag_free(&ss.v[i].bag);
    eg_free(ss.v);
    eg_free(w);
    eg_free(picked);
    term_bag_free(&q);
    extractive_answer_free(out);
    return rc;
}

void extractive_answer_free(extractive_answer_t *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) eg_free(a->pieces[i]);
    eg_free(a->pieces);
    memset(a, 0, sizeof *a);
}
