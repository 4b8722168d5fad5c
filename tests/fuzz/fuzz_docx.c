/*
 * fuzz_docx.c - libFuzzer target for the DOCX extractor (src/ingest/extract*.c);
 * the checks are in fuzz_extract.h.
 */
#include "fuzz_extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_extract(DOC_DOCX, data, size);
}
