# tls.mk - HTTPS through mbedTLS (src/http/tls.c), its benchmark, and the
# upload-memory benchmark of the HTTP transport. See docs/TLS.md.
#
#   make bench-tls      keyword retrieval throughput, HTTPS vs plain HTTP (wrk, keep-alive)
#   make bench-upload   a 100 MB multipart upload, the server's peak RSS (VmHWM)
#   make static         build/static/engram: one static musl binary (tools/static/build.sh)
#   make static-test    that binary alone in an empty chroot: serve, upload, search, HTTPS out

# `make` alone builds build/engram whatever targets fragments define first.
.DEFAULT_GOAL := all

LIBS += -lmbedtls -lmbedx509 -lmbedcrypto

.PHONY: bench-tls bench-upload static static-test

bench-tls: build/engram
	python3 bench/tls_wrk.py --binary build/engram

bench-upload: build/engram
	python3 tests/integration/test_uploads.py --binary build/engram --upload-mb 100

# Not part of `make test`: fetches Debian source packages on first use and
# compiles every dependency with musl-gcc (minutes on 2 cores).
static:
	tools/static/build.sh

static-test: static
	python3 tools/static/test_static.py
