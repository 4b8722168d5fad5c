/*
 * auth.c - users, passwords, keys and login sessions (see auth.h).
 *
 * Writes are store_write callbacks whose argument structs carry inputs and
 * outputs; each callback overwrites its outputs, so the writer may run it
 * again after growing the map. Slow work (Argon2id) is done before the
 * callback, never inside the writer.
 */
#include "auth/auth.h"
#include "auth/auth_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <strings.h>

#include "store/idmap.h"
#include "store/record.h"
#include "util/common.h"
#include "util/hash.h"
#include "util/timeutil.h"


#define PW_OPS 2
#define PW_MEM (19u * 1024 * 1024)

static char dummy_hash[crypto_pwhash_STRBYTES];

int auth_init(void)
{
    if (sodium_init() < 0) return ENGRAM_EIO;
    if (crypto_pwhash_str_alg(dummy_hash, "not-a-password", 14, PW_OPS, PW_MEM,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return ENGRAM_ENOMEM;
    return 0;
}

const char *auth_role_name(int role)
{
    switch (role) {
    case ROLE_READER: return "reader";
    case ROLE_EDITOR: return "editor";
    case ROLE_ADMIN: return "admin";
    default: return "none";
    }
}

int auth_role_parse(const char *s)
{
    if (!s) return ROLE_NONE;
    if (strcmp(s, "reader") == 0) return ROLE_READER;
    if (strcmp(s, "editor") == 0) return ROLE_EDITOR;
    if (strcmp(s, "admin") == 0) return ROLE_ADMIN;
    return ROLE_NONE;
}

static void now_text(char out[32]) { time_format_rfc3339(time_now_ms(), out); }

void auth_make_key(char *key)
{
    static const char alphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    memcpy(key, "eg_", 3);
    size_t n = 0;
    while (n < 40) {
        unsigned char r[48];
        hash_random(r, sizeof r);
        for (size_t i = 0; i < sizeof r && n < 40; i++) {
            if (r[i] < 248) key[3 + n++] = alphabet[r[i] % 62];
        }
    }
    key[AUTH_KEY_LEN] = '\0';
}

static void lower_email(const char *in, char *out, size_t outsz)
{
    size_t i = 0;
    for (; in[i] && i + 1 < outsz; i++) {
        char c = in[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    out[i] = '\0';
}

/* ---- records ---------------------------------------------------------- */

static int get_user(MDB_txn *txn, store_t *st, uint64_t uid, json_t **out)
{
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, uid);
    MDB_val kv = skey_val(&k);
    return record_get(txn, store_dbi(st, DB_USERS), &kv, out);
}

static int get_role(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t uid)
{
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, ws);
    skey_u64(&k, uid);
    MDB_val kv = skey_val(&k), v;
    if (mdb_get(txn, store_dbi(st, DB_MEMBERS), &kv, &v) || v.mv_size != 1) return ROLE_NONE;
    return ((const unsigned char *)v.mv_data)[0];
}

static int put_member(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t uid, int role)
{
    unsigned char r = (unsigned char)role;
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, ws);
    skey_u64(&k, uid);
    MDB_val kv = skey_val(&k), v = {1, &r};
    int rc = mdb_put(txn, store_dbi(st, DB_MEMBERS), &kv, &v, 0);
    if (rc) return store_status(rc);
    skey_init(&k);
    skey_u64(&k, uid);
    skey_u64(&k, ws);
    kv = skey_val(&k);
    rc = mdb_put(txn, store_dbi(st, DB_USER_WS), &kv, &v, 0);
    return store_status(rc);
}

static int get_ws(MDB_txn *txn, store_t *st, uint64_t ws, json_t **out)
{
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, ws);
    MDB_val kv = skey_val(&k);
    return record_get(txn, store_dbi(st, DB_WORKSPACES), &kv, out);
}

/* Fills who from a user id and workspace, checking the user and membership. */
static int fill_ctx(MDB_txn *txn, store_t *st, uint64_t uid, uint64_t ws, auth_ctx_t *who)
{
    json_t *u = NULL, *w = NULL;
    int rc = get_user(txn, st, uid, &u);
    if (rc) goto fail;
    if (json_get_bool(u, "disabled", 0)) { rc = -EACCES; goto fail; }
    who->user_id = uid;
    snprintf(who->user_uuid, sizeof who->user_uuid, "%s", json_get_str(u, "id") ? json_get_str(u, "id") : "");
    snprintf(who->email, sizeof who->email, "%s", json_get_str(u, "email") ? json_get_str(u, "email") : "");
    who->is_admin = json_get_bool(u, "admin", 0);
    who->ws = ws;
    who->role = get_role(txn, st, ws, uid);
    if (who->role == ROLE_NONE) { rc = -EACCES; goto fail; }
    rc = get_ws(txn, st, ws, &w);
    if (rc) goto fail;
    snprintf(who->ws_uuid, sizeof who->ws_uuid, "%s", json_get_str(w, "id") ? json_get_str(w, "id") : "");
fail:
    json_free(u);
    json_free(w);
    return rc;
}

