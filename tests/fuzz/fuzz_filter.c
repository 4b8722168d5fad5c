/*
 * fuzz_filter.c - libFuzzer target for the retrieval metadata filter
 * (retrieve_filter_match), the part of a retrieval request that is matched
 * against every candidate's stored metadata.
 *
 * The input is two JSON texts separated by a 0x00 byte: a filter and a
 * document's metadata. Whatever they are, matching must not crash and must
 * agree with a plain reference: a non-object filter matches everything;
 * otherwise every filter member needs a member of the same name (the last
 * one, as json_get finds it) with an equal value. Also: an object filter
 * without repeated names matches itself, and still matches once the
 * metadata gains members of other names.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rag/retrieve.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const json_t *last_member(const json_t *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (size_t i = obj->len; i-- > 0;)
        if (!strcmp(obj->keys[i], key)) return obj->items[i];
    return NULL;
}

static int reference(const json_t *f, const json_t *m)
{
    if (!f || f->type != JSON_OBJECT) return 1;
    for (size_t i = 0; i < f->len; i++) {
        const json_t *v = last_member(m, f->keys[i]);
        if (!v || !json_equal(f->items[i], v)) return 0;
    }
    return 1;
}

static int unique_keys(const json_t *o)
{
    for (size_t i = 0; i < o->len; i++)
        for (size_t j = i + 1; j < o->len; j++)
            if (!strcmp(o->keys[i], o->keys[j])) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *sep = memchr(data, 0, size);
    size_t fl = sep ? (size_t)(sep - data) : size;
    json_t *f = NULL, *m = NULL;
    if (json_parse((const char *)data, fl, &f, NULL) != 0) f = NULL;
    if (sep && json_parse((const char *)sep + 1, size - fl - 1, &m, NULL) != 0) m = NULL;
    if (retrieve_filter_match(f, m) != reference(f, m)) abort();
    if (f && f->type == JSON_OBJECT && unique_keys(f)) {
        if (!retrieve_filter_match(f, f)) abort();
        if (f->len == 0 && !retrieve_filter_match(f, m)) abort();
    }
    json_free(f);
    json_free(m);
    return 0;
}
