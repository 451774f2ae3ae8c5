/* Feature-column ids straight from serialized tf.Examples (see columns.h). Plain C kernel. */
#include "columns.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Plans. */

static void
op_clear(Op *o)
{
    free(o->bounds);
    if (o->leaves) {
        for (fp_ssize i = 0; i < o->nleaves; i++) {
            op_clear(&o->leaves[i]);
        }
        free(o->leaves);
    }
}

void
fp_plan_free(Plan *pl)
{
    if (pl == NULL) {
        return;
    }
    for (fp_ssize i = 0; i < pl->nfeats; i++) {
        Feat *f = &pl->feats[i];
        free(f->name);
        free(f->def_i);
        free(f->def_f);
        free(f->def_s);
        free(f->def_store);
    }
    free(pl->feats);
    free(pl->lslot);
    for (fp_ssize i = 0; i < pl->nops; i++) {
        op_clear(&pl->ops[i]);
    }
    free(pl->ops);
    for (fp_ssize i = 0; i < pl->nvocabs; i++) {
        fp_vocab_clear(&pl->vocabs[i]);
    }
    free(pl->vocabs);
    free(pl);
}

static inline fp_ssize
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

Plan *
fp_plan_new(fp_ssize nf, fp_ssize no, fp_ssize nv)
{
    Plan *pl = calloc(1, sizeof(Plan));
    if (pl == NULL) {
        return NULL;
    }
    pl->feats = calloc((size_t)(nf ? nf : 1), sizeof(Feat));
    pl->ops = calloc((size_t)(no ? no : 1), sizeof(Op));
    pl->vocabs = calloc((size_t)(nv ? nv : 1), sizeof(Vocab));
    size_t lslots = pow2_at_least((size_t)nf * 2 + 1);
    pl->lslot = calloc(lslots, sizeof(fp_ssize));
    pl->lmask = lslots - 1;
    if (pl->feats == NULL || pl->ops == NULL || pl->vocabs == NULL || pl->lslot == NULL) {
        fp_plan_free(pl);
        return NULL;
    }
    return pl;
}

int
fp_plan_add_feature(Plan *pl, fp_ssize i, const char **msg)
{
    Feat *f = &pl->feats[i];
    if (plan_feature(pl, f->name, f->name_len) >= 0) {
        *msg = "duplicate feature name";
        return -2;
    }
    size_t s = (size_t)fingerprint64(f->name, f->name_len) & pl->lmask;
    while (pl->lslot[s]) {
        s = (s + 1) & pl->lmask;
    }
    pl->lslot[s] = i + 1;
    return 0;
}

