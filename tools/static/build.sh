#!/bin/sh
# tools/static/build.sh - one fully static x86-64 engram (musl), from Debian
# source packages only. Run by `make static`; see docs/DEPLOYMENT.md.
#
# Why this way: Debian's .a archives are built against glibc and do not link
# under musl, Debian's libcurl.a needs archives Debian does not ship
# (Kerberos, LDAP, nghttp2, psl), and glibc -static still loads NSS modules
# at run time. So every dependency is compiled here with musl-gcc from the
# Debian source package (`apt-get source` through a private apt
# configuration under build/static/apt - the system's sources are not
# touched), with only what engram uses:
#
#   zlib, lmdb, zstd, utf8proc, snowball (libstemmer), libsodium, expat,
#   mbedTLS 2.28 (TLS 1.2 only, no /dev/urandom: MBEDTLS_NO_PLATFORM_ENTROPY,
#   engram adds a getrandom() source), libcurl (HTTP/HTTPS only, mbedTLS
#   backend, CA bundle path set at run time by the caller; default
#   /etc/ssl/certs/ca-certificates.crt), mimalloc (musl's malloc is several
#   times slower under threads).
#
# MuPDF (PDF) and Tesseract (OCR) are left out (PDF=0): PDFs answer 415 in
# this binary. Threads get an 8 MiB default stack (musl's is 128 KiB) through
# the PT_GNU_STACK size (-z stack-size), which musl honours.
#
# Output: build/static/engram. Sources and objects stay in build/static, so a
# second run only relinks what changed.
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=$ROOT/build/static
SRC=$OUT/src
PREFIX=$OUT/prefix
OBJ=$OUT/obj
JOBS=${JOBS:-2}
CC=musl-gcc
CFLAGS="-O2 -g0 -ffunction-sections -fdata-sections"
PKGS="zlib lmdb libzstd utf8proc snowball libsodium expat mbedtls curl mimalloc"

command -v musl-gcc >/dev/null || { echo "musl-gcc missing: tools/dev deps (musl-tools)" >&2; exit 1; }
mkdir -p "$SRC" "$PREFIX/include" "$PREFIX/lib" "$OBJ"
t0=$(date +%s)
log() { echo "static: $* ($(($(date +%s) - t0)) s)"; }

# ---------------------------------------------------------------- sources
APT=$OUT/apt
APT_OPTS="-o Dir::Etc::SourceList=$APT/etc/sources.list -o Dir::Etc::SourceParts=/dev/null \
 -o Dir::State::Lists=$APT/lists -o Dir::Cache=$APT/cache -o Debug::NoLocking=1 \
 -o APT::Sandbox::User=root"
srcdir() { # the unpacked directory of a source package, if any
    for d in "$SRC/$1"-[0-9]*/; do [ -d "$d" ] && { echo "${d%/}"; return 0; }; done
    return 1
}
need_fetch=""
for p in $PKGS; do srcdir "$p" >/dev/null || need_fetch="$need_fetch $p"; done
if [ -n "$need_fetch" ]; then
    mkdir -p "$APT/etc" "$APT/lists/partial" "$APT/cache/archives/partial"
    cat > "$APT/etc/sources.list" <<EOF
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm-updates main
EOF
    # shellcheck disable=SC2086
    apt-get $APT_OPTS update -qq
    for p in $need_fetch; do
        # shellcheck disable=SC2086
        (cd "$SRC" && apt-get $APT_OPTS source -qq "$p" >/dev/null)
    done
    log "sources fetched:$need_fetch"
fi

