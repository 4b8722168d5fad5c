/* extract_pdf.c - PDF extraction (stub, being written). */
#include "ingest/extract_internal.h"
#include "util/common.h"
int extract_pdf(const void *bytes, size_t n, const extract_limits_t *lim,
                extract_result_t *out, char *err, size_t errsz)
{
    extract_err(err, errsz, "PDF is not supported yet");
    return ENGRAM_EUNSUPPORTED;
}
