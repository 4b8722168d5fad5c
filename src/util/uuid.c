/*
 * uuid.c - v4 UUID generation, formatting and parsing (uuid.h).
 *
 * A v4 UUID is 122 random bits with the version nibble (byte 6, high half)
 * set to 4 and the variant bits (byte 8, top two) set to 10. Parsing is
 * deliberately narrow: only the 36-character hyphenated form, so an id has
 * exactly one spelling modulo case and lookups cannot be fooled by braces,
 * "urn:uuid:" prefixes or missing hyphens. Randomness comes from
 * hash_random() (libsodium's randombytes_buf).
 */
#include "util/uuid.h"

#include "util/common.h"
#include "util/hash.h"

void uuid_new(unsigned char out[16])
{
    hash_random(out, 16); /* libsodium randombytes_buf, initialised once */
    out[6] = (unsigned char)((out[6] & 0x0F) | 0x40);
    out[8] = (unsigned char)((out[8] & 0x3F) | 0x80);
}

void uuid_format(const unsigned char u[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        *o++ = hex[u[i] >> 4];
        *o++ = hex[u[i] & 15];
    }
    *o = '\0';
}

static int hexdigit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int uuid_parse(const char *s, unsigned char out[16])
{
    unsigned char tmp[16];
    int n = 0;
    if (!s) return ENGRAM_EINVAL;
    for (int i = 0; i < UUID_STR_LEN; i += 2) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return ENGRAM_EINVAL;
            i++;
        }
        int hi = hexdigit(s[i]);
        if (hi < 0) return ENGRAM_EINVAL;
        int lo = hexdigit(s[i + 1]);
        if (lo < 0) return ENGRAM_EINVAL;
        tmp[n++] = (unsigned char)(hi << 4 | lo);
    }
    if (n != 16 || s[UUID_STR_LEN] != '\0') return ENGRAM_EINVAL;
    memcpy(out, tmp, 16);
    return 0;
}
