/*
 * commands.c - engram ingest, search, ask, collections and docs (see cli.h).
 *
 * Each command parses its arguments, resolves the server and key (flags over
 * ENGRAM_URL/ENGRAM_API_KEY), makes its requests through http_client.c and
 * prints for people: plain lines, a progress bar for ingest when stderr is a
 * terminal, and errors that say what to do (an unreachable server names the
 * URL; a 401 says to check ENGRAM_API_KEY). --json prints the server's
 * answer as it came, for scripts.
 *
 * Collections are named on the command line; a name is turned into an id by
 * listing the workspace's collections (every page). ingest creates a
 * missing collection (a 409 from a concurrent creator is resolved by
 * looking the name up again).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "util/netcfg.h"
#include "util/common.h"

#define CLI_MAX_FILES 100000

typedef struct opts {
    cli_conn_t conn;
    const char *collection;
    const char *mode;
    long top_k;
    int json;
    int wait;
    const char **pos;     /* positional arguments */
    int npos;
} opts_t;

static const char *const commands[] = {"ingest", "search", "ask", "collections", "docs"};

int cli_is_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i])) return 1;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "engram client commands (server from --url/ENGRAM_URL, key from --api-key/ENGRAM_API_KEY):\n"
            "  engram ingest --collection NAME [--wait] PATH...   upload files and folders\n"
            "  engram search QUERY [--collection NAME] [--mode M] [--top-k N] [--json]\n"
            "  engram ask QUESTION [--collection NAME]             stream an answer with sources\n"
            "  engram collections [--json]                         list collections\n"
            "  engram docs [--collection NAME] [--json]            list documents\n");
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Prints a failed request. Returns the exit status (1). */
static int report(const char *cmd, const cli_resp_t *r, int rc, const char *err)
{
    if (rc) {
        fprintf(stderr, "engram %s: %s\n", cmd, err);
        return 1;
    }
    const char *code = cli_error_code(r);
    if (r->status == 401) {
        fprintf(stderr, "engram %s: the server refused the API key (401 %s): check ENGRAM_API_KEY "
                "or --api-key\n", cmd, cli_error_message(r));
        return 1;
    }
    if (r->status == 403) {
        fprintf(stderr, "engram %s: not allowed (403): %s\n", cmd, cli_error_message(r));
        return 1;
    }
    fprintf(stderr, "engram %s: %s (HTTP %ld%s%s)", cmd, cli_error_message(r), r->status,
            code[0] ? " " : "", code);
    if (r->request_id[0]) fprintf(stderr, " [request %s]", r->request_id);
    fputc('\n', stderr);
    return 1;
}

static int parse_opts(const char *cmd, int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->conn.url = getenv("ENGRAM_URL");
    o->conn.api_key = getenv("ENGRAM_API_KEY");
    net_set_ca_bundle(getenv("ENGRAM_CA_BUNDLE")); /* HTTPS servers with a private CA */
    o->conn.timeout_s = 120;
    o->pos = eg_malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!o->pos) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--url") && has) o->conn.url = argv[++i];
        else if (!strcmp(a, "--api-key") && has) o->conn.api_key = argv[++i];
        else if (!strcmp(a, "--collection") && has) o->collection = argv[++i];
        else if (!strcmp(a, "--mode") && has) o->mode = argv[++i];
        else if (!strcmp(a, "--top-k") && has) {
            char *end;
            o->top_k = strtol(argv[++i], &end, 10);
            if (*end || o->top_k < 1 || o->top_k > 100) {
                fprintf(stderr, "engram %s: --top-k must be a number from 1 to 100\n", cmd);
                return 2;
            }
        } else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--wait")) o->wait = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(a, "--")) {
            while (++i < argc) o->pos[o->npos++] = argv[i];
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "engram %s: unknown option %s%s\n", cmd, a,
                    has ? "" : " (or its value is missing)");
            return 2;
        } else {
            o->pos[o->npos++] = a;
        }
    }
    if (!o->conn.url || !o->conn.url[0]) o->conn.url = "http://127.0.0.1:8080";
    if (!o->conn.api_key || !o->conn.api_key[0]) {
        fprintf(stderr, "engram %s: no API key: set ENGRAM_API_KEY or pass --api-key "
                "(`engram user add` or POST /auth/register gives one)\n", cmd);
        return 2;
    }
    return 0;
}

