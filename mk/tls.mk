# tls.mk - HTTPS through mbedTLS (src/http/tls.c), its benchmark, and the
# upload-memory benchmark of the HTTP transport. See docs/TLS.md.
#
#   make bench-tls      keyword retrieval throughput, HTTPS vs plain HTTP (wrk, keep-alive)
#   make bench-upload   a 100 MB multipart upload, the server's peak RSS (VmHWM)

# `make` alone builds build/engram whatever targets fragments define first.
.DEFAULT_GOAL := all

LIBS += -lmbedtls -lmbedx509 -lmbedcrypto

.PHONY: bench-tls bench-upload

bench-tls: build/engram
	python3 bench/tls_wrk.py --binary build/engram

bench-upload: build/engram
	python3 tests/integration/test_uploads.py --binary build/engram --upload-mb 100
