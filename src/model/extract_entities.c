/*
 * extract_entities.c - the built-in rule-based entity and relation
 * extractor (see extract_entities.h for what it finds).
 *
 * How it works, per document:
 *  1. Each chunk is cut into words (byte spans with a few flags: capitalised,
 *     acronym, initial "M.", year) and sentences (. ! ? unless after an
 *     initial or a known abbreviation; blank lines).
 *  2. Candidate mentions come from runs of capitalised words inside a
 *     sentence (a leading stop word such as "The" is dropped), acronyms,
 *     quoted and emphasised spans, dates and "is a Y" phrases; each gets a
 *     key (graph_normalise) and a type vote.
 *  3. Document level: single capitalised words seen only at the start of a
 *     sentence are dropped; variants are resolved to one canonical key
 *     (acronym definitions, "M. Curie", "Curie") when exactly one candidate
 *     fits; each canonical key's type is the majority of its votes.
 *  4. Per chunk: mentions grouped by canonical key (count, most frequent
 *     form), and relations from the patterns first, then from sentence
 *     co-occurrence, one relation per pair with its count.
 * Everything is bounded: EXTRACT_MAX_ENTS entities and EXTRACT_MAX_RELS
 * relations per chunk; co-occurrence pairs the first 8 entities of a
 * sentence, each with the next 3 (nearby entities are the related ones, and
 * the writer's work stays linear in the sentence length).
 */
#include "model/extract_entities.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

#include "index/tokenizer.h"
#include "util/common.h"
#include "util/utf8.h"

#define SENT_MAX_ENTS 8
#define SENT_WINDOW 3     /* co-occurrence pairs at most this far apart in a sentence */

/* ---- word lists --------------------------------------------------------- */

static int in_list(const char *const *list, const char *w, size_t n)
{
    for (size_t i = 0; list[i]; i++)
        if (strlen(list[i]) == n && !strncasecmp(list[i], w, n)) return 1;
    return 0;
}

static const char *const abbrevs[] = {"dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "inc",
                                      "ltd", "co", "corp", "vs", "etc", "al", "fig", "no", "vol",
                                      "e.g", "i.e", "eg", "ie", "approx", "mt", NULL};
static const char *const titles[] = {"dr", "mr", "mrs", "ms", "prof", "professor", "sir",
                                     "madame", "president", "king", "queen", "lord", "lady",
                                     "dame", "saint", NULL};
static const char *const connectors[] = {"of", "de", "van", "von", "der", "du", "da", "del", "di",
                                         "la", "le", "y", NULL};
static const char *const org_words[] = {
    "university", "institute", "inc", "corp", "corporation", "company", "ltd", "association",
    "society", "organization", "organisation", "agency", "foundation", "department", "ministry",
    "council", "committee", "bank", "group", "college", "school", "laboratory", "laboratories",
    "hospital", "center", "centre", "academy", "party", "union", "federation", "commission",
    "consortium", "trust", "press", "museum", "library", "office", "service", "services",
    "board", "clinic", "faculty", "network", "systems", "technologies", "labs", NULL};
static const char *const place_words[] = {
    "river", "mountain", "mount", "lake", "city", "county", "island", "islands", "sea", "ocean",
    "street", "valley", "republic", "kingdom", "state", "states", "province", "region", "bay",
    "desert", "coast", "peninsula", "district", "avenue", "road", NULL};
static const char *const places[] = {
    "paris", "london", "berlin", "rome", "madrid", "vienna", "warsaw", "moscow", "tokyo",
    "beijing", "shanghai", "delhi", "mumbai", "cairo", "lagos", "nairobi", "sydney", "toronto",
    "chicago", "boston", "seattle", "california", "texas", "york", "new york", "washington",
    "france", "germany", "poland", "italy", "spain", "portugal", "russia", "china", "japan",
    "india", "brazil", "canada", "mexico", "egypt", "nigeria", "kenya", "australia", "england",
    "scotland", "ireland", "wales", "britain", "sweden", "norway", "denmark", "finland",
    "netherlands", "belgium", "switzerland", "austria", "greece", "turkey", "israel", "iran",
    "korea", "africa", "europe", "asia", "america", "antarctica", "usa", "uk", "eu", NULL};
static const char *const concept_words[] = {
    "prize", "award", "theory", "law", "effect", "syndrome", "disease", "act", "treaty", "war",
    "protocol", "method", "model", "algorithm", "principle", "equation", "theorem", "process",
    "reaction", "cycle", "index", "test", "trial", "study", "program", "programme", "project",
    "language", "system", "virus", "cancer", "therapy", "engine", "machine", "computer", NULL};
static const char *const months[] = {"january", "february", "march", "april", "may", "june",
                                     "july", "august", "september", "october", "november",
                                     "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
                                     "sep", "sept", "oct", "nov", "dec", NULL};
static const char *const weekdays[] = {"monday", "tuesday", "wednesday", "thursday", "friday",
                                       "saturday", "sunday", NULL};
static const char *const be_verbs[] = {"is", "was", "are", "were", NULL};
static const char *const articles[] = {"a", "an", "the", NULL};

/* ---- words and sentences ------------------------------------------------ */

