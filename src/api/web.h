/*
 * web.h - the built-in web page (GET / and GET /assets/{name}).
 *
 * The page's sources live in web/ (index.html, app.js, app.css). They are
 * compiled into the binary: tools/embed-web turns each into
 * src/api/web_asset_<name>.c and lists them in src/api/web_assets.c
 * (generated, committed; mk/web.mk regenerates it when
 * web/ changes and tests/extra/web.sh checks it matches web/), so the server
 * needs no files at run time and the page works offline.
 *
 * routes_web.c serves them with their Content-Type, a strong ETag (a hash of
 * the bytes, computed by the generator), Cache-Control: no-cache (the
 * browser revalidates and gets 304 when unchanged) and a strict
 * Content-Security-Policy (scripts, styles, images and fetches from this
 * origin only; no inline script or style, no frames, no plugins).
 */
#ifndef ENGRAM_WEB_H
#define ENGRAM_WEB_H

#include <stddef.h>

typedef struct web_asset {
    const char *name;          /* "index.html", "app.js", ... */
    const char *content_type;  /* with charset for text */
    const char *etag;          /* quoted, as sent: "\"3f2a...\"" */
    const char *data;          /* static, never freed */
    size_t len;
} web_asset_t;

/* The generated table (web_assets.c). */
extern const web_asset_t web_assets[];
extern const size_t web_assets_count;

/* The asset called name, or NULL. Names are plain file names: anything
 * with a '/' or starting with '.' is never found. Thread-safe (read-only). */
const web_asset_t *web_asset_find(const char *name);

#endif
