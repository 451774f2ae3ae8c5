/* featurepipe._speedups, part: columns (see _speedups.h).
 *
 * Feature-column ids straight from serialized tf.Examples, in one pass per
 * batch: decode the features a plan needs, then hash (FarmHash Fingerprint64,
 * as TF's StringToHashBucketFast), look up vocabularies, bucketize, normalize
 * and cross (FingerprintCat64, as TF's SparseCross) them. The Python side
 * (featurepipe.keras._compiled) builds the plan from column specs and runs it
 * in a tf.data map; it checks every id against the TF-op path in its tests.
 *
 *   fingerprint64(data) -> int
 *   columns_compile(features, ops, vocabularies) -> plan (a capsule)
 *   columns_run(plan, records) -> (buffers, widths) | None
 *
 * columns_run returns None, and never guesses, when a batch holds anything
 * it does not decode exactly like tf.io.parse_example (non-canonical wire
 * encodings, a duplicate or kind-less feature, a kind that does not match
 * the parse spec, a fixed-length feature with the wrong number of values or
 * missing without a default, a log that rounds too close to a float32 tie):
 * the caller then runs the TF ops, which also raise TF's own errors.
 * The work runs without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_speedups.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* FarmHash Fingerprint64 (farmhashna::Hash64), as tsl::Fingerprint64. */

static const uint64_t k0 = 0xc3a5c85c97cb3127ULL;
static const uint64_t k1 = 0xb492b66fbe98f273ULL;
static const uint64_t k2 = 0x9ae16a3b2f90404fULL;

static inline uint64_t
fetch64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* little-endian hosts only (checked at compile time below) */
}

static inline uint32_t
fetch32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

#if defined(__GNUC__) || defined(__clang__)
#define FP_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define FP_ALWAYS_INLINE static inline
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "featurepipe's FarmHash port assumes a little-endian host"
#endif

static inline uint64_t
rot64(uint64_t v, int s)
{
    return s == 0 ? v : ((v >> s) | (v << (64 - s)));
}

static inline uint64_t
shift_mix(uint64_t v)
{
    return v ^ (v >> 47);
}

static inline uint64_t
hash_len16(uint64_t u, uint64_t v, uint64_t mul)
{
    uint64_t a = (u ^ v) * mul;
    a ^= (a >> 47);
    uint64_t b = (v ^ a) * mul;
    b ^= (b >> 47);
    b *= mul;
    return b;
}

static inline uint64_t
hash_len0to16(const unsigned char *s, size_t len)
{
    if (len >= 8) {
        uint64_t mul = k2 + len * 2;
        uint64_t a = fetch64(s) + k2;
        uint64_t b = fetch64(s + len - 8);
        uint64_t c = rot64(b, 37) * mul + a;
        uint64_t d = (rot64(a, 25) + b) * mul;
        return hash_len16(c, d, mul);
    }
    if (len >= 4) {
        uint64_t mul = k2 + len * 2;
        uint64_t a = fetch32(s);
        return hash_len16(len + (a << 3), fetch32(s + len - 4), mul);
    }
    if (len > 0) {
        uint8_t a = s[0];
        uint8_t b = s[len >> 1];
        uint8_t c = s[len - 1];
        uint32_t y = (uint32_t)a + ((uint32_t)b << 8);
        uint32_t z = (uint32_t)len + ((uint32_t)c << 2);
        return shift_mix((uint64_t)y * k2 ^ (uint64_t)z * k0) * k2;
    }
    return k2;
}

static inline uint64_t
hash_len17to32(const unsigned char *s, size_t len)
{
    uint64_t mul = k2 + len * 2;
    uint64_t a = fetch64(s) * k1;
    uint64_t b = fetch64(s + 8);
    uint64_t c = fetch64(s + len - 8) * mul;
    uint64_t d = fetch64(s + len - 16) * k2;
    return hash_len16(rot64(a + b, 43) + rot64(c, 30) + d, a + rot64(b + k2, 18) + c, mul);
}

static inline uint64_t
hash_len33to64(const unsigned char *s, size_t len)
{
    uint64_t mul = k2 + len * 2;
    uint64_t a = fetch64(s) * k2;
    uint64_t b = fetch64(s + 8);
    uint64_t c = fetch64(s + len - 8) * mul;
    uint64_t d = fetch64(s + len - 16) * k2;
    uint64_t y = rot64(a + b, 43) + rot64(c, 30) + d;
    uint64_t z = hash_len16(y, a + rot64(b + k2, 18) + c, mul);
    uint64_t e = fetch64(s + 16) * mul;
    uint64_t f = fetch64(s + 24);
    uint64_t g = (y + fetch64(s + len - 32)) * mul;
    uint64_t h = (z + fetch64(s + len - 24)) * mul;
    return hash_len16(rot64(e + f, 43) + rot64(g, 30) + h, e + rot64(f + a, 18) + g, mul);
}

typedef struct {
    uint64_t first, second;
} Pair64;

static inline Pair64
weak_hash32(const unsigned char *s, uint64_t a, uint64_t b)
{
    uint64_t w = fetch64(s), x = fetch64(s + 8), y = fetch64(s + 16), z = fetch64(s + 24);
    a += w;
    b = rot64(b + a + z, 21);
    uint64_t c = a;
    a += x;
    a += y;
    b += rot64(a, 44);
    Pair64 r = {a + z, b + c};
    return r;
}

static uint64_t
fingerprint64(const unsigned char *s, size_t len)
{
    const uint64_t seed = 81;
    if (len <= 32) {
        return len <= 16 ? hash_len0to16(s, len) : hash_len17to32(s, len);
    }
    if (len <= 64) {
        return hash_len33to64(s, len);
    }
    uint64_t x = seed;
    uint64_t y = seed * k1 + 113;
    uint64_t z = shift_mix(y * k2 + 113) * k2;
    Pair64 v = {0, 0}, w = {0, 0};
    x = x * k2 + fetch64(s);
    const unsigned char *end = s + ((len - 1) / 64) * 64;
    const unsigned char *last64 = end + ((len - 1) & 63) - 63;
    do {
        x = rot64(x + y + v.first + fetch64(s + 8), 37) * k1;
        y = rot64(y + v.second + fetch64(s + 48), 42) * k1;
        x ^= w.second;
        y += v.first + fetch64(s + 40);
        z = rot64(z + w.first, 33) * k1;
        v = weak_hash32(s, v.second * k1, x + w.first);
        w = weak_hash32(s + 32, z + w.second, y + fetch64(s + 16));
        uint64_t t = z;
        z = x;
        x = t;
        s += 64;
    } while (s != end);
    uint64_t mul = k1 + ((z & 0xff) << 1);
    s = last64;
    w.first += ((len - 1) & 63);
    v.first += w.first;
    w.first += v.first;
    x = rot64(x + y + v.first + fetch64(s + 8), 37) * mul;
    y = rot64(y + v.second + fetch64(s + 48), 42) * mul;
    x ^= w.second * 9;
    y += v.first * 9 + fetch64(s + 40);
    z = rot64(z + w.first, 33) * mul;
    v = weak_hash32(s, v.second * mul, x + w.first);
    w = weak_hash32(s + 32, z + w.second, y + fetch64(s + 16));
    uint64_t t = z;
    z = x;
    x = t;
    return hash_len16(hash_len16(v.first, w.first, mul) + shift_mix(y) * k0 + z,
                      hash_len16(v.second, w.second, mul) + x, mul);
}