static unsigned scopes_from_json(const json_t *arr)
{
    unsigned s = 0;
    if (!arr || arr->type != JSON_ARRAY) return 0;
    for (size_t i = 0; i < arr->len; i++) {
        const json_t *e = arr->items[i];
        if (e->type != JSON_STRING) continue;
        if (strcmp(e->str, "read") == 0) s |= SCOPE_READ;
        else if (strcmp(e->str, "write") == 0) s |= SCOPE_WRITE;
        else if (strcmp(e->str, "admin") == 0) s |= SCOPE_ADMIN;
    }
    return s;
}

static void write_scopes(jw_t *w, unsigned s)
{
    jw_arr_begin(w);
    if (s & SCOPE_READ) jw_str(w, "read");
    if (s & SCOPE_WRITE) jw_str(w, "write");
    if (s & SCOPE_ADMIN) jw_str(w, "admin");
    jw_arr_end(w);
}

int auth_check_key(store_t *st, const char *key, auth_ctx_t *out)
{
    if (!key || strlen(key) != AUTH_KEY_LEN || strncmp(key, "eg_", 3) != 0) return ENGRAM_ENOTFOUND;
    unsigned char h[32];
    hash_sha256(key, AUTH_KEY_LEN, h);
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    json_t *k = NULL;
    MDB_val kv = {32, h};
    rc = record_get(txn, store_dbi(st, DB_KEYS), &kv, &k);
    if (rc) goto done;
    memset(out, 0, sizeof *out);
    rc = fill_ctx(txn, st, (uint64_t)json_get_i64(k, "uid", 0), (uint64_t)json_get_i64(k, "ws", 0), out);
    if (rc) goto done;
    out->scopes = scopes_from_json(json_get(k, "scopes"));
    if (!out->is_admin) out->scopes &= ~(unsigned)SCOPE_ADMIN;
    out->key_id = (uint64_t)json_get_i64(k, "kid", 0);
done:
    json_free(k);
    store_read_end(st, txn);
    return rc;
}

int auth_check_session(store_t *st, const char *token, auth_ctx_t *out)
{
    if (!token || strlen(token) != 64) return ENGRAM_ENOTFOUND;
    unsigned char h[32];
    hash_sha256(token, 64, h);
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    json_t *s = NULL;
    MDB_val kv = {32, h};
    rc = record_get(txn, store_dbi(st, DB_SESSIONS), &kv, &s);
    if (rc) goto done;
    if (json_get_i64(s, "expires", 0) < time_now_ms()) { rc = ENGRAM_ENOTFOUND; goto done; }
    memset(out, 0, sizeof *out);
    rc = fill_ctx(txn, st, (uint64_t)json_get_i64(s, "uid", 0), (uint64_t)json_get_i64(s, "ws", 0), out);
    if (rc) goto done;
    out->scopes = SCOPE_READ | SCOPE_WRITE | (out->is_admin ? SCOPE_ADMIN : 0);
done:
    json_free(s);
    store_read_end(st, txn);
    return rc;
}

/* ---- registration ------------------------------------------------------ */

/* Writes a key record for (uid, ws) with the given scopes; fills key_uuid. */
int auth_put_key(MDB_txn *txn, store_t *st, uint64_t uid, uint64_t ws, const char *ws_uuid,
                   const char *key, const char *name, unsigned scopes, char key_uuid[37],
                   buf_t *rec_out)
{
    uint64_t kid;
    int rc = store_next_id(txn, st, "key", &kid);
    if (rc) return rc;
    rc = idmap_new(txn, st, IDK_KEY, ws, 0, kid, key_uuid);
    if (rc) return rc;
    char now[32], prefix[12];
    now_text(now);
    snprintf(prefix, sizeof prefix, "%.10s", key);
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "id", key_uuid);
    jw_kint(&w, "kid", (int64_t)kid);
    jw_kint(&w, "uid", (int64_t)uid);
    jw_kint(&w, "ws", (int64_t)ws);
    jw_kstr(&w, "workspace_id", ws_uuid);
    jw_kstr(&w, "name", name ? name : "default");
    jw_kstr(&w, "prefix", prefix);
    jw_key(&w, "scopes");
    write_scopes(&w, scopes);
    jw_kstr(&w, "created_at", now);
    jw_knull(&w, "last_used_at");
    jw_obj_end(&w);
    unsigned char h[32];
    hash_sha256(key, AUTH_KEY_LEN, h);
    MDB_val kv = {32, h};
    rc = record_put(txn, store_dbi(st, DB_KEYS), &kv, &b);
    if (!rc) {
        store_key_t k;
        skey_init(&k);
        skey_u64(&k, uid);
        skey_u64(&k, kid);
        MDB_val kk = skey_val(&k), hv = {32, h};
        rc = store_status(mdb_put(txn, store_dbi(st, DB_USER_KEYS), &kk, &hv, 0));
    }
    if (!rc && rec_out) buf_append(rec_out, b.data, b.len);
    buf_free(&b);
    return rc;
}

