/*
 * FarmHash Fingerprint64 and FingerprintCat64 as TensorFlow computes them
 * (tsl::Fingerprint64 = farmhashna::Hash64, tsl::FingerprintCat64): plain C
 * kernel, header-only so that the column ops inline it as before; farmhash.c
 * holds the one out-of-line copy the bindings call.
 */
#ifndef FP_KERNELS_FARMHASH_H
#define FP_KERNELS_FARMHASH_H

#include "common.h"
/* ------------------------------------------------------------------------ */
/* FarmHash Fingerprint64 (farmhashna::Hash64), as tsl::Fingerprint64. */

static const uint64_t k0 = 0xc3a5c85c97cb3127ULL;
static const uint64_t k1 = 0xb492b66fbe98f273ULL;
static const uint64_t k2 = 0x9ae16a3b2f90404fULL;

static inline uint64_t
fetch64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* little-endian hosts only (checked at compile time below) */
}

static inline uint32_t
fetch32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "featurepipe's FarmHash port assumes a little-endian host"
#endif

static inline uint64_t
rot64(uint64_t v, int s)
{
    return s == 0 ? v : ((v >> s) | (v << (64 - s)));
}

static inline uint64_t
shift_mix(uint64_t v)
{
    return v ^ (v >> 47);
}

static inline uint64_t
hash_len16(uint64_t u, uint64_t v, uint64_t mul)
{
    uint64_t a = (u ^ v) * mul;
    a ^= (a >> 47);
    uint64_t b = (v ^ a) * mul;
    b ^= (b >> 47);
    b *= mul;
    return b;
}

static inline uint64_t
hash_len0to16(const unsigned char *s, size_t len)
{
    if (len >= 8) {
        uint64_t mul = k2 + len * 2;
        uint64_t a = fetch64(s) + k2;
        uint64_t b = fetch64(s + len - 8);
        uint64_t c = rot64(b, 37) * mul + a;
        uint64_t d = (rot64(a, 25) + b) * mul;
        return hash_len16(c, d, mul);
    }
    if (len >= 4) {
        uint64_t mul = k2 + len * 2;
        uint64_t a = fetch32(s);
        return hash_len16(len + (a << 3), fetch32(s + len - 4), mul);
    }
    if (len > 0) {
        uint8_t a = s[0];
        uint8_t b = s[len >> 1];
        uint8_t c = s[len - 1];
        uint32_t y = (uint32_t)a + ((uint32_t)b << 8);
        uint32_t z = (uint32_t)len + ((uint32_t)c << 2);
        return shift_mix((uint64_t)y * k2 ^ (uint64_t)z * k0) * k2;
    }
    return k2;
}

static inline uint64_t
hash_len17to32(const unsigned char *s, size_t len)
{
    uint64_t mul = k2 + len * 2;
    uint64_t a = fetch64(s) * k1;
    uint64_t b = fetch64(s + 8);
    uint64_t c = fetch64(s + len - 8) * mul;
    uint64_t d = fetch64(s + len - 16) * k2;
    return hash_len16(rot64(a + b, 43) + rot64(c, 30) + d, a + rot64(b + k2, 18) + c, mul);
}

static inline uint64_t
hash_len33to64(const unsigned char *s, size_t len)
{
    uint64_t mul = k2 + len * 2;
    uint64_t a = fetch64(s) * k2;
    uint64_t b = fetch64(s + 8);
    uint64_t c = fetch64(s + len - 8) * mul;
    uint64_t d = fetch64(s + len - 16) * k2;
    uint64_t y = rot64(a + b, 43) + rot64(c, 30) + d;
    uint64_t z = hash_len16(y, a + rot64(b + k2, 18) + c, mul);
    uint64_t e = fetch64(s + 16) * mul;
    uint64_t f = fetch64(s + 24);
    uint64_t g = (y + fetch64(s + len - 32)) * mul;
    uint64_t h = (z + fetch64(s + len - 24)) * mul;
    return hash_len16(rot64(e + f, 43) + rot64(g, 30) + h, e + rot64(f + a, 18) + g, mul);
}