/* Strips a trailing slash from the URL into a buffer the options point at. */
static void normalise_url(opts_t *o, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", o->conn.url);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '/') buf[--n] = '\0';
    if (n >= 7 && !strcmp(buf + n - 7, "/api/v1")) buf[n - 7] = '\0';
    o->conn.url = buf;
}

/* Finds the collection called name: 0 with id filled, ENGRAM_ENOTFOUND, or 1
 * after printing an error. */
static int find_collection(const char *cmd, const cli_conn_t *c, const char *name, char id[64])
{
    for (long offset = 0;;) {
        char path[96];
        snprintf(path, sizeof path, "/collections?limit=100&offset=%ld", offset);
        cli_resp_t r;
        char err[512];
        int rc = cli_request(c, "GET", path, NULL, &r, err, sizeof err);
        if (rc || r.status != 200) {
            report(cmd, &r, rc, err);
            cli_resp_free(&r);
            return 1;
        }
        const json_t *data = json_get(r.json, "data");
        size_t n = data && data->type == JSON_ARRAY ? data->len : 0;
        for (size_t i = 0; i < n; i++) {
            const json_t *it = json_at(data, i);
            const char *nm = json_get_str(it, "name"), *cid = json_get_str(it, "id");
            if (nm && cid && !strcmp(nm, name)) {
                snprintf(id, 64, "%s", cid);
                cli_resp_free(&r);
                return 0;
            }
        }
        const json_t *more = json_get(json_get(r.json, "pagination"), "has_more");
        int has_more = more && more->type == JSON_BOOL && more->boolean && n > 0;
        cli_resp_free(&r);
        if (!has_more) return ENGRAM_ENOTFOUND;
        offset += (long)n;
    }
}

static int need_collection(const char *cmd, const cli_conn_t *c, const char *name, char id[64])
{
    int rc = find_collection(cmd, c, name, id);
    if (rc == ENGRAM_ENOTFOUND) {
        fprintf(stderr, "engram %s: no collection named \"%s\" (engram collections lists them)\n",
                cmd, name);
        return 1;
    }
    return rc;
}

/* ---------------------------------------------------------------- ingest */

typedef struct file_list {
    char **paths;
    size_t n, cap;
} file_list_t;

static int list_add(file_list_t *l, const char *path)
{
    if (l->n >= CLI_MAX_FILES) return ENGRAM_ETOOBIG;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **p = eg_realloc(l->paths, cap * sizeof *p);
        if (!p) return ENGRAM_ENOMEM;
        l->paths = p;
        l->cap = cap;
    }
    l->paths[l->n] = eg_strdup(path);
    if (!l->paths[l->n]) return ENGRAM_ENOMEM;
    l->n++;
    return 0;
}

static void list_free(file_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) eg_free(l->paths[i]);
    eg_free(l->paths);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds path (a file) or every regular file under it (a folder, recursively,
 * in name order, skipping names that start with a dot). */
