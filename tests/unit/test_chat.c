/*
 * test_chat.c - the extractive answerer, the context builder's budgeting,
 * session titles and the LLM endpoint rule (pure parts of rag/).
 */
#include <math.h>

#include "rag/context.h"
#include "rag/extractive.h"
#include "rag/llm.h"
#include "rag/sessions.h"
#include "test.h"
#include "util/common.h"

static const char *const LIGHT =
    "The Bell Rock Lighthouse was built between 1807 and 1810 off the coast of Angus, Scotland. "
    "It is the oldest surviving sea-washed lighthouse in the world. Robert Stevenson designed "
    "the tower, e.g. its curved base. Its light was first lit on 1 February 1811.";
static const char *const BEES =
    "Honey bees communicate the location of flowers with a waggle dance. The angle of the dance "
    "shows the direction relative to the sun. The duration of the waggle run encodes the distance "
    "to the food source.";

static char *joined(const extractive_answer_t *a)
{
    size_t n = 1;
    for (size_t i = 0; i < a->n; i++) n += strlen(a->pieces[i]);
    char *s = eg_malloc(n);
    s[0] = '\0';
    for (size_t i = 0; i < a->n; i++) strcat(s, a->pieces[i]);
    return s;
}

static int answer(const char *q, char **out, int *found)
{
    tokenizer_t *tok;
    if (tokenizer_new(&tok)) return -1;
    extractive_source_t src[2] = {{BEES, strlen(BEES)}, {LIGHT, strlen(LIGHT)}};
    extractive_answer_t a;
    int rc = extractive_answer(tok, q, src, 2, &a);
    tokenizer_free(tok);
    if (rc) return rc;
    *out = joined(&a);
    *found = a.found;
    extractive_answer_free(&a);
    return 0;
}

TEST(extractive_picks_relevant_sentence_with_marker)
{
    char *s = NULL;
    int found = 0;
    REQUIRE(answer("When was the Bell Rock Lighthouse built?", &s, &found) == 0);
    CHECK(found);
    CHECK(strstr(s, "The Bell Rock Lighthouse was built between 1807 and 1810 off the coast of "
                    "Angus, Scotland. [2]") != NULL);
    CHECK(strstr(s, "waggle") == NULL);
    eg_free(s);
}

TEST(extractive_covers_question_in_reading_order)
{
    char *s = NULL;
    int found = 0;
    REQUIRE(answer("How does the waggle dance show the direction and the distance?", &s, &found) == 0);
    CHECK(found);
    const char *dir = strstr(s, "direction relative to the sun. [1]");
    const char *dist = strstr(s, "distance to the food source. [1]");
    CHECK(dir && dist && dir < dist);
    CHECK(strstr(s, "Lighthouse") == NULL);
    eg_free(s);
}

TEST(extractive_nothing_found_for_greetings_and_unsupported)
{
    const char *qs[] = {"hello!", "Hi, how are you?", "thanks", "", "What is the capital of Mars?",
                        "lighthouse on Jupiter's moons orbiting quasars"};
    for (size_t i = 0; i < EG_ARRAY_LEN(qs); i++) {
        char *s = NULL;
        int found = 1;
        REQUIRE(answer(qs[i], &s, &found) == 0);
        CHECK(!found);
        CHECK_STR(s, EXTRACTIVE_NOTHING_FOUND);
        eg_free(s);
    }
}

TEST(extractive_skips_near_duplicates)
{
    tokenizer_t *tok;
    REQUIRE(tokenizer_new(&tok) == 0);
    const char *a = "Copper is an excellent conductor of heat and electricity.";
    const char *b = "Copper is an excellent conductor of electricity and heat!";
    extractive_source_t src[2] = {{a, strlen(a)}, {b, strlen(b)}};
    extractive_answer_t ans;
    REQUIRE(extractive_answer(tok, "Is copper a conductor of electricity?", src, 2, &ans) == 0);
    CHECK(ans.found);
    CHECK_EQ_INT(ans.n, 1);
    extractive_answer_free(&ans);
    /* No sources at all. */
    REQUIRE(extractive_answer(tok, "copper", NULL, 0, &ans) == 0);
    CHECK(!ans.found);
    extractive_answer_free(&ans);
    tokenizer_free(tok);
}

