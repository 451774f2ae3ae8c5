/*
 * featurepipe._speedups: optional compiled hot loops for featurepipe's core.
 *
 * Plain CPython C API (no numpy C API). Everything here has a pure-Python
 * twin that gives the same results: featurepipe.tfrecord._framing.scan_records_py and
 * featurepipe.example._decode_columns_py. The Python side loads this module
 * when it was built and falls back to the pure-Python path when it was not.
 *
 *   crc32c(data, crc=0) -> int          CRC-32C (Castagnoli), chainable
 *   frame_records(records) -> bytes     TFRecord frames of many records
 *   masked_crc32c(data) -> int          TFRecord's masked CRC-32C
 *   scan_records(buf, pos, verify_crc, max_record_bytes)
 *       -> (records: list[bytes], next_pos: int, status: int)
 *   decode_columns(records)
 *       -> (columns: dict | None, err_record: int, err_reason: str)
 *
 * CRC-32C uses the SSE4.2 crc32 instruction when the CPU has it (checked at
 * run time with cpuid; only the functions that use it are compiled for
 * SSE4.2), else a slicing-by-8 table. FEATUREPIPE_NO_HW_CRC=1 in the
 * environment at import forces the table (for tests).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_speedups.h"

#include <stdint.h>
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
/* Little-endian loads and stores (portable; compilers turn them into one
 * move on little-endian machines). */

static inline uint32_t
load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t
load_le64(const unsigned char *p)
{
    return (uint64_t)load_le32(p) | ((uint64_t)load_le32(p + 4) << 32);
}

static inline void
store_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* ------------------------------------------------------------------------ */
/* CRC-32C. All the helpers below work on the raw CRC register: callers do
 * the pre- and post-inversion. */

#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */
#define MASK_DELTA 0xa282ead8u  /* TFRecord's CRC mask constant */

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
static uint32_t
crc_sw(uint32_t crc, const unsigned char *p, size_t n)
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
static int have_hw_crc = 0;

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
            c = crc_sw(c, zeros, step);
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

__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const unsigned char *p, size_t n)
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
__attribute__((target("sse4.2"))) static int
header_ok_hw(const unsigned char *h)
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
    return have_hw_crc ? crc_hw(crc, p, n) : crc_sw(crc, p, n);
}

static inline int header_ok_sw(const unsigned char *h);

static inline int
header_ok(const unsigned char *h)
{
    return have_hw_crc ? header_ok_hw(h) : header_ok_sw(h);
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
        return crc_sw(crc, p, n);
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
    return crc_sw(crc, p, n);
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

static inline uint32_t
mask_crc(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + MASK_DELTA;
}

static inline int
header_ok_sw(const unsigned char *h)
{
    return mask_crc(crc32c_value(0, h, 8)) == load_le32(h + 8);
}

/* Records at least this large are checked (and copied) without the GIL. */
#define NOGIL_BYTES (256 * 1024)

static uint32_t
crc32c_maybe_nogil(uint32_t crc, const unsigned char *p, size_t n)
{
    uint32_t out;
    if (n >= NOGIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        out = crc32c_value(crc, p, n);
        Py_END_ALLOW_THREADS
    } else {
        out = crc32c_value(crc, p, n);
    }
    return out;
}

/* ------------------------------------------------------------------------ */
/* Python-facing CRC functions. */

static PyObject *
py_crc32c(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "crc", NULL};
    Py_buffer view;
    unsigned long crc = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*|k:crc32c", kwlist, &view, &crc)) {
        return NULL;
    }
    if (crc > 0xffffffffUL) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError,
                     "`crc` must be a 32-bit unsigned value. Received: crc=%lu", crc);
        return NULL;
    }
    uint32_t out = crc32c_maybe_nogil((uint32_t)crc, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(out);
}

