/*
 * fts5_scifact.c - SQLite FTS5 on a BEIR data set, measured exactly as
 * `engram eval --beir` measures engram's BM25 (same loader, same metrics,
 * same timing), as the reference point of bench/bm25_scifact.sh.
 *
 *   fts5_scifact DIR [--limit-queries N] [--json]
 *
 * How it works: an in-memory database (the most favourable setting for
 * SQLite: no page reads through the OS) with one FTS5 table,
 * tokenize='porter unicode61', holding "title text" per document (rowid =
 * corpus index + 1). Each test query becomes an OR of its words, each word
 * double-quoted so that no query text can be FTS5 syntax, ranked by FTS5's
 * bm25() (k1 = 1.2, b = 0.75, built in): ... MATCH ? ORDER BY rank LIMIT 100.
 * The statement is prepared once; a query's latency is the monotonic time
 * around building the MATCH string, binding, and stepping through the rows.
 *
 * Built by bench/bm25_scifact.sh against the release objects (for
 * src/eval/beir.c's loader and metrics) and -lsqlite3.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/beir.h"
#include "util/buf.h"
#include "util/common.h"

#define TOP_DOCS 100

/* "w1" OR "w2" ... over runs of ASCII letters/digits and non-ASCII bytes. */
static void build_match(const char *q, buf_t *out)
{
    buf_reset(out);
    size_t i = 0, n = strlen(q);
    int first = 1;
    while (i < n) {
        unsigned char c = (unsigned char)q[i];
        int word = c >= 0x80 || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
        if (!word) { i++; continue; }
        size_t j = i;
        while (j < n) {
            unsigned char d = (unsigned char)q[j];
            if (!(d >= 0x80 || (d >= '0' && d <= '9') || ((d | 32) >= 'a' && (d | 32) <= 'z'))) break;
            j++;
        }
        if (!first) buf_puts(out, " OR ");
        buf_putc(out, '"');
        buf_append(out, q + i, j - i);
        buf_putc(out, '"');
        first = 0;
        i = j;
    }
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    long limit = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--limit-queries") && i + 1 < argc) limit = atol(argv[++i]);
        else if (!dir && argv[i][0] != '-') dir = argv[i];
        else { fprintf(stderr, "usage: fts5_scifact DIR [--limit-queries N] [--json]\n"); return 2; }
    }
    if (!dir) { fprintf(stderr, "usage: fts5_scifact DIR [--limit-queries N] [--json]\n"); return 2; }

    char err[512];
    beir_set_t *s = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL, *sel = NULL;
    double *lat = NULL;
    uint32_t *ranked = NULL;
    buf_t m = BUF_INIT;
    int code = 1;
    if (beir_load(dir, &s, err, sizeof err)) { fprintf(stderr, "fts5: %s\n", err); goto done; }
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) goto sqlerr;
    if (sqlite3_exec(db, "CREATE VIRTUAL TABLE docs USING fts5(body, tokenize='porter unicode61');"
                     "BEGIN;", NULL, NULL, NULL) != SQLITE_OK) goto sqlerr;
    if (sqlite3_prepare_v2(db, "INSERT INTO docs(rowid, body) VALUES (?1, ?2)", -1, &ins, NULL))
        goto sqlerr;
    double t0 = beir_now();
    for (size_t d = 0; d < s->n_docs; d++) {
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)d + 1);
        sqlite3_bind_text(ins, 2, s->doc_texts[d], (int)s->doc_lens[d], SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) goto sqlerr;
        sqlite3_reset(ins);
    }
    if (sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL) != SQLITE_OK) goto sqlerr;
    double index_s = beir_now() - t0;
    if (sqlite3_prepare_v2(db, "SELECT rowid FROM docs WHERE docs MATCH ?1 ORDER BY rank LIMIT 100",
                           -1, &sel, NULL)) goto sqlerr;

    size_t nq = s->n_queries;
    if (limit > 0 && (size_t)limit < nq) nq = (size_t)limit;
    lat = eg_malloc((nq + 1) * sizeof *lat);
    ranked = eg_malloc(TOP_DOCS * sizeof *ranked);
    if (!lat || !ranked) goto done;
    double ndcg = 0, recall = 0, mrr = 0;
    for (size_t qi = 0; qi < nq; qi++) {
        const beir_query_t *q = &s->queries[qi];
        size_t nr = 0;
        double q0 = beir_now();
        build_match(q->text, &m);
        if (m.len > 0) {
            sqlite3_bind_text(sel, 1, m.data, (int)m.len, SQLITE_STATIC);
            int rc;
            while ((rc = sqlite3_step(sel)) == SQLITE_ROW && nr < TOP_DOCS)
                ranked[nr++] = (uint32_t)(sqlite3_column_int64(sel, 0) - 1);
            if (rc != SQLITE_ROW && rc != SQLITE_DONE) goto sqlerr;
            sqlite3_reset(sel);
        }
        lat[qi] = (beir_now() - q0) * 1000.0;
        beir_scores_t sc = beir_score_query(q, ranked, nr);
        ndcg += sc.ndcg10;
        recall += sc.recall100;
        mrr += sc.mrr10;
    }
    beir_latency_t l = beir_latency_summary(lat, nq);
    double dq = nq ? (double)nq : 1.0;
    if (json) {
        printf("{\"system\":\"sqlite-fts5\",\"sqlite\":\"%s\",\"queries\":%zu,\"documents\":%zu,"
               "\"ndcg@10\":%.6f,\"recall@100\":%.6f,\"mrr@10\":%.6f,\"p50_ms\":%.6f,"
               "\"p99_ms\":%.6f,\"mean_ms\":%.6f,\"index_seconds\":%.3f}\n",
               sqlite3_libversion(), nq, s->n_docs, ndcg / dq, recall / dq, mrr / dq, l.p50_ms,
               l.p99_ms, l.mean_ms, index_s);
    } else {
        printf("SQLite %s FTS5 (porter unicode61, bm25()) on %s: %zu queries, %zu documents "
               "(indexed in %.1f s)\n", sqlite3_libversion(), dir, nq, s->n_docs, index_s);
        printf("%-8s | %-10s | %-6s | %-8s | %-8s | %-8s\n", "nDCG@10", "Recall@100", "MRR@10",
               "p50 ms", "p99 ms", "mean ms");
        printf("%-8.4f | %-10.4f | %-6.4f | %-8.3f | %-8.3f | %-8.3f\n", ndcg / dq, recall / dq,
               mrr / dq, l.p50_ms, l.p99_ms, l.mean_ms);
    }
    code = 0;
    goto done;
sqlerr:
    fprintf(stderr, "fts5: sqlite: %s\n", db ? sqlite3_errmsg(db) : "cannot open");
done:
    sqlite3_finalize(ins);
    sqlite3_finalize(sel);
    sqlite3_close(db);
    buf_free(&m);
    eg_free(lat);
    eg_free(ranked);
    beir_free(s);
    return code;
}