TEST(extractive_survives_odd_text)
{
    tokenizer_t *tok;
    REQUIRE(tokenizer_new(&tok) == 0);
    unsigned long long seed = test_seed();
    char buf[2048];
    for (int round = 0; round < 200; round++) {
        size_t n = 0;
        while (n < sizeof buf - 1) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            static const char alphabet[] = "ab c.\n!?#-*Ac1\xc3\xa9\xe2\x80\xa2 ";
            buf[n++] = alphabet[(seed >> 33) % (sizeof alphabet - 1)];
            if ((seed >> 20) % 97 == 0) break;
        }
        buf[n] = '\0';
        extractive_source_t src[1] = {{buf, n}};
        extractive_answer_t a;
        int rc = extractive_answer(tok, "abc ac", src, 1, &a);
        if (rc) fprintf(stderr, "seed %llu round %d\n", test_seed(), round);
        CHECK(rc == 0);
        CHECK(a.n >= 1);
        extractive_answer_free(&a);
    }
    tokenizer_free(tok);
}

TEST(term_bag_cosine_and_content_terms)
{
    tokenizer_t *tok;
    REQUIRE(tokenizer_new(&tok) == 0);
    term_bag_t a = {0}, b = {0};
    REQUIRE(term_bag_build(tok, "What is the favourite tea?", 26, 1, &a) == 0);
    CHECK_EQ_INT(a.n, 2); /* favourit, tea */
    REQUIRE(term_bag_build(tok, "Tea: favourite drinks", 21, 1, &b) == 0);
    CHECK_NEAR(term_bag_cosine(&a, &b), 2.0 / (sqrt(2.0) * sqrt(3.0)), 1e-9);
    REQUIRE(term_bag_build(tok, "hello there", 11, 1, &b) == 0);
    CHECK_EQ_INT(b.n, 0);
    CHECK_NEAR(term_bag_cosine(&a, &b), 0, 1e-12);
    term_bag_free(&a);
    term_bag_free(&b);
    tokenizer_free(tok);
}

/* ---- context builder ---------------------------------------------------- */

static char *filler(int words, char tag)
{
    char *s = eg_malloc((size_t)words * 6 + 1);
    size_t n = 0;
    for (int i = 0; i < words; i++) {
        memcpy(s + n, "word", 4);
        s[n + 4] = tag;
        s[n + 5] = ' ';
        n += 6;
    }
    s[n ? n - 1 : 0] = '\0';
    return s;
}

static int total_tokens(const ctx_input_t *in, const ctx_prompt_t *p)
{
    int t = ctx_estimate_tokens(p->system, p->system_len) + CTX_MSG_OVERHEAD;
    for (size_t i = p->first_turn; i < in->n_turns; i++)
        t += ctx_estimate_tokens(in->turns[i].content, strlen(in->turns[i].content)) + CTX_MSG_OVERHEAD;
    return t + ctx_estimate_tokens(in->question, strlen(in->question)) + CTX_MSG_OVERHEAD;
}

TEST(context_estimate)
{
    CHECK_EQ_INT(ctx_estimate_tokens("", 0), 0);
    CHECK_EQ_INT(ctx_estimate_tokens("abcd", 4), 1);
    CHECK_EQ_INT(ctx_estimate_tokens("abcde", 5), 2);
    CHECK_EQ_INT(ctx_estimate_tokens("\xe6\x97\xa5\xe6\x9c\xac", 6), 2); /* two ideographs */
}

TEST(context_drops_least_relevant_chunks_within_budget)
{
    ctx_chunk_t chunks[5];
    char *texts[5];
    for (int i = 0; i < 5; i++) {
        texts[i] = filler(100, (char)('a' + i)); /* ~150 tokens each */
        chunks[i] = (ctx_chunk_t){"Title", texts[i], strlen(texts[i])};
    }
    for (int budget = 200; budget <= 1400; budget += 100) {
        ctx_input_t in = {.chunks = chunks, .n_chunks = 5, .question = "q?", .budget = budget};
        ctx_prompt_t p;
        REQUIRE(ctx_build(&in, &p) == 0);
        CHECK(p.tokens <= budget);
        CHECK_EQ_INT(p.tokens, total_tokens(&in, &p));
        /* The best chunks in, numbered in rank order; the rest out. */
        for (size_t i = 0; i < 5; i++) {
            char mark[16];
            snprintf(mark, sizeof mark, "[%zu] Title", i + 1);
            CHECK((strstr(p.system, mark) != NULL) == (i < p.n_chunks));
            CHECK((strstr(p.system, texts[i] + 5 * 6) != NULL) == (i < p.n_chunks && !(p.last_chunk_cut && i + 1 == p.n_chunks)));
        }
        CHECK(strstr(p.system, "[1] or [2][3]") != NULL);
        ctx_prompt_free(&p);
    }
    ctx_input_t in = {.chunks = chunks, .n_chunks = 5, .question = "q?", .budget = 5000};
    ctx_prompt_t p;
    REQUIRE(ctx_build(&in, &p) == 0);
    CHECK_EQ_INT(p.n_chunks, 5);
    CHECK(!p.last_chunk_cut);
    ctx_prompt_free(&p);
    for (int i = 0; i < 5; i++) eg_free(texts[i]);
}

