/*
 * workspace.c - API keys, workspaces, members and the admin's user list
 * (see auth.h). Listings build JSON arrays from the stored records; the API
 * layer renders them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "auth/auth.h"
#include "auth/auth_internal.h"
#include "store/idmap.h"
#include "store/record.h"
#include "util/common.h"
#include "util/hash.h"
#include "util/timeutil.h"

/* Parses the text in b into a DOM (for handing records to the caller). */
/* Appends records from a cursor range whose keys start with prefix to an
 * array being written; xform may write a different value per record. */
typedef int (*rec_fn)(MDB_txn *txn, store_t *st, const MDB_val *k, const MDB_val *v, jw_t *w, void *ud);

static int scan_prefix(MDB_txn *txn, store_t *st, store_db_t db, const void *prefix, size_t plen,
                       rec_fn fn, jw_t *w, void *ud)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, store_dbi(st, db), &c);
    if (rc) return store_status(rc);
    MDB_val k = {plen, (void *)prefix}, v;
    /* LMDB refuses zero-length keys: an empty prefix means the whole table. */
    rc = mdb_cursor_get(c, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0) break;
        int r = fn(txn, st, &k, &v, w, ud);
        if (r) { mdb_cursor_close(c); return r; }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : store_status(rc);
}

/* The records under a key prefix as a JSON array (*out owned by the
 * caller), each written by fn, in one short read transaction. */
static int list_prefix(store_t *st, store_db_t db, const void *prefix, size_t plen, rec_fn fn,
                       json_t **out)
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_arr_begin(&w);
    rc = scan_prefix(txn, st, db, prefix, plen, fn, &w, NULL);
    jw_arr_end(&w);
    store_read_end(st, txn);
    if (!rc) rc = record_dom(&b, out);
    buf_free(&b);
    return rc;
}

/* ---- keys --------------------------------------------------------------- */

struct keynew_args {
    store_t *st;
    const auth_ctx_t *who;
    uint64_t ws;
    char ws_uuid[37];
    const char *key, *name;
    unsigned scopes;
    buf_t rec;
};


static int keynew_cb(MDB_txn *txn, void *arg)
{
    struct keynew_args *a = arg;
    char key_uuid[37];
    buf_reset(&a->rec);
    return auth_put_key(txn, a->st, a->who->user_id, a->ws, a->ws_uuid, a->key, a->name, a->scopes,
                        key_uuid, &a->rec);
}

int auth_key_create(store_t *st, const auth_ctx_t *who, const char *name, unsigned scopes,
                    const char *ws_uuid, char *key, json_t **out_record)
{
    struct keynew_args a = {.st = st, .who = who, .name = name, .scopes = scopes};
    *out_record = NULL;
    if (!who->is_admin) a.scopes &= ~(unsigned)SCOPE_ADMIN;
    if (ws_uuid) {
        MDB_txn *txn;
        int rc = store_read_begin(st, &txn);
        if (rc) return rc;
        idmap_entry_t e;
        rc = idmap_get(txn, st, ws_uuid, IDK_WORKSPACE, &e);
        if (!rc) {
            store_key_t k;
            skey_init(&k);
            skey_u64(&k, e.ws);
            skey_u64(&k, who->user_id);
            MDB_val kv = skey_val(&k), v;
            if (mdb_get(txn, store_dbi(st, DB_MEMBERS), &kv, &v)) rc = ENGRAM_ENOTFOUND;
        }
        store_read_end(st, txn);
        if (rc) return rc;
        a.ws = e.ws;
        snprintf(a.ws_uuid, sizeof a.ws_uuid, "%s", ws_uuid);
        for (char *p = a.ws_uuid; *p; p++) if (*p >= 'A' && *p <= 'F') *p = (char)(*p + 32);
    } else {
        /* The personal workspace: the user record knows it. */
        MDB_txn *txn;
        int rc = store_read_begin(st, &txn);
        if (rc) return rc;
        store_key_t k;
        skey_init(&k);
        skey_u64(&k, who->user_id);
        MDB_val kv = skey_val(&k);
        json_t *u = NULL;
        rc = record_get(txn, store_dbi(st, DB_USERS), &kv, &u);
        store_read_end(st, txn);
        if (rc) return rc;
        a.ws = (uint64_t)json_get_i64(u, "ws", 0);
        snprintf(a.ws_uuid, sizeof a.ws_uuid, "%s", json_get_str(u, "workspace_id") ? json_get_str(u, "workspace_id") : "");
        json_free(u);
    }
    auth_make_key(key);
    a.key = key;
    int rc = store_write(st, keynew_cb, &a);
    if (!rc) rc = record_dom(&a.rec, out_record);
    buf_free(&a.rec);
    return rc;
}

