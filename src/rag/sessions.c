/*
 * sessions.c - chat sessions and messages in LMDB (layout in sessions.h).
 *
 * Reads copy what they need out of one short read transaction. The one
 * write, session_append, creates the session when needed, adds both
 * messages and updates the session's counts in a single store_write
 * callback, so a session never shows half an exchange; the callback keeps
 * its results in its argument and resets them on each run (the writer may
 * rerun it after growing the map).
 */
#include "rag/sessions.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/idmap.h"
#include "store/record.h"
#include "util/common.h"
#include "util/timeutil.h"
#include "util/utf8.h"
#include "util/uuid.h"

static store_key_t session_key(uint64_t ws, uint64_t session)
{
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, ws);
    skey_u64(&k, session);
    return k;
}

char *session_title(const char *message)
{
    buf_t b = BUF_INIT;
    int space = 0;
    for (const char *p = message ? message : ""; *p; p++) {
        if (isspace((unsigned char)*p)) {
            space = b.len > 0;
            continue;
        }
        if (space) buf_putc(&b, ' ');
        space = 0;
        buf_putc(&b, *p);
    }
    if (b.len > SESSION_TITLE_MAX) {
        size_t cut = utf8_truncate(b.data, b.len, SESSION_TITLE_MAX - 3);
        size_t sp = cut;
        while (sp > SESSION_TITLE_MAX / 2 && b.data[sp] != ' ') sp--;
        if (b.data[sp] == ' ') cut = sp;
        while (cut > 0 && (b.data[cut - 1] == ' ' || ispunct((unsigned char)b.data[cut - 1]))) cut--;
        b.len = cut;
        buf_puts(&b, "...");
    }
    if (b.len == 0) buf_puts(&b, "New chat");
    return buf_detach(&b, NULL);
}

/* The caller's session record, in txn. */
static int find_in(MDB_txn *txn, store_t *st, uint64_t ws, const char *user_uuid, const char *uuid,
                   uint64_t *id, json_t **rec)
{
    idmap_entry_t e;
    *rec = NULL;
    int rc = idmap_get(txn, st, uuid, IDK_SESSION, &e);
    if (rc) return rc;
    if (e.ws != ws) return ENGRAM_ENOTFOUND;
    store_key_t k = session_key(ws, e.id);
    MDB_val kv = skey_val(&k);
    rc = record_get(txn, store_dbi(st, DB_CHAT_SESSIONS), &kv, rec);
    if (rc) return rc;
    const char *owner = json_get_str(*rec, "user_id");
    if (!owner) {
        json_free(*rec);
        *rec = NULL;
        return ENGRAM_ECORRUPT;
    }
    if (strcmp(owner, user_uuid)) {
        json_free(*rec);
        *rec = NULL;
        return ENGRAM_ENOTFOUND;
    }
    *id = e.id;
    return 0;
}

int session_find(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid,
                 session_ref_t *out)
{
    MDB_txn *txn;
    memset(out, 0, sizeof *out);
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    json_t *rec = NULL;
    rc = find_in(txn, st, ws, user_uuid, uuid, &out->id, &rec);
    store_read_end(st, txn);
    if (rc) return rc;
    snprintf(out->uuid, sizeof out->uuid, "%s", uuid);
    const char *c = json_get_str(rec, "collection_id");
    if (c) snprintf(out->collection_id, sizeof out->collection_id, "%s", c);
    json_free(rec);
    return 0;
}

void session_turns_free(session_turn_t *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        eg_free(t[i].role);
        eg_free(t[i].content);
    }
    eg_free(t);
}

