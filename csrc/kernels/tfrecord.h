/*
 * TFRecord framing and frame scanning: plain C kernel (tfrecord.c).
 *
 * Frame: u64 LE length, u32 LE masked CRC-32C of the 8 length bytes,
 * data[length], u32 LE masked CRC-32C of data. 16 = 12 + 4 bytes of framing
 * around the data.
 */
#ifndef FP_KERNELS_TFRECORD_H
#define FP_KERNELS_TFRECORD_H

#include "common.h"
#include "crc32c.h"

enum { SCAN_NEED_MORE = 0, SCAN_LENGTH_CRC = 1, SCAN_DATA_CRC = 2, SCAN_TOO_LARGE = 3 };

enum { FRAME_OK = -1 };

/* The frame at p of buf[0:n]: FRAME_OK with its data length in *len, or the
 * SCAN_ status that stops a scan there (its data CRC is not checked here). */
static inline int
fp_frame_check(const unsigned char *buf, size_t n, size_t p, long long max_bytes, size_t *len)
{
    size_t left = n - p;
    if (left < 12) {
        return SCAN_NEED_MORE;
    }
    const unsigned char *h = buf + p;
    uint64_t length = load_le64(h);
    if (!fp_frame_header_ok(h)) {
        return SCAN_LENGTH_CRC;
    }
    if (length > (uint64_t)max_bytes) {
        return SCAN_TOO_LARGE;
    }
    if (left < 16 || length > (uint64_t)(left - 16)) {
        return SCAN_NEED_MORE;
    }
    *len = (size_t)length;
    return FRAME_OK;
}

/* Does the data of a frame (len bytes at data) match its stored masked CRC? */
static inline int
fp_frame_data_ok(const unsigned char *data, size_t len)
{
    return fp_mask_crc(fp_crc32c(0, data, len)) == load_le32(data + len);
}

/* Writes the frame of the record r[0:len] at o (len + 16 bytes). */
void fp_frame_write(unsigned char *o, const unsigned char *r, size_t len);

/* Verifies the whole frames of buf[pos:n] and records where each starts:
 * *starts (malloc'd; the caller frees it) gets one offset per verified frame
 * plus the offset after the last, *count the number of frames, *next_pos the
 * offset of the frame it stopped at, *status the SCAN_ status. Returns -1
 * when out of memory (*starts is then NULL), else 0. Touches no shared state:
 * callers run it without the GIL. */
int fp_scan_frames(const unsigned char *buf, size_t n, size_t pos, long long max_bytes,
                   int64_t **starts, size_t *count, size_t *next_pos, int *status);

#endif