enum {
    W_CAP = 1,       /* first letter upper case */
    W_ACRO = 2,      /* two or more capitals, no more lower case than capitals */
    W_INITIAL = 4,   /* one capital letter followed by '.' */
    W_YEAR = 8,      /* 1000..2099 */
    W_ALPHA = 16,    /* letters only */
    W_LOWER = 32,    /* first letter lower case */
    W_DIGIT = 64,    /* contains a digit */
};

typedef struct word {
    size_t start, end;   /* bytes in the chunk (the initial's '.' excluded) */
    int flags;
    int sent;            /* sentence number in the chunk */
    int sent_start;      /* first word of its sentence */
    char before;         /* punctuation between the previous word and this one: 0, ',', ';', '(', ... */
} word_t;

typedef struct words {
    word_t *w;
    size_t n, cap;
    int n_sents;
} words_t;

static int is_letter(uint32_t cp, int *upper, int *lower)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    *upper = c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT;
    *lower = c == UTF8PROC_CATEGORY_LL;
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}

static int is_digit_cp(uint32_t cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO;
}

static int word_push(words_t *ws, const word_t *w)
{
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 256;
        word_t *nw = eg_realloc(ws->w, cap * sizeof *nw);
        if (!nw) return ENGRAM_ENOMEM;
        ws->w = nw;
        ws->cap = cap;
    }
    ws->w[ws->n++] = *w;
    return 0;
}

static int word_is(const char *t, const word_t *w, const char *s)
{
    size_t n = strlen(s);
    return w->end - w->start == n && !strncasecmp(t + w->start, s, n);
}

/* Cuts text into words and sentences. */
static int split_words(const char *t, size_t n, words_t *ws)
{
    size_t i = 0;
    int sent = 0, new_sent = 1;
    char before = 0;
    ws->n = 0;
    while (i < n) {
        uint32_t cp;
        int l = utf8_decode(t + i, n - i, &cp);
        if (l <= 0) { i += l < 0 ? (size_t)-l : 1; continue; }
        int up, lo;
        int letter = is_letter(cp, &up, &lo), digit = is_digit_cp(cp);
        if (!letter && !digit) {
            if (cp == '\n' && i + 1 < n && (t[i + 1] == '\n' || t[i + 1] == '#')) new_sent = 1;
            if (cp == '.' || cp == '!' || cp == '?' || cp == ';' || cp == ':') {
                /* '.' after an abbreviation does not end a sentence */
                int abbrev = cp == '.' && ws->n && !new_sent &&
                             in_list(abbrevs, t + ws->w[ws->n - 1].start,
                                     ws->w[ws->n - 1].end - ws->w[ws->n - 1].start) &&
                             ws->w[ws->n - 1].end == i;
                if (cp != ';' && cp != ':' && !abbrev) new_sent = 1;
                before = (char)(cp == '.' ? '.' : ',');
            } else if (cp == ',' || cp == '(' || cp == ')' || cp == '"' || cp == 0x201C ||
                       cp == 0x201D || cp == '[' || cp == ']' || cp == '/' || cp == '*') {
                if (before != '.') before = (char)(cp == ',' ? ',' : '(');
            } else if (cp == '-' && i + 1 < n && t[i + 1] == ' ') {
                before = ',';
            }
            i += (size_t)l;
            continue;
        }
        word_t w = {.start = i, .flags = 0};
        int n_up = 0, n_lo = 0, n_dig = 0, first = 1;
        while (i < n) {
            l = utf8_decode(t + i, n - i, &cp);
            if (l <= 0) break;
            letter = is_letter(cp, &up, &lo);
            digit = is_digit_cp(cp);
            if (letter || digit) {
                if (first) w.flags |= up ? W_CAP : lo ? W_LOWER : 0;
                first = 0;
                n_up += up;
                n_lo += lo;
                n_dig += digit;
                i += (size_t)l;
                continue;
            }
            /* inner hyphen or apostrophe joins two parts of one word */
            if ((cp == '-' || cp == '\'' || cp == 0x2019) && i + (size_t)l < n) {
                uint32_t nx;
                int l2 = utf8_decode(t + i + l, n - i - (size_t)l, &nx);
                int u2, o2;
                if (l2 > 0 && (is_letter(nx, &u2, &o2) || is_digit_cp(nx))) { i += (size_t)l; continue; }
            }
            break;
        }
        w.end = i;
        size_t wl = w.end - w.start;
        if (n_up >= 2 && n_lo <= n_up && wl >= 2) w.flags |= W_ACRO;
        if (n_dig) w.flags |= W_DIGIT;
        if (!n_dig) w.flags |= W_ALPHA;
        if (wl == 4 && n_dig == 4) {
            int y = atoi(t + w.start);
            if (y >= 1000 && y <= 2099) w.flags |= W_YEAR;
        }
        if (wl == 1 && n_up == 1 && i < n && t[i] == '.') {
            w.flags |= W_INITIAL;
            i++; /* the initial's '.' is not a sentence end */
        }
        if (new_sent && ws->n) sent++;
        w.sent = sent;
        w.sent_start = new_sent;
        w.before = new_sent ? '.' : before;
        new_sent = 0;
        before = 0;
        if (word_push(ws, &w)) return ENGRAM_ENOMEM;
    }
    ws->n_sents = sent + 1;
    return 0;
}

/* ---- candidates --------------------------------------------------------- */

