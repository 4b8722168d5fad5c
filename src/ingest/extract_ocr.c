/* extract_ocr.c - OCR (stub, being written). */
#include "ingest/extract_internal.h"
#include "util/common.h"
int extract_ocr_image(const void *bytes, size_t n, const extract_limits_t *lim,
                      extract_result_t *out, char *err, size_t errsz)
{
    extract_err(err, errsz, "OCR is not available in this build");
    return ENGRAM_EUNSUPPORTED;
}
