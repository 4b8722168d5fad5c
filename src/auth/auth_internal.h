/*
 * auth_internal.h - helpers shared by auth.c and workspace.c only. Both run
 * inside a store_write callback (txn is the writer's).
 */
#ifndef ENGRAM_AUTH_INTERNAL_H
#define ENGRAM_AUTH_INTERNAL_H

#include "auth/auth.h"

/* Fills key (AUTH_KEY_LEN + 1 bytes) with a fresh random API key. */
void auth_make_key(char *key);
/* Stores a key record for (uid, ws); its text is appended to rec_out if set. */
int auth_put_key(MDB_txn *txn, store_t *st, uint64_t uid, uint64_t ws, const char *ws_uuid,
                 const char *key, const char *name, unsigned scopes, char key_uuid[37],
                 buf_t *rec_out);
/* Stores a new workspace with owner as its admin member. */
int auth_put_workspace(MDB_txn *txn, store_t *st, uint64_t owner, const char *name, int personal,
                       uint64_t *ws_out, char ws_uuid[37], buf_t *rec_out);

#endif