static int key_list_fn(MDB_txn *txn, store_t *st, const MDB_val *k, const MDB_val *v, jw_t *w, void *ud)
{
    (void)k; (void)ud;
    if (v->mv_size != 32) return ENGRAM_ECORRUPT;
    MDB_val hk = {32, v->mv_data};
    json_t *rec = NULL;
    int rc = record_get(txn, store_dbi(st, DB_KEYS), &hk, &rec);
    if (rc == ENGRAM_ENOTFOUND) return 0;
    if (rc) return rc;
    jw_json(w, rec);
    json_free(rec);
    return 0;
}

int auth_key_list(store_t *st, const auth_ctx_t *who, json_t **out_array)
{
    unsigned char p[8];
    be64_put(p, who->user_id);
    return list_prefix(st, DB_USER_KEYS, p, 8, key_list_fn, out_array);
}

struct keydel_args {
    store_t *st;
    uint64_t uid, kid;
};

static int keydel_cb(MDB_txn *txn, void *arg)
{
    struct keydel_args *a = arg;
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, a->uid);
    skey_u64(&k, a->kid);
    MDB_val kv = skey_val(&k), v;
    int rc = mdb_get(txn, store_dbi(a->st, DB_USER_KEYS), &kv, &v);
    if (rc) return store_status(rc);
    unsigned char h[32];
    if (v.mv_size != 32) return ENGRAM_ECORRUPT;
    memcpy(h, v.mv_data, 32);
    MDB_val hk = {32, h};
    json_t *rec = NULL;
    rc = record_get(txn, store_dbi(a->st, DB_KEYS), &hk, &rec);
    if (rc == 0) {
        const char *id = json_get_str(rec, "id");
        if (id) idmap_del(txn, a->st, id);
        json_free(rec);
    }
    rc = mdb_del(txn, store_dbi(a->st, DB_KEYS), &hk, NULL);
    if (rc && rc != MDB_NOTFOUND) return store_status(rc);
    return store_status(mdb_del(txn, store_dbi(a->st, DB_USER_KEYS), &kv, NULL));
}

int auth_key_delete(store_t *st, const auth_ctx_t *who, const char *key_uuid)
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    idmap_entry_t e;
    rc = idmap_get(txn, st, key_uuid, IDK_KEY, &e);
    store_read_end(st, txn);
    if (rc) return rc;
    struct keydel_args a = {st, who->user_id, e.id};
    return store_write(st, keydel_cb, &a);
}

/* ---- key last use ------------------------------------------------------ */

struct touch_args {
    store_t *st;
    uint64_t uid, kid;
    char now[32];
};

static int touch_cb(MDB_txn *txn, void *arg)
{
    struct touch_args *a = arg;
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, a->uid);
    skey_u64(&k, a->kid);
    MDB_val kv = skey_val(&k), v;
    if (mdb_get(txn, store_dbi(a->st, DB_USER_KEYS), &kv, &v) || v.mv_size != 32) return 0;
    unsigned char h[32];
    memcpy(h, v.mv_data, 32);
    MDB_val hk = {32, h};
    json_t *rec = NULL;
    if (record_get(txn, store_dbi(a->st, DB_KEYS), &hk, &rec)) return 0;
    static const char *const skip[] = {"last_used_at", NULL};
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    record_copy_members(&w, rec, skip);
    jw_kstr(&w, "last_used_at", a->now);
    jw_obj_end(&w);
    int rc = record_put(txn, store_dbi(a->st, DB_KEYS), &hk, &b);
    buf_free(&b);
    json_free(rec);
    return rc;
}

#define TOUCH_SLOTS 256
#define TOUCH_EVERY_MS (5 * 60 * 1000)
static struct { uint64_t kid; int64_t at; } touched[TOUCH_SLOTS];
static pthread_mutex_t touch_mu = PTHREAD_MUTEX_INITIALIZER;

void auth_key_touch(store_t *st, const auth_ctx_t *who)
{
    if (!who->key_id) return;
    int64_t now = time_now_ms();
    size_t slot = who->key_id % TOUCH_SLOTS;
    pthread_mutex_lock(&touch_mu);
    int due = touched[slot].kid != who->key_id || now - touched[slot].at > TOUCH_EVERY_MS;
    if (due) {
        touched[slot].kid = who->key_id;
        touched[slot].at = now;
    }
    pthread_mutex_unlock(&touch_mu);
    if (!due) return;
    struct touch_args a = {.st = st, .uid = who->user_id, .kid = who->key_id};
    time_format_rfc3339(now, a.now);
    store_write(st, touch_cb, &a);
}