/* frame_records(records) -> bytes: TFRecord frames of every record, end to end. */
static PyObject *
py_frame_records(PyObject *self, PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "records must be a sequence of bytes");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "records[%zd] must be bytes, not %.100s", i,
                         Py_TYPE(items[i])->tp_name);
            Py_DECREF(seq);
            return NULL;
        }
        total += PyBytes_GET_SIZE(items[i]) + 16;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        const unsigned char *r = (const unsigned char *)PyBytes_AS_STRING(items[i]);
        size_t len = (size_t)PyBytes_GET_SIZE(items[i]);
        store_le64(o, (uint64_t)len);
        uint32_t c = mask_crc(crc32c_value(0, o, 8));
        for (int k = 0; k < 4; k++) {
            o[8 + k] = (unsigned char)(c >> (8 * k));
        }
        memcpy(o + 12, r, len);
        c = mask_crc(crc32c_value(0, r, len));
        for (int k = 0; k < 4; k++) {
            o[12 + len + k] = (unsigned char)(c >> (8 * k));
        }
        o += len + 16;
    }
    Py_DECREF(seq);
    return out;
}

static PyObject *
py_masked_crc32c(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    uint32_t out = mask_crc(crc32c_maybe_nogil(0, view.buf, (size_t)view.len));
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(out);
}

