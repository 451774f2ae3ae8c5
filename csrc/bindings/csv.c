/*
 * featurepipe._speedups, part: CSV rows -> serialized tf.Examples, the binding
 * of csrc/kernels/csv.c (which describes what is read and how).
 *
 *   csv_cut(buf, start, delimiter, quotechar, max_records, field_limit, at_eof)
 *       -> (end, records, lines)
 *   csv_convert(buf, delimiter, quotechar, field_limit, width, plan, first_line)
 *       -> (records, positions, deferred)
 *   csv_infer(buf, delimiter, quotechar, field_limit, width, missing, settled, first_line)
 *       -> (rows, counts, unsure, deferred)
 */
#include "bindings.h"

#include "../kernels/csv.h"

#include <stdlib.h>
#include <string.h>

/* The fields of one csv_convert plan item, in order (see _speedups.pyi:
 * CsvPlanItem); the last two are optional. */
#define PLAN_ITEM_MIN 6
#define PLAN_ITEM_MAX 8

static PyObject *
py_csv_cut(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t start, max_records, field_limit;
    int delim, quote, at_eof;
    if (!PyArg_ParseTuple(args, "y*nCCnnp:csv_cut", &view, &start, &delim, &quote, &max_records,
                          &field_limit, &at_eof)) {
        return NULL;
    }
    const unsigned char *b = view.buf;
    Py_ssize_t end = view.len;
    Py_ssize_t pos = start < 0 ? 0 : (start > end ? end : start);
    Py_ssize_t records = 0, lines = 0;
    Row r;
    memset(&r, 0, sizeof r);
    if (fp_csv_row_reserve(&r, 1, 1) < 0) {
        goto nomem;
    }
    while (pos < end && records < max_records) {
        if (fp_csv_parse_row(b, &pos, end, delim, quote, field_limit, at_eof, &r) < 0) {
            goto nomem;
        }
        if (!r.complete) {
            break;
        }
        records++;
        lines += r.nlines;
    }
    fp_csv_row_free(&r);
    PyBuffer_Release(&view);
    return Py_BuildValue("nnn", pos, records, lines);
nomem:
    fp_csv_row_free(&r);
    PyBuffer_Release(&view);
    return PyErr_NoMemory();
}

/* The rows a walk deferred to Python: a list of (start, end, line). */
static PyObject *
spans_to_list(const FpSpans *d)
{
    PyObject *list = PyList_New((Py_ssize_t)(d->n / 3));
    if (list == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < d->n / 3; i++) {
        PyObject *span = Py_BuildValue("nnn", d->v[3 * i], d->v[3 * i + 1], d->v[3 * i + 2]);
        if (span == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, span);
    }
    return list;
}

/* The bytes of a tuple of bytes, as kernel strings (borrowed: the caller keeps
 * the tuple alive); NULL with an error. */
static Str *
tokens_from_tuple(PyObject *tuple, Py_ssize_t *count)
{
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    Str *out = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Str));
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *tok = PyTuple_GET_ITEM(tuple, k);
        if (!PyBytes_Check(tok)) {
            PyErr_SetString(PyExc_TypeError, "missing values must be bytes");
            PyMem_Free(out);
            return NULL;
        }
        out[k].p = (const unsigned char *)PyBytes_AS_STRING(tok);
        out[k].n = (size_t)PyBytes_GET_SIZE(tok);
    }
    *count = n;
    return out;
}

static void
free_plan(Feature *feats, Py_ssize_t nfeat)
{
    if (feats == NULL) {
        return;
    }
    for (Py_ssize_t j = 0; j < nfeat; j++) {
        PyMem_Free((void *)feats[j].missing);
    }
    PyMem_Free(feats);
}

/*
 * plan: a sequence of (column, kind, required, key, default_entry | None,
 * missing: tuple[bytes, ...][, separator: bytes | None, want: int]) in the
 * Example's wire (map) order; a separator makes the column a list split on
 * it (want: the values each row must have, -1 any number).
 */
