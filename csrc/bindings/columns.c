/*
 * featurepipe._speedups, part: feature-column ids, the binding of
 * csrc/kernels/columns.c (plans and their run), vocab.c, farmhash.c and
 * runner.c (ColumnsRunner's queue and threads).
 *
 *   fingerprint64(data) -> int
 *   columns_compile(features, ops, vocabularies) -> plan (a capsule)
 *   columns_run(plan, records) -> (buffers, widths) | None
 *   ColumnsRunner(plan, threads=1)   .submit(units) .take() .close() .pending .workers
 *
 * The Python side (featurepipe.keras._compiled) builds the plan from column
 * specs and runs it in a tf.data map; it checks every id against the TF-op
 * path in its tests. The kernels' work runs without the GIL.
 */
#include "bindings.h"

#include "../kernels/columns.h"
#include "../kernels/farmhash.h"
#include "../kernels/runner.h"
#include "../kernels/vocab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_CAPSULE "featurepipe.columns_plan"

static PyObject *
py_fingerprint64(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    uint64_t h = fp_fingerprint64(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(h);
}

/* ------------------------------------------------------------------------ */
/* Plans: the Python descriptions parsed into a kernel Plan. */

static void
plan_capsule_free(PyObject *cap)
{
    fp_plan_free(PyCapsule_GetPointer(cap, PLAN_CAPSULE));
}

static int
strings_from_seq(PyObject *seq, Str **out, unsigned char **store, Py_ssize_t *count)
{
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of bytes");
    if (fast == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyBytes_Check(b)) {
            Py_DECREF(fast);
            PyErr_SetString(PyExc_TypeError, "expected bytes");
            return -1;
        }
        total += (size_t)PyBytes_GET_SIZE(b);
    }
    *store = malloc(total ? total : 1);
    *out = calloc(n > 0 ? (size_t)n : 1, sizeof(Str));
    if (*store == NULL || *out == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    size_t off = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = PySequence_Fast_GET_ITEM(fast, i);
        size_t len = (size_t)PyBytes_GET_SIZE(b);
        memcpy(*store + off, PyBytes_AS_STRING(b), len);
        (*out)[i].p = *store + off;
        (*out)[i].n = len;
        off += len;
    }
    *count = n;
    Py_DECREF(fast);
    return 0;
}

static int
vocab_build(Vocab *v, PyObject *desc)
{
    /* desc: (is_str, entries) */
    int is_str;
    PyObject *entries;
    if (!PyArg_ParseTuple(desc, "pO:columns_compile vocabulary", &is_str, &entries)) {
        return -1;
    }
    v->is_str = is_str;
    Py_ssize_t n = 0;
    if (is_str) {
        if (strings_from_seq(entries, &v->keys_s, &v->store, &n) < 0) {
            return -1;
        }
    } else {
        PyObject *fast = PySequence_Fast(entries, "expected a sequence of ints");
        if (fast == NULL) {
            return -1;
        }
        n = PySequence_Fast_GET_SIZE(fast);
        v->keys_i = calloc((size_t)(n ? n : 1), sizeof(int64_t));
        if (v->keys_i == NULL) {
            Py_DECREF(fast);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            long long x = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
            if (x == -1 && PyErr_Occurred()) {
                Py_DECREF(fast);
                return -1;
            }
            v->keys_i[i] = (int64_t)x;
        }
        Py_DECREF(fast);
    }
    v->size = n;
    const char *msg = NULL;
    int rc = fp_vocab_index(v, &msg);
    if (rc == -1) {
        PyErr_NoMemory();
    } else if (rc < 0) {
        PyErr_SetString(PyExc_ValueError, msg);
    }
    return rc < 0 ? -1 : 0;
}