int session_recent(store_t *st, uint64_t ws, uint64_t session, size_t max, session_turn_t **turns,
                   size_t *n)
{
    *turns = NULL;
    *n = 0;
    if (max == 0) return 0;
    session_turn_t *v = eg_calloc(max, sizeof *v);
    if (!v) return ENGRAM_ENOMEM;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    size_t got = 0;
    int rc = store_read_begin(st, &txn);
    if (rc) goto fail;
    rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_CHAT_MESSAGES), &cur));
    if (rc) goto fail;
    /* Walk backwards from the end of the session's range. */
    store_key_t k = session_key(ws, session + 1);
    MDB_val kv = skey_val(&k), dv;
    int mrc = mdb_cursor_get(cur, &kv, &dv, MDB_SET_RANGE);
    mrc = mrc == 0 ? mdb_cursor_get(cur, &kv, &dv, MDB_PREV) : mdb_cursor_get(cur, &kv, &dv, MDB_LAST);
    store_key_t pre = session_key(ws, session);
    while (mrc == 0 && got < max) {
        if (kv.mv_size != 24 || memcmp(kv.mv_data, pre.b, 16)) break;
        json_t *rec = NULL;
        rc = record_decode(dv.mv_data, dv.mv_size, &rec);
        if (rc) goto fail;
        const char *role = json_get_str(rec, "role"), *content = json_get_str(rec, "content");
        if (!role || !content) {
            json_free(rec);
            rc = ENGRAM_ECORRUPT;
            goto fail;
        }
        session_turn_t *t = &v[max - 1 - got];
        t->role = eg_strdup(role);
        t->content = eg_strdup(content);
        json_free(rec);
        got++;
        if (!t->role || !t->content) {
            rc = ENGRAM_ENOMEM;
            goto fail;
        }
        mrc = mdb_cursor_get(cur, &kv, &dv, MDB_PREV);
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = store_status(mrc);
        goto fail;
    }
    mdb_cursor_close(cur);
    store_read_end(st, txn);
    if (got < max) memmove(v, v + (max - got), got * sizeof *v);
    *turns = v;
    *n = got;
    return 0;
fail:
    if (cur) mdb_cursor_close(cur);
    store_read_end(st, txn);
    if (got < max) memmove(v, v + (max - got), got * sizeof *v);
    session_turns_free(v, got);
    return rc;
}

/* ---- append -------------------------------------------------------------- */

struct append_args {
    store_t *st;
    uint64_t ws, session;
    const char *user_uuid, *coll_uuid, *user_text, *assistant_text;
    int64_t user_ms, now_ms;
    char uuid[37];            /* out */
};

static int put_message(MDB_txn *txn, struct append_args *a, uint64_t session, const char *sid,
                       uint64_t seq, const char *role, const char *content, int64_t ms)
{
    unsigned char u[16];
    char mid[37], ts[32];
    uuid_new(u);
    uuid_format(u, mid);
    time_format_rfc3339(ms, ts);
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "id", mid);
    jw_kstr(&w, "session_id", sid);
    jw_kstr(&w, "role", role);
    jw_kstr(&w, "content", content);
    jw_kstr(&w, "created_at", ts);
    jw_obj_end(&w);
    store_key_t k = session_key(a->ws, session);
    skey_u64(&k, seq);
    MDB_val kv = skey_val(&k);
    int rc = b.err ? b.err : record_put(txn, store_dbi(a->st, DB_CHAT_MESSAGES), &kv, &b);
    buf_free(&b);
    return rc;
}