int auth_put_workspace(MDB_txn *txn, store_t *st, uint64_t owner, const char *name, int personal,
                         uint64_t *ws_out, char ws_uuid[37], buf_t *rec_out)
{
    uint64_t ws;
    int rc = store_next_id(txn, st, "workspace", &ws);
    if (rc) return rc;
    rc = idmap_new(txn, st, IDK_WORKSPACE, ws, 0, ws, ws_uuid);
    if (rc) return rc;
    char now[32];
    now_text(now);
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "id", ws_uuid);
    jw_kstr(&w, "name", name);
    jw_kint(&w, "owner", (int64_t)owner);
    jw_kbool(&w, "personal", personal);
    jw_kstr(&w, "created_at", now);
    jw_obj_end(&w);
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, ws);
    MDB_val kv = skey_val(&k);
    rc = record_put(txn, store_dbi(st, DB_WORKSPACES), &kv, &b);
    if (!rc && rec_out) buf_append(rec_out, b.data, b.len);
    buf_free(&b);
    if (rc) return rc;
    *ws_out = ws;
    return put_member(txn, st, ws, owner, ROLE_ADMIN);
}

struct reg_args {
    store_t *st;
    const char *email;   /* lowercased */
    const char *pw_hash;
    int make_admin, mode;
    const char *key;
    char user_uuid[37];
    int is_admin;
};

static int reg_cb(MDB_txn *txn, void *arg)
{
    struct reg_args *a = arg;
    store_t *st = a->st;
    MDB_val ek = {strlen(a->email), (void *)a->email}, v;
    int rc = mdb_get(txn, store_dbi(st, DB_USER_EMAIL), &ek, &v);
    if (rc == 0) return ENGRAM_EEXIST;
    if (rc != MDB_NOTFOUND) return store_status(rc);

    MDB_stat ms;
    rc = mdb_stat(txn, store_dbi(st, DB_USERS), &ms);
    if (rc) return store_status(rc);
    int first = ms.ms_entries == 0;
    if (!first && a->mode == AUTH_REG_CLOSED) return -EPERM;
    a->is_admin = first || a->make_admin;

    uint64_t uid, ws;
    rc = store_next_id(txn, st, "user", &uid);
    if (rc) return rc;
    rc = idmap_new(txn, st, IDK_USER, 0, 0, uid, a->user_uuid);
    if (rc) return rc;
    char ws_uuid[37], key_uuid[37], now[32];
    char ws_name[300];
    snprintf(ws_name, sizeof ws_name, "%s's workspace", a->email);
    rc = auth_put_workspace(txn, st, uid, ws_name, 1, &ws, ws_uuid, NULL);
    if (rc) return rc;
    now_text(now);
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "id", a->user_uuid);
    jw_kint(&w, "uid", (int64_t)uid);
    jw_kstr(&w, "email", a->email);
    jw_kstr(&w, "pw", a->pw_hash);
    jw_kbool(&w, "admin", a->is_admin);
    jw_kbool(&w, "disabled", 0);
    jw_kint(&w, "ws", (int64_t)ws);
    jw_kstr(&w, "workspace_id", ws_uuid);
    jw_kstr(&w, "created_at", now);
    jw_obj_end(&w);
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, uid);
    MDB_val kv = skey_val(&k);
    rc = record_put(txn, store_dbi(st, DB_USERS), &kv, &b);
    buf_free(&b);
    if (rc) return rc;
    unsigned char idv[8];
    be64_put(idv, uid);
    MDB_val iv = {8, idv};
    rc = mdb_put(txn, store_dbi(st, DB_USER_EMAIL), &ek, &iv, 0);
    if (rc) return store_status(rc);
    unsigned scopes = SCOPE_READ | SCOPE_WRITE | (a->is_admin ? SCOPE_ADMIN : 0);
    return auth_put_key(txn, st, uid, ws, ws_uuid, a->key, "default", scopes, key_uuid, NULL);
}

