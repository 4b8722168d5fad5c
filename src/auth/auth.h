/*
 * auth.h - users, passwords, API keys, login sessions, workspaces and
 * members, stored in LMDB.
 *
 * Passwords are hashed with Argon2id (libsodium crypto_pwhash_str, t=2,
 * m=19 MiB: ~30-60 ms a hash here, far cheaper than a PBKDF2 count of the
 * same strength). API keys are "eg_" + 40 base62 characters from the CSPRNG
 * and are stored only as their SHA-256; session tokens likewise. Lookups by
 * secret hash are exact-match LMDB gets, so no comparison of secrets leaks
 * timing; password checks for unknown emails verify against a dummy hash so
 * both failures cost the same.
 *
 * Every function that writes goes through store_write; lookups open their
 * own short read transaction. Records are JSON (store/record.h); a user
 * record is {"id","email","pw","admin","disabled","ws","created_at"}.
 * Thread-safe.
 */
#ifndef ENGRAM_AUTH_H
#define ENGRAM_AUTH_H

#include <stdint.h>

#include "store/store.h"
#include "util/json.h"

enum { SCOPE_READ = 1, SCOPE_WRITE = 2, SCOPE_ADMIN = 4 };
enum { ROLE_NONE = 0, ROLE_READER = 1, ROLE_EDITOR = 2, ROLE_ADMIN = 3 };

#define AUTH_KEY_LEN 43 /* "eg_" + 40 */
#define AUTH_SESSION_TTL_S (7 * 24 * 3600)

/* Who is calling: the result of a credential check. */
typedef struct auth_ctx {
    uint64_t user_id;
    char user_uuid[37];
    char email[256];
    uint64_t ws;          /* the workspace this credential acts in */
    char ws_uuid[37];
    unsigned scopes;      /* SCOPE_* the credential grants */
    int role;             /* ROLE_* of the user in ws */
    int is_admin;         /* server administrator */
    uint64_t key_id;      /* 0 for a cookie session */
} auth_ctx_t;

/* Module set-up: sodium_init and the dummy hash. Call once at start. */
int auth_init(void);

/* Checks an API key. ENGRAM_ENOTFOUND for an unknown or revoked key, -EACCES
 * for a disabled user or a membership that is gone. */
int auth_check_key(store_t *st, const char *key, auth_ctx_t *out);
/* Checks a session cookie token the same way (acts in the personal workspace). */
int auth_check_session(store_t *st, const char *token, auth_ctx_t *out);

/* A new user with a personal workspace and a first key (scopes read+write,
 * plus admin for an admin). mode: AUTH_REG_OPEN (anyone), AUTH_REG_CLOSED
 * (only when the server has no user yet: then -EPERM), AUTH_REG_ADMIN (an
 * admin adding someone). The first user of an empty server is always admin.
 * Email must be unique (ENGRAM_EEXIST). user_uuid gets 37 bytes, key
 * AUTH_KEY_LEN+1. */
enum { AUTH_REG_OPEN, AUTH_REG_CLOSED, AUTH_REG_ADMIN };
int auth_register(store_t *st, const char *email, const char *password, int make_admin, int mode,
                  char *user_uuid, char *key, int *is_admin_out);
/* Verifies email + password; on success a new session token (65 bytes). */
int auth_login(store_t *st, const char *email, const char *password, auth_ctx_t *who,
               char *token);
int auth_logout(store_t *st, const char *token);

/* Keys. auth_key_create: scopes within the creator's; ws_uuid NULL = the
 * personal workspace; not a member -> ENGRAM_ENOTFOUND. *out_record owned
 * by caller (json_free). */
int auth_key_create(store_t *st, const auth_ctx_t *who, const char *name, unsigned scopes,
                    const char *ws_uuid, char *key, json_t **out_record);
/* All of the user's keys as a JSON array (records, no secrets). */
int auth_key_list(store_t *st, const auth_ctx_t *who, json_t **out_array);
int auth_key_delete(store_t *st, const auth_ctx_t *who, const char *key_uuid);
/* Records last use (at most every few minutes per key). */
void auth_key_touch(store_t *st, const auth_ctx_t *who);

/* Workspaces and members. Lists are JSON arrays owned by the caller. */
int auth_ws_list(store_t *st, const auth_ctx_t *who, json_t **out_array);
int auth_ws_create(store_t *st, const auth_ctx_t *who, const char *name, json_t **out_record);
/* ws_uuid must be one the caller belongs to, else ENGRAM_ENOTFOUND. */
int auth_ws_members(store_t *st, const auth_ctx_t *who, const char *ws_uuid, json_t **out_array);
/* Only a workspace admin (else -EACCES); unknown email -> ENGRAM_ENOTFOUND
 * ("no user with that email"); already a member -> ENGRAM_EEXIST. */
int auth_ws_member_add(store_t *st, const auth_ctx_t *who, const char *ws_uuid, const char *email,
                       int role, json_t **out_record);
int auth_ws_member_remove(store_t *st, const auth_ctx_t *who, const char *ws_uuid,
                          const char *user_uuid);

/* Admin: users. */
int auth_user_list(store_t *st, json_t **out_array);
int auth_user_set_disabled(store_t *st, const char *user_uuid, int disabled, json_t **out_record);
int auth_user_count(store_t *st, uint64_t *n);

const char *auth_role_name(int role);
int auth_role_parse(const char *s);

#endif