typedef struct cand {
    size_t chunk;
    int sent;
    size_t w0, w1;        /* words [w0, w1) of the chunk; w1 == w0 for spans without words */
    size_t start, end;    /* bytes of the written form */
    char key[GRAPH_MAX_NAME + 1];
    int type;             /* vote */
    int initial_only;     /* a single capitalised word at a sentence start */
    int canon;            /* index into keys */
} cand_t;

typedef struct pattern_rel {
    size_t a, b;          /* candidate indexes */
    char label[GRAPH_MAX_LABEL + 1];
} pattern_rel_t;

typedef struct doc {
    const char *const *texts;
    cand_t *c;
    size_t n, cap;
    pattern_rel_t *pr;
    size_t n_pr, cap_pr;
} doc_t;

static int cand_add(doc_t *d, size_t chunk, const words_t *ws, size_t w0, size_t w1, size_t start,
                    size_t end, int type)
{
    const char *t = d->texts[chunk];
    cand_t c = {.chunk = chunk, .w0 = w0, .w1 = w1, .start = start, .end = end, .type = type,
                .canon = -1};
    c.sent = w0 < ws->n ? ws->w[w0].sent : 0;
    if (!graph_normalise(t + start, end - start, c.key, sizeof c.key)) return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 128;
        cand_t *nc = eg_realloc(d->c, cap * sizeof *nc);
        if (!nc) return ENGRAM_ENOMEM;
        d->c = nc;
        d->cap = cap;
    }
    d->c[d->n++] = c;
    return 0;
}

static int rel_add(doc_t *d, size_t a, size_t b, const char *label, size_t ll)
{
    if (d->n_pr == d->cap_pr) {
        size_t cap = d->cap_pr ? d->cap_pr * 2 : 32;
        pattern_rel_t *np = eg_realloc(d->pr, cap * sizeof *np);
        if (!np) return ENGRAM_ENOMEM;
        d->pr = np;
        d->cap_pr = cap;
    }
    pattern_rel_t *p = &d->pr[d->n_pr++];
    p->a = a;
    p->b = b;
    if (ll > GRAPH_MAX_LABEL) ll = GRAPH_MAX_LABEL;
    memcpy(p->label, label, ll);
    p->label[ll] = '\0';
    return 0;
}

/* The type a capitalised span suggests. */
static int span_type(const char *t, const words_t *ws, size_t w0, size_t w1)
{
    size_t n = w1 - w0, alpha_title = 0;
    char key[GRAPH_MAX_NAME + 1];
    graph_normalise(t + ws->w[w0].start, ws->w[w1 - 1].end - ws->w[w0].start, key, sizeof key);
    if (in_list(places, key, strlen(key))) return GT_LOCATION;
    for (size_t i = w0; i < w1; i++) {
        const word_t *w = &ws->w[i];
        const char *s = t + w->start;
        size_t l = w->end - w->start;
        if (in_list(months, s, l) || in_list(weekdays, s, l)) return GT_DATE;
        if (in_list(org_words, s, l)) return GT_ORGANIZATION;
        if (in_list(place_words, s, l) && i > w0) return GT_LOCATION;
        if (in_list(concept_words, s, l) && i > w0) return GT_CONCEPT;
        if ((w->flags & (W_CAP | W_ALPHA)) == (W_CAP | W_ALPHA) && !(w->flags & W_ACRO)) alpha_title++;
        if (w->flags & W_INITIAL) alpha_title++;
    }
    for (size_t i = w0; i < w1; i++)
        if (in_list(places, t + ws->w[i].start, ws->w[i].end - ws->w[i].start)) return GT_LOCATION;
    if (w0 > 0) {
        const word_t *p = &ws->w[w0 - 1];
        if (in_list(titles, t + p->start, p->end - p->start)) return GT_PERSON;
        if (p->sent == ws->w[w0].sent && (word_is(t, p, "in") || word_is(t, p, "at") ||
                                          word_is(t, p, "near") || word_is(t, p, "from")))
            return n == 1 ? GT_LOCATION : GT_OTHER;
    }
    if (n == 1 && (ws->w[w0].flags & W_ACRO)) return GT_CONCEPT;
    if (n >= 2 && n <= 3 && alpha_title == n) return GT_PERSON;
    return GT_OTHER;
}


/* Function words and sentence openers that are never names on their own. */
static const char *const common[] = {
    "a", "an", "the", "and", "or", "but", "if", "in", "on", "at", "by", "for", "from", "to",
    "of", "with", "without", "as", "is", "are", "was", "were", "be", "been", "this", "that",
    "these", "those", "it", "its", "they", "their", "there", "here", "we", "our", "he", "she",
    "his", "her", "i", "you", "after", "before", "during", "while", "when", "where", "which",
    "who", "what", "how", "why", "although", "though", "however", "also", "both", "each",
    "all", "some", "many", "most", "more", "other", "such", "no", "not", "one", "two", "three",
    "first", "second", "then", "thus", "therefore", "moreover", "furthermore", "because",
    "since", "until", "upon", "into", "over", "under", "between", "among", "about", "against",
    "can", "could", "may", "might", "will", "would", "should", "must", "do", "does", "did",
    "has", "have", "had", "yes", "so", "yet", "nor", "any", "every", "only", "very", "new",
    "further", "finally", "recently", "similarly", "overall", "instead", "despite", "within",
    "using", "based", "results", "conclusions", "background", "methods", "objective", "table",
    "figure", "fig", "later", "earlier", "today", "yesterday", "meanwhile", "eventually",
    "afterwards", "now", "still", "even", "again", "soon", "once", "twice", "perhaps", NULL};

