/*
 * fuzz_sse.c - libFuzzer target for the LLM connector's event-stream parser
 * (rag/llm.c, through llm_parse_stream).
 *
 * The input is an answer body as a chat service could send it. It is parsed
 * whole and again one byte at a time: both runs must give the same status,
 * the same deltas (concatenated) and the same usage, whatever the bytes.
 * A crash, a sanitizer report, a leak or a difference is a finding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rag/llm.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int collect(const char *text, size_t len, void *ud)
{
    buf_append((buf_t *)ud, text, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t a = BUF_INIT, b = BUF_INIT;
    llm_usage_t ua, ub;
    size_t na, nb;
    char ea[256], eb[256];
    int ra = llm_parse_stream((const char *)data, size, 0, collect, &a, &ua, &na, ea, sizeof ea);
    int rb = llm_parse_stream((const char *)data, size, 1, collect, &b, &ub, &nb, eb, sizeof eb);
    if (ra != rb || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len)) ||
        ua.present != ub.present || ua.total_tokens != ub.total_tokens || strcmp(ea, eb))
        abort();
    buf_free(&a);
    buf_free(&b);
    return 0;
}