TEST(context_memory_type_budgets)
{
    char *big = filler(500, 'p'); /* ~750 tokens: over the 600 profile budget */
    ctx_memory_t mems[4] = {{CTX_MEM_PROFILE, big},
                            {CTX_MEM_PROFILE, "Name: Ada."},
                            {CTX_MEM_PROCEDURAL, "Answer briefly."},
                            {CTX_MEM_SEMANTIC, "Likes tea."}};
    ctx_input_t in = {.memories = mems, .n_memories = 4, .question = "q", .budget = 5000,
                      .custom_instruction = "Be kind."};
    ctx_prompt_t p;
    REQUIRE(ctx_build(&in, &p) == 0);
    CHECK(!p.memory_used[0]);
    CHECK(p.memory_used[1] && p.memory_used[2] && p.memory_used[3]);
    CHECK_EQ_INT(p.n_memories_used, 3);
    CHECK(strstr(p.system, "- Name: Ada.") && strstr(p.system, "- Likes tea.") &&
          strstr(p.system, "Be kind."));
    CHECK(strstr(p.system, "wordp") == NULL);
    /* Profile facts come before the procedures. */
    CHECK(strstr(p.system, "Name: Ada.") < strstr(p.system, "Answer briefly."));
    ctx_prompt_free(&p);
    /* A custom budget per type. */
    in.mem_budget[CTX_MEM_PROFILE] = 1000;
    REQUIRE(ctx_build(&in, &p) == 0);
    CHECK(p.memory_used[0]);
    CHECK(!p.memory_used[2] && !p.memory_used[3]); /* those types now have 0 */
    ctx_prompt_free(&p);
    eg_free(big);
}

TEST(context_history_newest_first_and_contiguous)
{
    char *old = filler(300, 'o');
    ctx_turn_t turns[4] = {{"user", old}, {"assistant", "old answer"}, {"user", "recent q"},
                           {"assistant", "recent a"}};
    char *chunk = filler(600, 'c');
    ctx_chunk_t chunks[1] = {{"T", chunk, strlen(chunk)}};
    ctx_input_t in = {.turns = turns, .n_turns = 4, .chunks = chunks, .n_chunks = 1,
                      .question = "now?", .budget = 700};
    ctx_prompt_t p;
    REQUIRE(ctx_build(&in, &p) == 0);
    CHECK(p.tokens <= 700);
    CHECK(p.first_turn >= 1 && p.first_turn <= 2); /* the long old turn is dropped */
    CHECK_EQ_INT(p.n_chunks, 1);
    CHECK(p.last_chunk_cut);
    ctx_prompt_free(&p);
    in.budget = 5000;
    REQUIRE(ctx_build(&in, &p) == 0);
    CHECK_EQ_INT(p.first_turn, 0);
    CHECK(!p.last_chunk_cut);
    ctx_prompt_free(&p);
    /* A fixed part over the budget: nothing else, no failure. */
    in.budget = 10;
    REQUIRE(ctx_build(&in, &p) == 0);
    CHECK_EQ_INT(p.n_chunks, 0);
    CHECK_EQ_INT(p.first_turn, 4);
    ctx_prompt_free(&p);
    eg_free(old);
    eg_free(chunk);
}

TEST(context_out_of_memory_is_a_status)
{
    ctx_chunk_t chunks[1] = {{"T", "text", 4}};
    ctx_memory_t mems[1] = {{CTX_MEM_SEMANTIC, "m"}};
    ctx_input_t in = {.chunks = chunks, .n_chunks = 1, .memories = mems, .n_memories = 1, .question = "q"};
    int failures = 0;
    for (long n = 0; n < 40; n++) {
        ctx_prompt_t p;
        eg_alloc_fail_after(n);
        int rc = ctx_build(&in, &p);
        eg_alloc_fail_after(-1);
        CHECK(rc == 0 || rc == ENGRAM_ENOMEM);
        if (rc) failures++;
        ctx_prompt_free(&p);
    }
    CHECK(failures > 0);
}

