# web.mk - the built-in web page (issue 8; docs/CLIENTS.md "The web page").
#
# web/ holds the page's sources; tools/embed-web compiles them into
# src/api/web_asset_<name>.c (one per file) and the table src/api/web_assets.c,
# which are committed (a fresh clone builds without
# running anything) and regenerated here whenever a file in web/ or the
# generator is newer. tests/extra/web.sh checks the two match and drives
# the page in headless Chromium.
#
#   make web-assets   regenerate src/api/web_asset*.c from web/

.PHONY: web-assets

src/api/web_assets.c: $(wildcard web/*.html web/*.js web/*.css) tools/embed-web
	tools/embed-web

web-assets:
	tools/embed-web