/* Function words, and adverbs in -ly ("Recently", "Finally"). */
static int is_common(const char *s, size_t n)
{
    if (n > 4 && s[n - 2] == 'l' && s[n - 1] == 'y' && (s[0] < 'A' || s[0] > 'Z' || s[1] >= 'a'))
        return 1;
    return in_list(common, s, n);
}

/* ---- document-level sets ------------------------------------------------- */

typedef struct keyset {
    char (*k)[GRAPH_MAX_NAME + 1];
    size_t n, cap;
} keyset_t;

static int keyset_add(keyset_t *s, const char *key)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char (*nk)[GRAPH_MAX_NAME + 1] = eg_realloc(s->k, cap * sizeof *nk);
        if (!nk) return ENGRAM_ENOMEM;
        s->k = nk;
        s->cap = cap;
    }
    memcpy(s->k[s->n++], key, GRAPH_MAX_NAME + 1);
    return 0;
}

static int cmp_key(const void *a, const void *b) { return strcmp(a, b); }

static void keyset_seal(keyset_t *s)
{
    if (s->n) qsort(s->k, s->n, sizeof *s->k, cmp_key);
}

static int keyset_has(const keyset_t *s, const char *key)
{
    return s->n && bsearch(key, s->k, s->n, sizeof *s->k, cmp_key) != NULL;
}

/* ---- names --------------------------------------------------------------- */

static int name_word(const word_t *w)
{
    return (w->flags & (W_CAP | W_ACRO | W_INITIAL)) != 0;
}

/* A capitalised word at a sentence start is a name only if the document
 * also writes it capitalised elsewhere (or it is an acronym). */
static int opener_ok(const char *t, const word_t *w, int multi, const keyset_t *midcaps)
{
    if (!w->sent_start || (w->flags & (W_ACRO | W_INITIAL))) return 1;
    if (is_common(t + w->start, w->end - w->start)) return 0;
    if (multi) return 1; /* "Ada Lovelace wrote": the name goes on past the opener */
    if (in_list(places, t + w->start, w->end - w->start)) return 1;
    char key[GRAPH_MAX_NAME + 1];
    graph_normalise(t + w->start, w->end - w->start, key, sizeof key);
    return keyset_has(midcaps, key);
}

static int scan_names(doc_t *d, size_t chunk, const words_t *ws, const keyset_t *midcaps)
{
    const char *t = d->texts[chunk];
    size_t i = 0;
    while (i < ws->n) {
        const word_t *w = &ws->w[i];
        if (w->flags & W_YEAR) {
            int rc = cand_add(d, chunk, ws, i, i + 1, w->start, w->end, GT_DATE);
            if (rc) return rc;
            i++;
            continue;
        }
        if (!name_word(w) || (!(w->flags & W_ACRO) && is_common(t + w->start, w->end - w->start))) {
            i++;
            continue;
        }
        size_t j = i + 1;
        int has_org = in_list(org_words, t + w->start, w->end - w->start);
        while (j < ws->n && ws->w[j].sent == w->sent && !ws->w[j].before) {
            const word_t *x = &ws->w[j];
            if (name_word(x) && !is_common(t + x->start, x->end - x->start)) {
                has_org |= in_list(org_words, t + x->start, x->end - x->start);
                j++;
                continue;
            }
            /* a connector between capitalised words ("of" only in organisations) */
            if (j + 1 < ws->n && ws->w[j + 1].sent == w->sent && !ws->w[j + 1].before &&
                name_word(&ws->w[j + 1]) && in_list(connectors, t + x->start, x->end - x->start) &&
                (!word_is(t, x, "of") || has_org)) {
                j += 2;
                continue;
            }
            break;
        }
        /* a month with a day and/or year: "March 2019", "March 5, 1998" */
        if (j - i == 1 && in_list(months, t + w->start, w->end - w->start)) {
            size_t y = j;
            if (y < ws->n && ws->w[y].sent == w->sent && !ws->w[y].before &&
                (ws->w[y].flags & W_DIGIT) && ws->w[y].end - ws->w[y].start <= 2)
                y++;
            if (y < ws->n && ws->w[y].sent == w->sent && (ws->w[y].flags & W_YEAR) &&
                (!ws->w[y].before || (y > j && ws->w[y].before == ',')))
                j = y + 1;
        }
        size_t s0 = i;
        if (!opener_ok(t, &ws->w[s0], j - i > 1, midcaps)) s0++;
        while (s0 + 1 < j && in_list(titles, t + ws->w[s0].start, ws->w[s0].end - ws->w[s0].start))
            s0++;
        if (s0 < j && !(j - s0 == 1 && (ws->w[s0].flags & W_INITIAL))) {
            int type = span_type(t, ws, s0, j);
            int rc = cand_add(d, chunk, ws, s0, j, ws->w[s0].start, ws->w[j - 1].end, type);
            if (rc) return rc;
        }
        i = j;
    }
    return 0;
}