/* tsl::FingerprintCat64 */
static inline uint64_t
fingerprint_cat64(uint64_t fp1, uint64_t fp2)
{
    const uint64_t kmul = 0xc6a4a7935bd1e995ULL;
    uint64_t r = fp1 ^ kmul;
    r ^= shift_mix(fp2 * kmul) * kmul;
    r *= kmul;
    r = shift_mix(r) * kmul;
    r = shift_mix(r);
    return r;
}

/* tf.strings.as_string of an int64 ("%lld"); returns the length. */
static inline size_t
int64_decimal(int64_t v, unsigned char *buf /* >= 21 bytes */)
{
    unsigned char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (unsigned char)('0' + (u % 10));
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0) {
        buf[k++] = '-';
    }
    while (n) {
        buf[k++] = tmp[--n];
    }
    return k;
}

static inline uint64_t
fingerprint_int64(int64_t v)
{
    unsigned char buf[24];
    size_t n = int64_decimal(v, buf);
    return fingerprint64(buf, n);
}

static PyObject *
py_fingerprint64(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    uint64_t h = fingerprint64(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(h);
}

/* ------------------------------------------------------------------------ */
/* Plans. */

enum { K_BYTES = 1, K_FLOAT = 2, K_INT64 = 3 };
enum {
    OP_NUMERIC = 1, /* float32 [B, size] */
    OP_BUCKET = 2,  /* int64 [B, size] */
    OP_HASH = 3,    /* int64 ids */
    OP_VOCAB = 4,
    OP_IDENTITY = 5,
    OP_CROSS = 6,
    OP_RAW = 7 /* the feature's values, [B, fixed] (labels) */
};
enum { NORM_NONE = 0, NORM_LOG = 1, NORM_AFFINE = 2 };

typedef struct {
    const unsigned char *p;
    size_t n;
} Str;

typedef struct {
    unsigned char *name;
    size_t name_len;
    int kind;
    Py_ssize_t fixed; /* values per row, or -1 for variable length */
    int has_default;
    int64_t *def_i;
    float *def_f;
    Str *def_s;
    unsigned char *def_store;
} Feat;

/* One 32-byte slot per entry of an open-addressing table: the hash, the
 * index and (up to VKEY bytes of) the key itself, so a look-up touches one
 * cache line instead of four arrays. */
#define VKEY 16

typedef struct {
    uint64_t hash;
    int32_t idx; /* vocabulary index, -1 empty */
    uint32_t len;
    unsigned char key[VKEY]; /* string keys up to VKEY bytes; int64 keys */
} VSlot;

typedef struct {
    int is_str;
    int64_t size;
    size_t mask; /* slots - 1 */
    VSlot *slot;
    Str *keys_s;
    int64_t *keys_i;
    unsigned char *store;
} Vocab;

typedef struct Op {
    int op;
    Py_ssize_t fidx;
    int drop; /* ids: "" / -1 cells are dropped (-1 in place when dense) */
    Py_ssize_t size;
    int norm;
    double na, nb;
    float *bounds;
    Py_ssize_t nbounds;
    int64_t num_bins;
    Vocab *vocab;
    int64_t num_oov;
    int64_t defval;
    int has_def;
    uint64_t hash_key;
    struct Op *leaves; /* OP_CROSS: OP_RAW or id ops, TF's input order */
    Py_ssize_t nleaves;
} Op;

typedef struct {
    Feat *feats;
    Py_ssize_t nfeats;
    size_t lmask;
    Py_ssize_t *lslot; /* feature index + 1, 0 empty */
    Op *ops;
    Py_ssize_t nops;
    Vocab *vocabs;
    Py_ssize_t nvocabs;
} Plan;

static uint64_t
mix64(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    v *= 0xc4ceb9fe1a85ec53ULL;
    v ^= v >> 33;
    return v;
}

static void
op_clear(Op *o)
{
    free(o->bounds);
    if (o->leaves) {
        for (Py_ssize_t i = 0; i < o->nleaves; i++) {
            op_clear(&o->leaves[i]);
        }
        free(o->leaves);
    }
}

static void
plan_free(Plan *pl)
{
    if (pl == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; i < pl->nfeats; i++) {
        Feat *f = &pl->feats[i];
        free(f->name);
        free(f->def_i);
        free(f->def_f);
        free(f->def_s);
        free(f->def_store);
    }
    free(pl->feats);
    free(pl->lslot);
    for (Py_ssize_t i = 0; i < pl->nops; i++) {
        op_clear(&pl->ops[i]);
    }
    free(pl->ops);
    for (Py_ssize_t i = 0; i < pl->nvocabs; i++) {
        Vocab *v = &pl->vocabs[i];
        free(v->slot);
        free(v->keys_s);
        free(v->keys_i);
        free(v->store);
    }
    free(pl->vocabs);
    free(pl);
}

static void
plan_capsule_free(PyObject *cap)
{
    plan_free(PyCapsule_GetPointer(cap, "featurepipe.columns_plan"));
}

/* Equal byte strings; keys and vocabulary entries are short, so a loop beats
 * a call to memcmp. */
static inline int
bytes_equal(const unsigned char *a, const unsigned char *b, size_t n)
{
    while (n >= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) {
            return 0;
        }
        a += 8;
        b += 8;
        n -= 8;
    }
    while (n--) {
        if (*a++ != *b++) {
            return 0;
        }
    }
    return 1;
}

static inline Py_ssize_t
plan_feature(const Plan *pl, const unsigned char *key, size_t klen)
{
    size_t s = (size_t)fingerprint64(key, klen) & pl->lmask;
    while (pl->lslot[s]) {
        const Feat *f = &pl->feats[pl->lslot[s] - 1];
        if (f->name_len == klen && bytes_equal(f->name, key, klen)) {
            return pl->lslot[s] - 1;
        }
        s = (s + 1) & pl->lmask;
    }
    return -1;
}

static inline int64_t
vocab_find_str(const Vocab *v, const unsigned char *p, size_t n, uint64_t h)
{
    size_t s = (size_t)h & v->mask;
    for (;;) {
        const VSlot *e = &v->slot[s];
        if (e->idx < 0) {
            return -1;
        }
        if (e->hash == h && e->len == n &&
            bytes_equal(n <= VKEY ? e->key : v->keys_s[e->idx].p, p, n)) {
            return e->idx;
        }
        s = (s + 1) & v->mask;
    }
}

static inline int64_t
vocab_find_int(const Vocab *v, int64_t x)
{
    uint64_t h = mix64((uint64_t)x);
    size_t s = (size_t)h & v->mask;
    for (;;) {
        const VSlot *e = &v->slot[s];
        if (e->idx < 0) {
            return -1;
        }
        if (e->hash == h) {
            int64_t k;
            memcpy(&k, e->key, 8);
            if (k == x) {
                return e->idx;
            }
        }
        s = (s + 1) & v->mask;
    }
}

static size_t
pow2_at_least(size_t n)
{
    size_t s = 16;
    while (s < n) {
        s <<= 1;
    }
    return s;
}