static PyObject *
py_crc32c_software(PyObject *self, PyObject *args)
{
    Py_buffer view;
    unsigned long crc = 0;
    if (!PyArg_ParseTuple(args, "y*|k:_crc32c_software", &view, &crc)) {
        return NULL;
    }
    uint32_t out = ~crc_sw(~(uint32_t)crc, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(out);
}

/* ------------------------------------------------------------------------ */
/* scan_records. Frame: u64 LE length, u32 LE masked crc of the 8 length
 * bytes, data[length], u32 LE masked crc of data. 16 = 12 + 4 bytes of
 * framing around the data. */

enum { SCAN_NEED_MORE = 0, SCAN_LENGTH_CRC = 1, SCAN_DATA_CRC = 2, SCAN_TOO_LARGE = 3 };

enum { FRAME_OK = -1 };

/* The frame at p of buf[0:n]: FRAME_OK with its data length in *len, or the
 * SCAN_ status that stops a scan there (its data CRC is not checked here). */
static inline int
frame_check(const unsigned char *buf, size_t n, size_t p, long long max_bytes, size_t *len)
{
    size_t left = n - p;
    if (left < 12) {
        return SCAN_NEED_MORE;
    }
    const unsigned char *h = buf + p;
    uint64_t length = load_le64(h);
    if (!header_ok(h)) {
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

/* The buffer of a scan, with pos and max_bytes checked; -1 with an error. */
static int
scan_view(PyObject *obj, Py_ssize_t pos, long long max_bytes, Py_buffer *view)
{
    if (max_bytes < 0) {
        PyErr_Format(PyExc_ValueError,
                     "`max_record_bytes` must be >= 0. Received: max_record_bytes=%lld",
                     max_bytes);
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (pos < 0 || pos > view->len) {
        PyErr_Format(PyExc_ValueError,
                     "`pos` must be within the buffer (0..%zd). Received: pos=%zd", view->len,
                     pos);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *
py_scan_records(PyObject *self, PyObject *args)
{
    PyObject *obj;
    Py_ssize_t pos;
    int verify;
    long long max_bytes;
    int keep = 1; /* 0: verify and count the frames, materialise no record */
    if (!PyArg_ParseTuple(args, "OnpL|p:scan_records", &obj, &pos, &verify, &max_bytes, &keep)) {
        return NULL;
    }
    Py_buffer view;
    if (scan_view(obj, pos, max_bytes, &view) < 0) {
        return NULL;
    }
    PyObject *list = keep ? PyList_New(0) : NULL;
    if (keep && list == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_ssize_t counted = 0;
    const unsigned char *buf = view.buf;
    const size_t n = (size_t)view.len;
    size_t p = (size_t)pos;
    int status;
    for (;;) {
        size_t len;
        status = frame_check(buf, n, p, max_bytes, &len);
        if (status != FRAME_OK) {
            break;
        }
        const unsigned char *data = buf + p + 12;
        uint32_t want = load_le32(data + len);
        if (!keep) {
            int bad_frame = 0;
            if (verify) {
                if (len >= NOGIL_BYTES) {
                    Py_BEGIN_ALLOW_THREADS
                    bad_frame = mask_crc(crc32c_value(0, data, len)) != want;
                    Py_END_ALLOW_THREADS
                } else {
                    bad_frame = mask_crc(crc32c_value(0, data, len)) != want;
                }
            }
            if (bad_frame) {
                status = SCAN_DATA_CRC;
                break;
            }
            counted++;
            p += 16 + len;
            continue;
        }
        PyObject *rec = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
        if (rec == NULL) {
            goto fail;
        }
        char *dst = PyBytes_AS_STRING(rec);
        int bad = 0;
        if (len >= NOGIL_BYTES) {
            Py_BEGIN_ALLOW_THREADS
            if (verify) {
                bad = mask_crc(crc32c_value(0, data, len)) != want;
            }
            if (!bad) {
                memcpy(dst, data, len);
            }
            Py_END_ALLOW_THREADS
        } else {
            if (verify) {
                bad = mask_crc(crc32c_value(0, data, len)) != want;
            }
            if (!bad) {
                memcpy(dst, data, len);
            }
        }
        if (bad) {
            Py_DECREF(rec);
            status = SCAN_DATA_CRC;
            break;
        }
        if (PyList_Append(list, rec) < 0) {
            Py_DECREF(rec);
            goto fail;
        }
        Py_DECREF(rec);
        p += 16 + len;
    }
    PyBuffer_Release(&view);
    if (!keep) {
        return Py_BuildValue("(nni)", counted, (Py_ssize_t)p, status);
    }
    return Py_BuildValue("(Nni)", list, (Py_ssize_t)p, status);
fail:
    Py_XDECREF(list);
    PyBuffer_Release(&view);
    return NULL;
}

/* scan_frames: scan_records(verify=True, keep=False) that also returns where
 * each frame starts, so that a caller can cut the buffer into runs of records
 * without reading any header again (featurepipe.keras._compiled). The whole
 * scan runs without the GIL: the buffer stays exported (and so mapped) until
 * it ends. */
static PyObject *
py_scan_frames(PyObject *self, PyObject *args)
{
    PyObject *obj;
    Py_ssize_t pos;
    long long max_bytes;
    if (!PyArg_ParseTuple(args, "OnL:scan_frames", &obj, &pos, &max_bytes)) {
        return NULL;
    }
    Py_buffer view;
    if (scan_view(obj, pos, max_bytes, &view) < 0) {
        return NULL;
    }
    const unsigned char *buf = view.buf;
    const size_t n = (size_t)view.len;
    size_t p = (size_t)pos;
    /* starts[k]: offset of frame k; starts[count]: the offset after the last. */
    size_t cap = 1024, count = 0;
    int64_t *starts = malloc(cap * sizeof(int64_t));
    int status = SCAN_NEED_MORE, nomem = starts == NULL;
    Py_BEGIN_ALLOW_THREADS
    while (!nomem) {
        size_t len;
        status = frame_check(buf, n, p, max_bytes, &len);
        if (status != FRAME_OK) {
            break;
        }
        const unsigned char *h = buf + p;
        if (mask_crc(crc32c_value(0, h + 12, len)) != load_le32(h + 12 + len)) {
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
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (nomem) {
        free(starts);
        return PyErr_NoMemory();
    }
    starts[count] = (int64_t)p;
    PyObject *index = PyBytes_FromStringAndSize((const char *)starts,
                                                (Py_ssize_t)((count + 1) * sizeof(int64_t)));
    free(starts);
    if (index == NULL) {
        return NULL;
    }
    return Py_BuildValue("(Nni)", index, (Py_ssize_t)p, status);
}

/* ------------------------------------------------------------------------ */
/* decode_columns: tf.Example wire format to per-feature columns.
 *
 *   Example  { Features features = 1; }
 *   Features { map<string, Feature> feature = 1; }   entry: key = 1, value = 2
 *   Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
 *                           Int64List int64_list = 3; } }
 *   BytesList { repeated bytes value = 1; }
 *   FloatList { repeated float value = 1 [packed]; }
 *   Int64List { repeated int64 value = 1 [packed]; }
 *
 * Only the canonical encoding (what protobuf serializers write) is decoded
 * here; anything else a parser must merge or interpret (unknown fields,
 * repeated or out-of-order fields, unpacked scalars, several packed chunks,
 * duplicate map keys, multi-byte tags, groups) makes the record "slow_path"
 * so the caller decodes it with protobuf itself. A record is
 * "not_an_example" only for damage that protobuf (upb) rejects too, found
 * while the framing so far was canonical: a truncated varint, a length past
 * the end of its enclosing message, field number 0, wire type 6 or 7, a
 * packed float list whose length is not a multiple of 4, a map key that is
 * not UTF-8. */

enum { KIND_NONE = 0, KIND_BYTES = 1, KIND_FLOAT = 2, KIND_INT64 = 3 };
enum { DEC_OK = 0, DEC_SLOW = 1, DEC_BAD = 2, DEC_NOMEM = 3 };

typedef struct {
    char *name;          /* owned copy of the key bytes */
    Py_ssize_t name_len;
    uint64_t head;       /* first (up to) 8 key bytes, zero-padded: compared first */
    PyObject *pyname;    /* str */
    int kind;
    Py_ssize_t last_row; /* last record that set this column; catches duplicates */
    Py_ssize_t next;     /* column that followed this one last time, or -1 */
    PyObject *bytes_values; /* list, for KIND_BYTES */
    unsigned char *buf;  /* float32 / int64 values, little-endian */
    size_t buf_len, buf_cap;
    int64_t *row_lengths;
    unsigned char *present;
    unsigned char *kindless;
} Column;

typedef struct {
    Column *cols;
    Py_ssize_t ncols, cap;
    Py_ssize_t *slots; /* open addressing: column index + 1, 0 = empty */
    size_t nslots;     /* power of two */
    Py_ssize_t nrows;
    /* Features come in the same order in most records (sorted keys, with
     * some missing): guess each entry's column as the one that followed the
     * previous entry's column last time. */
    Py_ssize_t first; /* column of the first entry last time, or -1 */
    int mixed;        /* set when the current record's kind clashes */
} Decoder;

static uint64_t
hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 1099511628211ULL;
    }
    return h;
}

static void
decoder_free(Decoder *d)
{
    for (Py_ssize_t i = 0; i < d->ncols; i++) {
        Column *c = &d->cols[i];
        free(c->name);
        Py_XDECREF(c->pyname);
        Py_XDECREF(c->bytes_values);
        free(c->buf);
        free(c->row_lengths);
        free(c->present);
        free(c->kindless);
    }
    free(d->cols);
    free(d->slots);
}

static int
decoder_rehash(Decoder *d, size_t nslots)
{
    Py_ssize_t *slots = calloc(nslots, sizeof(Py_ssize_t));
    if (slots == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < d->ncols; i++) {
        size_t s = (size_t)hash_bytes((unsigned char *)d->cols[i].name,
                                      (size_t)d->cols[i].name_len) &
                   (nslots - 1);
        while (slots[s]) {
            s = (s + 1) & (nslots - 1);
        }
        slots[s] = i + 1;
    }
    free(d->slots);
    d->slots = slots;
    d->nslots = nslots;
    return 0;
}

/* The first min(klen, 8) key bytes as a number; `end` bounds what may be
 * read. One whole load where 8 bytes are readable (a byte-wise copy through
 * memory would stall on store forwarding). */
static inline uint64_t
key_head(const unsigned char *key, size_t klen, const unsigned char *end)
{
    uint64_t h;
    if (end - key >= 8) {
        h = load_le64(key);
        if (klen < 8) {
            h &= ((uint64_t)1 << (8 * klen)) - 1;
        }
    } else {
        h = 0;
        for (size_t i = 0; i < klen && i < 8; i++) {
            h |= (uint64_t)key[i] << (8 * i);
        }
    }
    return h;
}

static inline int
key_equal(const Column *c, const unsigned char *key, size_t klen, uint64_t head)
{
    if ((size_t)c->name_len != klen || c->head != head) {
        return 0;
    }
    if (klen <= 8) {
        return 1;
    }
    const unsigned char *a = (const unsigned char *)c->name + 8;
    key += 8;
    klen -= 8;
    while (klen >= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, key, 8);
        if (x != y) {
            return 0;
        }
        a += 8;
        key += 8;
        klen -= 8;
    }
    while (klen--) {
        if (*a++ != *key++) {
            return 0;
        }
    }
    return 1;
}

/* Find the column for key, or create it; prev is the previous entry's
 * column in this record (-1 for the first). Returns NULL with *status set. */
static Column *
decoder_column(Decoder *d, const unsigned char *key, size_t klen, const unsigned char *end,
               Py_ssize_t prev, int *status)
{
    Py_ssize_t *link = prev < 0 ? &d->first : &d->cols[prev].next;
    uint64_t head = key_head(key, klen, end);
    Py_ssize_t guess = *link;
    if (guess >= 0) {
        if (key_equal(&d->cols[guess], key, klen, head)) {
            return &d->cols[guess];
        }
        /* The usual miss: the feature that came next last time is absent. */
        guess = d->cols[guess].next;
        if (guess >= 0 && key_equal(&d->cols[guess], key, klen, head)) {
            *link = guess;
            return &d->cols[guess];
        }
    }
    uint64_t h = hash_bytes(key, klen);
    size_t s = (size_t)h & (d->nslots - 1);
    Py_ssize_t idx = -1;
    while (d->slots[s]) {
        if (key_equal(&d->cols[d->slots[s] - 1], key, klen, head)) {
            idx = d->slots[s] - 1;
            break;
        }
        s = (s + 1) & (d->nslots - 1);
    }
    if (idx < 0) {
        /* New column: the key must be UTF-8 (protobuf checks proto3 strings). */
        PyObject *pyname = PyUnicode_DecodeUTF8((const char *)key, (Py_ssize_t)klen, "strict");
        if (pyname == NULL) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();
                *status = DEC_BAD;
            } else {
                *status = DEC_NOMEM;
            }
            return NULL;
        }
        if (d->ncols == d->cap) {
            Py_ssize_t ncap = d->cap ? 2 * d->cap : 16;
            Column *cols = realloc(d->cols, (size_t)ncap * sizeof(Column));
            if (cols == NULL) {
                Py_DECREF(pyname);
                *status = DEC_NOMEM;
                return NULL;
            }
            d->cols = cols;
            d->cap = ncap;
            link = prev < 0 ? &d->first : &d->cols[prev].next;
        }
        Column *c = &d->cols[d->ncols];
        memset(c, 0, sizeof(*c));
        c->pyname = pyname;
        c->last_row = -1;
        c->next = -1;
        c->name = malloc(klen ? klen : 1);
        c->row_lengths = calloc((size_t)d->nrows ? (size_t)d->nrows : 1, sizeof(int64_t));
        c->present = calloc((size_t)d->nrows ? (size_t)d->nrows : 1, 1);
        c->kindless = calloc((size_t)d->nrows ? (size_t)d->nrows : 1, 1);
        d->ncols++; /* counted now so decoder_free releases the parts */
        if (c->name == NULL || c->row_lengths == NULL || c->present == NULL ||
            c->kindless == NULL) {
            *status = DEC_NOMEM;
            return NULL;
        }
        memcpy(c->name, key, klen);
        c->name_len = (Py_ssize_t)klen;
        c->head = head;
        idx = d->ncols - 1;
        if ((size_t)d->ncols * 2 > d->nslots) {
            if (decoder_rehash(d, d->nslots * 2) < 0) {
                *status = DEC_NOMEM;
                return NULL;
            }
        } else {
            d->slots[s] = idx + 1;
        }
    }
    *link = idx;
    return &d->cols[idx];
}

static int
buf_reserve(Column *c, size_t extra)
{
    if (c->buf_len + extra <= c->buf_cap) {
        return 0;
    }
    size_t ncap = c->buf_cap ? c->buf_cap : 256;
    while (ncap < c->buf_len + extra) {
        ncap *= 2;
    }
    unsigned char *b = realloc(c->buf, ncap);
    if (b == NULL) {
        return -1;
    }
    c->buf = b;
    c->buf_cap = ncap;
    return 0;
}

/* Varint as upb reads it: at most 10 bytes, bits past 64 dropped. Returns
 * the position after it, or NULL when truncated or longer than 10 bytes. */
static inline const unsigned char *
read_varint(const unsigned char *p, const unsigned char *end, uint64_t *out)
{
    if (p < end && !(*p & 0x80)) {
        *out = *p;
        return p + 1;
    }
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) {
            return NULL;
        }
        uint64_t b = *p++;
        v |= (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return p;
        }
    }
    return NULL;
}

/* A length-delimited field's length: it must fit before `end`. */
static inline const unsigned char *
read_length(const unsigned char *p, const unsigned char *end, size_t *out, int *status)
{
    uint64_t v;
    p = read_varint(p, end, &v);
    if (p == NULL || v > (uint64_t)(end - p)) {
        *status = DEC_BAD;
        return NULL;
    }
    if (v >= 0x7fffffffu) {
        *status = DEC_SLOW; /* upb refuses lengths from 2^31 - 1 on: let it say so */
        return NULL;
    }
    *out = (size_t)v;
    return p;
}

/* Status for a tag that the canonical path does not expect. Field number 0
 * and wire types 6 and 7 are invalid everywhere; anything else is left to
 * protobuf. Multi-byte tags go to protobuf too (an over-long tag may still
 * name field 1). */
static inline int
odd_tag(unsigned char tag)
{
    if (!(tag & 0x80) && ((tag >> 3) == 0 || (tag & 7) == 6 || (tag & 7) == 7)) {
        return DEC_BAD;
    }
    return DEC_SLOW;
}

/* Parse one Feature message [p, end) into column c for row r. */
static int
parse_feature(Decoder *d, Column *c, Py_ssize_t r, const unsigned char *p,
              const unsigned char *end)
{
    int status = DEC_OK;
    if (p == end) {
        c->kindless[r] = 1;
        return DEC_OK;
    }
    unsigned char tag = *p++;
    int kind;
    if (tag == 0x0a) {
        kind = KIND_BYTES;
    } else if (tag == 0x12) {
        kind = KIND_FLOAT;
    } else if (tag == 0x1a) {
        kind = KIND_INT64;
    } else {
        return odd_tag(tag);
    }
    size_t len;
    p = read_length(p, end, &len, &status);
    if (p == NULL) {
        return status;
    }
    const unsigned char *lend = p + len;
    if (lend != end) {
        /* Another field follows: a second oneof member or a merge. */
        return DEC_SLOW;
    }
    int clash = c->kind != KIND_NONE && c->kind != kind;
    if (clash) {
        d->mixed = 1;
    }
    int64_t count = 0;
    if (kind == KIND_BYTES) {
        while (p < lend) {
            tag = *p++;
            if (tag != 0x0a) {
                return odd_tag(tag);
            }
            size_t vlen;
            p = read_length(p, lend, &vlen, &status);
            if (p == NULL) {
                return status;
            }
            if (!clash) {
                if (c->bytes_values == NULL) {
                    c->bytes_values = PyList_New(0);
                    if (c->bytes_values == NULL) {
                        return DEC_NOMEM;
                    }
                }
                PyObject *v = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)vlen);
                if (v == NULL) {
                    return DEC_NOMEM;
                }
                int rc = PyList_Append(c->bytes_values, v);
                Py_DECREF(v);
                if (rc < 0) {
                    return DEC_NOMEM;
                }
            }
            p += vlen;
            count++;
        }
    } else if (p < lend) {
        tag = *p++;
        if (tag != 0x0a) {
            return odd_tag(tag);
        }
        size_t plen;
        p = read_length(p, lend, &plen, &status);
        if (p == NULL) {
            return status;
        }
        const unsigned char *pend = p + plen;
        if (pend != lend) {
            return DEC_SLOW; /* a second chunk, unpacked values or another field */
        }
        if (kind == KIND_FLOAT) {
            if (plen % 4) {
                return DEC_BAD;
            }
            count = (int64_t)(plen / 4);
            if (!clash && plen) {
                if (buf_reserve(c, plen) < 0) {
                    return DEC_NOMEM;
                }
                /* Wire bytes are LE float32, kept as they are except that
                 * signalling NaNs get the quiet bit, as they do when protobuf
                 * hands the value to Python as a double. */
                unsigned char *out = c->buf + c->buf_len;
                memcpy(out, p, plen);
                for (size_t i = 0; i < plen; i += 4) {
                    uint32_t bits = load_le32(out + i);
                    if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x003fffffu) &&
                        !(bits & 0x00400000u)) {
                        out[i + 2] |= 0x40;
                    }
                }
                c->buf_len += plen;
            }
        } else {
            /* At most one value per byte: reserve for the worst case. */
            if (!clash && buf_reserve(c, plen * 8) < 0) {
                return DEC_NOMEM;
            }
            unsigned char *out = clash ? NULL : c->buf + c->buf_len;
            while (p < pend) {
                uint64_t v;
                p = read_varint(p, pend, &v);
                if (p == NULL) {
                    return DEC_SLOW; /* straddles the packed block: protobuf decides */
                }
                if (out) {
                    store_le64(out, v);
                    out += 8;
                }
                count++;
            }
            if (out) {
                c->buf_len += (size_t)count * 8;
            }
        }
    }
    if (!clash) {
        c->kind = kind;
    }
    c->present[r] = 1;
    c->row_lengths[r] = count;
    return DEC_OK;
}