static int collect(file_list_t *l, const char *path, int depth)
{
    struct stat st;
    if (stat(path, &st)) {
        fprintf(stderr, "engram ingest: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    if (S_ISREG(st.st_mode)) return list_add(l, path);
    if (!S_ISDIR(st.st_mode)) return 0;
    if (depth > 64) return 0; /* a symlink loop */
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "engram ingest: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    file_list_t names = {0};
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) && !rc) {
        if (e->d_name[0] == '.') continue;
        rc = list_add(&names, e->d_name);
    }
    closedir(d);
    if (!rc && names.n) qsort(names.paths, names.n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < names.n && !rc; i++) {
        size_t len = strlen(path) + strlen(names.paths[i]) + 2;
        char *child = eg_malloc(len);
        if (!child) {
            rc = ENGRAM_ENOMEM;
            break;
        }
        snprintf(child, len, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", names.paths[i]);
        rc = collect(l, child, depth + 1);
        eg_free(child);
    }
    list_free(&names);
    return rc;
}

static void progress(size_t done, size_t total, const char *name)
{
    const int width = 30;
    int filled = total ? (int)((double)done / (double)total * width) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    fprintf(stderr, "\r\033[K[%s] %zu/%zu %.40s", bar, done, total, base);
    fflush(stderr);
}

typedef struct pending_doc {
    char id[64];
    const char *path;
} pending_doc_t;

static int wait_for(const opts_t *o, pending_doc_t *docs, size_t n, int tty)
{
    size_t completed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        char path[128], err[512];
        for (;;) {
            snprintf(path, sizeof path, "/documents/%s/status", docs[i].id);
            cli_resp_t r;
            int rc = cli_request(&o->conn, "GET", path, NULL, &r, err, sizeof err);
            if (rc || r.status != 200) {
                report("ingest", &r, rc, err);
                cli_resp_free(&r);
                return 1;
            }
            const char *st = json_get_str(r.json, "status");
            if (st && !strcmp(st, "completed")) {
                completed++;
                cli_resp_free(&r);
                break;
            }
            if (st && !strcmp(st, "failed")) {
                const char *why = json_get_str(r.json, "error_message");
                printf("processing failed: %s: %s\n", docs[i].path, why ? why : "no reason given");
                failed++;
                cli_resp_free(&r);
                break;
            }
            cli_resp_free(&r);
            if (tty) progress(i, n, docs[i].path);
            sleep_ms(200);
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");
    printf("processed: %zu completed, %zu failed\n", completed, failed);
    return failed ? 1 : 0;
}

static int cmd_ingest(opts_t *o)
{
    if (!o->collection || o->npos == 0) {
        fprintf(stderr, "usage: engram ingest --collection NAME [--wait] PATH...\n");
        return 2;
    }
    file_list_t files = {0};
    pending_doc_t *docs = NULL;
    int status = 1;
    for (int i = 0; i < o->npos; i++)
        if (collect(&files, o->pos[i], 0) == ENGRAM_ENOMEM) goto out;
    if (files.n == 0) {
        fprintf(stderr, "engram ingest: no files to upload\n");
        goto out;
    }
    char coll[64];
    int rc = find_collection("ingest", &o->conn, o->collection, coll);
    if (rc == ENGRAM_ENOTFOUND) {
        buf_t body = BUF_INIT;
        jw_t w;
        jw_init(&w, &body);
        jw_obj_begin(&w);
        jw_kstr(&w, "name", o->collection);
        jw_obj_end(&w);
        cli_resp_t r;
        char err[512];
        rc = cli_request(&o->conn, "POST", "/collections", buf_cstr(&body), &r, err, sizeof err);
        buf_free(&body);
        if (!rc && r.status == 201 && json_get_str(r.json, "id")) {
            snprintf(coll, sizeof coll, "%s", json_get_str(r.json, "id"));
            printf("created collection %s\n", o->collection);
        } else if (!rc && r.status == 409) {
            rc = find_collection("ingest", &o->conn, o->collection, coll);
        } else {
            report("ingest", &r, rc, err);
            rc = 1;
        }
        cli_resp_free(&r);
    }
    if (rc) goto out;

    docs = eg_malloc(sizeof *docs * files.n);
    if (!docs) goto out;
    int tty = isatty(STDERR_FILENO);
    size_t uploaded = 0, dups = 0, failed = 0, ndocs = 0;
    buf_t failures = BUF_INIT;
    for (size_t i = 0; i < files.n; i++) {
        const char *p = files.paths[i];
        if (tty) progress(i, files.n, p);
        cli_resp_t r;
        char err[512];
        rc = cli_upload(&o->conn, coll, p, &r, err, sizeof err);
        const char *id = rc ? NULL : json_get_str(r.json, "id");
        if (!rc && (r.status == 202 || r.status == 200) && id) {
            int dup = r.status == 200;
            dup ? dups++ : uploaded++;
            snprintf(docs[ndocs].id, sizeof docs[ndocs].id, "%s", id);
            docs[ndocs++].path = p;
            if (!tty) printf("%s %s\n", dup ? "duplicate" : "uploaded ", p);
        } else if (rc == ENGRAM_ECLOSED || (!rc && r.status == 401)) {
            if (tty) fprintf(stderr, "\n");
            report("ingest", &r, rc, err);
            cli_resp_free(&r);
            buf_free(&failures);
            goto out;
        } else {
            failed++;
            const char *why = rc ? err : cli_error_message(&r);
            buf_printf(&failures, "  %s: %s\n", p, why);
            if (!tty) printf("failed    %s: %s\n", p, why);
        }
        cli_resp_free(&r);
    }
    if (tty) {
        progress(files.n, files.n, "");
        fprintf(stderr, "\n");
    }
    printf("%zu uploaded, %zu duplicates, %zu failed\n", uploaded, dups, failed);
    if (failed) printf("failures:\n%s", buf_cstr(&failures));
    buf_free(&failures);
    status = failed ? 1 : 0;
    if (o->wait && ndocs && wait_for(o, docs, ndocs, tty)) status = 1;
out:
    eg_free(docs);
    list_free(&files);
    return status;
}

/* ---------------------------------------------------------------- search */

/* Prints s with runs of whitespace collapsed, at most max bytes. */
static void print_snippet(const char *s, size_t max)
{
    size_t out = 0;
    int space = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && out < max; p++) {
        if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
            space = out > 0;
            continue;
        }
        if (space) {
            putchar(' ');
            out++;
            space = 0;
        }
        putchar(*p);
        out++;
    }
}

