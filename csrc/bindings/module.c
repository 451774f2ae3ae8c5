/*
 * featurepipe._speedups: optional compiled hot loops for featurepipe's core.
 *
 * Plain CPython C API (no numpy C API). Everything here has a pure-Python
 * twin that gives the same results (see featurepipe/_native.py, the one
 * loader of this module). This file owns the module (multi-phase init, PEP
 * 489, with per-module state) and binds the CRC-32C and TFRecord framing
 * kernels (csrc/kernels/crc32c.c, tfrecord.c):
 *
 *   crc32c(data, crc=0) -> int          CRC-32C (Castagnoli), chainable
 *   frame_records(records) -> bytes     TFRecord frames of many records
 *   masked_crc32c(data) -> int          TFRecord's masked CRC-32C
 *   scan_records(buf, pos, verify_crc, max_record_bytes, keep=True)
 *       -> (records: list[bytes] | int, next_pos: int, status: int)
 *   scan_frames(buf, pos, max_record_bytes) -> (starts, next_pos, status)
 */
#include "bindings.h"

#include "../kernels/crc32c.h"
#include "../kernels/tfrecord.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Records at least this large are checked (and copied) without the GIL. */
#define NOGIL_BYTES (256 * 1024)

static uint32_t
crc32c_maybe_nogil(uint32_t crc, const unsigned char *p, size_t n)
{
    uint32_t out;
    if (n >= NOGIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        out = fp_crc32c(crc, p, n);
        Py_END_ALLOW_THREADS
    } else {
        out = fp_crc32c(crc, p, n);
    }
    return out;
}

/* ------------------------------------------------------------------------ */
/* CRC functions. */

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
        fp_frame_write(o, r, len);
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
    uint32_t out = fp_mask_crc(crc32c_maybe_nogil(0, view.buf, (size_t)view.len));
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
    uint32_t out = fp_crc32c_software((uint32_t)crc, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(out);
}

/* ------------------------------------------------------------------------ */
/* scan_records and scan_frames. */

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
        status = fp_frame_check(buf, n, p, max_bytes, &len);
        if (status != FRAME_OK) {
            break;
        }
        const unsigned char *data = buf + p + 12;
        if (!keep) {
            int bad_frame = 0;
            if (verify) {
                if (len >= NOGIL_BYTES) {
                    Py_BEGIN_ALLOW_THREADS
                    bad_frame = !fp_frame_data_ok(data, len);
                    Py_END_ALLOW_THREADS
                } else {
                    bad_frame = !fp_frame_data_ok(data, len);
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
                bad = !fp_frame_data_ok(data, len);
            }
            if (!bad) {
                memcpy(dst, data, len);
            }
            Py_END_ALLOW_THREADS
        } else {
            if (verify) {
                bad = !fp_frame_data_ok(data, len);
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

/* The whole scan runs without the GIL: the buffer stays exported (and so
 * mapped) until it ends. */
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
    int64_t *starts;
    size_t count = 0, next = 0;
    int status = SCAN_NEED_MORE, rc;
    Py_BEGIN_ALLOW_THREADS
    rc = fp_scan_frames(view.buf, (size_t)view.len, (size_t)pos, max_bytes, &starts, &count,
                        &next, &status);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (rc < 0) {
        return PyErr_NoMemory();
    }
    PyObject *index = PyBytes_FromStringAndSize((const char *)starts,
                                                (Py_ssize_t)((count + 1) * sizeof(int64_t)));
    free(starts);
    if (index == NULL) {
        return NULL;
    }
    return Py_BuildValue("(Nni)", index, (Py_ssize_t)next, status);
}

/* ------------------------------------------------------------------------ */

static PyMethodDef tfrecord_methods[] = {
    {"crc32c", (PyCFunction)(void (*)(void))py_crc32c, METH_VARARGS | METH_KEYWORDS,
     "crc32c($module, data, crc=0)\n--\n\nCRC-32C of data, continuing from crc."},
    {"masked_crc32c", py_masked_crc32c, METH_O,
     "masked_crc32c($module, data, /)\n--\n\nTFRecord's masked CRC-32C of data."},
    {"frame_records", py_frame_records, METH_O,
     "frame_records($module, records, /)\n--\n\n"
     "TFRecord frames (length, masked CRCs) of every record, end to end (bytes)."},
    {"_crc32c_software", py_crc32c_software, METH_VARARGS,
     "_crc32c_software($module, data, crc=0, /)\n--\n\nCRC-32C by table (for tests)."},
    {"scan_frames", py_scan_frames, METH_VARARGS,
     "scan_frames($module, buf, pos, max_record_bytes, /)\n--\n\n"
     "scan_records(buf, pos, True, max_record_bytes, False) that also returns\n"
     "where each verified frame starts: (starts, next_pos, status), starts native\n"
     "int64 offsets, one per frame and one more for the offset after the last,\n"
     "as bytes. Runs without the GIL."},
    {"scan_records", py_scan_records, METH_VARARGS,
     "scan_records($module, buf, pos, verify_crc, max_record_bytes, keep=True, /)\n--\n\n"
     "Parse whole TFRecord frames from buf[pos:]: (records, next_pos, status).\n"
     "status: 0 need more bytes or end, 1 length CRC mismatch, 2 data CRC mismatch,\n"
     "3 length over max_record_bytes. With keep=False the frames are verified and\n"
     "counted: records is an int."},
    {NULL, NULL, 0, NULL},
};

int
fp_tfrecord_exec(PyObject *module)
{
    if (PyModule_AddFunctions(module, tfrecord_methods) < 0) {
        return -1;
    }
    return PyModule_AddStringConstant(module, "crc_backend", fp_crc_backend());
}

/* ------------------------------------------------------------------------ */
/* The module: multi-phase init (PEP 489). */

static int
speedups_exec(PyObject *module)
{
    fp_crc_init(); /* process-wide constant tables: a second module instance reuses them */
    if (fp_tfrecord_exec(module) < 0 || fp_example_exec(module) < 0 ||
        fp_csv_exec(module) < 0 || fp_columns_exec(module) < 0) {
        return -1;
    }
    return 0;
}

static int
speedups_traverse(PyObject *module, visitproc visit, void *arg)
{
    fp_state *st = PyModule_GetState(module);
    if (st != NULL) {
        Py_VISIT(st->runner_type);
        Py_VISIT(st->outbuffer_type);
    }
    return 0;
}

static int
speedups_clear(PyObject *module)
{
    fp_state *st = PyModule_GetState(module);
    if (st != NULL) {
        Py_CLEAR(st->runner_type);
        Py_CLEAR(st->outbuffer_type);
    }
    return 0;
}

static void
speedups_free(void *module)
{
    speedups_clear((PyObject *)module);
}

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef speedups_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "featurepipe._speedups",
    .m_doc = "Optional compiled hot loops for featurepipe (CRC-32C, TFRecord framing, "
             "tf.Example columns, CSV conversion, feature-column ids).",
    .m_size = sizeof(fp_state),
    .m_methods = NULL,
    .m_slots = speedups_slots,
    .m_traverse = speedups_traverse,
    .m_clear = speedups_clear,
    .m_free = speedups_free,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_def);
}