static int
feat_build(Feat *f, PyObject *desc)
{
    /* desc: (name: bytes, kind, fixed, default: None | sequence of fixed values) */
    const char *name;
    Py_ssize_t name_len;
    PyObject *def;
    if (!PyArg_ParseTuple(desc, "y#inO:columns_compile feature", &name, &name_len, &f->kind,
                          &f->fixed, &def)) {
        return -1;
    }
    if (f->kind < K_BYTES || f->kind > K_INT64) {
        PyErr_SetString(PyExc_ValueError, "bad feature kind");
        return -1;
    }
    f->name = malloc(name_len ? (size_t)name_len : 1);
    if (f->name == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(f->name, name, (size_t)name_len);
    f->name_len = (size_t)name_len;
    if (def == Py_None) {
        return 0;
    }
    if (f->fixed < 0) {
        PyErr_SetString(PyExc_ValueError, "a default needs a fixed length");
        return -1;
    }
    f->has_default = 1;
    Py_ssize_t n = 0;
    if (f->kind == K_BYTES) {
        if (strings_from_seq(def, &f->def_s, &f->def_store, &n) < 0) {
            return -1;
        }
    } else {
        PyObject *fast = PySequence_Fast(def, "expected a sequence of numbers");
        if (fast == NULL) {
            return -1;
        }
        n = PySequence_Fast_GET_SIZE(fast);
        f->def_i = calloc((size_t)(n ? n : 1), sizeof(int64_t));
        f->def_f = calloc((size_t)(n ? n : 1), sizeof(float));
        if (f->def_i == NULL || f->def_f == NULL) {
            Py_DECREF(fast);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *x = PySequence_Fast_GET_ITEM(fast, i);
            if (f->kind == K_INT64) {
                long long v = PyLong_AsLongLong(x);
                if (v == -1 && PyErr_Occurred()) {
                    Py_DECREF(fast);
                    return -1;
                }
                f->def_i[i] = (int64_t)v;
            } else {
                double v = PyFloat_AsDouble(x);
                if (v == -1.0 && PyErr_Occurred()) {
                    Py_DECREF(fast);
                    return -1;
                }
                f->def_f[i] = (float)v;
            }
        }
        Py_DECREF(fast);
    }
    if (n != f->fixed) {
        PyErr_SetString(PyExc_ValueError, "the default must have `fixed` values");
        return -1;
    }
    return 0;
}

static int
op_build(Op *o, PyObject *desc, const Plan *pl, int leaf)
{
    /* desc: (op, fidx, drop, size, norm, na, nb, bounds, num_bins, vocab, num_oov,
     *        default (None | int), hash_key, leaves) */
    PyObject *bounds, *defobj, *leaves;
    unsigned long long hash_key;
    Py_ssize_t vidx;
    long long num_bins, num_oov;
    if (!PyArg_ParseTuple(desc, "inpnidd" "OLnLOKO:columns_compile op", &o->op, &o->fidx, &o->drop,
                          &o->size, &o->norm, &o->na, &o->nb, &bounds, &num_bins, &vidx, &num_oov,
                          &defobj, &hash_key, &leaves)) {
        return -1;
    }
    o->num_bins = (int64_t)num_bins;
    o->num_oov = (int64_t)num_oov;
    o->hash_key = (uint64_t)hash_key;
    if (defobj != Py_None) {
        long long d = PyLong_AsLongLong(defobj);
        if (d == -1 && PyErr_Occurred()) {
            return -1;
        }
        o->defval = (int64_t)d;
        o->has_def = 1;
    }
    if (o->op == OP_VOCAB && vidx >= 0 && vidx < pl->nvocabs) {
        o->vocab = &pl->vocabs[vidx]; /* else NULL: fp_op_check says why */
    }
    if (o->op == OP_BUCKET) {
        PyObject *fast = PySequence_Fast(bounds, "expected a sequence of floats");
        if (fast == NULL) {
            return -1;
        }
        o->nbounds = PySequence_Fast_GET_SIZE(fast);
        o->bounds = calloc((size_t)(o->nbounds ? o->nbounds : 1), sizeof(float));
        if (o->bounds == NULL) {
            Py_DECREF(fast);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < o->nbounds; i++) {
            double b = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
            if (b == -1.0 && PyErr_Occurred()) {
                Py_DECREF(fast);
                return -1;
            }
            o->bounds[i] = (float)b;
        }
        Py_DECREF(fast);
    }
    if (o->op == OP_CROSS) {
        PyObject *fast = PySequence_Fast(leaves, "expected a sequence of leaves");
        if (fast == NULL) {
            return -1;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
        o->leaves = calloc((size_t)(n ? n : 1), sizeof(Op));
        if (o->leaves == NULL) {
            Py_DECREF(fast);
            PyErr_NoMemory();
            return -1;
        }
        o->nleaves = n;
        for (Py_ssize_t i = 0; i < n; i++) {
            Op *leaf = &o->leaves[i];
            if (op_build(leaf, PySequence_Fast_GET_ITEM(fast, i), pl, 1) < 0) {
                Py_DECREF(fast);
                return -1;
            }
        }
        Py_DECREF(fast);
    }
    const char *msg = fp_op_check(o, pl, leaf);
    if (msg != NULL) {
        PyErr_SetString(PyExc_ValueError, msg);
        return -1;
    }
    return 0;
}

static PyObject *
py_columns_compile(PyObject *self, PyObject *args)
{
    PyObject *feats, *ops, *vocabs;
    if (!PyArg_ParseTuple(args, "OOO", &feats, &ops, &vocabs)) {
        return NULL;
    }
    Plan *pl = NULL;
    PyObject *ffast = NULL, *ofast = NULL, *vfast = NULL;
    ffast = PySequence_Fast(feats, "features: expected a sequence");
    ofast = ffast ? PySequence_Fast(ops, "ops: expected a sequence") : NULL;
    vfast = ofast ? PySequence_Fast(vocabs, "vocabularies: expected a sequence") : NULL;
    if (vfast == NULL) {
        goto fail;
    }
    Py_ssize_t nf = PySequence_Fast_GET_SIZE(ffast);
    Py_ssize_t no = PySequence_Fast_GET_SIZE(ofast);
    Py_ssize_t nv = PySequence_Fast_GET_SIZE(vfast);
    pl = fp_plan_new(nf, no, nv);
    if (pl == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < nf; i++) {
        pl->nfeats = i + 1;
        Feat *f = &pl->feats[i];
        if (feat_build(f, PySequence_Fast_GET_ITEM(ffast, i)) < 0) {
            goto fail;
        }
        const char *msg = NULL;
        if (fp_plan_add_feature(pl, i, &msg) < 0) {
            PyErr_SetString(PyExc_ValueError, msg);
            goto fail;
        }
    }
    for (Py_ssize_t i = 0; i < nv; i++) {
        pl->nvocabs = i + 1;
        if (vocab_build(&pl->vocabs[i], PySequence_Fast_GET_ITEM(vfast, i)) < 0) {
            goto fail;
        }
    }
    for (Py_ssize_t i = 0; i < no; i++) {
        pl->nops = i + 1;
        if (op_build(&pl->ops[i], PySequence_Fast_GET_ITEM(ofast, i), pl, 0) < 0) {
            goto fail;
        }
    }
    Py_DECREF(ffast);
    Py_DECREF(ofast);
    Py_DECREF(vfast);
    PyObject *cap = PyCapsule_New(pl, PLAN_CAPSULE, plan_capsule_free);
    if (cap == NULL) {
        fp_plan_free(pl);
    }
    return cap;
fail:
    Py_XDECREF(ffast);
    Py_XDECREF(ofast);
    Py_XDECREF(vfast);
    fp_plan_free(pl);
    return NULL;
}


static PyObject *
outs_to_python(const Plan *pl, const OutBuf *outs)
{
    PyObject *bufs = PyTuple_New(pl->nops);
    PyObject *widths = bufs ? PyTuple_New(pl->nops) : NULL;
    if (widths == NULL) {
        Py_XDECREF(bufs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < pl->nops; i++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)outs[i].buf, (Py_ssize_t)outs[i].len);
        PyObject *w = b ? PyLong_FromSsize_t(outs[i].width) : NULL;
        if (w == NULL) {
            Py_XDECREF(b);
            Py_DECREF(bufs);
            Py_DECREF(widths);
            return NULL;
        }
        PyTuple_SET_ITEM(bufs, i, b);
        PyTuple_SET_ITEM(widths, i, w);
    }
    return Py_BuildValue("(NN)", bufs, widths);
}

/* run_batch without the GIL: (buffers, widths), None, or NULL with an error. */
static PyObject *
run_records(const Plan *pl, const Str *recs, Py_ssize_t nrows)
{
    OutBuf *outs;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = fp_run_batch(pl, recs, nrows, &outs);
    Py_END_ALLOW_THREADS
    if (st == RUN_NOMEM) {
        return PyErr_NoMemory();
    }
    if (st == RUN_SLOW) {
        Py_RETURN_NONE;
    }
    PyObject *result = outs_to_python(pl, outs);
    fp_free_outs(outs, pl->nops);
    return result;
}

static PyObject *
py_columns_run(PyObject *self, PyObject *args)
{
    PyObject *cap, *records;
    if (!PyArg_ParseTuple(args, "OO:columns_run", &cap, &records)) {
        return NULL;
    }
    const Plan *pl = PyCapsule_GetPointer(cap, PLAN_CAPSULE);
    if (pl == NULL) {
        return NULL;
    }
    /* A snapshot (a list or tuple is used as is; other sequences are copied):
     * the bytes stay alive, and unchanged, while the GIL is released. */
    PyObject *seq = PySequence_Fast(records, "`records` must be a sequence of bytes");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t nrows = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *result = NULL;
    Str *recs = calloc((size_t)(nrows ? nrows : 1), sizeof(Str));
    if (recs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t r = 0; r < nrows; r++) {
        if (!PyBytes_Check(items[r])) {
            PyErr_Format(PyExc_TypeError, "`records` must hold bytes. Received: %.100s",
                         Py_TYPE(items[r])->tp_name);
            goto done;
        }
        recs[r].p = (const unsigned char *)PyBytes_AS_STRING(items[r]);
        recs[r].n = (size_t)PyBytes_GET_SIZE(items[r]);
    }
    result = run_records(pl, recs, nrows);
done:
    free(recs);
    Py_DECREF(seq);
    return result;
}

/* ------------------------------------------------------------------------ */
/* ColumnsRunner: fp_run_batch on worker threads (runner.c) of its own, ahead of the caller.
 *
 *   runner = ColumnsRunner(plan, threads)
 *   runner.submit(units)   # a batch: queued, computed by a worker without the GIL
 *   runner.take()          # the oldest batch's (buffers, widths) | None
 *
 * A unit is (buffer, starts, first, count): the records of frames first ..
 * first + count - 1 of a buffer of verified TFRecord frames, where starts
 * (native int64, as scan_frames returns) gives each frame's offset; or a list
 * of serialized records (bytes). The runner holds the units' buffers (and so
 * keeps a mapped window mapped) until their batch is taken. The workers touch
 * no Python object, so the C work of the next batches overlaps the caller's
 * Python work (handing the previous batch to TF) instead of waiting for it.
 * Buffers are returned without a copy, as read-only objects that own them. */

#ifndef _WIN32
typedef struct {
    PyObject_HEAD
    void *buf;
    Py_ssize_t len;
} OutBuffer;

static int
outbuffer_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    OutBuffer *o = (OutBuffer *)self;
    return PyBuffer_FillInfo(view, self, o->buf, o->len, 1, flags);
}