static Feature *
read_plan(PyObject *plan, Py_ssize_t *nfeat)
{
    PyObject *seq = PySequence_Fast(plan, "plan must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Feature *feats = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Feature));
    if (feats == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t filled = 0;
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, j);
        PyObject *key, *dflt, *missing, *sep = Py_None;
        Feature *ft = &feats[j];
        ft->want = -1;
        if (PyTuple_Check(item) &&
            (PyTuple_GET_SIZE(item) < PLAN_ITEM_MIN || PyTuple_GET_SIZE(item) > PLAN_ITEM_MAX)) {
            PyErr_Format(PyExc_TypeError,
                         "csv_convert: plan[%zd] must be a tuple of %d to %d items (column, kind, "
                         "required, key, default_entry, missing[, separator, want]). "
                         "Received: a tuple of %zd items",
                         j, PLAN_ITEM_MIN, PLAN_ITEM_MAX, PyTuple_GET_SIZE(item));
            goto fail;
        }
        if (!PyArg_ParseTuple(item, "niiSOO!|On", &ft->column, &ft->kind, &ft->required, &key,
                              &dflt, &PyTuple_Type, &missing, &sep, &ft->want)) {
            goto fail;
        }
        if (sep != Py_None) {
            if (!PyBytes_Check(sep) || PyBytes_GET_SIZE(sep) < 1) {
                PyErr_SetString(PyExc_TypeError, "a separator must be non-empty bytes or None");
                goto fail;
            }
            ft->sep = (const unsigned char *)PyBytes_AS_STRING(sep);
            ft->sep_len = PyBytes_GET_SIZE(sep);
        }
        if (ft->kind != KIND_BYTES && ft->kind != KIND_FLOAT && ft->kind != KIND_INT64) {
            PyErr_Format(PyExc_ValueError, "unknown kind %d in plan", ft->kind);
            goto fail;
        }
        ft->missing = tokens_from_tuple(missing, &ft->nmissing);
        if (ft->missing == NULL) {
            goto fail;
        }
        filled = j + 1;
        ft->key = PyBytes_AS_STRING(key);
        ft->key_len = PyBytes_GET_SIZE(key);
        if (dflt != Py_None) {
            if (!PyBytes_Check(dflt)) {
                PyErr_SetString(PyExc_TypeError, "default entry must be bytes or None");
                goto fail;
            }
            ft->default_entry = PyBytes_AS_STRING(dflt);
            ft->default_len = PyBytes_GET_SIZE(dflt);
        }
    }
    /* The borrowed pointers stay valid: the caller keeps `plan` alive. */
    Py_DECREF(seq);
    *nfeat = n;
    return feats;
fail:
    Py_DECREF(seq);
    free_plan(feats, filled);
    return NULL;
}

/* Where csv_convert's records go: each a new bytes object the kernel fills. */
typedef struct {
    PyObject *records;
    PyObject *positions;
} Emit;

static unsigned char *
emit_record(void *ctx, Py_ssize_t size, Py_ssize_t line)
{
    Emit *e = ctx;
    PyObject *rec = PyBytes_FromStringAndSize(NULL, size);
    PyObject *ln = rec ? PyLong_FromSsize_t(line) : NULL;
    if (ln == NULL || PyList_Append(e->records, rec) < 0 || PyList_Append(e->positions, ln) < 0) {
        Py_XDECREF(rec);
        Py_XDECREF(ln);
        return NULL;
    }
    Py_DECREF(rec); /* the list holds it: the kernel fills it now */
    Py_DECREF(ln);
    return (unsigned char *)PyBytes_AS_STRING(rec);
}

static PyObject *
py_csv_convert(PyObject *self, PyObject *args)
{
    Py_buffer view;
    int delim, quote;
    Py_ssize_t field_limit, width, first_line;
    PyObject *plan;
    if (!PyArg_ParseTuple(args, "y*CCnnOn:csv_convert", &view, &delim, &quote, &field_limit,
                          &width, &plan, &first_line)) {
        return NULL;
    }
    PyObject *records = NULL, *positions = NULL, *deferred = NULL, *result = NULL;
    Value *vals = NULL;
    FpSpans spans = {NULL, 0, 0};
    Row r;
    memset(&r, 0, sizeof r);
    Py_ssize_t nfeat = 0;
    Feature *feats = read_plan(plan, &nfeat);
    if (feats == NULL) {
        goto done;
    }
    for (Py_ssize_t j = 0; j < nfeat; j++) {
        if (feats[j].column >= width) {
            PyErr_SetString(PyExc_ValueError, "plan column out of range");
            goto done;
        }
    }
    vals = PyMem_Calloc((size_t)(nfeat ? nfeat : 1), sizeof(Value));
    records = PyList_New(0);
    positions = PyList_New(0);
    if (vals == NULL || records == NULL || positions == NULL || fp_csv_row_reserve(&r, 1, 1) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        goto done;
    }
    Walk w = {view.buf, 0, view.len, first_line, delim, quote, field_limit, width, 0, 0, &spans};
    Emit emit = {records, positions};
    int more = fp_csv_convert_rows(&w, &r, feats, nfeat, vals, emit_record, &emit);
    if (more < 0) {
        if (more == -1) {
            PyErr_NoMemory();
        }
        goto done;
    }
    deferred = spans_to_list(&spans);
    if (deferred == NULL) {
        goto done;
    }
    result = PyTuple_Pack(3, records, positions, deferred);
done:
    Py_XDECREF(records);
    Py_XDECREF(positions);
    Py_XDECREF(deferred);
    PyMem_Free(vals);
    free_plan(feats, nfeat);
    free(spans.v);
    fp_csv_row_free(&r);
    PyBuffer_Release(&view);
    return result;
}

/*
 * csv_infer(buf, delimiter, quotechar, field_limit, width, missing, settled, first_line)
 *     -> (rows, counts, unsure, deferred)
 * counts: [present, ints, floats, others] per column; unsure: (column, text)
 * of cells only Python can classify; settled: one byte per column, nonzero
 * for columns already known to be text (they are only counted present).
 */