/* Copies the bytes of a sequence of bytes objects into one store. */
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
    if (!PyArg_ParseTuple(desc, "pO", &is_str, &entries)) {
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
    if (n > INT32_MAX - 1) {
        PyErr_SetString(PyExc_ValueError, "vocabulary too large");
        return -1;
    }
    size_t slots = pow2_at_least((size_t)n + (size_t)n / 2 + 1); /* load <= 2/3 */
    v->mask = slots - 1;
    v->slot = calloc(slots, sizeof(VSlot));
    if (v->slot == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t s = 0; s < slots; s++) {
        v->slot[s].idx = -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t h = is_str ? fingerprint64(v->keys_s[i].p, v->keys_s[i].n)
                            : mix64((uint64_t)v->keys_i[i]);
        int64_t found = is_str ? vocab_find_str(v, v->keys_s[i].p, v->keys_s[i].n, h)
                               : vocab_find_int(v, v->keys_i[i]);
        if (found >= 0) {
            PyErr_SetString(PyExc_ValueError, "duplicate vocabulary entry");
            return -1;
        }
        size_t s = (size_t)h & v->mask;
        while (v->slot[s].idx >= 0) {
            s = (s + 1) & v->mask;
        }
        VSlot *e = &v->slot[s];
        e->idx = (int32_t)i;
        e->hash = h;
        if (is_str) {
            if (v->keys_s[i].n >= UINT32_MAX) {
                PyErr_SetString(PyExc_ValueError, "vocabulary entry too long");
                return -1;
            }
            e->len = (uint32_t)v->keys_s[i].n;
            if (v->keys_s[i].n <= VKEY) {
                memcpy(e->key, v->keys_s[i].p, v->keys_s[i].n);
            }
        } else {
            memcpy(e->key, &v->keys_i[i], 8);
        }
    }
    return 0;
}