/* Parse one serialized Example as row r. */
static int
parse_example(Decoder *d, Py_ssize_t r, const unsigned char *p, const unsigned char *end)
{
    int status = DEC_OK;
    int seen_features = 0;
    Py_ssize_t prev = -1; /* column of the previous entry */
    while (p < end) {
        unsigned char tag = *p++;
        if (tag != 0x0a) {
            return odd_tag(tag);
        }
        if (seen_features) {
            return DEC_SLOW; /* features given twice: protobuf merges them */
        }
        seen_features = 1;
        size_t flen;
        p = read_length(p, end, &flen, &status);
        if (p == NULL) {
            return status;
        }
        const unsigned char *fend = p + flen;
        /* Features: map entries. */
        while (p < fend) {
            tag = *p++;
            if (tag != 0x0a) {
                return odd_tag(tag);
            }
            size_t elen;
            p = read_length(p, fend, &elen, &status);
            if (p == NULL) {
                return status;
            }
            const unsigned char *eend = p + elen;
            /* Entry: key (1) then value (2), each once. */
            if (p == eend || *p != 0x0a) {
                return p == eend ? DEC_SLOW : odd_tag(*p);
            }
            p++;
            size_t klen;
            p = read_length(p, eend, &klen, &status);
            if (p == NULL) {
                return status;
            }
            const unsigned char *key = p;
            p += klen;
            if (p == eend || *p != 0x12) {
                return p == eend ? DEC_SLOW : odd_tag(*p);
            }
            p++;
            size_t vlen;
            p = read_length(p, eend, &vlen, &status);
            if (p == NULL) {
                return status;
            }
            if (p + vlen != eend) {
                return DEC_SLOW; /* fields after the value */
            }
            Column *c = decoder_column(d, key, klen, end, prev, &status);
            if (c == NULL) {
                return status;
            }
            if (c->last_row == r) {
                return DEC_SLOW; /* duplicate key: the later entry wins in protobuf */
            }
            c->last_row = r;
            status = parse_feature(d, c, r, p, eend);
            if (status != DEC_OK) {
                return status;
            }
            p = eend;
            prev = c - d->cols;
        }
    }
    return DEC_OK;
}