/* ---- workspaces ------------------------------------------------------- */

static void write_ws(jw_t *w, const json_t *rec, int role)
{
    jw_obj_begin(w);
    jw_kstr(w, "id", json_get_str(rec, "id"));
    jw_kstr(w, "name", json_get_str(rec, "name"));
    jw_kbool(w, "personal", json_get_bool(rec, "personal", 0));
    jw_kstr(w, "role", auth_role_name(role));
    jw_kstr(w, "created_at", json_get_str(rec, "created_at"));
    jw_obj_end(w);
}

static int ws_list_fn(MDB_txn *txn, store_t *st, const MDB_val *k, const MDB_val *v, jw_t *w, void *ud)
{
    (void)ud;
    if (k->mv_size != 16 || v->mv_size != 1) return ENGRAM_ECORRUPT;
    store_key_t wk;
    skey_init(&wk);
    skey_bytes(&wk, (const unsigned char *)k->mv_data + 8, 8);
    MDB_val kv = skey_val(&wk);
    json_t *rec = NULL;
    int rc = record_get(txn, store_dbi(st, DB_WORKSPACES), &kv, &rec);
    if (rc == ENGRAM_ENOTFOUND) return 0;
    if (rc) return rc;
    write_ws(w, rec, ((const unsigned char *)v->mv_data)[0]);
    json_free(rec);
    return 0;
}

int auth_ws_list(store_t *st, const auth_ctx_t *who, json_t **out_array)
{
    unsigned char p[8];
    be64_put(p, who->user_id);
    return list_prefix(st, DB_USER_WS, p, 8, ws_list_fn, out_array);
}


struct wsnew_args {
    store_t *st;
    uint64_t uid;
    const char *name;
    buf_t rec;
};

static int wsnew_cb(MDB_txn *txn, void *arg)
{
    struct wsnew_args *a = arg;
    uint64_t ws;
    char u[37];
    buf_reset(&a->rec);
    return auth_put_workspace(txn, a->st, a->uid, a->name, 0, &ws, u, &a->rec);
}

int auth_ws_create(store_t *st, const auth_ctx_t *who, const char *name, json_t **out_record)
{
    struct wsnew_args a = {.st = st, .uid = who->user_id, .name = name};
    *out_record = NULL;
    int rc = store_write(st, wsnew_cb, &a);
    json_t *rec = NULL;
    if (!rc) rc = record_dom(&a.rec, &rec);
    buf_free(&a.rec);
    if (rc) return rc;
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    write_ws(&w, rec, ROLE_ADMIN);
    json_free(rec);
    rc = record_dom(&b, out_record);
    buf_free(&b);
    return rc;
}

/* Resolves ws_uuid to a workspace the caller belongs to; *role gets the
 * caller's role there. */
static int ws_resolve(MDB_txn *txn, store_t *st, const auth_ctx_t *who, const char *ws_uuid,
                      uint64_t *ws, int *role)
{
    idmap_entry_t e;
    int rc = idmap_get(txn, st, ws_uuid, IDK_WORKSPACE, &e);
    if (rc) return rc;
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, e.ws);
    skey_u64(&k, who->user_id);
    MDB_val kv = skey_val(&k), v;
    if (mdb_get(txn, store_dbi(st, DB_MEMBERS), &kv, &v) || v.mv_size != 1) return ENGRAM_ENOTFOUND;
    *ws = e.ws;
    *role = ((const unsigned char *)v.mv_data)[0];
    return 0;
}

static void write_member(jw_t *w, const json_t *user, int role)
{
    jw_obj_begin(w);
    jw_kstr(w, "user_id", json_get_str(user, "id"));
    jw_kstr(w, "email", json_get_str(user, "email"));
    jw_kstr(w, "role", auth_role_name(role));
    jw_obj_end(w);
}

static int member_fn(MDB_txn *txn, store_t *st, const MDB_val *k, const MDB_val *v, jw_t *w, void *ud)
{
    (void)ud;
    if (k->mv_size != 16 || v->mv_size != 1) return ENGRAM_ECORRUPT;
    store_key_t uk;
    skey_init(&uk);
    skey_bytes(&uk, (const unsigned char *)k->mv_data + 8, 8);
    MDB_val kv = skey_val(&uk);
    json_t *u = NULL;
    int rc = record_get(txn, store_dbi(st, DB_USERS), &kv, &u);
    if (rc == ENGRAM_ENOTFOUND) return 0;
    if (rc) return rc;
    write_member(w, u, ((const unsigned char *)v->mv_data)[0]);
    json_free(u);
    return 0;
}