static void
outbuffer_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    free(((OutBuffer *)self)->buf);
    tp->tp_free(self);
    Py_DECREF(tp); /* a heap type: each instance holds a reference to it */
}

static PyType_Slot outbuffer_slots[] = {
    {Py_tp_dealloc, outbuffer_dealloc},
    {Py_bf_getbuffer, outbuffer_getbuffer},
    {Py_tp_doc, "A read-only buffer of a ColumnsRunner result (it owns the memory)."},
    {0, NULL},
};

static PyType_Spec outbuffer_spec = {
    .name = "featurepipe._speedups.OutBuffer",
    .basicsize = sizeof(OutBuffer),
    .flags = Py_TPFLAGS_DEFAULT
#ifdef Py_TPFLAGS_DISALLOW_INSTANTIATION
             | Py_TPFLAGS_DISALLOW_INSTANTIATION
#endif
#ifdef Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_IMMUTABLETYPE
#endif
    ,
    .slots = outbuffer_slots,
};

/* What keeps a job's records alive: held until the job is taken. */
typedef struct {
    PyObject *keep;     /* the units (payload lists as tuples): what recs point into */
    Py_buffer *views;
    Py_ssize_t nviews;
} Hold;

typedef struct {
    PyObject_HEAD
    PyObject *cap;
    int closed;
    FpRunner q; /* the queue and the workers (runner.c); valid once cap is set */
} Runner;