/* "quoted" and *emphasised* / _emphasised_ terms of 1..6 words: concepts. */
static int scan_marked(doc_t *d, size_t chunk, size_t len, const words_t *ws)
{
    const char *t = d->texts[chunk];
    for (size_t i = 0; i < len; i++) {
        size_t open = 0;
        const char *close = NULL;
        if (t[i] == '"') { open = 1; close = "\""; }
        else if (!strncmp(t + i, "\xe2\x80\x9c", 3)) { open = 3; close = "\xe2\x80\x9d"; }
        else if (t[i] == '*' && i + 1 < len && t[i + 1] == '*') { open = 2; close = "**"; }
        else if ((t[i] == '*' || t[i] == '_') && (i == 0 || t[i - 1] == ' ' || t[i - 1] == '\n')) {
            open = 1;
            close = t[i] == '*' ? "*" : "_";
        }
        if (!open) continue;
        size_t s = i + open, cl = strlen(close), e = s, words = 0;
        int inword = 0, ok = 0;
        for (; e < len && e < s + 80; e++) {
            if (t[e] == '\n') break;
            if (!strncmp(t + e, close, cl)) { ok = e > s; break; }
            int sp = t[e] == ' ';
            if (!sp && !inword) words++;
            inword = !sp;
        }
        if (!ok || words == 0 || words > 6 || t[s] == ' ' || t[e - 1] == ' ') continue;
        size_t w0 = 0;
        while (w0 < ws->n && ws->w[w0].start < s) w0++;
        size_t w1 = w0;
        while (w1 < ws->n && ws->w[w1].end <= e) w1++;
        if (w1 == w0) continue;
        int rc = cand_add(d, chunk, ws, w0, w1, s, e, GT_CONCEPT);
        if (rc) return rc;
        i = e + cl - 1;
    }
    return 0;
}

/* Candidate whose words start at w (or -1). */
static long cand_at(const doc_t *d, size_t first, size_t chunk, size_t w)
{
    for (size_t i = first; i < d->n; i++)
        if (d->c[i].chunk == chunk && d->c[i].w0 == w && d->c[i].w1 > w) return (long)i;
    return -1;
}

static long cand_ending(const doc_t *d, size_t first, size_t chunk, size_t w1)
{
    for (size_t i = first; i < d->n; i++)
        if (d->c[i].chunk == chunk && d->c[i].w1 == w1 && d->c[i].w1 > d->c[i].w0) return (long)i;
    return -1;
}

/* Lower-case words ws[i..] that may form a noun phrase (at most 3, no
 * function words, no punctuation inside); returns how many. */
static size_t phrase_len(const char *t, const words_t *ws, size_t i, int sent)
{
    size_t k = 0;
    while (i + k < ws->n && k < 3) {
        const word_t *w = &ws->w[i + k];
        if (w->sent != sent || (k && w->before) || !(w->flags & W_ALPHA) || (w->flags & W_CAP) ||
            is_common(t + w->start, w->end - w->start))
            break;
        k++;
    }
    return k;
}

/* "X is a Y", "X of Y", "X, the Y of Z" over the candidates of chunk
 * (indexes >= first). */
static int scan_patterns(doc_t *d, size_t first, size_t chunk, const words_t *ws)
{
    const char *t = d->texts[chunk];
    size_t n0 = d->n;
    for (size_t ci = first; ci < n0; ci++) {
        size_t e = d->c[ci].w1;
        int sent = d->c[ci].sent;
        if (d->c[ci].w1 <= d->c[ci].w0 || e >= ws->n || ws->w[e].sent != sent) continue;
        const word_t *v = &ws->w[e];
        if (in_list(be_verbs, t + v->start, v->end - v->start) && e + 2 < ws->n &&
            in_list(articles, t + ws->w[e + 1].start, ws->w[e + 1].end - ws->w[e + 1].start)) {
            size_t y = e + 2;
            long other = cand_at(d, first, chunk, y);
            int rc;
            if (other >= 0) {
                rc = rel_add(d, ci, (size_t)other, "is_a", 4);
            } else {
                size_t k = phrase_len(t, ws, y, sent);
                if (!k) continue;
                rc = cand_add(d, chunk, ws, y, y + k, ws->w[y].start, ws->w[y + k - 1].end, GT_CONCEPT);
                if (!rc) rc = rel_add(d, ci, d->n - 1, "is_a", 4);
            }
            if (rc) return rc;
            continue;
        }
        if (word_is(t, v, "of") && !v->before && e + 1 < ws->n) {
            size_t y = e + 1;
            if (word_is(t, &ws->w[y], "the") && y + 1 < ws->n) y++;
            long other = cand_at(d, first, chunk, y);
            if (other >= 0 && ws->w[y].sent == sent) {
                int rc = rel_add(d, ci, (size_t)other, "of", 2);
                if (rc) return rc;
            }
            continue;
        }
        if (v->before == ',' && word_is(t, v, "the")) {
            size_t y = e + 1, k = phrase_len(t, ws, y, sent);
            if (!k || y + k >= ws->n || !word_is(t, &ws->w[y + k], "of")) continue;
            size_t z = y + k + 1;
            if (z < ws->n && word_is(t, &ws->w[z], "the")) z++;
            long other = cand_at(d, first, chunk, z);
            if (other < 0 || ws->w[z].sent != sent) continue;
            int rc = rel_add(d, ci, (size_t)other, t + ws->w[y].start, ws->w[y + k - 1].end - ws->w[y].start);
            if (rc) return rc;
        }
    }
    (void)cand_ending;
    return 0;
}