static PyObject *
column_to_tuple(Column *c, Py_ssize_t nrows)
{
    PyObject *values;
    if (c->kind == KIND_BYTES && c->bytes_values != NULL) {
        values = c->bytes_values;
        Py_INCREF(values);
    } else if (c->kind == KIND_BYTES) {
        values = PyList_New(0);
    } else {
        values = PyBytes_FromStringAndSize((const char *)c->buf, (Py_ssize_t)c->buf_len);
    }
    if (values == NULL) {
        return NULL;
    }
    PyObject *lengths = PyBytes_FromStringAndSize((const char *)c->row_lengths,
                                                  nrows * (Py_ssize_t)sizeof(int64_t));
#if PY_BIG_ENDIAN
    if (lengths != NULL) {
        unsigned char *b = (unsigned char *)PyBytes_AS_STRING(lengths);
        for (Py_ssize_t i = 0; i < nrows; i++) {
            store_le64(b + 8 * i, (uint64_t)c->row_lengths[i]);
        }
    }
#endif
    PyObject *present = PyBytes_FromStringAndSize((const char *)c->present, nrows);
    PyObject *kindless = PyBytes_FromStringAndSize((const char *)c->kindless, nrows);
    if (lengths == NULL || present == NULL || kindless == NULL) {
        Py_DECREF(values);
        Py_XDECREF(lengths);
        Py_XDECREF(present);
        Py_XDECREF(kindless);
        return NULL;
    }
    return Py_BuildValue("(iNNNN)", c->kind, values, lengths, present, kindless);
}