static int append_cb(MDB_txn *txn, void *arg)
{
    struct append_args *a = arg;
    a->uuid[0] = '\0';
    json_t *rec = NULL;
    char *title = NULL;
    buf_t b = BUF_INIT;
    uint64_t session = a->session, seq = 0, count = 0;
    char created[32], last[32];
    int rc;
    time_format_rfc3339(a->now_ms, last);
    if (session) {
        store_key_t k = session_key(a->ws, session);
        MDB_val kv = skey_val(&k);
        rc = record_get(txn, store_dbi(a->st, DB_CHAT_SESSIONS), &kv, &rec);
        if (rc) goto out;
        const char *id = json_get_str(rec, "id");
        if (!id) { rc = ENGRAM_ECORRUPT; goto out; }
        snprintf(a->uuid, sizeof a->uuid, "%s", id);
        seq = (uint64_t)json_get_i64(rec, "seq", 0);
        count = (uint64_t)json_get_i64(rec, "message_count", 0);
    } else {
        rc = store_next_id(txn, a->st, "chat_session", &session);
        if (rc) goto out;
        rc = idmap_new(txn, a->st, IDK_SESSION, a->ws, 0, session, a->uuid);
        if (rc) goto out;
        title = session_title(a->user_text);
        if (!title) { rc = ENGRAM_ENOMEM; goto out; }
    }
    time_format_rfc3339(a->user_ms, created);
    rc = put_message(txn, a, session, a->uuid, seq + 1, "user", a->user_text, a->user_ms);
    if (!rc) rc = put_message(txn, a, session, a->uuid, seq + 2, "assistant", a->assistant_text, a->now_ms);
    if (rc) goto out;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    if (rec) {
        static const char *const skip[] = {"last_message_at", "message_count", "seq", "last_ms", NULL};
        record_copy_members(&w, rec, skip);
    } else {
        jw_kstr(&w, "id", a->uuid);
        jw_kint(&w, "sid", (int64_t)session);
        jw_kstr(&w, "user_id", a->user_uuid);
        jw_kstr(&w, "collection_id", a->coll_uuid && a->coll_uuid[0] ? a->coll_uuid : NULL);
        jw_kstr(&w, "title", title);
        jw_kstr(&w, "created_at", created);
    }
    jw_kstr(&w, "last_message_at", last);
    jw_kint(&w, "message_count", (int64_t)(count + 2));
    jw_kint(&w, "seq", (int64_t)(seq + 2));
    jw_kint(&w, "last_ms", a->now_ms);
    jw_obj_end(&w);
    store_key_t k = session_key(a->ws, session);
    MDB_val kv = skey_val(&k);
    rc = b.err ? b.err : record_put(txn, store_dbi(a->st, DB_CHAT_SESSIONS), &kv, &b);
out:
    json_free(rec);
    eg_free(title);
    buf_free(&b);
    return rc;
}

int session_append(store_t *st, uint64_t ws, const char *user_uuid, uint64_t session,
                   const char *coll_uuid, const char *user_text, int64_t user_ms,
                   const char *assistant_text, char uuid_out[37])
{
    struct append_args a = {.st = st, .ws = ws, .session = session, .user_uuid = user_uuid,
                            .coll_uuid = coll_uuid, .user_text = user_text,
                            .assistant_text = assistant_text, .user_ms = user_ms,
                            .now_ms = time_now_ms()};
    if (a.now_ms < user_ms) a.now_ms = user_ms;
    int rc = store_write(st, append_cb, &a);
    if (!rc) memcpy(uuid_out, a.uuid, 37);
    return rc;
}

/* ---- lists ----------------------------------------------------------- */

typedef struct sess_item {
    int64_t last_ms;
    uint64_t id;
    json_t *rec;
} sess_item_t;

static int cmp_recent(const void *pa, const void *pb)
{
    const sess_item_t *a = pa, *b = pb;
    if (a->last_ms != b->last_ms) return a->last_ms > b->last_ms ? -1 : 1;
    return a->id > b->id ? -1 : a->id < b->id;
}

struct sess_list {
    const char *user_uuid;
    sess_item_t *v;
    size_t n, cap;
};