/* ---- variants ------------------------------------------------------------ */

static size_t word_count(const char *key)
{
    size_t n = 1;
    for (const char *p = key; *p; p++) n += *p == ' ';
    return n;
}

static const char *last_word(const char *key)
{
    const char *s = strrchr(key, ' ');
    return s ? s + 1 : key;
}

/* Resolves each distinct key to its canonical key (index into keys). */
static int resolve_variants(doc_t *d, const keyset_t *keys, int **canon_out)
{
    int *canon = eg_malloc((keys->n ? keys->n : 1) * sizeof *canon);
    if (!canon) return ENGRAM_ENOMEM;
    char *person = eg_calloc(keys->n + 1, 1);
    if (!person) { eg_free(canon); return ENGRAM_ENOMEM; }
    for (size_t i = 0; i < keys->n; i++) canon[i] = (int)i;
    for (size_t i = 0; i < d->n; i++) {
        char *k = bsearch(d->c[i].key, keys->k, keys->n, sizeof *keys->k, cmp_key);
        if (k && d->c[i].type == GT_PERSON) person[(k - (char *)keys->k) / (GRAPH_MAX_NAME + 1)] = 1;
    }
    /* acronym definitions: "World Health Organization (WHO)" */
    for (size_t i = 0; i + 1 < d->n; i++) {
        cand_t *a = &d->c[i], *b = &d->c[i + 1];
        if (a->chunk != b->chunk || b->w1 != b->w0 + 1 || a->w1 != b->w0) continue;
        const char *t = d->texts[a->chunk];
        size_t bl = b->end - b->start;
        if (b->start == 0 || t[b->start - 1] != '(' || bl < 2 || bl > 8) continue;
        /* its letters are the initials of the long name's capitalised words */
        size_t m = 0, ok = 1;
        const char *p = a->key;
        for (const char *q = t + b->start; q < t + b->end && ok; q++) {
            if (*q >= 'a' && *q <= 'z') continue;
            while (*p == ' ') p++;
            while (*p && (!strncmp(p, "of ", 3) || !strncmp(p, "and ", 4) || !strncmp(p, "the ", 4)))
                p = strchr(p, ' ') + 1;
            if (!*p || (*p | 0x20) != (*q | 0x20)) ok = 0;
            m++;
            p = strchr(p, ' ');
            if (!p) p = "";
        }
        while (*p == ' ') p++;
        if (!ok || *p || m < 2) continue;
        char *ka = bsearch(a->key, keys->k, keys->n, sizeof *keys->k, cmp_key);
        char *kb = bsearch(b->key, keys->k, keys->n, sizeof *keys->k, cmp_key);
        if (!ka || !kb) continue;
        canon[(kb - (char *)keys->k) / (GRAPH_MAX_NAME + 1)] = (int)((ka - (char *)keys->k) / (GRAPH_MAX_NAME + 1));
        if (b->type == GT_CONCEPT && a->type == GT_ORGANIZATION) b->type = GT_ORGANIZATION;
    }
    /* "Curie" and "M. Curie" join the one multi-word name ending in "curie" */
    for (size_t i = 0; i < keys->n; i++) {
        const char *k = keys->k[i];
        size_t wc = word_count(k);
        int initial = wc == 2 && k[1] == ' ';
        if (wc != 1 && !initial) continue;
        if (canon[i] != (int)i) continue;
        const char *last = last_word(k);
        if (!initial && (strlen(last) < 3)) continue;
        long found = -1;
        int ambiguous = 0;
        for (size_t j = 0; j < keys->n && !ambiguous; j++) {
            const char *o = keys->k[j];
            if (j == i || !person[j] || word_count(o) < 2 || (o[1] == ' ' && word_count(o) == 2)) continue;
            if (strcmp(last_word(o), last)) continue;
            if (initial && o[0] != k[0]) continue;
            if (found >= 0) ambiguous = 1;
            found = (long)j;
        }
        if (found >= 0 && !ambiguous) canon[i] = (int)found;
    }
    eg_free(person);
    *canon_out = canon;
    return 0;
}

/* ---- output -------------------------------------------------------------- */

typedef struct agg {
    int canon;
    uint32_t count;
    int type;
    size_t best_cand;  /* candidate giving the form */
    uint32_t best_count;
} agg_t;