static PyObject *
py_decode_columns(PyObject *self, PyObject *arg)
{
    /* A tuple snapshot: code run by the garbage collector while decoding
     * cannot change the records under us. */
    PyObject *seq = PySequence_Tuple(arg);
    if (seq == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError,
                         "`records` must be a sequence of bytes. Received: records of type %.100s",
                         Py_TYPE(arg)->tp_name);
        }
        return NULL;
    }
    Py_ssize_t nrows = PyTuple_GET_SIZE(seq);
    PyObject **items = &PyTuple_GET_ITEM(seq, 0);
    Decoder d;
    memset(&d, 0, sizeof(d));
    d.nrows = nrows;
    d.first = -1;
    PyObject *result = NULL;
    if (decoder_rehash(&d, 64) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t r = 0; r < nrows; r++) {
        Py_buffer view;
        if (PyObject_GetBuffer(items[r], &view, PyBUF_SIMPLE) < 0) {
            goto done;
        }
        const unsigned char *p = view.buf;
        d.mixed = 0;
        int status = parse_example(&d, r, p, p + view.len);
        PyBuffer_Release(&view);
        if (status == DEC_NOMEM) {
            if (!PyErr_Occurred()) {
                PyErr_NoMemory();
            }
            goto done;
        }
        if (status != DEC_OK || d.mixed) {
            const char *reason = status == DEC_SLOW  ? "slow_path"
                                 : status == DEC_BAD ? "not_an_example"
                                                     : "mixed_kind";
            result = Py_BuildValue("(Ons)", Py_None, r, reason);
            goto done;
        }
    }
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < d.ncols; i++) {
        PyObject *t = column_to_tuple(&d.cols[i], nrows);
        if (t == NULL || PyDict_SetItem(dict, d.cols[i].pyname, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(dict);
            goto done;
        }
        Py_DECREF(t);
    }
    result = Py_BuildValue("(Nns)", dict, (Py_ssize_t)-1, "");
done:
    decoder_free(&d);
    Py_DECREF(seq);
    return result;
}

