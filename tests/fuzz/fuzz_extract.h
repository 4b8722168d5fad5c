/*
 * fuzz_extract.h - the body shared by the extractor fuzz targets
 * (fuzz_html.c, fuzz_docx.c, fuzz_pdf.c): any input must end in success with
 * extract.h's invariants (valid UTF-8, NUL-terminated, spans covering the
 * text exactly) or in a failure with a message; never a crash, a hang or a
 * leak. Small limits keep each run fast.
 */
#ifndef ENGRAM_FUZZ_EXTRACT_H
#define ENGRAM_FUZZ_EXTRACT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ingest/extract.h"
#include "util/utf8.h"

static int fuzz_extract(doc_type_t type, const uint8_t *data, size_t size)
{
    extract_limits_t lim;
    extract_limits_default(&lim);
    lim.max_text = 1u << 20;
    lim.max_zip_total = 8u << 20;
    lim.max_xml_bytes = 4u << 20;
    lim.max_pages = 50;
    lim.max_memory = 64u << 20;
    extract_result_t r;
    char err[256];
    int rc = extract_document(type, data, size, &lim, &r, err, sizeof err);
    if (rc != 0) {
        if (err[0] == '\0') __builtin_trap();
        return 0;
    }
    if (!r.text || r.text[r.len] != '\0' || !utf8_valid(r.text, r.len)) __builtin_trap();
    size_t at = 0;
    for (size_t i = 0; i < r.n_spans; i++) {
        if (r.spans[i].start != at || r.spans[i].end <= at) __builtin_trap();
        at = r.spans[i].end;
    }
    if (at != r.len) __builtin_trap();
    extract_result_free(&r);
    return 0;
}

#endif