int auth_ws_members(store_t *st, const auth_ctx_t *who, const char *ws_uuid, json_t **out_array)
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    uint64_t ws;
    int role;
    buf_t b = BUF_INIT;
    rc = ws_resolve(txn, st, who, ws_uuid, &ws, &role);
    if (!rc) {
        unsigned char p[8];
        be64_put(p, ws);
        jw_t w;
        jw_init(&w, &b);
        jw_arr_begin(&w);
        rc = scan_prefix(txn, st, DB_MEMBERS, p, 8, member_fn, &w, NULL);
        jw_arr_end(&w);
    }
    store_read_end(st, txn);
    if (!rc) rc = record_dom(&b, out_array);
    buf_free(&b);
    return rc;
}

struct member_args {
    store_t *st;
    uint64_t ws, uid;
    int role, del;
};

static size_t count_admins(MDB_txn *txn, store_t *st, uint64_t ws)
{
    unsigned char p[8];
    be64_put(p, ws);
    MDB_cursor *c;
    size_t n = 0;
    if (mdb_cursor_open(txn, store_dbi(st, DB_MEMBERS), &c)) return 0;
    MDB_val k = {8, p}, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == 16 && memcmp(k.mv_data, p, 8) == 0) {
        if (v.mv_size == 1 && ((const unsigned char *)v.mv_data)[0] == ROLE_ADMIN) n++;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return n;
}

static int member_cb(MDB_txn *txn, void *arg)
{
    struct member_args *a = arg;
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, a->ws);
    skey_u64(&k, a->uid);
    MDB_val kv = skey_val(&k), v;
    int exists = mdb_get(txn, store_dbi(a->st, DB_MEMBERS), &kv, &v) == 0;
    if (a->del) {
        if (!exists) return ENGRAM_ENOTFOUND;
        if (v.mv_size == 1 && ((const unsigned char *)v.mv_data)[0] == ROLE_ADMIN &&
            count_admins(txn, a->st, a->ws) <= 1)
            return -EBUSY; /* a workspace keeps at least one admin */
        int rc = mdb_del(txn, store_dbi(a->st, DB_MEMBERS), &kv, NULL);
        if (rc) return store_status(rc);
        skey_init(&k);
        skey_u64(&k, a->uid);
        skey_u64(&k, a->ws);
        kv = skey_val(&k);
        rc = mdb_del(txn, store_dbi(a->st, DB_USER_WS), &kv, NULL);
        return rc == MDB_NOTFOUND ? 0 : store_status(rc);
    }
    if (exists) return ENGRAM_EEXIST;
    unsigned char r = (unsigned char)a->role;
    MDB_val rv = {1, &r};
    int rc = mdb_put(txn, store_dbi(a->st, DB_MEMBERS), &kv, &rv, 0);
    if (rc) return store_status(rc);
    skey_init(&k);
    skey_u64(&k, a->uid);
    skey_u64(&k, a->ws);
    kv = skey_val(&k);
    return store_status(mdb_put(txn, store_dbi(a->st, DB_USER_WS), &kv, &rv, 0));
}

int auth_ws_member_add(store_t *st, const auth_ctx_t *who, const char *ws_uuid, const char *email,
                       int role, json_t **out_record)
{
    *out_record = NULL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    uint64_t ws;
    int my_role;
    json_t *u = NULL;
    struct member_args a = {.st = st, .role = role};
    rc = ws_resolve(txn, st, who, ws_uuid, &ws, &my_role);
    if (!rc && my_role != ROLE_ADMIN) rc = -EACCES;
    if (!rc) {
        char lemail[256];
        size_t i = 0;
        for (; email[i] && i + 1 < sizeof lemail; i++)
            lemail[i] = (email[i] >= 'A' && email[i] <= 'Z') ? (char)(email[i] + 32) : email[i];
        lemail[i] = '\0';
        MDB_val ek = {i, lemail}, v;
        if (mdb_get(txn, store_dbi(st, DB_USER_EMAIL), &ek, &v) || v.mv_size != 8) {
            rc = ENGRAM_ENOTFOUND;
        } else {
            a.uid = be64_get(v.mv_data);
            store_key_t k;
            skey_init(&k);
            skey_u64(&k, a.uid);
            MDB_val kv = skey_val(&k);
            rc = record_get(txn, store_dbi(st, DB_USERS), &kv, &u);
        }
    }
    store_read_end(st, txn);
    if (rc) { json_free(u); return rc == ENGRAM_ENOTFOUND && my_role == ROLE_ADMIN ? -ENOENT : rc; }
    a.ws = ws;
    rc = store_write(st, member_cb, &a);
    if (!rc) {
        buf_t b = BUF_INIT;
        jw_t w;
        jw_init(&w, &b);
        write_member(&w, u, role);
        rc = record_dom(&b, out_record);
        buf_free(&b);
    }
    json_free(u);
    return rc;
}

