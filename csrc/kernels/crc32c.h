/* CRC-32C (Castagnoli) and TFRecord's masked CRC: plain C kernel (crc32c.c).
 * fp_crc32c(crc, p, n): CRC-32C of p[0:n], continuing from crc (0 to start);
 * fp_frame_header_ok(h): does the masked CRC of a frame's 8 length bytes at h
 * equal the 4 bytes after them? */
#ifndef FP_KERNELS_CRC32C_H
#define FP_KERNELS_CRC32C_H

#include "common.h"

#define MASK_DELTA 0xa282ead8u /* TFRecord's CRC mask constant */

/* Builds the tables and picks the hardware or table path (reads
 * FEATUREPIPE_NO_HW_CRC). Call once before anything below; later calls do nothing. */
void fp_crc_init(void);

/* "sse4.2" or "armv8-crc" when CRC-32C runs on CPU instructions, else "software". */
const char *fp_crc_backend(void);

/* The same by table look-up only (for tests of the table path). */
uint32_t fp_crc32c_software(uint32_t crc, const unsigned char *p, size_t n);

/* TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
static inline uint32_t
fp_mask_crc(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + MASK_DELTA;
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
/* x86-64: the choice between the SSE4.2 and the table path is made inline at
 * each call, as it was when all of this was one file (the frame scans call it
 * per frame); the two paths themselves are in crc32c.c. */
#define FP_CRC_INLINE_DISPATCH 1

extern int fp_have_hw_crc; /* set by fp_crc_init */
uint32_t fp_crc_hw_raw(uint32_t crc, const unsigned char *p, size_t n); /* raw register */
uint32_t fp_crc_sw_raw(uint32_t crc, const unsigned char *p, size_t n); /* raw register */
int fp_header_ok_hw(const unsigned char *h);

static inline uint32_t
fp_crc32c(uint32_t crc, const unsigned char *p, size_t n)
{
    return ~(fp_have_hw_crc ? fp_crc_hw_raw(~crc, p, n) : fp_crc_sw_raw(~crc, p, n));
}

static inline int
fp_frame_header_ok(const unsigned char *h)
{
    return fp_have_hw_crc ? fp_header_ok_hw(h)
                          : fp_mask_crc(fp_crc32c(0, h, 8)) == load_le32(h + 8);
}
#else
/* CRC-32C of p[0:n], continuing from crc (0 to start). */
uint32_t fp_crc32c(uint32_t crc, const unsigned char *p, size_t n);

/* Does the masked CRC of a frame's 8 length bytes at h equal the 4 bytes after them? */
int fp_frame_header_ok(const unsigned char *h);
#endif

#endif