/* A cell only Python can classify: (column, text) appended to the list ctx. */
static int
unsure_cell(void *ctx, Py_ssize_t c, const unsigned char *s, Py_ssize_t n)
{
    PyObject *u = Py_BuildValue("(ny#)", c, (const char *)s, n);
    if (u == NULL || PyList_Append((PyObject *)ctx, u) < 0) {
        Py_XDECREF(u);
        return -1;
    }
    Py_DECREF(u);
    return 0;
}

static PyObject *
py_csv_infer(PyObject *self, PyObject *args)
{
    Py_buffer view, settled;
    int delim, quote;
    Py_ssize_t field_limit, width, first_line;
    PyObject *missing;
    if (!PyArg_ParseTuple(args, "y*CCnnO!y*n:csv_infer", &view, &delim, &quote, &field_limit,
                          &width, &PyTuple_Type, &missing, &settled, &first_line)) {
        return NULL;
    }
    PyObject *result = NULL, *unsure = NULL, *deferred = NULL, *counts = NULL;
    Py_ssize_t *cnt = NULL, *unsure_cols = NULL;
    Str *tokens = NULL;
    Py_ssize_t ntokens = 0;
    FpSpans spans = {NULL, 0, 0};
    Row r;
    memset(&r, 0, sizeof r);
    tokens = tokens_from_tuple(missing, &ntokens);
    if (tokens == NULL) {
        goto done;
    }
    if (settled.len != width) {
        PyErr_SetString(PyExc_ValueError, "settled must have one byte per column");
        goto done;
    }
    cnt = PyMem_Calloc((size_t)(4 * (width ? width : 1)), sizeof(Py_ssize_t));
    unsure_cols = PyMem_Calloc((size_t)(width ? width : 1), sizeof(Py_ssize_t));
    unsure = PyList_New(0);
    if (cnt == NULL || unsure_cols == NULL || unsure == NULL || fp_csv_row_reserve(&r, 1, 1) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        goto done;
    }
    Py_ssize_t rows = 0;
    Walk w = {view.buf, 0, view.len, first_line, delim, quote, field_limit, width, 0, 0, &spans};
    int more = fp_csv_infer_rows(&w, &r, tokens, ntokens, settled.buf, cnt, unsure_cols, &rows,
                                 unsure_cell, unsure);
    if (more < 0) {
        if (more == -1) {
            PyErr_NoMemory();
        }
        goto done;
    }
    deferred = spans_to_list(&spans);
    counts = deferred ? PyList_New(width) : NULL;
    if (counts == NULL) {
        goto done;
    }
    for (Py_ssize_t c = 0; c < width; c++) {
        Py_ssize_t *k = cnt + 4 * c;
        PyObject *t = Py_BuildValue("(nnnn)", k[0], k[1], k[2], k[3]);
        if (t == NULL) {
            goto done;
        }
        PyList_SET_ITEM(counts, c, t);
    }
    result = Py_BuildValue("(nOOO)", rows, counts, unsure, deferred);
done:
    Py_XDECREF(counts);
    Py_XDECREF(unsure);
    Py_XDECREF(deferred);
    PyMem_Free(cnt);
    PyMem_Free(unsure_cols);
    PyMem_Free(tokens);
    free(spans.v);
    fp_csv_row_free(&r);
    PyBuffer_Release(&view);
    PyBuffer_Release(&settled);
    return result;
}

static PyMethodDef csv_methods[] = {
    {"csv_cut", py_csv_cut, METH_VARARGS,
     "csv_cut($module, buf, start, delimiter, quotechar, max_records, field_limit, at_eof, /)\n"
     "--\n\n"
     "Walk whole CSV records (blank lines count) from buf[start:], a record start,\n"
     "up to max_records: (end, records, lines); end is just past the last whole one.\n"
     "Without at_eof a record the buffer cuts (or a final \"\\r\" a \"\\n\" may follow)\n"
     "is left out."},
    {"csv_convert", py_csv_convert, METH_VARARGS,
     "csv_convert($module, buf, delimiter, quotechar, field_limit, width, plan, first_line, /)\n"
     "--\n\n"
     "Convert the whole CSV records in buf (line first_line first) into serialized\n"
     "tf.Examples following plan: (records, positions, deferred); rows it does not\n"
     "convert come back in deferred as (start, end, line) for the pure-Python path.\n"
     "A plan item is (column, kind, required, key, default_entry, missing[,\n"
     "separator, want]): 6 or 8 items."},
    {"csv_infer", py_csv_infer, METH_VARARGS,
     "csv_infer($module, buf, delimiter, quotechar, field_limit, width, missing, settled, "
     "first_line, /)\n--\n\n"
     "Schema-inference counts of the whole CSV records in buf: (rows, counts,\n"
     "unsure, deferred), counts per column (present, ints, floats, others); cells\n"
     "only Python can classify come back in unsure as (column, bytes), rows it does\n"
     "not read in deferred."},
    {NULL, NULL, 0, NULL},
};

int
fp_csv_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, csv_methods);
}