const char *
fp_op_check(const Op *o, const Plan *pl, int leaf)
{
    if (o->op < OP_NUMERIC || o->op > OP_RAW) {
        return "bad op";
    }
    if (o->op != OP_CROSS && (o->fidx < 0 || o->fidx >= pl->nfeats)) {
        return "bad feature index";
    }
    if (o->op == OP_VOCAB && o->vocab == NULL) {
        return "bad vocabulary index";
    }
    if (o->op == OP_NUMERIC || o->op == OP_BUCKET || (o->op == OP_RAW && !leaf)) {
        fp_ssize fixed = pl->feats[o->fidx].fixed;
        if (fixed < 0 || (o->op != OP_RAW && fixed != o->size)) {
            return "numeric ops need a fixed-length feature";
        }
        if (o->op != OP_RAW && pl->feats[o->fidx].kind == K_BYTES) {
            return "numeric ops need a numeric feature";
        }
    }
    if (o->op == OP_CROSS) {
        for (fp_ssize i = 0; i < o->nleaves; i++) {
            const Op *lf = &o->leaves[i];
            if (lf->op == OP_CROSS || lf->op == OP_NUMERIC ||
                (lf->op == OP_RAW && pl->feats[lf->fidx].kind == K_FLOAT)) {
                return "unsupported cross leaf";
            }
        }
        if (o->nleaves < 1) {
            return "a cross needs leaves";
        }
    }
    if ((o->op == OP_HASH || o->op == OP_VOCAB || o->op == OP_IDENTITY) &&
        pl->feats[o->fidx].kind == K_FLOAT) {
        return "ids of float features are not supported";
    }
    if (o->op == OP_VOCAB && o->vocab->is_str != (pl->feats[o->fidx].kind == K_BYTES)) {
        return "vocabulary and feature kinds differ";
    }
    if (o->op == OP_IDENTITY && pl->feats[o->fidx].kind != K_INT64) {
        return "identity ids need an int64 feature";
    }
    if ((o->op == OP_HASH && o->num_bins < 1) || (o->op == OP_VOCAB && o->num_oov < 0)) {
        return "bad bucket count";
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Running a plan on one batch. */

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
decode_record(const Plan *pl, FeatData *fd, fp_ssize r, const unsigned char *p,
              const unsigned char *end, fp_ssize *guess)
{
    fp_ssize pos = 0;
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
            fp_ssize i = -2;
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
    for (fp_ssize i = 0; i < pl->nfeats; i++) {
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
    fp_ssize lo = 0, hi = o->nbounds;
    while (lo < hi) {
        fp_ssize mid = lo + (hi - lo) / 2;
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
row_ids(const Plan *pl, const Op *o, const FeatData *fd, fp_ssize r, int64_t *ids,
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
run_op(const Plan *pl, const Op *o, const FeatData *fd, fp_ssize nrows, int64_t maxcount,
       OutBuf *out)
{
    if (o->op == OP_NUMERIC || o->op == OP_RAW) {
        const Feat *f = &pl->feats[o->fidx];
        const FeatData *d = &fd[o->fidx];
        fp_ssize w = f->fixed;
        size_t esize = (o->op == OP_RAW && f->kind == K_INT64) ? 8 : 4;
        out->width = w;
        out->len = (size_t)nrows * (size_t)w * esize;
        out->buf = out_alloc(out->len);
        if (out->buf == NULL) {
            return RUN_NOMEM;
        }
        if (o->op == OP_RAW) {
            for (fp_ssize r = 0; r < nrows; r++) {
                const void *src = f->kind == K_INT64 ? (const void *)(d->vi + d->start[r])
                                                     : (const void *)(d->vf + d->start[r]);
                memcpy(out->buf + (size_t)r * (size_t)w * esize, src, (size_t)w * esize);
            }
            return RUN_OK;
        }
        float *dst = (float *)out->buf;
        for (fp_ssize r = 0; r < nrows; r++) {
            int64_t s = d->start[r];
            for (fp_ssize j = 0; j < w; j++) {
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
        fp_ssize w = dense ? f->fixed : 0;
        if (!dense) {
            for (fp_ssize r = 0; r < nrows; r++) {
                if (d->count[r] > w) {
                    w = (fp_ssize)d->count[r];
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
        for (fp_ssize r = 0; r < nrows; r++) {
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
    fp_ssize L = o->nleaves;
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
    for (fp_ssize r = 0; r < nrows; r++) {
        int64_t total = 1;
        for (fp_ssize l = 0; l < L; l++) {
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
        for (fp_ssize l = 0; l < L; l++) {
            idx[l] = 0;
        }
        for (int64_t c = 0; c < total; c++) {
            uint64_t h = o->hash_key;
            for (fp_ssize l = 0; l < L; l++) {
                h = fingerprint_cat64(h, vals[(size_t)l * tmpn + (size_t)idx[l]]);
            }
            res.v[res.n++] = (int64_t)(o->num_bins > 0 ? h % (uint64_t)o->num_bins
                                                       : h % (uint64_t)INT64_MAX);
            for (fp_ssize l = L - 1; l >= 0; l--) {
                if (++idx[l] < counts[l]) {
                    break;
                }
                idx[l] = 0;
            }
        }
    }
    out->width = (fp_ssize)w;
    out->len = (size_t)nrows * (size_t)w * 8;
    out->buf = out_alloc(out->len);
    if (out->buf == NULL) {
        st = RUN_NOMEM;
        goto cross_done;
    }
    int64_t *dst = (int64_t *)out->buf;
    size_t at = 0;
    for (fp_ssize r = 0; r < nrows; r++) {
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
run_plan(const Plan *pl, const Str *recs, fp_ssize nrows, FeatData *fd, OutBuf *outs)
{
    fp_ssize guess[MAX_GUESS];
    for (fp_ssize k = 0; k < MAX_GUESS; k++) {
        guess[k] = -1;
    }
    for (fp_ssize r = 0; r < nrows; r++) {
        int st = decode_record(pl, fd, r, recs[r].p, recs[r].p + recs[r].n, guess);
        if (st != RUN_OK) {
            return st;
        }
    }
    int64_t maxcount = 0;
    for (fp_ssize i = 0; i < pl->nfeats; i++) {
        for (fp_ssize r = 0; r < nrows; r++) {
            if (fd[i].count[r] > maxcount) {
                maxcount = fd[i].count[r];
            }
        }
    }
    for (fp_ssize i = 0; i < pl->nops; i++) {
        int st = run_op(pl, &pl->ops[i], fd, nrows, maxcount, &outs[i]);
        if (st != RUN_OK) {
            return st;
        }
    }
    return RUN_OK;
}

void
fp_free_outs(OutBuf *outs, fp_ssize nops)
{
    if (outs != NULL) {
        for (fp_ssize i = 0; i < nops; i++) {
            free(outs[i].buf);
        }
    }
    free(outs);
}

/* Runs the plan on one batch (see columns.h). */
int
fp_run_batch(const Plan *pl, const Str *recs, fp_ssize nrows, OutBuf **outs_out)
{
    int st = RUN_NOMEM;
    *outs_out = NULL;
    FeatData *fd = calloc((size_t)(pl->nfeats ? pl->nfeats : 1), sizeof(FeatData));
    OutBuf *outs = calloc((size_t)(pl->nops ? pl->nops : 1), sizeof(OutBuf));
    if (fd == NULL || outs == NULL) {
        goto done;
    }
    for (fp_ssize i = 0; i < pl->nfeats; i++) {
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
        for (fp_ssize i = 0; i < pl->nfeats; i++) {
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
        fp_free_outs(outs, pl->nops);
    }
    return st;
}