static int build_chunk(doc_t *d, size_t chunk, size_t c0, size_t c1, const keyset_t *keys,
                       const int *types, const words_t *ws, graph_chunk_t *g)
{
    (void)ws;
    size_t n = c1 - c0;
    agg_t *ag = eg_calloc(n + 1, sizeof *ag);
    long *ent_of = eg_malloc((n + 1) * sizeof *ent_of);
    int rc = 0;
    size_t na = 0;
    if (!ag || !ent_of) { rc = ENGRAM_ENOMEM; goto done; }
    for (size_t i = c0; i < c1; i++) {
        cand_t *c = &d->c[i];
        ent_of[i - c0] = -1;
        if (c->canon < 0) continue;
        size_t a;
        for (a = 0; a < na; a++)
            if (ag[a].canon == c->canon) break;
        if (a == na) {
            if (na == EXTRACT_MAX_ENTS) continue;
            ag[na].canon = c->canon;
            ag[na].type = types[c->canon];
            ag[na].best_cand = i;
            na++;
        }
        ag[a].count++;
        ent_of[i - c0] = (long)a;
        /* the form: prefer the candidate whose own key is the canonical one */
        int own = !strcmp(c->key, keys->k[c->canon]);
        int best_own = !strcmp(d->c[ag[a].best_cand].key, keys->k[c->canon]);
        if (own && !best_own) ag[a].best_cand = i;
    }
    if (!na) goto done;
    g->ents = eg_calloc(na, sizeof *g->ents);
    g->rels = eg_calloc(EXTRACT_MAX_RELS, sizeof *g->rels);
    if (!g->ents || !g->rels) { rc = ENGRAM_ENOMEM; goto done; }
    const char *t = d->texts[chunk];
    for (size_t a = 0; a < na; a++) {
        graph_mention_t *m = &g->ents[a];
        const cand_t *c = &d->c[ag[a].best_cand];
        memcpy(m->key, keys->k[ag[a].canon], GRAPH_MAX_NAME + 1);
        size_t fl = utf8_truncate(t + c->start, c->end - c->start, GRAPH_MAX_NAME);
        memcpy(m->form, t + c->start, fl);
        m->form[fl] = '\0';
        m->type = (uint8_t)ag[a].type;
        m->count = ag[a].count;
    }
    g->n_ents = na;
    /* relations: patterns first (their label wins), then co-occurrence */
    for (size_t p = 0; p < d->n_pr; p++) {
        pattern_rel_t *pr = &d->pr[p];
        if (pr->a < c0 || pr->a >= c1 || pr->b < c0 || pr->b >= c1) continue;
        long ea = ent_of[pr->a - c0], eb = ent_of[pr->b - c0];
        if (ea < 0 || eb < 0 || ea == eb) continue;
        size_t r;
        for (r = 0; r < g->n_rels; r++)
            if ((g->rels[r].a == (uint32_t)ea && g->rels[r].b == (uint32_t)eb) ||
                (g->rels[r].a == (uint32_t)eb && g->rels[r].b == (uint32_t)ea)) break;
        if (r < g->n_rels) { g->rels[r].count++; continue; }
        if (g->n_rels == EXTRACT_MAX_RELS) break;
        graph_rel_t *gr = &g->rels[g->n_rels++];
        gr->a = (uint32_t)ea;
        gr->b = (uint32_t)eb;
        gr->count = 1;
        memcpy(gr->label, pr->label, sizeof gr->label);
        for (char *q = gr->label; *q; q++)
            if (*q >= 'A' && *q <= 'Z') *q = (char)(*q | 0x20);
    }
    for (size_t i = c0; i < c1;) {
        int sent = d->c[i].sent;
        long se[SENT_MAX_ENTS];
        size_t ns = 0, j = i;
        for (; j < c1 && d->c[j].sent == sent; j++) {
            long e = ent_of[j - c0];
            int seen = e < 0;
            for (size_t k = 0; k < ns && !seen; k++) seen = se[k] == e;
            if (!seen && ns < SENT_MAX_ENTS) se[ns++] = e;
        }
        for (size_t x = 0; x < ns; x++)
            for (size_t y = x + 1; y < ns && y <= x + SENT_WINDOW; y++) {
                size_t r;
                for (r = 0; r < g->n_rels; r++)
                    if ((g->rels[r].a == (uint32_t)se[x] && g->rels[r].b == (uint32_t)se[y]) ||
                        (g->rels[r].a == (uint32_t)se[y] && g->rels[r].b == (uint32_t)se[x])) break;
                if (r < g->n_rels) {
                    if (!strcmp(g->rels[r].label, "related_to")) g->rels[r].count++;
                    continue;
                }
                if (g->n_rels == EXTRACT_MAX_RELS) continue;
                graph_rel_t *gr = &g->rels[g->n_rels++];
                gr->a = (uint32_t)se[x];
                gr->b = (uint32_t)se[y];
                gr->count = 1;
                strcpy(gr->label, "related_to");
            }
        i = j;
    }
done:
    eg_free(ag);
    eg_free(ent_of);
    return rc;
}

static int cmp_cand(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->chunk != y->chunk) return x->chunk < y->chunk ? -1 : 1;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->end > y->end ? -1 : x->end < y->end;
}

static int cmp_idx(const void *a, const void *b, void *base)
{
    const cand_t *c = base;
    return cmp_cand(&c[*(const size_t *)a], &c[*(const size_t *)b]);
}

/* Sorts candidates [c0, n) and renumbers the pattern relations from pr0. */
static int reorder(doc_t *d, size_t c0, size_t pr0)
{
    size_t m = d->n - c0;
    if (m == 0) return 0;
    size_t *idx = eg_malloc((m + 1) * sizeof *idx), *pos = eg_malloc((m + 1) * sizeof *pos);
    cand_t *tmp = eg_malloc((m + 1) * sizeof *tmp);
    if (!idx || !pos || !tmp) { eg_free(idx); eg_free(pos); eg_free(tmp); return ENGRAM_ENOMEM; }
    for (size_t i = 0; i < m; i++) idx[i] = i;
    qsort_r(idx, m, sizeof *idx, cmp_idx, d->c + c0);
    for (size_t i = 0; i < m; i++) {
        tmp[i] = d->c[c0 + idx[i]];
        pos[idx[i]] = i;
    }
    memcpy(d->c + c0, tmp, m * sizeof *tmp);
    for (size_t p = pr0; p < d->n_pr; p++) {
        d->pr[p].a = c0 + pos[d->pr[p].a - c0];
        d->pr[p].b = c0 + pos[d->pr[p].b - c0];
    }
    eg_free(idx);
    eg_free(pos);
    eg_free(tmp);
    return 0;
}