static int
feat_build(Feat *f, PyObject *desc)
{
    /* desc: (name: bytes, kind, fixed, default: None | sequence of fixed values) */
    const char *name;
    Py_ssize_t name_len;
    PyObject *def;
    if (!PyArg_ParseTuple(desc, "y#inO", &name, &name_len, &f->kind, &f->fixed, &def)) {
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
    if (!PyArg_ParseTuple(desc, "inpnidd" "OLnLOKO", &o->op, &o->fidx, &o->drop, &o->size,
                          &o->norm, &o->na, &o->nb, &bounds, &num_bins, &vidx, &num_oov, &defobj,
                          &hash_key, &leaves)) {
        return -1;
    }
    o->num_bins = (int64_t)num_bins;
    o->num_oov = (int64_t)num_oov;
    o->hash_key = (uint64_t)hash_key;
    if (o->op < OP_NUMERIC || o->op > OP_RAW) {
        PyErr_SetString(PyExc_ValueError, "bad op");
        return -1;
    }
    if (o->op != OP_CROSS && (o->fidx < 0 || o->fidx >= pl->nfeats)) {
        PyErr_SetString(PyExc_ValueError, "bad feature index");
        return -1;
    }
    if (defobj != Py_None) {
        long long d = PyLong_AsLongLong(defobj);
        if (d == -1 && PyErr_Occurred()) {
            return -1;
        }
        o->defval = (int64_t)d;
        o->has_def = 1;
    }
    if (o->op == OP_VOCAB) {
        if (vidx < 0 || vidx >= pl->nvocabs) {
            PyErr_SetString(PyExc_ValueError, "bad vocabulary index");
            return -1;
        }
        o->vocab = &pl->vocabs[vidx];
    }
    if (o->op == OP_NUMERIC || o->op == OP_BUCKET || (o->op == OP_RAW && !leaf)) {
        Py_ssize_t fixed = pl->feats[o->fidx].fixed;
        if (fixed < 0 || (o->op != OP_RAW && fixed != o->size)) {
            PyErr_SetString(PyExc_ValueError, "numeric ops need a fixed-length feature");
            return -1;
        }
        if (o->op != OP_RAW && pl->feats[o->fidx].kind == K_BYTES) {
            PyErr_SetString(PyExc_ValueError, "numeric ops need a numeric feature");
            return -1;
        }
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
            if (leaf->op == OP_CROSS || leaf->op == OP_NUMERIC ||
                (leaf->op == OP_RAW && pl->feats[leaf->fidx].kind == K_FLOAT)) {
                Py_DECREF(fast);
                PyErr_SetString(PyExc_ValueError, "unsupported cross leaf");
                return -1;
            }
        }
        Py_DECREF(fast);
        if (n < 1) {
            PyErr_SetString(PyExc_ValueError, "a cross needs leaves");
            return -1;
        }
    }
    if ((o->op == OP_HASH || o->op == OP_VOCAB || o->op == OP_IDENTITY) &&
        pl->feats[o->fidx].kind == K_FLOAT) {
        PyErr_SetString(PyExc_ValueError, "ids of float features are not supported");
        return -1;
    }
    if (o->op == OP_VOCAB && o->vocab->is_str != (pl->feats[o->fidx].kind == K_BYTES)) {
        PyErr_SetString(PyExc_ValueError, "vocabulary and feature kinds differ");
        return -1;
    }
    if (o->op == OP_IDENTITY && pl->feats[o->fidx].kind != K_INT64) {
        PyErr_SetString(PyExc_ValueError, "identity ids need an int64 feature");
        return -1;
    }
    if ((o->op == OP_HASH && o->num_bins < 1) || (o->op == OP_VOCAB && o->num_oov < 0)) {
        PyErr_SetString(PyExc_ValueError, "bad bucket count");
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
    Plan *pl = calloc(1, sizeof(Plan));
    PyObject *ffast = NULL, *ofast = NULL, *vfast = NULL;
    if (pl == NULL) {
        return PyErr_NoMemory();
    }
    ffast = PySequence_Fast(feats, "features: expected a sequence");
    ofast = ffast ? PySequence_Fast(ops, "ops: expected a sequence") : NULL;
    vfast = ofast ? PySequence_Fast(vocabs, "vocabularies: expected a sequence") : NULL;
    if (vfast == NULL) {
        goto fail;
    }
    Py_ssize_t nf = PySequence_Fast_GET_SIZE(ffast);
    Py_ssize_t no = PySequence_Fast_GET_SIZE(ofast);
    Py_ssize_t nv = PySequence_Fast_GET_SIZE(vfast);
    pl->feats = calloc((size_t)(nf ? nf : 1), sizeof(Feat));
    pl->ops = calloc((size_t)(no ? no : 1), sizeof(Op));
    pl->vocabs = calloc((size_t)(nv ? nv : 1), sizeof(Vocab));
    size_t lslots = pow2_at_least((size_t)nf * 2 + 1);
    pl->lslot = calloc(lslots, sizeof(Py_ssize_t));
    pl->lmask = lslots - 1;
    if (pl->feats == NULL || pl->ops == NULL || pl->vocabs == NULL || pl->lslot == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < nf; i++) {
        pl->nfeats = i + 1;
        Feat *f = &pl->feats[i];
        if (feat_build(f, PySequence_Fast_GET_ITEM(ffast, i)) < 0) {
            goto fail;
        }
        if (plan_feature(pl, f->name, f->name_len) >= 0) {
            PyErr_SetString(PyExc_ValueError, "duplicate feature name");
            goto fail;
        }
        size_t s = (size_t)fingerprint64(f->name, f->name_len) & pl->lmask;
        while (pl->lslot[s]) {
            s = (s + 1) & pl->lmask;
        }
        pl->lslot[s] = i + 1;
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
    PyObject *cap = PyCapsule_New(pl, "featurepipe.columns_plan", plan_capsule_free);
    if (cap == NULL) {
        plan_free(pl);
    }
    return cap;
fail:
    Py_XDECREF(ffast);
    Py_XDECREF(ofast);
    Py_XDECREF(vfast);
    plan_free(pl);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Running a plan on one batch. */

enum { RUN_OK = 0, RUN_SLOW = 1, RUN_NOMEM = 2 };

typedef struct {
    int64_t *start; /* per row: first value index */
    int64_t *count; /* per row */
    Py_ssize_t last_row;
    int64_t *vi;
    float *vf;
    Str *vs;
    size_t n, cap;
} FeatData;

typedef struct {
    unsigned char *buf;
    size_t len;
    Py_ssize_t width;
} OutBuf;

static int fd_grow(FeatData *d, int kind, size_t more);

static inline int
fd_reserve(FeatData *d, int kind, size_t more)
{
    return d->n + more <= d->cap ? 0 : fd_grow(d, kind, more);
}

static int
fd_grow(FeatData *d, int kind, size_t more)
{
    size_t cap = d->cap ? d->cap : 1024;
    while (cap < d->n + more) {
        cap *= 2;
    }
    void *p;
    if (kind == K_BYTES) {
        p = realloc(d->vs, cap * sizeof(Str));
        if (p == NULL) {
            return -1;
        }
        d->vs = p;
    } else if (kind == K_FLOAT) {
        p = realloc(d->vf, cap * sizeof(float));
        if (p == NULL) {
            return -1;
        }
        d->vf = p;
    } else {
        p = realloc(d->vi, cap * sizeof(int64_t));
        if (p == NULL) {
            return -1;
        }
        d->vi = p;
    }
    d->cap = cap;
    return 0;
}

FP_ALWAYS_INLINE int
rd_varint(const unsigned char **pp, const unsigned char *end, uint64_t *out)
{
    const unsigned char *p = *pp;
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
        unsigned char b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (shift == 63 && b > 1) {
                return 0;
            }
            *pp = p;
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* A length-delimited field's length, checked against the bytes left. */
FP_ALWAYS_INLINE int
rd_len(const unsigned char **pp, const unsigned char *end, size_t *out)
{
    uint64_t n;
    if (!rd_varint(pp, end, &n) || n > (uint64_t)(end - *pp)) {
        return 0;
    }
    *out = (size_t)n;
    return 1;
}

static int
decode_feature(const Feat *f, FeatData *d, const unsigned char *p, const unsigned char *end)
{
    /* Feature: exactly one list field, filling the whole message. */
    if (p >= end) {
        return RUN_SLOW; /* no kind: leave it to TF */
    }
    unsigned char tag = *p++;
    int kind = tag == 0x0a ? K_BYTES : tag == 0x12 ? K_FLOAT : tag == 0x1a ? K_INT64 : 0;
    size_t len;
    if (kind != f->kind || !rd_len(&p, end, &len) || p + len != end) {
        return RUN_SLOW;
    }
    if (kind == K_BYTES) {
        while (p < end) {
            size_t n;
            if (*p++ != 0x0a || !rd_len(&p, end, &n)) {
                return RUN_SLOW;
            }
            if (fd_reserve(d, kind, 1) < 0) {
                return RUN_NOMEM;
            }
            d->vs[d->n].p = p;
            d->vs[d->n].n = n;
            d->n++;
            p += n;
        }
        return RUN_OK;
    }
    if (p == end) {
        return RUN_OK; /* an empty list */
    }
    size_t n;
    if (*p++ != 0x0a || !rd_len(&p, end, &n) || p + n != end) {
        return RUN_SLOW; /* unpacked or several chunks */
    }
    if (kind == K_FLOAT) {
        if (n % 4) {
            return RUN_SLOW;
        }
        if (fd_reserve(d, kind, n / 4) < 0) {
            return RUN_NOMEM;
        }
        memcpy(d->vf + d->n, p, n);
        d->n += n / 4;
        return RUN_OK;
    }
    if (fd_reserve(d, kind, n) < 0) { /* at most one value per byte */
        return RUN_NOMEM;
    }
    while (p < end) {
        uint64_t v;
        if (!rd_varint(&p, end, &v)) {
            return RUN_SLOW;
        }
        d->vi[d->n++] = (int64_t)v;
    }
    return RUN_OK;
}

/* Features come in the same order in most records: the feature of each map
 * entry position last time is tried first (guess[pos], -1 none). */
#define MAX_GUESS 256

static int
decode_record(const Plan *pl, FeatData *fd, Py_ssize_t r, const unsigned char *p,
              const unsigned char *end, Py_ssize_t *guess)
{
    Py_ssize_t pos = 0;
    while (p < end) {
        size_t len;
        if (*p++ != 0x0a || !rd_len(&p, end, &len)) {
            return RUN_SLOW; /* only Example.features, canonically framed */
        }
        const unsigned char *fe = p + len;
        while (p < fe) {
            size_t elen, klen, vlen;
            if (*p++ != 0x0a || !rd_len(&p, fe, &elen)) {
                return RUN_SLOW;
            }
            const unsigned char *ee = p + elen;
            if (p >= ee || *p++ != 0x0a || !rd_len(&p, ee, &klen)) {
                return RUN_SLOW;
            }
            const unsigned char *key = p;
            p += klen;
            if (p >= ee || *p++ != 0x12 || !rd_len(&p, ee, &vlen) || p + vlen != ee) {
                return RUN_SLOW;
            }
            Py_ssize_t i = -2;
            if (pos < MAX_GUESS && guess[pos] >= 0) {
                const Feat *g = &pl->feats[guess[pos]];
                if (g->name_len == klen && bytes_equal(g->name, key, klen)) {
                    i = guess[pos];
                }
            }
            if (i == -2) {
                i = plan_feature(pl, key, klen);
                if (pos < MAX_GUESS) {
                    guess[pos] = i;
                }
            }
            pos++;
            if (i >= 0) {
                FeatData *d = &fd[i];
                if (d->last_row == r) {
                    return RUN_SLOW; /* a duplicate key: protobuf merges, TF decides */
                }
                d->last_row = r;
                d->start[r] = (int64_t)d->n;
                int st = decode_feature(&pl->feats[i], d, p, ee);
                if (st != RUN_OK) {
                    return st;
                }
                d->count[r] = (int64_t)d->n - d->start[r];
            }
            p = ee;
        }
    }
    /* Missing features, and fixed lengths. */
    for (Py_ssize_t i = 0; i < pl->nfeats; i++) {
        const Feat *f = &pl->feats[i];
        FeatData *d = &fd[i];
        if (d->last_row == r) {
            if (f->fixed >= 0 && d->count[r] != f->fixed) {
                return RUN_SLOW;
            }
            continue;
        }
        d->start[r] = (int64_t)d->n;
        d->count[r] = 0;
        if (f->fixed < 0) {
            continue;
        }
        if (!f->has_default) {
            return RUN_SLOW; /* required: TF raises its error */
        }
        size_t k = (size_t)f->fixed;
        if (fd_reserve(d, f->kind, k) < 0) {
            return RUN_NOMEM;
        }
        if (f->kind == K_BYTES) {
            memcpy(d->vs + d->n, f->def_s, k * sizeof(Str));
        } else if (f->kind == K_FLOAT) {
            memcpy(d->vf + d->n, f->def_f, k * sizeof(float));
        } else {
            memcpy(d->vi + d->n, f->def_i, k * sizeof(int64_t));
        }
        d->n += k;
        d->count[r] = (int64_t)k;
    }
    return RUN_OK;
}

/* Growable int64 values with per-row counts. */
typedef struct {
    int64_t *v;
    size_t n, cap;
} IVec;

static int
ivec_reserve(IVec *iv, size_t more)
{
    if (iv->n + more <= iv->cap) {
        return 0;
    }
    size_t cap = iv->cap ? iv->cap : 1024;
    while (cap < iv->n + more) {
        cap *= 2;
    }
    int64_t *p = realloc(iv->v, cap * sizeof(int64_t));
    if (p == NULL) {
        return -1;
    }
    iv->v = p;
    iv->cap = cap;
    return 0;
}

static inline double
feature_number(const Feat *f, const FeatData *d, int64_t i)
{
    return f->kind == K_INT64 ? (double)d->vi[i] : (double)d->vf[i];
}

/* A normalized number as float32; RUN_SLOW when a log lands so near a float32
 * rounding tie that TF's log (within an ulp or two of libm's) might round the
 * other way. */
static inline int
normalized(const Op *o, double x, float *out)
{
    if (o->norm == NORM_LOG) {
        double y = log(x + o->na);
        float f = (float)y;
        double a = fabs(y);
        if (a >= 1.1754943508222875e-38 && a <= 3.4028234663852886e+38) {
            /* A normal float32: rounding looks at the 29 low mantissa bits;
             * within 8 double ulps of the tie (1 << 28), TF's log could round
             * the other way. */
            uint64_t bits;
            memcpy(&bits, &y, 8);
            int64_t low = (int64_t)(bits & ((1u << 29) - 1));
            if (low > (1 << 28) - 8 && low < (1 << 28) + 8) {
                return RUN_SLOW;
            }
        } else if (y != 0.0 && isfinite(y)) {
            return RUN_SLOW; /* float32 subnormal or overflow: leave it to TF */
        }
        *out = f;
        return RUN_OK;
    }
    if (o->norm == NORM_AFFINE) {
        x = (x - o->na) / o->nb;
    }
    *out = (float)x;
    return RUN_OK;
}

static inline int64_t
bucketize(const Op *o, float x)
{
    /* std::upper_bound, as TF's Bucketize kernel. */
    Py_ssize_t lo = 0, hi = o->nbounds;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (x < o->bounds[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return (int64_t)lo;
}

/* The ids (and kept flags) of one row of a categorical op; returns the count. */
static int
row_ids(const Plan *pl, const Op *o, const FeatData *fd, Py_ssize_t r, int64_t *ids,
        unsigned char *keep, int64_t *n_out)
{
    const Feat *f = &pl->feats[o->fidx];
    const FeatData *d = &fd[o->fidx];
    int64_t s = d->start[r], n = d->count[r];
    *n_out = n;
    if (o->op == OP_BUCKET) {
        int64_t width = (int64_t)o->nbounds + 1;
        for (int64_t j = 0; j < n; j++) {
            float x;
            if (normalized(o, feature_number(f, d, s + j), &x) != RUN_OK) {
                return RUN_SLOW;
            }
            ids[j] = bucketize(o, x) + width * j;
            keep[j] = 1;
        }
        return RUN_OK;
    }
    for (int64_t j = 0; j < n; j++) {
        int64_t id;
        if (f->kind == K_BYTES) {
            Str v = d->vs[s + j];
            keep[j] = !(o->drop && v.n == 0);
            if (o->op == OP_HASH) {
                id = (int64_t)(fingerprint64(v.p, v.n) % (uint64_t)o->num_bins);
            } else if (o->op == OP_VOCAB) {
                uint64_t h = fingerprint64(v.p, v.n);
                id = vocab_find_str(o->vocab, v.p, v.n, h);
                if (id < 0) {
                    id = o->num_oov == 0   ? o->defval
                         : o->num_oov == 1 ? o->vocab->size
                                           : o->vocab->size +
                                               (int64_t)(h % (uint64_t)o->num_oov);
                }
            } else {
                return RUN_SLOW;
            }
        } else {
            int64_t v = d->vi[s + j];
            keep[j] = !(o->drop && v == -1);
            if (o->op == OP_HASH) {
                id = (int64_t)(fingerprint_int64(v) % (uint64_t)o->num_bins);
            } else if (o->op == OP_VOCAB) {
                id = vocab_find_int(o->vocab, v);
                if (id < 0) {
                    id = o->num_oov == 0   ? o->defval
                         : o->num_oov == 1 ? o->vocab->size
                                           : o->vocab->size +
                                               (int64_t)(fingerprint_int64(v) %
                                                         (uint64_t)o->num_oov);
                }
            } else if (o->op == OP_IDENTITY) {
                id = v;
                if (o->has_def && (v < 0 || v >= o->num_bins)) {
                    id = o->defval;
                }
            } else {
                return RUN_SLOW;
            }
        }
        ids[j] = id;
    }
    return RUN_OK;
}

/* The ids of n contiguous cells of a fixed-length feature, with -1 where a
 * cell is dropped: the dense output of a hashed / vocabulary / identity /
 * bucketized column, one tight loop per kind of work. */
static int
map_dense(const Op *o, const Feat *f, const FeatData *d, int64_t n, int64_t *ids)
{
    if (o->op == OP_BUCKET) {
        int64_t width = (int64_t)o->nbounds + 1, size = (int64_t)o->size;
        for (int64_t i = 0; i < n; i++) {
            float x;
            if (normalized(o, feature_number(f, d, i), &x) != RUN_OK) {
                return RUN_SLOW;
            }
            ids[i] = bucketize(o, x) + width * (i % size);
        }
        return RUN_OK;
    }
    if (f->kind == K_BYTES) {
        const Str *vs = d->vs;
        if (o->op == OP_HASH) {
            uint64_t bins = (uint64_t)o->num_bins;
            for (int64_t i = 0; i < n; i++) {
                ids[i] = (o->drop && vs[i].n == 0)
                             ? -1
                             : (int64_t)(fingerprint64(vs[i].p, vs[i].n) % bins);
            }
            return RUN_OK;
        }
        if (o->op != OP_VOCAB) {
            return RUN_SLOW;
        }
        const Vocab *v = o->vocab;
        for (int64_t i = 0; i < n; i++) {
            if (o->drop && vs[i].n == 0) {
                ids[i] = -1;
                continue;
            }
            uint64_t h = fingerprint64(vs[i].p, vs[i].n);
            int64_t id = vocab_find_str(v, vs[i].p, vs[i].n, h);
            if (id < 0) {
                id = o->num_oov == 0   ? o->defval
                     : o->num_oov == 1 ? v->size
                                       : v->size + (int64_t)(h % (uint64_t)o->num_oov);
            }
            ids[i] = id;
        }
        return RUN_OK;
    }
    const int64_t *vi = d->vi;
    for (int64_t i = 0; i < n; i++) {
        int64_t x = vi[i], id;
        if (o->drop && x == -1) {
            ids[i] = -1;
            continue;
        }
        if (o->op == OP_HASH) {
            id = (int64_t)(fingerprint_int64(x) % (uint64_t)o->num_bins);
        } else if (o->op == OP_VOCAB) {
            id = vocab_find_int(o->vocab, x);
            if (id < 0) {
                id = o->num_oov == 0   ? o->defval
                     : o->num_oov == 1 ? o->vocab->size
                                       : o->vocab->size + (int64_t)(fingerprint_int64(x) %
                                                                    (uint64_t)o->num_oov);
            }
        } else if (o->op == OP_IDENTITY) {
            id = (o->has_def && (x < 0 || x >= o->num_bins)) ? o->defval : x;
        } else {
            return RUN_SLOW;
        }
        ids[i] = id;
    }
    return RUN_OK;
}

#define MAX_CROSS_LEAVES 64
#define MAX_CROSS_PER_ROW (1 << 20)

/* Output buffers are aligned like TF's own allocations (64 bytes), so that
 * TF can take a numpy array over one without copying it. */
static void *
out_alloc(size_t len)
{
#ifdef _WIN32
    return malloc(len ? len : 1); /* freed with free(): no _aligned_malloc; TF copies */
#else
    void *p = NULL;
    return posix_memalign(&p, 64, len ? len : 1) == 0 ? p : NULL;
#endif
}

static int
run_op(const Plan *pl, const Op *o, const FeatData *fd, Py_ssize_t nrows, int64_t maxcount,
       OutBuf *out)
{
    if (o->op == OP_NUMERIC || o->op == OP_RAW) {
        const Feat *f = &pl->feats[o->fidx];
        const FeatData *d = &fd[o->fidx];
        Py_ssize_t w = f->fixed;
        size_t esize = (o->op == OP_RAW && f->kind == K_INT64) ? 8 : 4;
        out->width = w;
        out->len = (size_t)nrows * (size_t)w * esize;
        out->buf = out_alloc(out->len);
        if (out->buf == NULL) {
            return RUN_NOMEM;
        }
        if (o->op == OP_RAW) {
            for (Py_ssize_t r = 0; r < nrows; r++) {
                const void *src = f->kind == K_INT64 ? (const void *)(d->vi + d->start[r])
                                                     : (const void *)(d->vf + d->start[r]);
                memcpy(out->buf + (size_t)r * (size_t)w * esize, src, (size_t)w * esize);
            }
            return RUN_OK;
        }
        float *dst = (float *)out->buf;
        for (Py_ssize_t r = 0; r < nrows; r++) {
            int64_t s = d->start[r];
            for (Py_ssize_t j = 0; j < w; j++) {
                if (normalized(o, feature_number(f, d, s + j), dst++) != RUN_OK) {
                    return RUN_SLOW;
                }
            }
        }
        return RUN_OK;
    }
    size_t tmpn = (size_t)(maxcount > 0 ? maxcount : 1);
    if (o->op != OP_CROSS) {
        const Feat *f = &pl->feats[o->fidx];
        const FeatData *d = &fd[o->fidx];
        int dense = f->fixed >= 0;
        Py_ssize_t w = dense ? f->fixed : 0;
        if (!dense) {
            for (Py_ssize_t r = 0; r < nrows; r++) {
                if (d->count[r] > w) {
                    w = (Py_ssize_t)d->count[r];
                }
            }
        }
        out->width = w;
        out->len = (size_t)nrows * (size_t)w * 8;
        out->buf = out_alloc(out->len);
        if (dense && out->buf != NULL) {
            /* A fixed-length feature's values are contiguous, row after row. */
            return map_dense(o, f, d, (int64_t)nrows * (int64_t)w, (int64_t *)out->buf);
        }
        unsigned char *keep = malloc(tmpn);
        if (out->buf == NULL || keep == NULL) {
            free(keep);
            return RUN_NOMEM;
        }
        int64_t *dst = (int64_t *)out->buf;
        for (Py_ssize_t r = 0; r < nrows; r++) {
            int64_t *row = dst + (size_t)r * (size_t)w;
            int64_t n;
            int st = row_ids(pl, o, fd, r, row, keep, &n);
            if (st != RUN_OK) {
                free(keep);
                return st;
            }
            for (int64_t j = 0; j < n; j++) {
                if (!keep[j]) {
                    row[j] = -1;
                }
            }
            for (int64_t j = n; j < w; j++) {
                row[j] = -1;
            }
        }
        free(keep);
        return RUN_OK;
    }
    /* Crosses: per row, the product of the leaves' kept values, the last leaf
     * varying fastest; FingerprintCat64 from the hash key, as SparseCross. */
    Py_ssize_t L = o->nleaves;
    if (L > MAX_CROSS_LEAVES) {
        return RUN_SLOW;
    }
    int st = RUN_NOMEM;
    IVec res = {0};
    int64_t *rowcount = calloc((size_t)nrows ? (size_t)nrows : 1, sizeof(int64_t));
    uint64_t *vals = malloc((size_t)L * tmpn * sizeof(uint64_t));
    int64_t *ids = malloc(tmpn * sizeof(int64_t));
    unsigned char *keep = malloc(tmpn);
    int64_t counts[MAX_CROSS_LEAVES], idx[MAX_CROSS_LEAVES];
    if (rowcount == NULL || vals == NULL || ids == NULL || keep == NULL) {
        goto cross_done;
    }
    int64_t w = 0;
    for (Py_ssize_t r = 0; r < nrows; r++) {
        int64_t total = 1;
        for (Py_ssize_t l = 0; l < L; l++) {
            const Op *leaf = &o->leaves[l];
            uint64_t *lv = vals + (size_t)l * tmpn;
            int64_t k = 0;
            if (leaf->op == OP_RAW) {
                const Feat *f = &pl->feats[leaf->fidx];
                const FeatData *d = &fd[leaf->fidx];
                int64_t s = d->start[r];
                for (int64_t j = 0; j < d->count[r]; j++) {
                    lv[k++] = f->kind == K_BYTES
                                  ? fingerprint64(d->vs[s + j].p, d->vs[s + j].n)
                                  : (uint64_t)d->vi[s + j];
                }
            } else {
                int64_t n;
                st = row_ids(pl, leaf, fd, r, ids, keep, &n);
                if (st != RUN_OK) {
                    goto cross_done;
                }
                for (int64_t j = 0; j < n; j++) {
                    if (keep[j]) {
                        lv[k++] = (uint64_t)ids[j];
                    }
                }
            }
            counts[l] = k;
            total *= k;
            if (total > MAX_CROSS_PER_ROW) {
                st = RUN_SLOW;
                goto cross_done;
            }
        }
        rowcount[r] = total;
        if (total > w) {
            w = total;
        }
        if (ivec_reserve(&res, (size_t)total) < 0) {
            st = RUN_NOMEM;
            goto cross_done;
        }
        for (Py_ssize_t l = 0; l < L; l++) {
            idx[l] = 0;
        }
        for (int64_t c = 0; c < total; c++) {
            uint64_t h = o->hash_key;
            for (Py_ssize_t l = 0; l < L; l++) {
                h = fingerprint_cat64(h, vals[(size_t)l * tmpn + (size_t)idx[l]]);
            }
            res.v[res.n++] = (int64_t)(o->num_bins > 0 ? h % (uint64_t)o->num_bins
                                                       : h % (uint64_t)INT64_MAX);
            for (Py_ssize_t l = L - 1; l >= 0; l--) {
                if (++idx[l] < counts[l]) {
                    break;
                }
                idx[l] = 0;
            }
        }
    }
    out->width = (Py_ssize_t)w;
    out->len = (size_t)nrows * (size_t)w * 8;
    out->buf = out_alloc(out->len);
    if (out->buf == NULL) {
        st = RUN_NOMEM;
        goto cross_done;
    }
    int64_t *dst = (int64_t *)out->buf;
    size_t at = 0;
    for (Py_ssize_t r = 0; r < nrows; r++) {
        int64_t *row = dst + (size_t)r * (size_t)w;
        memcpy(row, res.v + at, (size_t)rowcount[r] * sizeof(int64_t));
        at += (size_t)rowcount[r];
        for (int64_t j = rowcount[r]; j < w; j++) {
            row[j] = -1;
        }
    }
    st = RUN_OK;
cross_done:
    free(res.v);
    free(rowcount);
    free(vals);
    free(ids);
    free(keep);
    return st;
}

static int
run_plan(const Plan *pl, const Str *recs, Py_ssize_t nrows, FeatData *fd, OutBuf *outs)
{
    Py_ssize_t guess[MAX_GUESS];
    for (Py_ssize_t k = 0; k < MAX_GUESS; k++) {
        guess[k] = -1;
    }
    for (Py_ssize_t r = 0; r < nrows; r++) {
        int st = decode_record(pl, fd, r, recs[r].p, recs[r].p + recs[r].n, guess);
        if (st != RUN_OK) {
            return st;
        }
    }
    int64_t maxcount = 0;
    for (Py_ssize_t i = 0; i < pl->nfeats; i++) {
        for (Py_ssize_t r = 0; r < nrows; r++) {
            if (fd[i].count[r] > maxcount) {
                maxcount = fd[i].count[r];
            }
        }
    }
    for (Py_ssize_t i = 0; i < pl->nops; i++) {
        int st = run_op(pl, &pl->ops[i], fd, nrows, maxcount, &outs[i]);
        if (st != RUN_OK) {
            return st;
        }
    }
    return RUN_OK;
}

static void
free_outs(OutBuf *outs, Py_ssize_t nops)
{
    if (outs != NULL) {
        for (Py_ssize_t i = 0; i < nops; i++) {
            free(outs[i].buf);
        }
    }
    free(outs);
}

/* Runs the plan on nrows records (recs; their bytes stay valid and unchanged
 * meanwhile). Touches no Python object: callers run it without the GIL.
 * RUN_OK: *outs_out holds one buffer per op (free_outs); RUN_SLOW / RUN_NOMEM:
 * *outs_out is NULL. */
static int
run_batch(const Plan *pl, const Str *recs, Py_ssize_t nrows, OutBuf **outs_out)
{
    int st = RUN_NOMEM;
    *outs_out = NULL;
    FeatData *fd = calloc((size_t)(pl->nfeats ? pl->nfeats : 1), sizeof(FeatData));
    OutBuf *outs = calloc((size_t)(pl->nops ? pl->nops : 1), sizeof(OutBuf));
    if (fd == NULL || outs == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < pl->nfeats; i++) {
        fd[i].last_row = -1;
        fd[i].start = calloc((size_t)(nrows ? nrows : 1), sizeof(int64_t));
        fd[i].count = calloc((size_t)(nrows ? nrows : 1), sizeof(int64_t));
        if (fd[i].start == NULL || fd[i].count == NULL) {
            goto done;
        }
    }
    st = run_plan(pl, recs, nrows, fd, outs);
done:
    if (fd != NULL) {
        for (Py_ssize_t i = 0; i < pl->nfeats; i++) {
            free(fd[i].start);
            free(fd[i].count);
            free(fd[i].vi);
            free(fd[i].vf);
            free(fd[i].vs);
        }
    }
    free(fd);
    if (st == RUN_OK) {
        *outs_out = outs;
    } else {
        free_outs(outs, pl->nops);
    }
    return st;
}

/* (buffers, widths) from a batch's outputs as bytes; NULL with an error. */
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
    st = run_batch(pl, recs, nrows, &outs);
    Py_END_ALLOW_THREADS
    if (st == RUN_NOMEM) {
        return PyErr_NoMemory();
    }
    if (st == RUN_SLOW) {
        Py_RETURN_NONE;
    }
    PyObject *result = outs_to_python(pl, outs);
    free_outs(outs, pl->nops);
    return result;
}

static PyObject *
py_columns_run(PyObject *self, PyObject *args)
{
    PyObject *cap, *records;
    if (!PyArg_ParseTuple(args, "OO", &cap, &records)) {
        return NULL;
    }
    const Plan *pl = PyCapsule_GetPointer(cap, "featurepipe.columns_plan");
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
/* ColumnsRunner: run_batch on worker threads of its own, ahead of the caller.
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
#include <pthread.h>
#include <time.h>
#include <unistd.h>

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
    free(((OutBuffer *)self)->buf);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs outbuffer_as_buffer = {outbuffer_getbuffer, NULL};

static PyTypeObject OutBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "featurepipe._speedups.OutBuffer",
    .tp_basicsize = sizeof(OutBuffer),
    .tp_dealloc = outbuffer_dealloc,
    .tp_as_buffer = &outbuffer_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A read-only buffer of a ColumnsRunner result (it owns the memory).",
};

enum { JOB_PENDING = -1 };

typedef struct Job {
    struct Job *next;
    PyObject *keep;     /* the units (payload lists as tuples): what recs point into */
    Py_buffer *views;   /* held until the job is taken */
    Py_ssize_t nviews;
    Str *recs;
    Py_ssize_t nrows;
    OutBuf *outs;
    int status;         /* JOB_PENDING until a worker has run it */
} Job;

typedef struct {
    PyObject_HEAD
    PyObject *cap;
    const Plan *pl;
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job to start, or stop */
    pthread_cond_t done; /* a job finished */
    Job *head, *tail;    /* submitted and not yet taken, oldest first */
    Job *todo;           /* the oldest job no worker has started */
    Py_ssize_t nthreads; /* at most this many workers */
    Py_ssize_t live;     /* workers running (detached; each leaves after IDLE_SECONDS idle) */
    int stop;
    int closed;
    pid_t pid;
} Runner;

static void
job_free(Job *j, Py_ssize_t nops)
{
    /* With the GIL. */
    for (Py_ssize_t i = 0; i < j->nviews; i++) {
        PyBuffer_Release(&j->views[i]);
    }
    free(j->views);
    Py_XDECREF(j->keep);
    free(j->recs);
    free_outs(j->outs, nops);
    free(j);
}

/* A worker leaves after this long without a batch to start, so a runner whose
 * iterator was abandoned holds no thread; submit() starts one again. */
#define IDLE_SECONDS 2

static void *
runner_main(void *arg)
{
    Runner *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        int timed_out = 0;
        while (r->todo == NULL && !r->stop && !timed_out) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += IDLE_SECONDS;
            timed_out = pthread_cond_timedwait(&r->work, &r->mu, &until) != 0;
        }
        if (r->stop || r->todo == NULL) {
            break;
        }
        Job *j = r->todo;
        r->todo = j->next;
        pthread_mutex_unlock(&r->mu);
        OutBuf *outs;
        int st = run_batch(r->pl, j->recs, j->nrows, &outs);
        pthread_mutex_lock(&r->mu);
        j->outs = outs;
        j->status = st;
        pthread_cond_broadcast(&r->done);
    }
    r->live--;
    pthread_cond_broadcast(&r->done); /* close() waits for live == 0 */
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Starts a worker if there are fewer than nthreads and a job to start; with mu held.
 * -1 when none runs and none could be started. */
static int
runner_ensure_worker(Runner *r)
{
    if (r->live >= r->nthreads || r->todo == NULL) {
        return 0;
    }
    pthread_attr_t attr;
    pthread_t t;
    int ok = pthread_attr_init(&attr) == 0;
    ok = ok && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0;
    ok = ok && pthread_create(&t, &attr, runner_main, r) == 0;
    pthread_attr_destroy(&attr);
    if (ok) {
        r->live++;
        return 0;
    }
    return r->live > 0 ? 0 : -1;
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
    if (r->pid != getpid()) {
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
    r->closed = 1;
    if (r->pid == getpid()) {
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->work);
        while (r->live > 0) {
            pthread_cond_wait(&r->done, &r->mu);
        }
        pthread_mutex_unlock(&r->mu);
        Py_END_ALLOW_THREADS
    } else {
        /* A forked child has no workers: nothing to wait for (jobs still queued
         * in the parent's runner are freed below; none is being run here). */
        r->live = 0;
    }
    while (r->head != NULL) {
        Job *j = r->head;
        r->head = j->next;
        job_free(j, r->pl->nops);
    }
    r->tail = r->todo = NULL;
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
    const Plan *pl = PyCapsule_GetPointer(cap, "featurepipe.columns_plan");
    if (pl == NULL) {
        return -1;
    }
    if (nthreads < 1 || nthreads > 64) {
        PyErr_Format(PyExc_ValueError,
                     "`threads` must be in 1..64. Received: threads=%zd", nthreads);
        return -1;
    }
    if (pthread_mutex_init(&r->mu, NULL) != 0 || pthread_cond_init(&r->work, NULL) != 0 ||
        pthread_cond_init(&r->done, NULL) != 0) {
        PyErr_SetString(PyExc_OSError, "cannot make the ColumnsRunner's locks");
        return -1;
    }
    Py_INCREF(cap);
    r->cap = cap;
    r->pl = pl;
    r->nthreads = nthreads;
    r->pid = getpid();
    return 0;
}

static void
runner_dealloc(PyObject *self)
{
    Runner *r = (Runner *)self;
    if (r->cap != NULL) {
        runner_close_impl(r);
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->work);
        pthread_cond_destroy(&r->done);
        Py_DECREF(r->cap);
    }
    Py_TYPE(self)->tp_free(self);
}

/* The buffers of a and b, held by the job until it is freed; -1 with an error. */
static int
hold_views(Job *j, PyObject *a, PyObject *b, Py_buffer **va, Py_buffer **vb)
{
    *va = &j->views[j->nviews];
    if (PyObject_GetBuffer(a, *va, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    j->nviews++;
    *vb = &j->views[j->nviews];
    if (PyObject_GetBuffer(b, *vb, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    j->nviews++;
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
            PyTuple_SET_ITEM(j->keep, i, kept);
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
    j->views = calloc((size_t)(4 * nunits + 1), sizeof(Py_buffer));
    j->keep = PyTuple_New(nunits);
    if (j->views == NULL || j->keep == NULL) {
        if (j->views == NULL) {
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
            PyTuple_SET_ITEM(j->keep, i, kept);
            if (unit_frames(unit, j, &nrec, &caprec) < 0) {
                goto fail;
            }
        } else {
            kept = PySequence_Tuple(unit); /* a snapshot: its bytes stay alive */
            if (kept == NULL) {
                goto fail;
            }
            PyTuple_SET_ITEM(j->keep, i, kept);
            if (unit_payloads(kept, j, &nrec, &caprec) < 0) {
                goto fail;
            }
        }
    }
    j->nrows = nrec;
    Py_DECREF(seq);
    seq = NULL;
    pthread_mutex_lock(&r->mu);
    if (r->stop) { /* cannot happen: closed is checked first */
        pthread_mutex_unlock(&r->mu);
        job_free(j, r->pl->nops);
        PyErr_SetString(PyExc_RuntimeError, "ColumnsRunner is closed");
        return NULL;
    }
    if (r->tail != NULL) {
        r->tail->next = j;
    } else {
        r->head = j;
    }
    r->tail = j;
    if (r->todo == NULL) {
        r->todo = j;
    }
    int started = runner_ensure_worker(r);
    pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->mu);
    if (started < 0) {
        /* The job stays queued: take() tries again, close() frees it. */
        PyErr_SetString(PyExc_OSError, "cannot start a ColumnsRunner thread");
        return NULL;
    }
    Py_RETURN_NONE;
fail:
    Py_XDECREF(seq);
    job_free(j, r->pl->nops);
    return NULL;
}

static PyObject *
runner_take(PyObject *self, PyObject *unused)
{
    Runner *r = (Runner *)self;
    if (runner_check_usable(r) < 0) {
        return NULL;
    }
    if (r->head == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ColumnsRunner.take() without a batch submitted");
        return NULL;
    }
    /* The result is often there already: look before giving up the GIL. */
    pthread_mutex_lock(&r->mu);
    Job *j = r->head;
    int ready = j->status != JOB_PENDING;
    int started = ready ? 0 : runner_ensure_worker(r);
    pthread_mutex_unlock(&r->mu);
    if (started < 0) {
        PyErr_SetString(PyExc_OSError, "cannot start a ColumnsRunner thread");
        return NULL;
    }
    if (!ready) {
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&r->mu);
        while (j->status == JOB_PENDING) {
            pthread_cond_wait(&r->done, &r->mu);
        }
        pthread_mutex_unlock(&r->mu);
        Py_END_ALLOW_THREADS
    }
    pthread_mutex_lock(&r->mu);
    r->head = j->next;
    if (r->head == NULL) {
        r->tail = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    PyObject *result = NULL;
    if (j->status == RUN_NOMEM) {
        PyErr_NoMemory();
    } else if (j->status == RUN_SLOW) {
        Py_INCREF(Py_None);
        result = Py_None;
    } else {
        const Plan *pl = r->pl;
        PyObject *bufs = PyTuple_New(pl->nops);
        PyObject *widths = bufs ? PyTuple_New(pl->nops) : NULL;
        for (Py_ssize_t i = 0; widths != NULL && i < pl->nops; i++) {
            OutBuffer *b = PyObject_New(OutBuffer, &OutBufferType);
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
    job_free(j, r->pl->nops);
    return result;
}

static PyObject *
runner_pending(PyObject *self, void *closure)
{
    Runner *r = (Runner *)self;
    Py_ssize_t n = 0;
    for (Job *j = r->head; j != NULL; j = j->next) {
        n++;
    }
    return PyLong_FromSsize_t(n);
}

static PyObject *
runner_workers(PyObject *self, void *closure)
{
    Runner *r = (Runner *)self;
    pthread_mutex_lock(&r->mu);
    Py_ssize_t n = r->live;
    pthread_mutex_unlock(&r->mu);
    return PyLong_FromSsize_t(n);
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
     "submit(units) -> None\n\nQueues one batch: units of (buffer, starts, first, count) "
     "frames or lists of records."},
    {"take", runner_take, METH_NOARGS,
     "take() -> (buffers, widths) | None\n\nThe oldest batch's outputs (waiting for them), "
     "or None when TF's ops must decide it."},
    {"close", runner_close, METH_NOARGS,
     "close() -> None\n\nStops the workers and drops the batches not taken."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef runner_getset[] = {
    {"pending", runner_pending, NULL, "Batches submitted and not yet taken.", NULL},
    {"workers", runner_workers, NULL, "Worker threads running now.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RunnerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "featurepipe._speedups.ColumnsRunner",
    .tp_basicsize = sizeof(Runner),
    .tp_dealloc = runner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ColumnsRunner(plan, threads=1): columns_run on worker threads, in order.",
    .tp_methods = runner_methods,
    .tp_getset = runner_getset,
    .tp_init = runner_init,
    .tp_new = PyType_GenericNew,
};
#endif /* _WIN32 */

static PyMethodDef columns_methods[] = {
    {"fingerprint64", py_fingerprint64, METH_O,
     "fingerprint64(data) -> int\n\nFarmHash Fingerprint64 of data (TF's Fingerprint64)."},
    {"columns_compile", py_columns_compile, METH_VARARGS,
     "columns_compile(features, ops, vocabularies) -> plan\n\n"
     "A compiled column plan (see featurepipe.keras._compiled)."},
    {"columns_run", py_columns_run, METH_VARARGS,
     "columns_run(plan, records) -> (buffers, widths) | None\n\n"
     "Runs a plan on a batch of serialized tf.Examples: one little-endian buffer\n"
     "and row width per op, or None when TF's ops must decide the batch."},
    {NULL, NULL, 0, NULL},
};

int
fp_columns_register(PyObject *module)
{
    if (PyModule_AddFunctions(module, columns_methods) < 0) {
        return -1;
    }
#ifndef _WIN32
    if (PyType_Ready(&OutBufferType) < 0 || PyType_Ready(&RunnerType) < 0) {
        return -1;
    }
    Py_INCREF(&RunnerType);
    if (PyModule_AddObject(module, "ColumnsRunner", (PyObject *)&RunnerType) < 0) {
        Py_DECREF(&RunnerType);
        return -1;
    }
#endif
    return 0;
}