# One archive from a list of C files (compiled in parallel, JOBS at a time).
archive() { # name cflags files...
    name=$1; flags=$2; shift 2
    lib=$PREFIX/lib/lib$name.a
    [ -f "$lib" ] && return 0
    d=$OBJ/$name; mkdir -p "$d"
    # Flags travel in the environment: word-split there, never re-parsed,
    # so quotes inside them stay literal.
    printf '%s\n' "$@" | FLAGS="$CFLAGS $flags" D=$d CC=$CC \
        xargs -P "$JOBS" -n 1 sh -c '$CC $FLAGS -c "$1" -o "$D/$(echo "$1" | tr / _).o"' _ || exit 1
    ar rcs "$lib" "$d"/*.o
}

# ---------------------------------------------------------------- zlib
Z=$(srcdir zlib)
cp "$Z/zlib.h" "$Z/zconf.h" "$PREFIX/include/"
archive z "-D_LARGEFILE64_SOURCE=1" $(for f in adler32 compress crc32 deflate gzclose gzlib gzread \
    gzwrite infback inffast inflate inftrees trees uncompr zutil; do echo "$Z/$f.c"; done)

# ---------------------------------------------------------------- lmdb
L=$(srcdir lmdb)/libraries/liblmdb
cp "$L/lmdb.h" "$PREFIX/include/"
archive lmdb "" "$L/mdb.c" "$L/midl.c"

# ---------------------------------------------------------------- zstd
ZS=$(srcdir libzstd)/lib
cp "$ZS/zstd.h" "$ZS/zstd_errors.h" "$ZS/zdict.h" "$PREFIX/include/"
archive zstd "-DZSTD_DISABLE_ASM -DXXH_NAMESPACE=ZSTD_" $(ls "$ZS"/common/*.c "$ZS"/compress/*.c \
    "$ZS"/decompress/*.c "$ZS"/dictBuilder/*.c)

# ---------------------------------------------------------------- utf8proc
U=$(srcdir utf8proc)
cp "$U/utf8proc.h" "$PREFIX/include/"
archive utf8proc "-DUTF8PROC_STATIC" "$U/utf8proc.c"

# ---------------------------------------------------------------- snowball
if [ ! -f "$PREFIX/lib/libstemmer.a" ]; then
    S=$(srcdir snowball)
    make -s -C "$S" -j"$JOBS" CC="$CC" CFLAGS="$CFLAGS" libstemmer.a >/dev/null
    cp "$S/libstemmer.a" "$PREFIX/lib/"
    cp "$S/include/libstemmer.h" "$PREFIX/include/"
    log snowball
fi

# ---------------------------------------------------------------- libsodium
# The source package has no generated configure (autotools are not needed):
# the defines configure would find on x86-64 Linux, no assembly files (the C
# implementations select their SIMD code with target pragmas at run time).
SO=$(srcdir libsodium)/src/libsodium
if [ ! -f "$PREFIX/lib/libsodium.a" ]; then
    sed -e 's/@VERSION@/1.0.18/' -e 's/@SODIUM_LIBRARY_VERSION_MAJOR@/10/' \
        -e 's/@SODIUM_LIBRARY_VERSION_MINOR@/3/' -e 's/@SODIUM_LIBRARY_MINIMAL_DEF@//' \
        "$SO/include/sodium/version.h.in" > "$SO/include/sodium/version.h"
    SODIUM_DEFS="-DCONFIGURED=1 -DNATIVE_LITTLE_ENDIAN=1 -DHAVE_TI_MODE=1 -DHAVE_CPUID=1 \
 -DHAVE_EMMINTRIN_H=1 -DHAVE_TMMINTRIN_H=1 -DHAVE_SMMINTRIN_H=1 -DHAVE_AVXINTRIN_H=1 \
 -DHAVE_AVX2INTRIN_H=1 -DHAVE_AVX512FINTRIN_H=1 -DHAVE_WMMINTRIN_H=1 -DHAVE_RDRAND=1 \
 -DHAVE_ATOMIC_OPS=1 -DHAVE_WEAK_SYMBOLS=1 -DHAVE_MMAP=1 -DHAVE_MLOCK=1 -DHAVE_MADVISE=1 \
 -DHAVE_MPROTECT=1 -DHAVE_POSIX_MEMALIGN=1 -DHAVE_SYS_MMAN_H=1 -DHAVE_GETRANDOM=1 \
 -DHAVE_SYS_RANDOM_H=1 -DHAVE_PTHREAD=1 -DHAVE_C_VARARRAYS=1 -DHAVE_ALLOCA_H=1 -DHAVE_ALLOCA=1 \
 -DHAVE_NANOSLEEP=1 -DHAVE_EXPLICIT_BZERO=1 -DHAVE_CATCHABLE_SEGV=1 -DHAVE_CATCHABLE_ABRT=1 \
 -I$SO/include/sodium -I$SO/include"
    archive sodium "$SODIUM_DEFS" $(find "$SO" -name '*.c' | sort)
    log libsodium
fi
cp -r "$SO/include/sodium.h" "$SO/include/sodium" "$PREFIX/include/"

# ---------------------------------------------------------------- expat
E=$(srcdir expat)
[ -d "$E/expat/lib" ] && E=$E/expat
cat > "$OBJ/expat_config.h" <<'EOF'
#define BYTEORDER 1234
#define HAVE_GETRANDOM 1
#define HAVE_MEMMOVE 1
#define XML_CONTEXT_BYTES 1024
#define XML_DTD 1
#define XML_NS 1
#define XML_GE 1
#define XML_DEV_URANDOM 1
EOF
cp "$E/lib/expat.h" "$E/lib/expat_external.h" "$PREFIX/include/"
archive expat "-I$OBJ -DHAVE_EXPAT_CONFIG_H" "$E/lib/xmlparse.c" "$E/lib/xmltok.c" "$E/lib/xmlrole.c"

# ---------------------------------------------------------------- mbedTLS
M=$(srcdir mbedtls)
cat > "$OBJ/mbedtls_user_config.h" <<'EOF'
/* engram's static build: TLS 1.2 only, no DTLS, no /dev/urandom: every
 * entropy context (engram's, libcurl's) polls getrandom() through
 * mbedtls_hardware_poll (src/http/tls.c); threads for the shared DRBG and
 * the session cache. */
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_ENTROPY_HARDWARE_ALT
#undef MBEDTLS_SSL_PROTO_TLS1
#undef MBEDTLS_SSL_PROTO_TLS1_1
#undef MBEDTLS_SSL_CBC_RECORD_SPLITTING
#undef MBEDTLS_SSL_PROTO_DTLS
#undef MBEDTLS_SSL_DTLS_ANTI_REPLAY
#undef MBEDTLS_SSL_DTLS_HELLO_VERIFY
#undef MBEDTLS_SSL_DTLS_SRTP
#undef MBEDTLS_SSL_DTLS_CLIENT_PORT_REUSE
#undef MBEDTLS_SSL_DTLS_BADMAC_LIMIT
#undef MBEDTLS_SSL_COOKIE_C
#undef MBEDTLS_SELF_TEST
#undef MBEDTLS_CERTS_C
#define MBEDTLS_THREADING_C
#define MBEDTLS_THREADING_PTHREAD
EOF
# config.h includes our changes itself, so every user of these headers (mbedTLS,
# curl, engram) sees the same configuration without a -D.
cp "$OBJ/mbedtls_user_config.h" "$M/include/mbedtls/engram_user_config.h"
grep -q engram_user_config "$M/include/mbedtls/config.h" ||
    sed -i 's|^#if defined(MBEDTLS_USER_CONFIG_FILE)|#include "engram_user_config.h"\n&|' \
        "$M/include/mbedtls/config.h"
cp -r "$M/include/mbedtls" "$M/include/psa" "$PREFIX/include/"
MFLAGS="-I$M/include -I$M/library"
archive mbedcrypto "$MFLAGS" $(cd "$M/library" && ls *.c | grep -v -E '^(ssl_|x509|net_sockets|debug|certs|pkcs11)' | sed "s|^|$M/library/|")
archive mbedx509 "$MFLAGS" $(ls "$M"/library/x509*.c)
archive mbedtls "$MFLAGS" $(ls "$M"/library/ssl_*.c "$M/library/net_sockets.c" "$M/library/debug.c")

# ---------------------------------------------------------------- curl
if [ ! -f "$PREFIX/lib/libcurl.a" ]; then
    C=$(srcdir curl)
    (cd "$C" && CC=$CC CFLAGS="$CFLAGS" \
        CPPFLAGS="-I$PREFIX/include" \
        LDFLAGS="-L$PREFIX/lib" \
        ./configure -q --disable-shared --enable-static --prefix="$PREFIX" \
        --disable-dependency-tracking --with-mbedtls="$PREFIX" --with-zlib="$PREFIX" \
        --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --without-ca-path \
        --disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet \
        --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp \
        --disable-gopher --disable-mqtt --disable-manual --disable-ntlm --disable-ntlm-wb \
        --disable-alt-svc --disable-hsts --disable-cookies --disable-unix-sockets \
        --without-libpsl --without-nghttp2 --without-libidn2 --without-brotli --without-zstd \
        --without-librtmp --without-libssh2 --without-gssapi >/dev/null &&
        make -s -j"$JOBS" -C lib >/dev/null && make -s -C lib install >/dev/null &&
        make -s -C include install >/dev/null)
    log curl
fi

# ---------------------------------------------------------------- mimalloc
MI=$(srcdir mimalloc)
if [ ! -f "$OBJ/mimalloc.o" ]; then
    $CC $CFLAGS -DMI_MALLOC_OVERRIDE -DNDEBUG -I"$MI/include" -c "$MI/src/static.c" -o "$OBJ/mimalloc.o"
fi
log "dependencies ready"

# ---------------------------------------------------------------- engram
E_OBJ=$OBJ/engram
mkdir -p "$E_OBJ"
E_FLAGS="-std=c11 -D_GNU_SOURCE -DENGRAM_VERSION=\"$(sed -n 's/^VERSION *:= *//p' Makefile)\" \
 -DENGRAM_NO_PDF -DENGRAM_STATIC -Isrc -I$PREFIX/include -O2 -fno-strict-aliasing $CFLAGS"
SRCS=$(find src -name '*.c' | sort)
NEWEST_H=$(find src -name '*.h' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2)
printf '%s\n' $SRCS | FLAGS="$E_FLAGS" D=$E_OBJ H="$NEWEST_H" CC=$CC xargs -P "$JOBS" -n 1 sh -c '
    o="$D/$(echo "$1" | tr / _).o"
    [ "$o" -nt "$1" ] && [ "$o" -nt "$H" ] && exit 0
    $CC $FLAGS -c "$1" -o "$o"' _ || exit 1
# Objects of files that no longer exist must not be linked.
OBJS=""
for f in $SRCS; do OBJS="$OBJS $E_OBJ/$(echo "$f" | tr / _).o"; done
# shellcheck disable=SC2086
$CC -static -o "$OUT/engram" "$OBJ/mimalloc.o" $OBJS -L"$PREFIX/lib" \
    -lcurl -lmbedtls -lmbedx509 -lmbedcrypto -llmdb -lzstd -lutf8proc -lstemmer -lsodium \
    -lexpat -lz -lpthread -lm -Wl,--gc-sections -Wl,-z,stack-size=8388608 -s
log "build/static/engram: $(du -h "$OUT/engram" | cut -f1), $(file -b "$OUT/engram" | cut -d, -f1-4)"