/* print_snippet, cutting long text at a UTF-8 character boundary with "...". */
static void print_snippet_utf8(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
        char *cut = eg_malloc(max + 1);
        if (!cut) return;
        memcpy(cut, s, max);
        cut[max] = '\0';
        print_snippet(cut, max);
        fputs("...", stdout);
        eg_free(cut);
        return;
    }
    print_snippet(s, n);
}

static int cmd_search(opts_t *o)
{
    if (o->npos != 1) {
        fprintf(stderr, "usage: engram search QUERY [--collection NAME] [--mode M] [--top-k N] [--json]\n");
        return 2;
    }
    char coll[64] = "";
    if (o->collection && need_collection("search", &o->conn, o->collection, coll)) return 1;
    buf_t body = BUF_INIT;
    jw_t w;
    jw_init(&w, &body);
    jw_obj_begin(&w);
    jw_kstr(&w, "query", o->pos[0]);
    if (o->mode) jw_kstr(&w, "mode", o->mode);
    if (o->top_k) jw_kint(&w, "top_k", o->top_k);
    if (coll[0]) jw_kstr(&w, "collection_id", coll);
    jw_obj_end(&w);
    cli_resp_t r;
    char err[512];
    int rc = cli_request(&o->conn, "POST", "/retrievals", buf_cstr(&body), &r, err, sizeof err);
    buf_free(&body);
    int status = 0;
    if (rc || r.status != 200) {
        status = report("search", &r, rc, err);
    } else if (o->json) {
        fwrite(r.body.data, 1, r.body.len, stdout);
        putchar('\n');
    } else {
        const json_t *res = json_get(r.json, "results");
        size_t n = res && res->type == JSON_ARRAY ? res->len : 0;
        if (n == 0) printf("no results\n");
        for (size_t i = 0; i < n; i++) {
            const json_t *it = json_at(res, i);
            const json_t *doc = json_get(it, "document");
            const char *title = json_get_str(doc, "title");
            const char *fname = json_get_str(doc, "filename");
            double score = 0;
            int64_t ci = 0;
            json_get_double(it, "score", &score);
            json_get_int(it, "chunk_index", &ci);
            printf("%zu. [%.3f] %s", i + 1, score, title && title[0] ? title : fname ? fname : "(untitled)");
            if (fname && title && title[0] && strcmp(title, fname)) printf(" (%s)", fname);
            printf(" #%lld\n   ", (long long)ci);
            const char *content = json_get_str(it, "content");
            print_snippet_utf8(content ? content : "", 240);
            putchar('\n');
        }
    }
    cli_resp_free(&r);
    return status;
}

/* ---------------------------------------------------------------- ask */

typedef struct ask_state {
    json_t *sources;      /* the sources event's data, owned */
    int printed;          /* bytes of answer printed */
    int done;
    buf_t error;
} ask_state_t;

