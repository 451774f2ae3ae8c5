/* TFRecord framing and frame scanning (see tfrecord.h). Plain C kernel. */
#include "tfrecord.h"

#include <stdlib.h>
#include <string.h>

void
fp_frame_write(unsigned char *o, const unsigned char *r, size_t len)
{
    store_le64(o, (uint64_t)len);
    uint32_t c = fp_mask_crc(fp_crc32c(0, o, 8));
    for (int k = 0; k < 4; k++) {
        o[8 + k] = (unsigned char)(c >> (8 * k));
    }
    memcpy(o + 12, r, len);
    c = fp_mask_crc(fp_crc32c(0, r, len));
    for (int k = 0; k < 4; k++) {
        o[12 + len + k] = (unsigned char)(c >> (8 * k));
    }
}

/* scan_frames: scan_records(verify=True, keep=False) that also returns where
 * each frame starts, so that a caller can cut the buffer into runs of records
 * without reading any header again (featurepipe.keras._compiled). */
int
fp_scan_frames(const unsigned char *buf, size_t n, size_t pos, long long max_bytes,
               int64_t **starts_out, size_t *count_out, size_t *next_pos, int *status_out)
{
    size_t p = pos;
    /* starts[k]: offset of frame k; starts[count]: the offset after the last. */
    size_t cap = 1024, count = 0;
    int64_t *starts = malloc(cap * sizeof(int64_t));
    int status = SCAN_NEED_MORE, nomem = starts == NULL;
    while (!nomem) {
        size_t len;
        status = fp_frame_check(buf, n, p, max_bytes, &len);
        if (status != FRAME_OK) {
            break;
        }
        const unsigned char *h = buf + p;
        if (fp_mask_crc(fp_crc32c(0, h + 12, len)) != load_le32(h + 12 + len)) {
            status = SCAN_DATA_CRC;
            break;
        }
        if (count + 2 > cap) {
            int64_t *grown = realloc(starts, 2 * cap * sizeof(int64_t));
            if (grown == NULL) {
                nomem = 1;
                break;
            }
            starts = grown;
            cap *= 2;
        }
        starts[count++] = (int64_t)p;
        p += 16 + len;
    }
    if (nomem) {
        free(starts);
        *starts_out = NULL;
        return -1;
    }
    starts[count] = (int64_t)p;
    *starts_out = starts;
    *count_out = count;
    *next_pos = p;
    *status_out = status;
    return 0;
}
