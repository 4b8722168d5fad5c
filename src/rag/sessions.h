/*
 * sessions.h - chat sessions and their messages.
 *
 * A session belongs to one user in one workspace: every function takes the
 * workspace and the caller's user id, and another user's (or another
 * workspace's) session is ENGRAM_ENOTFOUND, exactly like a missing one.
 *
 * Layout (records are store/record.h JSON):
 *   DB_CHAT_SESSIONS  ws(8) session(8) -> {"id","sid","user_id",
 *                     "collection_id","title","created_at","last_message_at",
 *                     "message_count","seq","last_ms"}
 *                     sid: the internal id; seq: the last message number;
 *                     last_ms: last_message_at in ms (sorting).
 *   DB_CHAT_MESSAGES  ws(8) session(8) message(8) -> {"id","session_id",
 *                     "role","content","created_at"}; message numbers
 *                     count up from 1 within a session, so a range scan
 *                     gives the messages in order.
 *   DB_UUIDS          the session's public id, kind IDK_SESSION.
 * Message ids are random UUIDs kept only in their record (no route takes
 * one).
 *
 * A session's title is its first user message with white space collapsed,
 * cut at a word boundary to at most SESSION_TITLE_MAX bytes ("..." added).
 * Lists and JSON DOMs returned are owned by the caller (json_free).
 * Thread-safe; reads use short read transactions, writes store_write.
 */
#ifndef ENGRAM_SESSIONS_H
#define ENGRAM_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/json.h"

#define SESSION_TITLE_MAX 80

typedef struct session_ref {
    uint64_t id;                /* internal id */
    char uuid[37];
    char collection_id[37];     /* "" when the session has none */
} session_ref_t;

typedef struct session_turn {
    char *role;
    char *content;
} session_turn_t;

/* Finds the caller's session by its public id. */
int session_find(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid,
                 session_ref_t *out);
/* The last max messages of a session, oldest first, copied out (free
 * with session_turns_free). */
int session_recent(store_t *st, uint64_t ws, uint64_t session, size_t max, session_turn_t **turns,
                   size_t *n);
void session_turns_free(session_turn_t *t, size_t n);

/* Stores one exchange: the user's message (at user_ms) and the answer (now).
 * session 0 makes a new session (titled from user_text, with coll_uuid,
 * which may be NULL) whose id is written to uuid_out; otherwise the
 * session's counts and last_message_at move on. */
int session_append(store_t *st, uint64_t ws, const char *user_uuid, uint64_t session,
                   const char *coll_uuid, const char *user_text, int64_t user_ms,
                   const char *assistant_text, char uuid_out[37]);

/* The caller's sessions, most recent first, as the API's objects
 * [{"id","user_id","collection_id","title","created_at","last_message_at",
 * "message_count"}], items offset..offset+limit. */
int session_list(store_t *st, uint64_t ws, const char *user_uuid, size_t limit, size_t offset,
                 json_t **out);
/* A session's messages in order [{"id","session_id","role","content",
 * "created_at"}], items offset..offset+limit. */
int session_messages(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid,
                     size_t limit, size_t offset, json_t **out);
/* Deletes the session, its messages and its public id. */
int session_delete(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid);

/* The title for a first message (exposed for tests): owned by the caller. */
char *session_title(const char *message);

#endif
