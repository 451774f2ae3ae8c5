/*
 * featurepipe._speedups, part: decode_columns, the binding of the tf.Example
 * wire decoder (csrc/kernels/example.c).
 *
 *   decode_columns(records) -> (columns: dict | None, err_record: int, err_reason: str)
 *
 * The kernel asks this binding (DecoderHooks) for what is made of Python
 * objects: a new column's name (a str: the key must be UTF-8) and the list of
 * a bytes column's values.
 */
#include "bindings.h"

#include "../kernels/example.h"

#include <stdlib.h>
#include <string.h>

static int
hook_new_column(void *ctx, Column *c, const unsigned char *key, size_t klen)
{
    PyObject *name = PyUnicode_DecodeUTF8((const char *)key, (Py_ssize_t)klen, "strict");
    if (name == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return DEC_BAD;
        }
        return DEC_NOMEM;
    }
    c->name_obj = name;
    return DEC_OK;
}

static int
hook_bytes_value(void *ctx, Column *c, const unsigned char *p, size_t n)
{
    if (c->bytes_values == NULL) {
        c->bytes_values = PyList_New(0);
        if (c->bytes_values == NULL) {
            return DEC_NOMEM;
        }
    }
    PyObject *v = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
    if (v == NULL) {
        return DEC_NOMEM;
    }
    int rc = PyList_Append((PyObject *)c->bytes_values, v);
    Py_DECREF(v);
    return rc < 0 ? DEC_NOMEM : DEC_OK;
}

static void
hook_free_column(void *ctx, Column *c)
{
    Py_XDECREF((PyObject *)c->name_obj);
    Py_XDECREF((PyObject *)c->bytes_values);
}

static const DecoderHooks hooks = {hook_new_column, hook_bytes_value, hook_free_column};

/* n int64 values as bytes, little-endian. */
static PyObject *
le64_bytes(const int64_t *v, Py_ssize_t n)
{
    PyObject *b = PyBytes_FromStringAndSize((const char *)v, n * (Py_ssize_t)sizeof(int64_t));
#if PY_BIG_ENDIAN
    if (b != NULL) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(b);
        for (Py_ssize_t i = 0; i < n; i++) {
            store_le64(out + 8 * i, (uint64_t)v[i]);
        }
    }
#endif
    return b;
}

