/* CRC-32C (Castagnoli) and TFRecord's masked CRC: plain C kernel (crc32c.c). */
#ifndef FP_KERNELS_CRC32C_H
#define FP_KERNELS_CRC32C_H

#include "common.h"

#define MASK_DELTA 0xa282ead8u /* TFRecord's CRC mask constant */

/* Builds the tables and picks the hardware or table path (reads
 * FEATUREPIPE_NO_HW_CRC). Call once before anything below; later calls do nothing. */
void fp_crc_init(void);

/* "sse4.2" or "armv8-crc" when CRC-32C runs on CPU instructions, else "software". */
const char *fp_crc_backend(void);

/* CRC-32C of p[0:n], continuing from crc (0 to start). */
uint32_t fp_crc32c(uint32_t crc, const unsigned char *p, size_t n);

/* The same by table look-up only (for tests of the table path). */
uint32_t fp_crc32c_software(uint32_t crc, const unsigned char *p, size_t n);

/* Does the masked CRC of a frame's 8 length bytes at h equal the 4 bytes after them? */
int fp_frame_header_ok(const unsigned char *h);

/* TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
static inline uint32_t
fp_mask_crc(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + MASK_DELTA;
}

#endif
