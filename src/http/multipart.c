/*
 * multipart.c - multipart/form-data parsing (see multipart.h).
 *
 * The body is: preamble, then for each part "--boundary CRLF headers CRLF
 * CRLF data CRLF", then "--boundary--". Data ends at the next
 * "CRLF--boundary", found with memmem, so parts may hold any bytes.
 */
#include "http/multipart.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/common.h"

int multipart_boundary(const char *ct, char *out, size_t outsz)
{
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0) return ENGRAM_EINVAL;
    const char *p = ct + 19;
    while ((p = strchr(p, ';')) != NULL) {
        p++;
        while (*p == ' ' || *p == '\t') p++;
        if (strncasecmp(p, "boundary=", 9) != 0) continue;
        p += 9;
        size_t n;
        if (*p == '"') {
            p++;
            const char *e = strchr(p, '"');
            if (!e) return ENGRAM_EINVAL;
            n = (size_t)(e - p);
        } else {
            n = strcspn(p, "; \t");
        }
        if (n == 0 || n > 70 || n + 1 > outsz) return ENGRAM_EINVAL;
        memcpy(out, p, n);
        out[n] = '\0';
        return 0;
    }
    return ENGRAM_EINVAL;
}

/* Copies parameter param (name="x" or filename="x") of a Content-Disposition
 * value into out. Returns 1 if found. */
static int disposition_param(const char *v, size_t vlen, const char *param, char *out, size_t outsz)
{
    size_t plen = strlen(param);
    for (size_t i = 0; i + plen + 1 < vlen; i++) {
        if ((i == 0 || v[i - 1] == ';' || v[i - 1] == ' ' || v[i - 1] == '\t') &&
            strncasecmp(v + i, param, plen) == 0 && v[i + plen] == '=') {
            const char *s = v + i + plen + 1;
            const char *end = v + vlen;
            size_t n = 0;
            if (s < end && *s == '"') {
                s++;
                while (s < end && *s != '"' && n + 1 < outsz) {
                    if (*s == '\\' && s + 1 < end) s++;
                    out[n++] = *s++;
                }
            } else {
                while (s < end && *s != ';' && *s != ' ' && n + 1 < outsz) out[n++] = *s++;
            }
            out[n] = '\0';
            return 1;
        }
    }
    return 0;
}

static int parse_headers(const char *h, size_t len, multipart_part_t *part, const char **error)
{
    const char *p = h, *end = h + len;
    int has_disp = 0;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon) { *error = "a multipart header line has no colon"; return ENGRAM_EINVAL; }
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t')) v++;
        size_t vlen = (size_t)(eol - v);
        if (nlen == 19 && strncasecmp(p, "Content-Disposition", 19) == 0) {
            if (vlen < 9 || strncasecmp(v, "form-data", 9) != 0) {
                *error = "a multipart part is not form-data";
                return ENGRAM_EINVAL;
            }
            has_disp = 1;
            disposition_param(v, vlen, "name", part->name, sizeof part->name);
            part->has_filename = disposition_param(v, vlen, "filename", part->filename,
                                                   sizeof part->filename);
        } else if (nlen == 12 && strncasecmp(p, "Content-Type", 12) == 0) {
            size_t n = vlen < sizeof part->content_type - 1 ? vlen : sizeof part->content_type - 1;
            memcpy(part->content_type, v, n);
            part->content_type[n] = '\0';
        }
        p = eol + 2;
    }
    if (!has_disp || !part->name[0]) {
        *error = "a multipart part has no Content-Disposition name";
        return ENGRAM_EINVAL;
    }
    return 0;
}

/* A delimiter is "--boundary" followed by "--" (the last one) or by
 * optional whitespace and CRLF; anything else is part of the data. */
static int delimiter_ends(const char *p, const char *end)
{
    if (end - p >= 2 && p[0] == '-' && p[1] == '-') return 1;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    return end - p >= 2 && p[0] == '\r' && p[1] == '\n';
}

int multipart_parse(const char *body, size_t len, const char *boundary, multipart_part_t *parts,
                    size_t *n_parts, const char **error)
{
    char delim[80];
    size_t blen = strlen(boundary);
    *n_parts = 0;
    *error = "malformed multipart body";
    if (blen == 0 || blen > 70) return ENGRAM_EINVAL;
    delim[0] = '-';
    delim[1] = '-';
    memcpy(delim + 2, boundary, blen);
    size_t dlen = blen + 2;

    /* The first delimiter may start the body or follow a CRLF of preamble. */
    const char *p = memmem(body, len, delim, dlen);
    if (!p || (p != body && (p < body + 2 || p[-1] != '\n'))) {
        *error = "the multipart boundary was not found";
        return ENGRAM_EINVAL;
    }
    const char *end = body + len;
    for (;;) {
        p += dlen;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return 0; /* closing delimiter */
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            *error = "a multipart boundary line is malformed";
            return ENGRAM_EINVAL;
        }
        p += 2;
        if (*n_parts >= MULTIPART_MAX_PARTS) {
            *error = "too many multipart parts";
            return ENGRAM_EINVAL;
        }
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        const char *hstart = p;
        size_t hlen;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            hend = p;       /* a part with no headers */
            hlen = 0;
            p += 2;
        } else {
            if (!hend || hend - p > 8192) {
                *error = "multipart part headers are missing or too long";
                return ENGRAM_EINVAL;
            }
            hlen = (size_t)(hend - p);
            p = hend + 4;
        }
        multipart_part_t *part = &parts[*n_parts];
        memset(part, 0, sizeof *part);
        if (parse_headers(hstart, hlen, part, error)) return ENGRAM_EINVAL;
        /* Data runs to CRLF + delimiter. */
        const char *q = p;
        const char *next = NULL;
        while (q < end) {
            const char *m = memmem(q, (size_t)(end - q), delim, dlen);
            if (!m) break;
            int line_start = (m - p >= 2 && m[-2] == '\r' && m[-1] == '\n') || m == p;
            if (line_start && delimiter_ends(m + dlen, end)) { next = m; break; }
            q = m + 1;
        }
        if (!next) {
            *error = "the multipart body ends before its closing boundary";
            return ENGRAM_EINVAL;
        }
        part->data = p;
        part->len = (size_t)(next - p) >= 2 ? (size_t)(next - p) - 2 : 0;
        (*n_parts)++;
        p = next;
    }
}

const multipart_part_t *multipart_find(const multipart_part_t *parts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(parts[i].name, name) == 0) return &parts[i];
    return NULL;
}