static PyObject *
column_to_tuple(Column *c, Py_ssize_t nrows)
{
    PyObject *values;
    if (c->kind == KIND_BYTES && c->bytes_values != NULL) {
        values = (PyObject *)c->bytes_values;
        Py_INCREF(values);
    } else if (c->kind == KIND_BYTES) {
        values = PyList_New(0);
    } else {
        values = PyBytes_FromStringAndSize((const char *)c->buf, (Py_ssize_t)c->buf_len);
    }
    if (values == NULL) {
        return NULL;
    }
    PyObject *lengths = le64_bytes(c->row_lengths, nrows);
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
list_to_tuple(Column *c, Py_ssize_t nrows)
{
    PyObject *t = column_to_tuple(c, nrows); /* (kind, values, steps, present, kindless) */
    if (t == NULL) {
        return NULL;
    }
    PyObject *steps = le64_bytes(c->step_lengths, (Py_ssize_t)c->nsteps);
    if (steps == NULL) {
        Py_DECREF(t);
        return NULL;
    }
    /* replace kindless (unused for feature lists) by the values per step */
    PyObject *old = PyTuple_GET_ITEM(t, 4);
    PyTuple_SET_ITEM(t, 4, steps);
    Py_DECREF(old);
    return t;
}

/* Decode every record of the tuple `seq` into d: as Examples, or as
 * SequenceExamples when `contexts` is not NULL (a list as long as seq that
 * gets each record's context field as bytes). Returns -1 when every record
 * decodes, -2 with an exception set, else the index of the first record that
 * does not, with its status in *status (DEC_OK: its kinds clash, d->mixed). */
static Py_ssize_t
decode_records(Decoder *d, PyObject *seq, PyObject *contexts, int *status_out)
{
    Py_ssize_t nrows = PyTuple_GET_SIZE(seq);
    PyObject **items = &PyTuple_GET_ITEM(seq, 0);
    for (Py_ssize_t r = 0; r < nrows; r++) {
        Py_buffer view;
        if (PyObject_GetBuffer(items[r], &view, PyBUF_SIMPLE) < 0) {
            return -2;
        }
        const unsigned char *p = view.buf;
        PyObject *c = NULL;
        int status;
        d->mixed = 0;
        if (contexts == NULL) {
            status = fp_parse_example(d, r, p, p + view.len);
        } else {
            const unsigned char *ctx;
            size_t ctx_len;
            status = fp_parse_sequence_example(d, r, p, p + view.len, &ctx, &ctx_len);
            if (status == DEC_OK) {
                c = PyBytes_FromStringAndSize((const char *)ctx, (Py_ssize_t)ctx_len);
                if (c == NULL) {
                    status = DEC_NOMEM;
                }
            }
        }
        PyBuffer_Release(&view);
        if (status == DEC_NOMEM) {
            if (!PyErr_Occurred()) {
                PyErr_NoMemory();
            }
            return -2;
        }
        if (status != DEC_OK || d->mixed) {
            Py_XDECREF(c);
            *status_out = status;
            return r;
        }
        if (contexts != NULL) {
            PyList_SET_ITEM(contexts, r, c);
        }
    }
    return -1;
}

/* decode_columns (sequence 0) and decode_feature_lists (sequence 1). */
static PyObject *
decode(PyObject *arg, int sequence)
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
    PyObject *contexts = NULL;
    if (sequence && (contexts = PyList_New(nrows)) == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    Decoder d;
    PyObject *result = NULL;
    if (fp_decoder_init(&d, nrows, &hooks, NULL) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    int status = DEC_OK;
    Py_ssize_t bad = decode_records(&d, seq, contexts, &status);
    if (bad == -2) {
        goto done;
    }
    if (bad >= 0) {
        const char *reason = status == DEC_SLOW  ? "slow_path"
                             : status == DEC_BAD ? (sequence ? "not_a_sequence_example"
                                                             : "not_an_example")
                                                 : "mixed_kind";
        result = sequence ? Py_BuildValue("(OOns)", Py_None, Py_None, bad, reason)
                          : Py_BuildValue("(Ons)", Py_None, bad, reason);
        goto done;
    }
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < d.ncols; i++) {
        PyObject *t = sequence ? list_to_tuple(&d.cols[i], nrows)
                               : column_to_tuple(&d.cols[i], nrows);
        if (t == NULL || PyDict_SetItem(dict, (PyObject *)d.cols[i].name_obj, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(dict);
            goto done;
        }
        Py_DECREF(t);
    }
    result = sequence ? Py_BuildValue("(NOns)", dict, contexts, (Py_ssize_t)-1, "")
                      : Py_BuildValue("(Nns)", dict, (Py_ssize_t)-1, "");
done:
    fp_decoder_free(&d);
    Py_XDECREF(contexts);
    Py_DECREF(seq);
    return result;
}

static PyObject *
py_decode_columns(PyObject *self, PyObject *arg)
{
    return decode(arg, 0);
}

static PyObject *
py_decode_feature_lists(PyObject *self, PyObject *arg)
{
    return decode(arg, 1);
}

static PyMethodDef example_methods[] = {
    {"decode_feature_lists", py_decode_feature_lists, METH_O,
     "decode_feature_lists($module, records, /)\n--\n\n"
     "Decode the feature lists of serialized tf.SequenceExamples: (lists | None,\n"
     "contexts | None, err_record, err_reason). lists: name -> (kind, values,\n"
     "step_lengths, present, value_lengths) (steps per record, values per step:\n"
     "LE int64 bytes); contexts: each record's context field as a serialized\n"
     "Example. err_reason: 'slow_path', 'not_a_sequence_example' or 'mixed_kind'."},
    {"decode_columns", py_decode_columns, METH_O,
     "decode_columns($module, records, /)\n--\n\n"
     "Decode serialized tf.Examples into columns: (columns | None, err_record,\n"
     "err_reason). columns: name -> (kind, values, row_lengths, present, kindless);\n"
     "kind 0 none, 1 bytes (values: list of bytes), 2 float (LE float32 bytes),\n"
     "3 int64 (LE int64 bytes; b'' for kind 0). err_reason: 'slow_path',\n"
     "'not_an_example' or 'mixed_kind' for record err_record (columns is then None)."},
    {NULL, NULL, 0, NULL},
};

int
fp_example_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, example_methods);
}
