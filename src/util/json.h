/*
 * json.h - a strict JSON (RFC 8259) DOM parser and a streaming writer.
 *
 * Parser: input must be valid UTF-8 (invalid bytes, overlong forms and lone
 * surrogate escapes are errors); nesting is limited to JSON_MAX_DEPTH; numbers
 * are kept as doubles plus a flag saying whether the text was an integer that
 * fits int64. Object keys keep their order; duplicate keys: the last wins for
 * json_get. The whole tree is owned by the root: json_free(root) releases it,
 * and pointers from json_get & co. are valid until then.
 *
 * Writer (jw_*): appends to a buf_t, inserting commas itself; strings are
 * escaped (control characters as \u00XX; "/" is not escaped). Non-finite
 * doubles are written as null.
 */
#ifndef ENGRAM_JSON_H
#define ENGRAM_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define JSON_MAX_DEPTH 64

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type_t;

typedef struct json json_t;
struct json {
    json_type_t type;
    int boolean;          /* JSON_BOOL */
    double number;        /* JSON_NUMBER */
    int is_int;           /* JSON_NUMBER: written as an integer that fits int64 */
    int64_t integer;      /* valid when is_int */
    char *str;            /* JSON_STRING: NUL-terminated UTF-8 (may contain \0 escapes: use len) */
    size_t len;           /* JSON_STRING byte length; ARRAY/OBJECT item count */
    json_t **items;       /* ARRAY items / OBJECT values */
    char **keys;          /* OBJECT keys (NUL-terminated) */
    size_t *key_lens;
};

typedef struct json_error {
    size_t offset;        /* byte offset of the problem */
    char message[96];
} json_error_t;

/* Parses text[0..len). On success *out is the root (caller frees with
 * json_free) and 0 is returned; on a syntax error ENGRAM_EINVAL with err
 * filled (err may be NULL); ENGRAM_ENOMEM on allocation failure. Trailing
 * whitespace is allowed, any other trailing byte is an error. */
int json_parse(const char *text, size_t len, json_t **out, json_error_t *err);
void json_free(json_t *j);

/* Object member by key, or NULL (also NULL when obj is not an object). */
const json_t *json_get(const json_t *obj, const char *key);
/* Typed accessors: return the member only when it has that type, else NULL. */
const char *json_get_str(const json_t *obj, const char *key);
/* Typed getters (added with json.c; store/record.h has the default-value
 * style json_get_i64/json_get_bool). Each returns 0 and sets *out when the
 * member exists with that type; ENGRAM_ENOTFOUND when obj is not an object or
 * has no such member (a JSON null counts as missing); ENGRAM_EINVAL when the
 * member has another type (json_get_int: also a non-integer or out-of-int64
 * number). *out is left unchanged on failure, so it can hold a default. */
int json_get_int(const json_t *obj, const char *key, int64_t *out);
int json_get_double(const json_t *obj, const char *key, double *out);
/* Item i of an array, or NULL (out of range or not an array). */
const json_t *json_at(const json_t *arr, size_t i);
/* 1 when a and b are the same value: same types, equal numbers (compared as
 * doubles, and as integers when both are is_int), strings byte-equal,
 * arrays item by item, objects member by member in order. Else 0. */
int json_equal(const json_t *a, const json_t *b);
/* Deep copy (NULL on ENOMEM). */
json_t *json_clone(const json_t *j);
/* Serialises j compactly into b. */
void json_write(buf_t *b, const json_t *j);

/* Streaming writer. */
typedef struct jw {
    buf_t *b;
    int depth;
    unsigned char need_comma[JSON_MAX_DEPTH + 1];
    int after_key;
} jw_t;

void jw_init(jw_t *w, buf_t *b);
void jw_obj_begin(jw_t *w);
void jw_obj_end(jw_t *w);
void jw_arr_begin(jw_t *w);
void jw_arr_end(jw_t *w);
void jw_key(jw_t *w, const char *key);
void jw_str(jw_t *w, const char *s);              /* NULL writes null */
void jw_strn(jw_t *w, const char *s, size_t n);
void jw_int(jw_t *w, int64_t v);
void jw_uint(jw_t *w, uint64_t v);
void jw_double(jw_t *w, double v);                /* shortest round-trip form */
void jw_bool(jw_t *w, int v);
void jw_null(jw_t *w);
void jw_raw(jw_t *w, const char *json, size_t n); /* an already-serialised value */
void jw_json(jw_t *w, const json_t *j);           /* a DOM value; NULL writes null */
/* Shorthands for "key": value. */
void jw_kstr(jw_t *w, const char *key, const char *s);
void jw_kint(jw_t *w, const char *key, int64_t v);
void jw_kdouble(jw_t *w, const char *key, double v);
void jw_kbool(jw_t *w, const char *key, int v);
void jw_knull(jw_t *w, const char *key);

/* Escapes s[0..n) as a JSON string (with quotes) into b. */
void json_escape(buf_t *b, const char *s, size_t n);

#endif