static int valid_email(const char *e)
{
    size_t n = strlen(e);
    if (n < 3 || n > 254) return 0;
    const char *at = strchr(e, '@');
    if (!at || at == e || strchr(at + 1, '@') || !at[1]) return 0;
    for (const char *p = e; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f || c == '"' || c == '<' || c == '>' || c == '\\') return 0;
    }
    return strchr(at + 1, '.') != NULL;
}

int auth_register(store_t *st, const char *email, const char *password, int make_admin, int mode,
                  char *user_uuid, char *key, int *is_admin_out)
{
    char lemail[256];
    if (!email || !password || !valid_email(email)) return ENGRAM_EINVAL;
    lower_email(email, lemail, sizeof lemail);
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(hash, password, strlen(password), PW_OPS, PW_MEM,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return ENGRAM_ENOMEM;
    auth_make_key(key);
    struct reg_args a = {.st = st, .email = lemail, .pw_hash = hash, .make_admin = make_admin,
                         .mode = mode, .key = key};
    int rc = store_write(st, reg_cb, &a);
    if (rc) return rc;
    memcpy(user_uuid, a.user_uuid, 37);
    if (is_admin_out) *is_admin_out = a.is_admin;
    return 0;
}

/* ---- login sessions ---------------------------------------------------- */

struct session_args {
    store_t *st;
    unsigned char h[32];
    uint64_t uid, ws;
    int del;
};

static int session_cb(MDB_txn *txn, void *arg)
{
    struct session_args *a = arg;
    MDB_val kv = {32, a->h};
    if (a->del) {
        int rc = mdb_del(txn, store_dbi(a->st, DB_SESSIONS), &kv, NULL);
        return rc == MDB_NOTFOUND ? 0 : store_status(rc);
    }
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kint(&w, "uid", (int64_t)a->uid);
    jw_kint(&w, "ws", (int64_t)a->ws);
    jw_kint(&w, "expires", time_now_ms() + (int64_t)AUTH_SESSION_TTL_S * 1000);
    jw_obj_end(&w);
    int rc = record_put(txn, store_dbi(a->st, DB_SESSIONS), &kv, &b);
    buf_free(&b);
    return rc;
}

int auth_login(store_t *st, const char *email, const char *password, auth_ctx_t *who, char *token)
{
    char lemail[256];
    json_t *u = NULL;
    uint64_t uid = 0;
    int rc;
    if (!email || !password) return ENGRAM_ENOTFOUND;
    lower_email(email, lemail, sizeof lemail);
    MDB_txn *txn;
    rc = store_read_begin(st, &txn);
    if (rc) return rc;
    MDB_val ek = {strlen(lemail), lemail}, v;
    if (mdb_get(txn, store_dbi(st, DB_USER_EMAIL), &ek, &v) == 0 && v.mv_size == 8) {
        uid = be64_get(v.mv_data);
        if (get_user(txn, st, uid, &u)) u = NULL;
    }
    store_read_end(st, txn);
    /* Same work whether or not the email exists. */
    const char *stored = u ? json_get_str(u, "pw") : NULL;
    int ok = crypto_pwhash_str_verify(stored ? stored : dummy_hash, password, strlen(password)) == 0;
    if (!u || !stored || !ok) { json_free(u); return ENGRAM_ENOTFOUND; }
    uint64_t ws = (uint64_t)json_get_i64(u, "ws", 0);
    json_free(u);

    rc = store_read_begin(st, &txn);
    if (rc) return rc;
    memset(who, 0, sizeof *who);
    rc = fill_ctx(txn, st, uid, ws, who);
    store_read_end(st, txn);
    if (rc) return rc;
    who->scopes = SCOPE_READ | SCOPE_WRITE | (who->is_admin ? SCOPE_ADMIN : 0);

    unsigned char raw[32];
    hash_random(raw, sizeof raw);
    hash_hex(raw, sizeof raw, token);
    struct session_args a = {.st = st, .uid = uid, .ws = ws};
    hash_sha256(token, 64, a.h);
    return store_write(st, session_cb, &a);
}

int auth_logout(store_t *st, const char *token)
{
    if (!token || strlen(token) != 64) return 0;
    struct session_args a = {.st = st, .del = 1};
    hash_sha256(token, 64, a.h);
    return store_write(st, session_cb, &a);
}