static int on_event(const char *event, const char *data, size_t len, void *ud)
{
    ask_state_t *s = ud;
    json_t *j = NULL;
    if (json_parse(data, len, &j, NULL)) return 0; /* not JSON: ignore the frame */
    const char *type = event && event[0] ? event : json_get_str(j, "type");
    if (!type) type = "";
    if (!strcmp(type, "delta")) {
        const char *t = json_get_str(j, "content");
        if (!t) t = json_get_str(j, "delta");
        if (t) {
            fputs(t, stdout);
            fflush(stdout);
            s->printed += (int)strlen(t);
        }
    } else if (!strcmp(type, "sources")) {
        json_free(s->sources);
        s->sources = j;
        j = NULL;
    } else if (!strcmp(type, "done")) {
        s->done = 1;
    } else if (!strcmp(type, "error")) {
        const json_t *e = json_get(j, "error");
        const char *m = e && e->type == JSON_STRING ? e->str : json_get_str(e, "message");
        buf_puts(&s->error, m ? m : "the answer failed");
    }
    json_free(j);
    return 0;
}

static int cmd_ask(opts_t *o)
{
    if (o->npos != 1) {
        fprintf(stderr, "usage: engram ask QUESTION [--collection NAME]\n");
        return 2;
    }
    char coll[64] = "";
    if (o->collection && need_collection("ask", &o->conn, o->collection, coll)) return 1;
    buf_t body = BUF_INIT;
    jw_t w;
    jw_init(&w, &body);
    jw_obj_begin(&w);
    jw_kstr(&w, "message", o->pos[0]);
    jw_kbool(&w, "stream", 1);
    if (coll[0]) jw_kstr(&w, "collection_id", coll);
    jw_obj_end(&w);
    ask_state_t s = {0};
    cli_resp_t r;
    char err[512];
    int rc = cli_stream(&o->conn, "/chat", buf_cstr(&body), on_event, &s, &r, err, sizeof err);
    buf_free(&body);
    int status = 0;
    if (rc || r.status != 200) {
        if (s.printed) putchar('\n');
        status = report("ask", &r, rc, err);
    } else if (s.error.len) {
        if (s.printed) putchar('\n');
        fprintf(stderr, "engram ask: the answer failed: %s\n", buf_cstr(&s.error));
        status = 1;
    } else if (!s.done && !s.printed) {
        fprintf(stderr, "engram ask: the server sent no answer (is /chat a stream here?)\n");
        status = 1;
    } else {
        putchar('\n');
        const json_t *src = json_get(s.sources, "sources");
        size_t n = src && src->type == JSON_ARRAY ? src->len : 0;
        if (n) printf("\nSources:\n");
        for (size_t i = 0; i < n; i++) {
            const json_t *it = json_at(src, i);
            const char *title = json_get_str(it, "title");
            const char *doc = json_get_str(it, "document_id");
            int64_t ci = 0;
            double score = 0;
            json_get_int(it, "chunk_index", &ci);
            json_get_double(it, "score", &score);
            printf("[%zu] %s (document %s, chunk %lld, score %.3f)\n", i + 1,
                   title && title[0] ? title : "(untitled)", doc ? doc : "?", (long long)ci, score);
        }
    }
    json_free(s.sources);
    buf_free(&s.error);
    cli_resp_free(&r);
    return status;
}

/* ---------------------------------------------------------------- lists */

typedef void (*row_fn)(const json_t *item);

/* Prints every page of a list route: each item through row, or with --json
 * one JSON array of all items; header goes before the first row. */
