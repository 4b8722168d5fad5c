/*
 * test_multipart.c - multipart/form-data parsing: well-formed bodies, the
 * framing errors a client can make, and every truncation of a good body.
 */
#include "test.h"

#include "http/multipart.h"
#include "util/common.h"

static const char good[] =
    "preamble ignored\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"collection_id\"\r\n"
    "\r\n"
    "abc\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"notes.md\"\r\n"
    "Content-Type: text/markdown\r\n"
    "\r\n"
    "# Title\r\n--XyZnot a boundary\r\nbody\r\n"
    "--XyZ--\r\n";

TEST(boundary_from_content_type)
{
    char b[80];
    CHECK_EQ_INT(multipart_boundary("multipart/form-data; boundary=abc", b, sizeof b), 0);
    CHECK_STR(b, "abc");
    CHECK_EQ_INT(multipart_boundary("multipart/form-data; charset=x; boundary=\"q r\"", b, sizeof b), 0);
    CHECK_STR(b, "q r");
    CHECK(multipart_boundary("multipart/form-data", b, sizeof b) != 0);
    CHECK(multipart_boundary("application/json; boundary=x", b, sizeof b) != 0);
    CHECK(multipart_boundary("multipart/form-data; boundary=", b, sizeof b) != 0);
}

TEST(parses_fields_and_file)
{
    multipart_part_t parts[MULTIPART_MAX_PARTS];
    size_t n;
    const char *err;
    REQUIRE(multipart_parse(good, sizeof good - 1, "XyZ", parts, &n, &err) == 0);
    REQUIRE(n == 2);
    const multipart_part_t *c = multipart_find(parts, n, "collection_id");
    REQUIRE(c != NULL);
    CHECK_EQ_INT(c->len, 3);
    CHECK(memcmp(c->data, "abc", 3) == 0);
    CHECK(!c->has_filename);
    const multipart_part_t *f = multipart_find(parts, n, "file");
    REQUIRE(f != NULL);
    CHECK(f->has_filename);
    CHECK_STR(f->filename, "notes.md");
    CHECK_STR(f->content_type, "text/markdown");
    const char want[] = "# Title\r\n--XyZnot a boundary\r\nbody";
    CHECK_EQ_INT(f->len, sizeof want - 1);
    CHECK(memcmp(f->data, want, f->len) == 0);
    CHECK(multipart_find(parts, n, "nope") == NULL);
}

TEST(binary_data_with_nul_bytes)
{
    char body[200];
    size_t n = 0;
    const char head[] = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n";
    memcpy(body, head, sizeof head - 1);
    n = sizeof head - 1;
    const char bin[] = {0, 1, 2, '\r', '\n', '-', 0, (char)0xff};
    memcpy(body + n, bin, sizeof bin);
    n += sizeof bin;
    memcpy(body + n, "\r\n--b--", 7);
    n += 7;
    multipart_part_t parts[MULTIPART_MAX_PARTS];
    size_t np;
    const char *err;
    REQUIRE(multipart_parse(body, n, "b", parts, &np, &err) == 0);
    REQUIRE(np == 1);
    CHECK_EQ_INT(parts[0].len, sizeof bin);
    CHECK(memcmp(parts[0].data, bin, sizeof bin) == 0);
}

TEST(framing_errors)
{
    static const char *bad[] = {
        "",
        "no boundary here",
        "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
        "--b\r\nX-Other: 1\r\n\r\nv\r\n--b--",                       /* no disposition */
        "--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--b--",
        "--b\r\nContent-Disposition form-data\r\n\r\nv\r\n--b--",    /* no colon */
        "--bX\r\n",
        "--b",
    };
    for (size_t i = 0; i < EG_ARRAY_LEN(bad); i++) {
        multipart_part_t parts[MULTIPART_MAX_PARTS];
        size_t n;
        const char *err = NULL;
        int rc = multipart_parse(bad[i], strlen(bad[i]), "b", parts, &n, &err);
        if (rc != ENGRAM_EINVAL) fprintf(stderr, "  case %zu accepted\n", i);
        CHECK_EQ_INT(rc, ENGRAM_EINVAL);
        CHECK(err != NULL && *err);
    }
}

TEST(too_many_parts)
{
    char body[8192];
    size_t n = 0;
    for (int i = 0; i < MULTIPART_MAX_PARTS + 1; i++)
        n += (size_t)snprintf(body + n, sizeof body - n,
                              "--b\r\nContent-Disposition: form-data; name=\"p%d\"\r\n\r\nv\r\n", i);
    n += (size_t)snprintf(body + n, sizeof body - n, "--b--\r\n");
    multipart_part_t parts[MULTIPART_MAX_PARTS];
    size_t np;
    const char *err;
    CHECK_EQ_INT(multipart_parse(body, n, "b", parts, &np, &err), ENGRAM_EINVAL);
}

TEST(every_truncation_fails_cleanly)
{
    /* Each prefix is copied to its own heap block so ASan catches overreads. */
    for (size_t len = 0; len < sizeof good - 1; len++) {
        char *p = eg_malloc(len ? len : 1);
        REQUIRE(p != NULL);
        memcpy(p, good, len);
        multipart_part_t parts[MULTIPART_MAX_PARTS];
        size_t n;
        const char *err;
        int rc = multipart_parse(p, len, "XyZ", parts, &n, &err);
        /* Only prefixes that already hold the closing delimiter may succeed. */
        if (rc == 0) CHECK(len >= sizeof good - 1 - 2);
        eg_free(p);
    }
}
