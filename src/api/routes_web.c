/*
 * routes_web.c - GET / (the web page) and GET /assets/{name} (its script
 * and style sheet), served from the table compiled in by tools/embed-web
 * (see web.h).
 *
 * Both routes are open (AUTH_NONE): the page itself holds no data; every
 * API call it makes carries the session cookie set by POST /auth/login.
 * Answers are cheap (static bytes), so there is no per-request state here.
 * A request whose If-None-Match names the asset's ETag gets 304 with no
 * body. Headers sent with every asset:
 *   - Content-Security-Policy: only this origin for scripts, styles, images
 *     and fetches; no inline script or style; no frames, forms elsewhere,
 *     plugins or <base>. The page is written to need nothing more.
 *   - X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and
 *     X-Frame-Options: DENY (older browsers that ignore frame-ancestors).
 */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "api/web.h"

#define WEB_CSP                                                                             \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "        \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const web_asset_t *web_asset_find(const char *name)
{
    if (!name || !*name || name[0] == '.' || strchr(name, '/')) return NULL;
    for (size_t i = 0; i < web_assets_count; i++)
        if (!strcmp(web_assets[i].name, name)) return &web_assets[i];
    return NULL;
}

/* 1 when the If-None-Match list names etag (or is "*"). A weak W/ prefix
 * is accepted: the comparison for GET revalidation is the weak one. */
static int etag_matches(const char *inm, const char *etag)
{
    if (!inm) return 0;
    size_t n = strlen(etag);
    for (const char *p = inm; *p;) {
        while (*p == ' ' || *p == ',' || *p == '\t') p++;
        if (*p == '*') return 1;
        if (!strncmp(p, "W/", 2)) p += 2;
        if (!strncmp(p, etag, n) && (p[n] == '\0' || p[n] == ',' || p[n] == ' ')) return 1;
        const char *comma = strchr(p, ',');
        if (!comma) break;
        p = comma;
    }
    return 0;
}

static void send_asset(api_call_t *c, const web_asset_t *a)
{
    char hdrs[640];
    snprintf(hdrs, sizeof hdrs,
             "ETag: %s\r\n"
             "Cache-Control: no-cache\r\n"
             "Content-Security-Policy: " WEB_CSP "\r\n"
             "X-Content-Type-Options: nosniff\r\n"
             "Referrer-Policy: no-referrer\r\n"
             "X-Frame-Options: DENY\r\n",
             a->etag);
    if (etag_matches(http_header(c->req, "If-None-Match"), a->etag)) {
        http_respond(c->req, 304, NULL, NULL, 0, hdrs);
        return;
    }
    http_respond(c->req, 200, a->content_type, a->data, a->len, hdrs);
}

void h_web_index(api_call_t *c)
{
    const web_asset_t *a = web_asset_find("index.html");
    if (!a) {
        api_error(c, 404, "NOT_FOUND", NULL, "this build has no web page");
        return;
    }
    send_asset(c, a);
}

void h_web_asset(api_call_t *c)
{
    const web_asset_t *a = web_asset_find(c->params[0]);
    /* index.html is served at / only, so the page has one address. */
    if (!a || !strcmp(a->name, "index.html")) {
        api_error(c, 404, "NOT_FOUND", NULL, "no such asset");
        return;
    }
    send_asset(c, a);
}