int auth_ws_member_remove(store_t *st, const auth_ctx_t *who, const char *ws_uuid,
                          const char *user_uuid)
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    uint64_t ws;
    int my_role;
    idmap_entry_t e = {0};
    rc = ws_resolve(txn, st, who, ws_uuid, &ws, &my_role);
    if (!rc) {
        int self = 0;
        rc = idmap_get(txn, st, user_uuid, IDK_USER, &e);
        if (!rc) self = e.id == who->user_id;
        if (!rc && my_role != ROLE_ADMIN && !self) rc = -EACCES;
    }
    store_read_end(st, txn);
    if (rc) return rc;
    struct member_args a = {.st = st, .ws = ws, .uid = e.id, .del = 1};
    return store_write(st, member_cb, &a);
}

/* ---- admin: users ------------------------------------------------------- */

static void write_user(jw_t *w, const json_t *u)
{
    jw_obj_begin(w);
    jw_kstr(w, "id", json_get_str(u, "id"));
    jw_kstr(w, "email", json_get_str(u, "email"));
    jw_kbool(w, "admin", json_get_bool(u, "admin", 0));
    jw_kbool(w, "disabled", json_get_bool(u, "disabled", 0));
    jw_kstr(w, "workspace_id", json_get_str(u, "workspace_id"));
    jw_kstr(w, "created_at", json_get_str(u, "created_at"));
    jw_obj_end(w);
}

static int user_fn(MDB_txn *txn, store_t *st, const MDB_val *k, const MDB_val *v, jw_t *w, void *ud)
{
    (void)txn; (void)st; (void)k; (void)ud;
    json_t *u = NULL;
    int rc = record_decode(v->mv_data, v->mv_size, &u);
    if (rc) return rc;
    write_user(w, u);
    json_free(u);
    return 0;
}

int auth_user_list(store_t *st, json_t **out_array)
{
    return list_prefix(st, DB_USERS, "", 0, user_fn, out_array);
}

int auth_user_count(store_t *st, uint64_t *n)
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    MDB_stat ms;
    rc = store_status(mdb_stat(txn, store_dbi(st, DB_USERS), &ms));
    store_read_end(st, txn);
    if (!rc) *n = ms.ms_entries;
    return rc;
}

struct disable_args {
    store_t *st;
    uint64_t uid;
    int disabled;
    buf_t out;
};

static int disable_cb(MDB_txn *txn, void *arg)
{
    struct disable_args *a = arg;
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, a->uid);
    MDB_val kv = skey_val(&k);
    json_t *u = NULL;
    int rc = record_get(txn, store_dbi(a->st, DB_USERS), &kv, &u);
    if (rc) return rc;
    static const char *const skip[] = {"disabled", NULL};
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    record_copy_members(&w, u, skip);
    jw_kbool(&w, "disabled", a->disabled);
    jw_obj_end(&w);
    rc = record_put(txn, store_dbi(a->st, DB_USERS), &kv, &b);
    buf_free(&b);
    buf_reset(&a->out);
    if (!rc) {
        jw_init(&w, &a->out);
        jw_obj_begin(&w);
        jw_kstr(&w, "id", json_get_str(u, "id"));
        jw_kstr(&w, "email", json_get_str(u, "email"));
        jw_kbool(&w, "admin", json_get_bool(u, "admin", 0));
        jw_kbool(&w, "disabled", a->disabled);
        jw_kstr(&w, "workspace_id", json_get_str(u, "workspace_id"));
        jw_kstr(&w, "created_at", json_get_str(u, "created_at"));
        jw_obj_end(&w);
    }
    json_free(u);
    return rc;
}

int auth_user_set_disabled(store_t *st, const char *user_uuid, int disabled, json_t **out_record)
{
    *out_record = NULL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    idmap_entry_t e;
    rc = idmap_get(txn, st, user_uuid, IDK_USER, &e);
    store_read_end(st, txn);
    if (rc) return rc;
    struct disable_args a = {.st = st, .uid = e.id, .disabled = disabled};
    rc = store_write(st, disable_cb, &a);
    if (!rc) rc = record_dom(&a.out, out_record);
    buf_free(&a.out);
    return rc;
}