/* ------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"crc32c", (PyCFunction)(void (*)(void))py_crc32c, METH_VARARGS | METH_KEYWORDS,
     "crc32c(data, crc=0) -> int\n\nCRC-32C of data, continuing from crc."},
    {"masked_crc32c", py_masked_crc32c, METH_O,
     "masked_crc32c(data) -> int\n\nTFRecord's masked CRC-32C of data."},
    {"frame_records", py_frame_records, METH_O,
     "frame_records(records) -> bytes\n\nTFRecord frames (length, masked CRCs) of every record, "
     "end to end."},
    {"_crc32c_software", py_crc32c_software, METH_VARARGS,
     "_crc32c_software(data, crc=0) -> int\n\nCRC-32C by table (for tests)."},
    {"scan_frames", py_scan_frames, METH_VARARGS,
     "scan_frames(buf, pos, max_record_bytes) -> (starts, next_pos, status)\n\n"
     "scan_records(buf, pos, True, max_record_bytes, False) that also returns\n"
     "where each verified frame starts: native int64 offsets, one per frame and\n"
     "one more for the offset after the last, as bytes. Runs without the GIL."},
    {"scan_records", py_scan_records, METH_VARARGS,
     "scan_records(buf, pos, verify_crc, max_record_bytes, keep=True)\n"
     "    -> (records, next_pos, status)\n\n"
     "Parse whole TFRecord frames from buf[pos:]. status: 0 need more bytes or end,\n"
     "1 length CRC mismatch, 2 data CRC mismatch, 3 length over max_record_bytes.\n"
     "With keep=False the frames are verified and counted: records is an int."},
    {"decode_columns", py_decode_columns, METH_O,
     "decode_columns(records) -> (columns | None, err_record, err_reason)\n\n"
     "Decode serialized tf.Examples into columns: name -> (kind, values,\n"
     "row_lengths, present, kindless); kind 0 none, 1 bytes (values: list of\n"
     "bytes), 2 float (LE float32 bytes), 3 int64 (LE int64 bytes; b'' for kind 0).\n"
     "err_reason: 'slow_path', 'not_an_example' or 'mixed_kind' for record\n"
     "err_record (columns is then None)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "featurepipe._speedups",
    .m_doc = "Optional compiled hot loops for featurepipe (CRC-32C, TFRecord framing, "
             "tf.Example columns).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    init_sw_table();
    init_hw();
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
#if defined(FP_ARM_CRC)
    const char *backend = have_hw_crc ? "armv8-crc" : "software";
#else
    const char *backend = have_hw_crc ? "sse4.2" : "software";
#endif
    if (PyModule_AddStringConstant(m, "crc_backend", backend) < 0 || fp_csv_register(m) < 0 ||
        fp_columns_register(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