static Hold *
job_hold(Job *j)
{
    return (Hold *)j->hold;
}

static void
job_free(Job *j, Py_ssize_t nops)
{
    /* With the GIL. */
    Hold *h = job_hold(j);
    if (h != NULL) {
        for (Py_ssize_t i = 0; i < h->nviews; i++) {
            PyBuffer_Release(&h->views[i]);
        }
        free(h->views);
        Py_XDECREF(h->keep);
        free(h);
    }
    free(j->recs);
    fp_free_outs(j->outs, nops);
    free(j);
}

static int
runner_check_usable(Runner *r)
{
    if (r->cap == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ColumnsRunner is not initialized");
        return -1;
    }
    if (r->closed) {
        PyErr_SetString(PyExc_RuntimeError, "ColumnsRunner is closed");
        return -1;
    }
    if (fp_runner_forked(&r->q)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "a ColumnsRunner cannot be used in a forked process; make a new one there");
        return -1;
    }
    return 0;
}

/* Stops the workers (waits for them to leave), frees every job not taken.
 * Idempotent. */
static void
runner_close_impl(Runner *r)
{
    Job *jobs;
    r->closed = 1;
    if (!fp_runner_forked(&r->q)) {
        Py_BEGIN_ALLOW_THREADS
        jobs = fp_runner_stop(&r->q);
        Py_END_ALLOW_THREADS
    } else {
        jobs = fp_runner_stop(&r->q);
    }
    while (jobs != NULL) {
        Job *j = jobs;
        jobs = j->next;
        job_free(j, r->q.pl->nops);
    }
}

static int
runner_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    Runner *r = (Runner *)self;
    static char *kwlist[] = {"plan", "threads", NULL};
    PyObject *cap;
    Py_ssize_t nthreads = 1;
    if (r->cap != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ColumnsRunner is already initialized");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|n:ColumnsRunner", kwlist, &cap, &nthreads)) {
        return -1;
    }
    const Plan *pl = PyCapsule_GetPointer(cap, PLAN_CAPSULE);
    if (pl == NULL) {
        return -1;
    }
    if (nthreads < 1 || nthreads > 64) {
        PyErr_Format(PyExc_ValueError,
                     "`threads` must be in 1..64. Received: threads=%zd", nthreads);
        return -1;
    }
    if (fp_runner_init(&r->q, pl, nthreads) < 0) {
        PyErr_SetString(PyExc_OSError, "cannot make the ColumnsRunner's locks");
        return -1;
    }
    Py_INCREF(cap);
    r->cap = cap;
    return 0;
}