/* record_scan_ws callback: keeps the user's sessions. */
static int sess_keep(uint64_t id, json_t *rec, void *ud)
{
    struct sess_list *l = ud;
    const char *owner = json_get_str(rec, "user_id");
    if (!owner || strcmp(owner, l->user_uuid)) {
        json_free(rec);
        return 0;
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        sess_item_t *nv = eg_realloc(l->v, nc * sizeof *nv);
        if (!nv) {
            json_free(rec);
            return ENGRAM_ENOMEM;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = (sess_item_t){json_get_i64(rec, "last_ms", 0), id, rec};
    return 0;
}

int session_list(store_t *st, uint64_t ws, const char *user_uuid, size_t limit, size_t offset,
                 json_t **out)
{
    *out = NULL;
    struct sess_list l = {.user_uuid = user_uuid};
    MDB_txn *txn = NULL;
    buf_t b = BUF_INIT;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    rc = record_scan_ws(txn, store_dbi(st, DB_CHAT_SESSIONS), ws, sess_keep, &l);
    store_read_end(st, txn);
    sess_item_t *v = l.v;
    size_t n = l.n;
    if (rc) goto done;
    if (n) qsort(v, n, sizeof *v, cmp_recent);
    jw_t w;
    jw_init(&w, &b);
    jw_arr_begin(&w);
    static const char *const skip[] = {"sid", "seq", "last_ms", NULL};
    for (size_t i = offset; i < n && i - offset < limit; i++) {
        jw_obj_begin(&w);
        record_copy_members(&w, v[i].rec, skip);
        jw_obj_end(&w);
    }
    jw_arr_end(&w);
    rc = record_dom(&b, out);
done:
    for (size_t i = 0; i < n; i++) json_free(v[i].rec);
    eg_free(v);
    buf_free(&b);
    return rc;
}

int session_messages(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid,
                     size_t limit, size_t offset, json_t **out)
{
    *out = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    json_t *rec = NULL;
    buf_t b = BUF_INIT;
    uint64_t id;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    rc = find_in(txn, st, ws, user_uuid, uuid, &id, &rec);
    json_free(rec);
    if (rc) goto done;
    rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_CHAT_MESSAGES), &cur));
    if (rc) goto done;
    store_key_t pre = session_key(ws, id);
    MDB_val kv = skey_val(&pre), dv;
    jw_t w;
    jw_init(&w, &b);
    jw_arr_begin(&w);
    size_t i = 0;
    int mrc = mdb_cursor_get(cur, &kv, &dv, MDB_SET_RANGE);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &kv, &dv, MDB_NEXT), i++) {
        if (kv.mv_size != 24 || memcmp(kv.mv_data, pre.b, 16)) break;
        if (i < offset) continue;
        if (i - offset >= limit) break;
        json_t *m = NULL;
        rc = record_decode(dv.mv_data, dv.mv_size, &m);
        if (rc) goto done;
        jw_json(&w, m);
        json_free(m);
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = store_status(mrc);
        goto done;
    }
    jw_arr_end(&w);
    mdb_cursor_close(cur);
    cur = NULL;
    store_read_end(st, txn);
    txn = NULL;
    rc = record_dom(&b, out);
done:
    if (cur) mdb_cursor_close(cur);
    store_read_end(st, txn);
    buf_free(&b);
    return rc;
}

struct delete_args {
    store_t *st;
    uint64_t ws;
    const char *user_uuid, *uuid;
};

static int delete_cb(MDB_txn *txn, void *arg)
{
    struct delete_args *a = arg;
    uint64_t id;
    json_t *rec = NULL;
    int rc = find_in(txn, a->st, a->ws, a->user_uuid, a->uuid, &id, &rec);
    json_free(rec);
    if (rc) return rc;
    store_key_t k = session_key(a->ws, id);
    MDB_val kv = skey_val(&k);
    rc = store_status(mdb_del(txn, store_dbi(a->st, DB_CHAT_SESSIONS), &kv, NULL));
    if (rc) return rc;
    MDB_cursor *cur;
    rc = store_status(mdb_cursor_open(txn, store_dbi(a->st, DB_CHAT_MESSAGES), &cur));
    if (rc) return rc;
    int mrc;
    for (;;) {
        MDB_val mk = skey_val(&k), dv;
        mrc = mdb_cursor_get(cur, &mk, &dv, MDB_SET_RANGE);
        if (mrc || mk.mv_size != 24 || memcmp(mk.mv_data, k.b, 16)) break;
        mrc = mdb_cursor_del(cur, 0);
        if (mrc) break;
    }
    mdb_cursor_close(cur);
    if (mrc != 0 && mrc != MDB_NOTFOUND) return store_status(mrc);
    return idmap_del(txn, a->st, a->uuid);
}

int session_delete(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid)
{
    struct delete_args a = {st, ws, user_uuid, uuid};
    return store_write(st, delete_cb, &a);
}