static int list_all(const char *cmd, const opts_t *o, const char *path, const char *header, row_fn row,
                    size_t *count)
{
    buf_t all = BUF_INIT;
    int first = 1;
    *count = 0;
    if (o->json) buf_putc(&all, '[');
    for (long offset = 0;;) {
        char p[256];
        snprintf(p, sizeof p, "%s%slimit=100&offset=%ld", path, strchr(path, '?') ? "&" : "?", offset);
        cli_resp_t r;
        char err[512];
        int rc = cli_request(&o->conn, "GET", p, NULL, &r, err, sizeof err);
        if (rc || r.status != 200) {
            report(cmd, &r, rc, err);
            cli_resp_free(&r);
            buf_free(&all);
            return 1;
        }
        const json_t *data = json_get(r.json, "data");
        size_t n = data && data->type == JSON_ARRAY ? data->len : 0;
        if (offset == 0 && !o->json) fputs(header, stdout);
        for (size_t i = 0; i < n; i++) {
            if (o->json) {
                if (!first) buf_putc(&all, ',');
                json_write(&all, json_at(data, i));
                first = 0;
            } else {
                row(json_at(data, i));
            }
        }
        *count += n;
        const json_t *more = json_get(json_get(r.json, "pagination"), "has_more");
        int has_more = more && more->type == JSON_BOOL && more->boolean && n > 0;
        cli_resp_free(&r);
        if (!has_more) break;
        offset += (long)n;
    }
    if (o->json) {
        buf_puts(&all, "]\n");
        fwrite(all.data, 1, all.len, stdout);
    }
    buf_free(&all);
    return 0;
}

static void collection_row(const json_t *c)
{
    int64_t docs = 0, chunks = 0;
    json_get_int(c, "document_count", &docs);
    json_get_int(c, "chunk_count", &chunks);
    const char *name = json_get_str(c, "name"), *id = json_get_str(c, "id");
    printf("%-24s %-36s %8lld %8lld\n", name ? name : "", id ? id : "", (long long)docs,
           (long long)chunks);
}

static int cmd_collections(opts_t *o)
{
    if (o->npos) {
        fprintf(stderr, "usage: engram collections [--json]\n");
        return 2;
    }
    char header[128];
    snprintf(header, sizeof header, "%-24s %-36s %8s %8s\n", "NAME", "ID", "DOCS", "CHUNKS");
    size_t n;
    int rc = list_all("collections", o, "/collections", header, collection_row, &n);
    if (!rc && !o->json && n == 0) printf("(no collections yet: engram ingest --collection NAME PATH)\n");
    return rc;
}

static void document_row(const json_t *d)
{
    int64_t size = 0;
    json_get_int(d, "size_bytes", &size);
    const char *id = json_get_str(d, "id"), *st = json_get_str(d, "status");
    const char *title = json_get_str(d, "title"), *fname = json_get_str(d, "filename");
    printf("%-36s %-10s %10lld  %s\n", id ? id : "", st ? st : "", (long long)size,
           title && title[0] ? title : fname ? fname : "(untitled)");
}

static int cmd_docs(opts_t *o)
{
    if (o->npos) {
        fprintf(stderr, "usage: engram docs [--collection NAME] [--json]\n");
        return 2;
    }
    char path[128] = "/documents";
    if (o->collection) {
        char coll[64];
        if (need_collection("docs", &o->conn, o->collection, coll)) return 1;
        snprintf(path, sizeof path, "/documents?collection_id=%s", coll);
    }
    char header[128];
    snprintf(header, sizeof header, "%-36s %-10s %10s  %s\n", "ID", "STATUS", "BYTES", "TITLE");
    size_t n;
    return list_all("docs", o, path, header, document_row, &n);
}

int cli_main(int argc, char **argv)
{
    const char *cmd = argv[0];
    opts_t o;
    int rc = parse_opts(cmd, argc, argv, &o);
    if (rc) {
        eg_free(o.pos);
        return rc < 0 ? 0 : rc;
    }
    char url[1024];
    normalise_url(&o, url, sizeof url);
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
        fprintf(stderr, "engram %s: cannot initialise libcurl\n", cmd);
        eg_free(o.pos);
        return 1;
    }
    if (!strcmp(cmd, "ingest")) rc = cmd_ingest(&o);
    else if (!strcmp(cmd, "search")) rc = cmd_search(&o);
    else if (!strcmp(cmd, "ask")) rc = cmd_ask(&o);
    else if (!strcmp(cmd, "collections")) rc = cmd_collections(&o);
    else if (!strcmp(cmd, "docs")) rc = cmd_docs(&o);
    else {
        usage(stderr);
        rc = 2;
    }
    curl_global_cleanup();
    eg_free(o.pos);
    return rc;
}
