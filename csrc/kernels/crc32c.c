/*
 * CRC-32C (Castagnoli), the checksum of TFRecord frames. Plain C kernel.
 *
 * CRC-32C uses the SSE4.2 crc32 instruction when the CPU has it (checked at
 * run time with cpuid; only the functions that use it are compiled for
 * SSE4.2), or the ARMv8 CRC instructions where the compiler targets them,
 * else a slicing-by-8 table. FEATUREPIPE_NO_HW_CRC=1 in the environment when
 * fp_crc_init() first runs forces the table (for tests).
 */
#include "crc32c.h"

#include <stdlib.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define FP_X86_CRC 1
#include <cpuid.h>
#include <nmmintrin.h>
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
/* The compiler targets ARMv8 with the CRC extension already (Apple silicon,
 * -march=armv8.1-a or later): no run-time check needed. */
#define FP_ARM_CRC 1
#include <arm_acle.h>
#endif

/* ------------------------------------------------------------------------ */
/* CRC-32C. All the helpers below work on the raw CRC register: callers do
 * the pre- and post-inversion. */

#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t sw_table[8][256];

static void
init_sw_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        }
        sw_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t prev = sw_table[t - 1][i];
            sw_table[t][i] = (prev >> 8) ^ sw_table[0][prev & 0xff];
        }
    }
}

/* Slicing-by-8: eight table look-ups per 8 input bytes. */
uint32_t
fp_crc_sw_raw(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n >= 8) {
        uint64_t w = load_le64(p) ^ crc;
        crc = sw_table[7][w & 0xff] ^ sw_table[6][(w >> 8) & 0xff] ^
              sw_table[5][(w >> 16) & 0xff] ^ sw_table[4][(w >> 24) & 0xff] ^
              sw_table[3][(w >> 32) & 0xff] ^ sw_table[2][(w >> 40) & 0xff] ^
              sw_table[1][(w >> 48) & 0xff] ^ sw_table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) {
        crc = sw_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    }
    return crc;
}

#ifdef FP_X86_CRC
/* The hardware path runs three independent CRC streams over three adjacent
 * blocks (the crc32 instruction has a latency of three cycles but a
 * throughput of one per cycle) and joins them: the register after A||B is
 * shift(reg after A, len(B)) ^ (register of B started from 0), where shift
 * appends len(B) zero bytes. shift is linear in the register, so it is four
 * table look-ups (one per register byte) with tables built at import time. */
#define HW_LONG 8192
#define HW_SHORT 256
#define HW_TINY 64

static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
static uint32_t shift_tiny[4][256];
/* Read by the inline dispatch in crc32c.h. */
int fp_have_hw_crc = 0;
#define have_hw_crc fp_have_hw_crc

static void
build_shift_table(uint32_t table[4][256], size_t nzeros)
{
    static const unsigned char zeros[1024] = {0};
    uint32_t basis[32];
    for (int bit = 0; bit < 32; bit++) {
        uint32_t c = (uint32_t)1 << bit;
        size_t left = nzeros;
        while (left) {
            size_t step = left < sizeof(zeros) ? left : sizeof(zeros);
            c = fp_crc_sw_raw(c, zeros, step);
            left -= step;
        }
        basis[bit] = c;
    }
    for (int byte = 0; byte < 4; byte++) {
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t r = 0;
            for (int bit = 0; bit < 8; bit++) {
                if (v & (1u << bit)) {
                    r ^= basis[8 * byte + bit];
                }
            }
            table[byte][v] = r;
        }
    }
}

static inline uint32_t
crc_shift(uint32_t table[4][256], uint32_t crc)
{
    return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^
           table[2][(crc >> 16) & 0xff] ^ table[3][crc >> 24];
}

/* One round over three adjacent blocks of BLK bytes at p: c0 continues the
 * running register over the first, the other two start from 0 and are
 * shifted in afterwards. */
#define CRC_3WAY_ROUND(BLK, TABLE)                                                        \
    do {                                                                                  \
        uint64_t c1 = 0, c2 = 0;                                                          \
        const unsigned char *end_ = p + (BLK);                                            \
        do {                                                                              \
            uint64_t a, b, d;                                                             \
            memcpy(&a, p, 8);                                                             \
            memcpy(&b, p + (BLK), 8);                                                     \
            memcpy(&d, p + 2 * (BLK), 8);                                                 \
            c0 = _mm_crc32_u64(c0, a);                                                    \
            c1 = _mm_crc32_u64(c1, b);                                                    \
            c2 = _mm_crc32_u64(c2, d);                                                    \
            p += 8;                                                                       \
        } while (p < end_);                                                               \
        c0 = crc_shift(TABLE, (uint32_t)c0) ^ (uint32_t)c1;                               \
        c0 = crc_shift(TABLE, (uint32_t)c0) ^ (uint32_t)c2;                               \
        p += 2 * (BLK);                                                                   \
        n -= 3 * (BLK);                                                                   \
    } while (0)