void extract_graph_free(graph_chunk_t *g, size_t n)
{
    for (size_t i = 0; g && i < n; i++) graph_chunk_free(&g[i]);
    eg_free(g);
}

int extract_entities(const char *const *texts, const size_t *lens, size_t n, graph_chunk_t **out)
{
    *out = NULL;
    doc_t d = {.texts = texts};
    words_t *ws = eg_calloc(n + 1, sizeof *ws);
    keyset_t midcaps = {0}, keys = {0};
    int *canon = NULL, *types = NULL;
    size_t *first = eg_calloc(n + 1, sizeof *first);
    graph_chunk_t *g = eg_calloc(n + 1, sizeof *g);
    int rc = 0;
    if (!ws || !first || !g) { rc = ENGRAM_ENOMEM; goto done; }
    for (size_t c = 0; c < n && !rc; c++) {
        rc = split_words(texts[c], lens[c], &ws[c]);
        for (size_t i = 0; !rc && i < ws[c].n; i++) {
            const word_t *w = &ws[c].w[i];
            if (w->sent_start || !(w->flags & W_CAP)) continue;
            char key[GRAPH_MAX_NAME + 1];
            if (graph_normalise(texts[c] + w->start, w->end - w->start, key, sizeof key))
                rc = keyset_add(&midcaps, key);
        }
    }
    if (rc) goto done;
    keyset_seal(&midcaps);
    for (size_t c = 0; c < n && !rc; c++) {
        size_t c0 = d.n;
        if (!(rc = scan_names(&d, c, &ws[c], &midcaps)) && !(rc = scan_marked(&d, c, lens[c], &ws[c]))) {
            if (d.n > c0) qsort(d.c + c0, d.n - c0, sizeof *d.c, cmp_cand);
            /* a marked span that is also a name: keep one (the longer, first) */
            size_t o = c0;
            for (size_t i = c0; i < d.n; i++) {
                if (o > c0 && d.c[i].start < d.c[o - 1].end) continue;
                d.c[o++] = d.c[i];
            }
            d.n = o;
            size_t pr0 = d.n_pr;
            rc = scan_patterns(&d, c0, c, &ws[c]);
            /* the concept phrases the patterns added go in text order */
            if (!rc) rc = reorder(&d, c0, pr0);
        }
        first[c] = c0;
    }
    if (rc) goto done;
    for (size_t i = 0; i < d.n && !rc; i++) rc = keyset_add(&keys, d.c[i].key);
    if (rc) goto done;
    keyset_seal(&keys);
    size_t u = 0;
    for (size_t i = 0; i < keys.n; i++)
        if (!u || strcmp(keys.k[i], keys.k[u - 1])) memmove(keys.k[u++], keys.k[i], sizeof *keys.k);
    keys.n = u;
    if ((rc = resolve_variants(&d, &keys, &canon))) goto done;
    /* chains (a -> b -> c) end at c */
    for (size_t i = 0; i < keys.n; i++)
        for (int hops = 0; hops < 4 && canon[canon[i]] != canon[i]; hops++) canon[i] = canon[canon[i]];
    uint32_t (*votes)[GT__COUNT] = eg_calloc(keys.n + 1, sizeof *votes);
    types = eg_malloc((keys.n + 1) * sizeof *types);
    if (!votes || !types) { eg_free(votes); rc = ENGRAM_ENOMEM; goto done; }
    for (size_t i = 0; i < d.n; i++) {
        char *k = bsearch(d.c[i].key, keys.k, keys.n, sizeof *keys.k, cmp_key);
        int ki = (int)((k - (char *)keys.k) / (GRAPH_MAX_NAME + 1));
        d.c[i].canon = canon[ki];
        /* an "other" single word that merged into a name takes the name's type */
        votes[canon[ki]][d.c[i].type] += d.c[i].type == GT_OTHER ? 1 : 3;
    }
    for (size_t i = 0; i < keys.n; i++) {
        int best = GT_OTHER;
        for (int t = 0; t < GT__COUNT; t++)
            if (votes[i][t] > votes[i][best]) best = t;
        types[i] = best;
    }
    eg_free(votes);
    for (size_t c = 0; c < n && !rc; c++) {
        size_t c1 = c + 1 < n ? first[c + 1] : d.n;
        rc = build_chunk(&d, c, first[c], c1, &keys, types, &ws[c], &g[c]);
    }
done:
    for (size_t c = 0; ws && c < n; c++) eg_free(ws[c].w);
    eg_free(ws);
    eg_free(first);
    eg_free(midcaps.k);
    eg_free(keys.k);
    eg_free(canon);
    eg_free(types);
    eg_free(d.c);
    eg_free(d.pr);
    if (rc) { extract_graph_free(g, n); return rc; }
    *out = g;
    return 0;
}