TEST(session_titles)
{
    char *t = session_title("  What   is\nRAG? ");
    CHECK_STR(t, "What is RAG?");
    eg_free(t);
    t = session_title("");
    CHECK_STR(t, "New chat");
    eg_free(t);
    char longq[400];
    memset(longq, 0, sizeof longq);
    for (int i = 0; i < 30; i++) strcat(longq, "lighthouse ");
    t = session_title(longq);
    CHECK(strlen(t) <= SESSION_TITLE_MAX);
    CHECK(strlen(t) > 3 && !strcmp(t + strlen(t) - 3, "..."));
    CHECK(!strncmp(t, longq, strlen(t) - 3));
    eg_free(t);
}

TEST(llm_endpoint_rule)
{
    char u[256];
    REQUIRE(llm_endpoint("http://h:1", u, sizeof u) == 0);
    CHECK_STR(u, "http://h:1/v1/chat/completions");
    REQUIRE(llm_endpoint("https://h/v1/", u, sizeof u) == 0);
    CHECK_STR(u, "https://h/v1/chat/completions");
    REQUIRE(llm_endpoint("http://h/openai/v1/chat/completions", u, sizeof u) == 0);
    CHECK_STR(u, "http://h/openai/v1/chat/completions");
    CHECK(llm_endpoint("ftp://h", u, sizeof u) == ENGRAM_EINVAL);
    CHECK(llm_endpoint("http://h", u, 10) == ENGRAM_EINVAL);
}

static int collect_delta(const char *text, size_t len, void *ud)
{
    buf_append((buf_t *)ud, text, len);
    buf_putc((buf_t *)ud, '|');
    return 0;
}

static int stop_at_second(const char *text, size_t len, void *ud)
{
    (void)text;
    (void)len;
    return ++*(int *)ud == 2 ? ENGRAM_ECANCELED : 0;
}

TEST(llm_stream_parser_whole_and_byte_by_byte)
{
    static const char ok[] =
        ": keep-alive\r\n\r\n"
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
        "event: message\ndata: {\"choices\":\ndata: [{\"delta\":{\"content\":\"lo \\u00e9\"}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}\n\n"
        "data: [DONE]\n\n";
    for (size_t piece = 0; piece <= 7; piece++) {
        buf_t b = BUF_INIT;
        llm_usage_t u;
        size_t nd;
        char err[128];
        CHECK_EQ_INT(llm_parse_stream(ok, sizeof ok - 1, piece, collect_delta, &b, &u, &nd, err, sizeof err), 0);
        CHECK_STR(buf_cstr(&b), "Hel|lo \xc3\xa9|");
        CHECK_EQ_INT(nd, 2);
        CHECK(u.present);
        CHECK_EQ_INT(u.prompt_tokens, 7);
        CHECK_EQ_INT(u.total_tokens, 9);
        buf_free(&b);
    }
}

TEST(llm_stream_parser_failures)
{
    struct { const char *body; const char *want_err; int want_deltas; } cases[] = {
        {"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {oops\n\n", "malformed", 1},
        {"data: {\"error\":{\"message\":\"model overloaded\"}}\n\n", "model overloaded", 0},
        {"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", "ended before", 1},
        {"data: [1,2]\n\n", "malformed", 0},
        {"", "ended before", 0},
    };
    for (size_t i = 0; i < EG_ARRAY_LEN(cases); i++) {
        for (size_t piece = 0; piece <= 1; piece++) {
            buf_t b = BUF_INIT;
            llm_usage_t u;
            size_t nd;
            char err[256];
            int rc = llm_parse_stream(cases[i].body, strlen(cases[i].body), piece, collect_delta, &b, &u,
                                      &nd, err, sizeof err);
            CHECK_EQ_INT(rc, ENGRAM_EUPSTREAM);
            CHECK(strstr(err, cases[i].want_err) != NULL);
            CHECK_EQ_INT(nd, cases[i].want_deltas);
            buf_free(&b);
        }
    }
    /* A callback's veto stops the stream with its value. */
    static const char two[] = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
                              "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n"
                              "data: {\"choices\":[{\"delta\":{\"content\":\"c\"}}]}\n\ndata: [DONE]\n\n";
    int seen = 0;
    llm_usage_t u;
    size_t nd;
    char err[64];
    CHECK_EQ_INT(llm_parse_stream(two, sizeof two - 1, 3, stop_at_second, &seen, &u, &nd, err, sizeof err),
                 ENGRAM_ECANCELED);
    CHECK_EQ_INT(seen, 2);
}
