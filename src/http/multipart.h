/*
 * multipart.h - a multipart/form-data (RFC 7578) parser over a body held in
 * memory.
 *
 * multipart_parse splits the body into parts, each with its field name,
 * optional filename and content type, and a pointer into the body for its
 * data (not copied: valid while the body is). Limits: MULTIPART_MAX_PARTS
 * parts, part headers of at most 8 KiB. Any framing error is ENGRAM_EINVAL
 * with a message for the 400 answer.
 */
#ifndef ENGRAM_MULTIPART_H
#define ENGRAM_MULTIPART_H

#include <stddef.h>

#define MULTIPART_MAX_PARTS 16

typedef struct multipart_part {
    char name[128];
    char filename[256];      /* "" when absent */
    int has_filename;
    char content_type[128];  /* "" when absent */
    const char *data;
    size_t len;
} multipart_part_t;

/* Extracts the boundary parameter of a Content-Type header value.
 * Returns 0 or ENGRAM_EINVAL. */
int multipart_boundary(const char *content_type, char *out, size_t outsz);
int multipart_parse(const char *body, size_t len, const char *boundary, multipart_part_t *parts,
                    size_t *n_parts, const char **error);
/* The part named name, or NULL. */
const multipart_part_t *multipart_find(const multipart_part_t *parts, size_t n, const char *name);

#endif