static void
runner_dealloc(PyObject *self)
{
    Runner *r = (Runner *)self;
    PyTypeObject *tp = Py_TYPE(self);
    if (r->cap != NULL) {
        runner_close_impl(r);
        fp_runner_destroy(&r->q);
        Py_DECREF(r->cap);
    }
    tp->tp_free(self);
    Py_DECREF(tp); /* a heap type: each instance holds a reference to it */
}

/* The buffers of a and b, held by the job until it is freed; -1 with an error. */
static int
hold_views(Job *j, PyObject *a, PyObject *b, Py_buffer **va, Py_buffer **vb)
{
    Hold *h = job_hold(j);
    *va = &h->views[h->nviews];
    if (PyObject_GetBuffer(a, *va, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    h->nviews++;
    *vb = &h->views[h->nviews];
    if (PyObject_GetBuffer(b, *vb, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    h->nviews++;
    return 0;
}

/* Room for need records in j->recs (capacity *cap); -1 with an error. */
static int
recs_reserve(Job *j, Py_ssize_t need, Py_ssize_t *cap)
{
    if (need <= *cap) {
        return 0;
    }
    Py_ssize_t grow = *cap ? *cap : 1024;
    while (grow < need) {
        grow *= 2;
    }
    Str *grown = realloc(j->recs, (size_t)grow * sizeof(Str));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    j->recs = grown;
    *cap = grow;
    return 0;
}

/* Records of one (buffer, starts, first, count) unit; -1 with an error. */
static int
unit_frames(PyObject *unit, Job *j, Py_ssize_t *nrec, Py_ssize_t *caprec)
{
    PyObject *bufobj, *startsobj;
    Py_ssize_t first, count;
    if (!PyArg_ParseTuple(unit, "OOnn", &bufobj, &startsobj, &first, &count)) {
        return -1;
    }
    Py_buffer *bv, *sv;
    if (hold_views(j, bufobj, startsobj, &bv, &sv) < 0) {
        return -1;
    }
    Py_ssize_t nstarts = sv->len / (Py_ssize_t)sizeof(int64_t);
    if (first < 0 || count < 0 || count > nstarts || first > nstarts - 1 - count) {
        PyErr_Format(PyExc_ValueError, "frames %zd..%zd are not in `starts` (%zd offsets)",
                     first, first + count, nstarts);
        return -1;
    }
    if (recs_reserve(j, *nrec + count, caprec) < 0) {
        return -1;
    }
    const int64_t *starts = sv->buf; /* the bytes of an int64 array: may be unaligned */
    const unsigned char *buf = bv->buf;
    int64_t s, e;
    memcpy(&s, starts + first, 8);
    for (Py_ssize_t k = 0; k < count; k++) {
        memcpy(&e, starts + first + k + 1, 8);
        if (s < 0 || e > (int64_t)bv->len || e - s < 16) {
            PyErr_SetString(PyExc_ValueError, "`starts` does not describe frames of `buffer`");
            return -1;
        }
        j->recs[*nrec].p = buf + s + 12;
        j->recs[*nrec].n = (size_t)(e - s - 16);
        (*nrec)++;
        s = e;
    }
    return 0;
}

/* Records of a tuple of bytes; -1 with an error. */
static int
unit_payloads(PyObject *tuple, Job *j, Py_ssize_t *nrec, Py_ssize_t *caprec)
{
    Py_ssize_t count = PyTuple_GET_SIZE(tuple);
    if (recs_reserve(j, *nrec + count, caprec) < 0) {
        return -1;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *rec = PyTuple_GET_ITEM(tuple, k);
        if (!PyBytes_Check(rec)) {
            PyErr_Format(PyExc_TypeError, "records must be bytes. Received: %.100s",
                         Py_TYPE(rec)->tp_name);
            return -1;
        }
        j->recs[*nrec].p = (const unsigned char *)PyBytes_AS_STRING(rec);
        j->recs[*nrec].n = (size_t)PyBytes_GET_SIZE(rec);
        (*nrec)++;
    }
    return 0;
}

/* A gather unit: (source, starts, indices, positions). Record indices[k] of
 * source goes to row positions[k] of the batch; source is a buffer of verified
 * frames (starts as scan_frames gives it) or, with starts None, a list or tuple
 * of serialized records. indices and positions: native int64 buffers. */
static int
is_gather_unit(PyObject *unit)
{
    return PyTuple_Check(unit) && PyTuple_GET_SIZE(unit) == 4 &&
           !PyLong_Check(PyTuple_GET_ITEM(unit, 2));
}

static Py_ssize_t
gather_len(PyObject *unit)
{
    Py_buffer v;
    if (PyObject_GetBuffer(PyTuple_GET_ITEM(unit, 2), &v, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    Py_ssize_t n = v.len / (Py_ssize_t)sizeof(int64_t);
    PyBuffer_Release(&v);
    return n;
}

static int
unit_gather(PyObject *unit, Job *j, Py_ssize_t nrows, unsigned char *seen, PyObject **kept)
{
    PyObject *src = PyTuple_GET_ITEM(unit, 0), *startsobj = PyTuple_GET_ITEM(unit, 1);
    Py_buffer *iv, *pv;
    if (hold_views(j, PyTuple_GET_ITEM(unit, 2), PyTuple_GET_ITEM(unit, 3), &iv, &pv) < 0) {
        return -1;
    }
    Py_ssize_t count = iv->len / (Py_ssize_t)sizeof(int64_t);
    if (iv->len % 8 != 0 || pv->len != iv->len) {
        PyErr_SetString(PyExc_ValueError,
                        "`indices` and `positions` must be int64 arrays of one length");
        return -1;
    }
    const unsigned char *ib = iv->buf, *pb = pv->buf;
    if (startsobj == Py_None) {
        PyObject *tuple = PySequence_Tuple(src); /* a snapshot: its bytes stay alive */
        if (tuple == NULL) {
            return -1;
        }
        *kept = tuple;
        Py_ssize_t len = PyTuple_GET_SIZE(tuple);
        for (Py_ssize_t k = 0; k < count; k++) {
            int64_t idx, pos;
            memcpy(&idx, ib + 8 * k, 8);
            memcpy(&pos, pb + 8 * k, 8);
            if (idx < 0 || idx >= len || pos < 0 || pos >= nrows || seen[pos]) {
                PyErr_SetString(PyExc_ValueError,
                                "a gather unit's index or position is out of range or repeated");
                return -1;
            }
            PyObject *rec = PyTuple_GET_ITEM(tuple, idx);
            if (!PyBytes_Check(rec)) {
                PyErr_Format(PyExc_TypeError, "records must be bytes. Received: %.100s",
                             Py_TYPE(rec)->tp_name);
                return -1;
            }
            seen[pos] = 1;
            j->recs[pos].p = (const unsigned char *)PyBytes_AS_STRING(rec);
            j->recs[pos].n = (size_t)PyBytes_GET_SIZE(rec);
        }
        return 0;
    }
    Py_INCREF(unit);
    *kept = unit;
    Py_buffer *bv, *sv;
    if (hold_views(j, src, startsobj, &bv, &sv) < 0) {
        return -1;
    }
    Py_ssize_t nframes = sv->len / (Py_ssize_t)sizeof(int64_t) - 1;
    const unsigned char *sb = sv->buf;
    for (Py_ssize_t k = 0; k < count; k++) {
        int64_t idx, pos, st, en;
        memcpy(&idx, ib + 8 * k, 8);
        memcpy(&pos, pb + 8 * k, 8);
        if (idx < 0 || idx >= nframes || pos < 0 || pos >= nrows || seen[pos]) {
            PyErr_SetString(PyExc_ValueError,
                            "a gather unit's index or position is out of range or repeated");
            return -1;
        }
        memcpy(&st, sb + 8 * idx, 8);
        memcpy(&en, sb + 8 * (idx + 1), 8);
        if (st < 0 || en > (int64_t)bv->len || en - st < 16) {
            PyErr_SetString(PyExc_ValueError, "`starts` does not describe frames of `buffer`");
            return -1;
        }
        seen[pos] = 1;
        j->recs[pos].p = (const unsigned char *)bv->buf + st + 12;
        j->recs[pos].n = (size_t)(en - st - 16);
    }
    return 0;
}

/* A batch of gather units only: every row filled exactly once. */
static int
submit_gather(PyObject *seq, Py_ssize_t nunits, Job *j)
{
    Py_ssize_t nrows = 0;
    for (Py_ssize_t i = 0; i < nunits; i++) {
        PyObject *unit = PySequence_Fast_GET_ITEM(seq, i);
        if (!is_gather_unit(unit)) {
            PyErr_SetString(PyExc_ValueError, "a batch of gather units cannot mix in other units");
            return -1;
        }
        Py_ssize_t n = gather_len(unit);
        if (n < 0) {
            return -1;
        }
        nrows += n;
    }
    j->recs = calloc((size_t)(nrows ? nrows : 1), sizeof(Str));
    unsigned char *seen = calloc((size_t)(nrows ? nrows : 1), 1);
    if (j->recs == NULL || seen == NULL) {
        free(seen);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < nunits; i++) {
        PyObject *kept = NULL;
        int st = unit_gather(PySequence_Fast_GET_ITEM(seq, i), j, nrows, seen, &kept);
        if (kept != NULL) {
            PyTuple_SET_ITEM(job_hold(j)->keep, i, kept);
        }
        if (st < 0) {
            free(seen);
            return -1;
        }
    }
    free(seen); /* every position was checked unseen before use, and counts add up */
    j->nrows = nrows;
    return 0;
}

static PyObject *
runner_submit(PyObject *self, PyObject *units)
{
    Runner *r = (Runner *)self;
    if (runner_check_usable(r) < 0) {
        return NULL;
    }
    PyObject *seq = PySequence_Fast(units, "`units` must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t nunits = PySequence_Fast_GET_SIZE(seq);
    Job *j = calloc(1, sizeof(Job));
    if (j == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    j->status = JOB_PENDING;
    Hold *h = calloc(1, sizeof(Hold));
    j->hold = h;
    if (h == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    h->views = calloc((size_t)(4 * nunits + 1), sizeof(Py_buffer));
    h->keep = PyTuple_New(nunits);
    if (h->views == NULL || h->keep == NULL) {
        if (h->views == NULL) {
            PyErr_NoMemory();
        }
        goto fail;
    }
    Py_ssize_t nrec = 0, caprec = 0;
    int gather = nunits > 0 && is_gather_unit(PySequence_Fast_GET_ITEM(seq, 0));
    if (gather) {
        if (submit_gather(seq, nunits, j) < 0) {
            goto fail;
        }
        nrec = j->nrows;
    }
    for (Py_ssize_t i = 0; i < nunits && !gather; i++) {
        PyObject *unit = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *kept;
        if (is_gather_unit(unit)) {
            PyErr_SetString(PyExc_ValueError, "a batch of gather units cannot mix in other units");
            goto fail;
        }
        if (PyTuple_Check(unit)) {
            Py_INCREF(unit);
            kept = unit;
            PyTuple_SET_ITEM(job_hold(j)->keep, i, kept);
            if (unit_frames(unit, j, &nrec, &caprec) < 0) {
                goto fail;
            }
        } else {
            kept = PySequence_Tuple(unit); /* a snapshot: its bytes stay alive */
            if (kept == NULL) {
                goto fail;
            }
            PyTuple_SET_ITEM(job_hold(j)->keep, i, kept);
            if (unit_payloads(kept, j, &nrec, &caprec) < 0) {
                goto fail;
            }
        }
    }
    j->nrows = nrec;
    Py_DECREF(seq);
    seq = NULL;
    int started = fp_runner_push(&r->q, j);
    if (started == -2) { /* cannot happen: closed is checked first */
        job_free(j, r->q.pl->nops);
        PyErr_SetString(PyExc_RuntimeError, "ColumnsRunner is closed");
        return NULL;
    }
    if (started < 0) {
        /* The job stays queued: take() tries again, close() frees it. */
        PyErr_SetString(PyExc_OSError, "cannot start a ColumnsRunner thread");
        return NULL;
    }
    Py_RETURN_NONE;
fail:
    Py_XDECREF(seq);
    job_free(j, r->q.pl->nops);
    return NULL;
}

static PyObject *
runner_take(PyObject *self, PyObject *unused)
{
    Runner *r = (Runner *)self;
    if (runner_check_usable(r) < 0) {
        return NULL;
    }
    if (r->q.head == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ColumnsRunner.take() without a batch submitted");
        return NULL;
    }
    /* The result is often there already: look before giving up the GIL. */
    Job *j = r->q.head;
    int ready;
    int started = fp_runner_head_ready(&r->q, &ready);
    if (started < 0) {
        PyErr_SetString(PyExc_OSError, "cannot start a ColumnsRunner thread");
        return NULL;
    }
    if (!ready) {
        Py_BEGIN_ALLOW_THREADS
        fp_runner_wait(&r->q, j);
        Py_END_ALLOW_THREADS
    }
    fp_runner_pop(&r->q);
    PyObject *result = NULL;
    if (j->status == RUN_NOMEM) {
        PyErr_NoMemory();
    } else if (j->status == RUN_SLOW) {
        Py_INCREF(Py_None);
        result = Py_None;
    } else {
        const Plan *pl = r->q.pl;
        PyTypeObject *outbuffer_type =
            (PyTypeObject *)((fp_state *)PyType_GetModuleState(Py_TYPE(self)))->outbuffer_type;
        PyObject *bufs = PyTuple_New(pl->nops);
        PyObject *widths = bufs ? PyTuple_New(pl->nops) : NULL;
        for (Py_ssize_t i = 0; widths != NULL && i < pl->nops; i++) {
            OutBuffer *b = PyObject_New(OutBuffer, outbuffer_type);
            PyObject *w = b ? PyLong_FromSsize_t(j->outs[i].width) : NULL;
            if (w == NULL) {
                Py_XDECREF(b);
                Py_CLEAR(widths);
                break;
            }
            b->buf = j->outs[i].buf; /* the OutBuffer owns it now */
            b->len = (Py_ssize_t)j->outs[i].len;
            j->outs[i].buf = NULL;
            PyTuple_SET_ITEM(bufs, i, (PyObject *)b);
            PyTuple_SET_ITEM(widths, i, w);
        }
        if (widths == NULL) {
            Py_XDECREF(bufs);
        } else {
            result = Py_BuildValue("(NN)", bufs, widths);
        }
    }
    job_free(j, r->q.pl->nops);
    return result;
}

static PyObject *
runner_pending(PyObject *self, void *closure)
{
    Runner *r = (Runner *)self;
    return PyLong_FromSsize_t(fp_runner_pending(&r->q));
}

static PyObject *
runner_workers(PyObject *self, void *closure)
{
    Runner *r = (Runner *)self;
    if (r->cap == NULL) {
        return PyLong_FromSsize_t(0);
    }
    return PyLong_FromSsize_t(fp_runner_live(&r->q));
}

static PyObject *
runner_close(PyObject *self, PyObject *unused)
{
    Runner *r = (Runner *)self;
    if (r->cap != NULL) {
        runner_close_impl(r);
    }
    Py_RETURN_NONE;
}

static PyMethodDef runner_methods[] = {
    {"submit", runner_submit, METH_O,
     "submit($self, units, /)\n--\n\nQueues one batch: units of (buffer, starts, first, "
     "count) frames, lists of records, or gather units (source, starts, indices, positions)."},
    {"take", runner_take, METH_NOARGS,
     "take($self, /)\n--\n\nThe oldest batch's (buffers, widths) (waiting for them), "
     "or None when TF's ops must decide it."},
    {"close", runner_close, METH_NOARGS,
     "close($self, /)\n--\n\nStops the workers and drops the batches not taken."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef runner_getset[] = {
    {"pending", runner_pending, NULL, "Batches submitted and not yet taken.", NULL},
    {"workers", runner_workers, NULL, "Worker threads running now.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot runner_slots[] = {
    {Py_tp_dealloc, runner_dealloc},
    {Py_tp_doc, "ColumnsRunner(plan, threads=1)\n--\n\n"
                "columns_run on worker threads of its own, ahead of the caller, results in order."},
    {Py_tp_methods, runner_methods},
    {Py_tp_getset, runner_getset},
    {Py_tp_init, runner_init},
    {Py_tp_new, PyType_GenericNew},
    {0, NULL},
};

static PyType_Spec runner_spec = {
    .name = "featurepipe._speedups.ColumnsRunner",
    .basicsize = sizeof(Runner),
    .flags = Py_TPFLAGS_DEFAULT
#ifdef Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_IMMUTABLETYPE
#endif
    ,
    .slots = runner_slots,
};
#endif /* _WIN32 */

static PyMethodDef columns_methods[] = {
    {"fingerprint64", py_fingerprint64, METH_O,
     "fingerprint64($module, data, /)\n--\n\n"
     "FarmHash Fingerprint64 of data (TF's Fingerprint64), an int."},
    {"columns_compile", py_columns_compile, METH_VARARGS,
     "columns_compile($module, features, ops, vocabularies, /)\n--\n\n"
     "A compiled column plan (see featurepipe.keras._compiled). A feature is\n"
     "(name, kind, fixed, default), an op (op, fidx, drop, size, norm, na, nb,\n"
     "bounds, num_bins, vocab, num_oov, default, hash_key, leaves), a vocabulary\n"
     "(is_str, entries)."},
    {"columns_run", py_columns_run, METH_VARARGS,
     "columns_run($module, plan, records, /)\n--\n\n"
     "Runs a plan on a batch of serialized tf.Examples: (buffers, widths), one\n"
     "little-endian buffer and row width per op, or None when TF's ops must decide\n"
     "the batch."},
    {NULL, NULL, 0, NULL},
};

int
fp_columns_exec(PyObject *module)
{
    if (PyModule_AddFunctions(module, columns_methods) < 0) {
        return -1;
    }
#ifndef _WIN32
    fp_state *st = PyModule_GetState(module);
    st->outbuffer_type = PyType_FromModuleAndSpec(module, &outbuffer_spec, NULL);
    if (st->outbuffer_type == NULL) {
        return -1;
    }
    st->runner_type = PyType_FromModuleAndSpec(module, &runner_spec, NULL);
    if (st->runner_type == NULL) {
        return -1;
    }
    /* PyModule_AddType takes a new reference; the state keeps its own. */
    if (PyModule_AddType(module, (PyTypeObject *)st->runner_type) < 0) {
        return -1;
    }
#endif
    return 0;
}