__attribute__((target("sse4.2"))) uint32_t
fp_crc_hw_raw(uint32_t crc, const unsigned char *p, size_t n)
{
    uint64_t c0 = crc;
    while (n >= 3 * HW_LONG) {
        CRC_3WAY_ROUND(HW_LONG, shift_long);
    }
    while (n >= 3 * HW_SHORT) {
        CRC_3WAY_ROUND(HW_SHORT, shift_short);
    }
    while (n >= 3 * HW_TINY) {
        CRC_3WAY_ROUND(HW_TINY, shift_tiny);
    }
    while (n >= 8) {
        uint64_t a;
        memcpy(&a, p, 8);
        c0 = _mm_crc32_u64(c0, a);
        p += 8;
        n -= 8;
    }
    uint32_t c = (uint32_t)c0;
    while (n--) {
        c = _mm_crc32_u8(c, *p++);
    }
    return c;
}

/* Masked CRC of a frame's 8 length bytes equals the stored 4 bytes? */
__attribute__((target("sse4.2"))) int
fp_header_ok_hw(const unsigned char *h)
{
    uint64_t a;
    memcpy(&a, h, 8);
    uint32_t c = ~(uint32_t)_mm_crc32_u64(0xffffffffu, a);
    return ((c >> 15) | (c << 17)) + MASK_DELTA == load_le32(h + 8);
}

static void
init_hw(void)
{
    unsigned int a, b, c, d;
    const char *off = getenv("FEATUREPIPE_NO_HW_CRC"); /* for tests of the table path */
    if ((off == NULL || strcmp(off, "1") != 0) && __get_cpuid(1, &a, &b, &c, &d) &&
        (c & bit_SSE4_2)) {
        build_shift_table(shift_long, HW_LONG);
        build_shift_table(shift_short, HW_SHORT);
        build_shift_table(shift_tiny, HW_TINY);
        have_hw_crc = 1;
    }
}

static inline uint32_t
crc_raw(uint32_t crc, const unsigned char *p, size_t n)
{
    return have_hw_crc ? fp_crc_hw_raw(crc, p, n) : fp_crc_sw_raw(crc, p, n);
}

static inline int header_ok_sw(const unsigned char *h);

static inline int
header_ok(const unsigned char *h)
{
    return have_hw_crc ? fp_header_ok_hw(h) : header_ok_sw(h);
}
#elif defined(FP_ARM_CRC)
static int have_hw_crc = 1;
static void
init_hw(void)
{
    const char *off = getenv("FEATUREPIPE_NO_HW_CRC"); /* for tests of the table path */
    have_hw_crc = off == NULL || strcmp(off, "1") != 0;
}
static inline uint32_t
crc_raw(uint32_t crc, const unsigned char *p, size_t n)
{
    if (!have_hw_crc) {
        return fp_crc_sw_raw(crc, p, n);
    }
    while (n >= 8) {
        uint64_t a;
        memcpy(&a, p, 8);
        crc = __crc32cd(crc, a);
        p += 8;
        n -= 8;
    }
    while (n--) {
        crc = __crc32cb(crc, *p++);
    }
    return crc;
}

static inline int header_ok_sw(const unsigned char *h);

static inline int
header_ok(const unsigned char *h)
{
    return header_ok_sw(h);
}
#else
static const int have_hw_crc = 0;
static void
init_hw(void)
{
}
static inline uint32_t
crc_raw(uint32_t crc, const unsigned char *p, size_t n)
{
    return fp_crc_sw_raw(crc, p, n);
}

static inline int header_ok_sw(const unsigned char *h);

static inline int
header_ok(const unsigned char *h)
{
    return header_ok_sw(h);
}
#endif

static inline uint32_t
crc32c_value(uint32_t crc, const unsigned char *p, size_t n)
{
    return ~crc_raw(~crc, p, n);
}

static inline int
header_ok_sw(const unsigned char *h)
{
    return fp_mask_crc(crc32c_value(0, h, 8)) == load_le32(h + 8);
}

/* ------------------------------------------------------------------------ */
/* The kernel's interface (crc32c.h). */

static int crc_ready = 0;

void
fp_crc_init(void)
{
    /* The tables only ever get the same values: a second call changes nothing. */
    if (crc_ready) {
        return;
    }
    init_sw_table();
    init_hw();
    crc_ready = 1;
}

const char *
fp_crc_backend(void)
{
#if defined(FP_ARM_CRC)
    return have_hw_crc ? "armv8-crc" : "software";
#else
    return have_hw_crc ? "sse4.2" : "software";
#endif
}

uint32_t
fp_crc32c_software(uint32_t crc, const unsigned char *p, size_t n)
{
    return ~fp_crc_sw_raw(~crc, p, n);
}

#ifndef FP_CRC_INLINE_DISPATCH /* else inline in crc32c.h */
uint32_t
fp_crc32c(uint32_t crc, const unsigned char *p, size_t n)
{
    return crc32c_value(crc, p, n);
}

int
fp_frame_header_ok(const unsigned char *h)
{
    return header_ok(h);
}
#endif