typedef struct {
    uint64_t first, second;
} Pair64;

static inline Pair64
weak_hash32(const unsigned char *s, uint64_t a, uint64_t b)
{
    uint64_t w = fetch64(s), x = fetch64(s + 8), y = fetch64(s + 16), z = fetch64(s + 24);
    a += w;
    b = rot64(b + a + z, 21);
    uint64_t c = a;
    a += x;
    a += y;
    b += rot64(a, 44);
    Pair64 r = {a + z, b + c};
    return r;
}

static inline uint64_t
fingerprint64(const unsigned char *s, size_t len)
{
    const uint64_t seed = 81;
    if (len <= 32) {
        return len <= 16 ? hash_len0to16(s, len) : hash_len17to32(s, len);
    }
    if (len <= 64) {
        return hash_len33to64(s, len);
    }
    uint64_t x = seed;
    uint64_t y = seed * k1 + 113;
    uint64_t z = shift_mix(y * k2 + 113) * k2;
    Pair64 v = {0, 0}, w = {0, 0};
    x = x * k2 + fetch64(s);
    const unsigned char *end = s + ((len - 1) / 64) * 64;
    const unsigned char *last64 = end + ((len - 1) & 63) - 63;
    do {
        x = rot64(x + y + v.first + fetch64(s + 8), 37) * k1;
        y = rot64(y + v.second + fetch64(s + 48), 42) * k1;
        x ^= w.second;
        y += v.first + fetch64(s + 40);
        z = rot64(z + w.first, 33) * k1;
        v = weak_hash32(s, v.second * k1, x + w.first);
        w = weak_hash32(s + 32, z + w.second, y + fetch64(s + 16));
        uint64_t t = z;
        z = x;
        x = t;
        s += 64;
    } while (s != end);
    uint64_t mul = k1 + ((z & 0xff) << 1);
    s = last64;
    w.first += ((len - 1) & 63);
    v.first += w.first;
    w.first += v.first;
    x = rot64(x + y + v.first + fetch64(s + 8), 37) * mul;
    y = rot64(y + v.second + fetch64(s + 48), 42) * mul;
    x ^= w.second * 9;
    y += v.first * 9 + fetch64(s + 40);
    z = rot64(z + w.first, 33) * mul;
    v = weak_hash32(s, v.second * mul, x + w.first);
    w = weak_hash32(s + 32, z + w.second, y + fetch64(s + 16));
    uint64_t t = z;
    z = x;
    x = t;
    return hash_len16(hash_len16(v.first, w.first, mul) + shift_mix(y) * k0 + z,
                      hash_len16(v.second, w.second, mul) + x, mul);
}

/* tsl::FingerprintCat64 */
static inline uint64_t
fingerprint_cat64(uint64_t fp1, uint64_t fp2)
{
    const uint64_t kmul = 0xc6a4a7935bd1e995ULL;
    uint64_t r = fp1 ^ kmul;
    r ^= shift_mix(fp2 * kmul) * kmul;
    r *= kmul;
    r = shift_mix(r) * kmul;
    r = shift_mix(r);
    return r;
}

/* tf.strings.as_string of an int64 ("%lld"); returns the length. */
static inline size_t
int64_decimal(int64_t v, unsigned char *buf /* >= 21 bytes */)
{
    unsigned char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (unsigned char)('0' + (u % 10));
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0) {
        buf[k++] = '-';
    }
    while (n) {
        buf[k++] = tmp[--n];
    }
    return k;
}

static inline uint64_t
fingerprint_int64(int64_t v)
{
    unsigned char buf[24];
    size_t n = int64_decimal(v, buf);
    return fingerprint64(buf, n);
}

/* fingerprint64, out of line (farmhash.c). */
uint64_t fp_fingerprint64(const unsigned char *s, size_t len);

#endif
