/*
 * Feature-column ids straight from serialized tf.Examples: plain C kernel
 * (columns.c). One pass per batch: decode the features a plan needs, then
 * hash (FarmHash Fingerprint64, as TF's StringToHashBucketFast), look up
 * vocabularies, bucketize, normalize and cross (FingerprintCat64, as TF's
 * SparseCross) them. The binding (csrc/bindings/columns.c) builds a Plan from
 * the Python column specs of featurepipe.keras._compiled.
 *
 * fp_run_batch reports RUN_SLOW, and never guesses, when a batch holds
 * anything it does not decode exactly like tf.io.parse_example (non-canonical
 * wire encodings, a duplicate or kind-less feature, a kind that does not
 * match the parse spec, a fixed-length feature with the wrong number of
 * values or missing without a default, a log that rounds too close to a
 * float32 tie): the caller then runs the TF ops, which also raise TF's own
 * errors.
 */
#ifndef FP_KERNELS_COLUMNS_H
#define FP_KERNELS_COLUMNS_H

#include "common.h"
#include "farmhash.h"
#include "vocab.h"


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
    unsigned char *name;
    size_t name_len;
    int kind;
    fp_ssize fixed; /* values per row, or -1 for variable length */
    int has_default;
    int64_t *def_i;
    float *def_f;
    Str *def_s;
    unsigned char *def_store;
} Feat;

typedef struct Op {
    int op;
    fp_ssize fidx;
    int drop; /* ids: "" / -1 cells are dropped (-1 in place when dense) */
    fp_ssize size;
    int norm;
    double na, nb;
    float *bounds;
    fp_ssize nbounds;
    int64_t num_bins;
    Vocab *vocab;
    int64_t num_oov;
    int64_t defval;
    int has_def;
    uint64_t hash_key;
    struct Op *leaves; /* OP_CROSS: OP_RAW or id ops, TF's input order */
    fp_ssize nleaves;
} Op;

typedef struct {
    Feat *feats;
    fp_ssize nfeats;
    size_t lmask;
    fp_ssize *lslot; /* feature index + 1, 0 empty */
    Op *ops;
    fp_ssize nops;
    Vocab *vocabs;
    fp_ssize nvocabs;
} Plan;

/* Running a plan on one batch. */

enum { RUN_OK = 0, RUN_SLOW = 1, RUN_NOMEM = 2 };

typedef struct {
    int64_t *start; /* per row: first value index */
    int64_t *count; /* per row */
    fp_ssize last_row;
    int64_t *vi;
    float *vf;
    Str *vs;
    size_t n, cap;
} FeatData;

typedef struct {
    unsigned char *buf;
    size_t len;
    fp_ssize width;
} OutBuf;

/* A plan with room for nf features, no ops and nv vocabularies (counts
 * nfeats, nops, nvocabs at 0: raise each as its part is filled, so that
 * fp_plan_free frees what was filled); NULL when out of memory. */
Plan *fp_plan_new(fp_ssize nf, fp_ssize no, fp_ssize nv);

/* Frees a plan and everything it owns (NULL is fine). */
void fp_plan_free(Plan *pl);

/* Indexes feature i (filled by the caller) by name: 0, or -2 with the
 * reason (a ValueError) in *msg. */
int fp_plan_add_feature(Plan *pl, fp_ssize i, const char **msg);

/* The reason (a ValueError) op o (filled by the caller; its leaves checked
 * already) cannot run in plan pl, or NULL; leaf: o is a cross's leaf. */
const char *fp_op_check(const Op *o, const Plan *pl, int leaf);

/* Runs the plan on nrows records (recs; their bytes stay valid and unchanged
 * meanwhile). Touches no shared state: callers run it without the GIL.
 * RUN_OK: *outs_out holds one buffer per op (fp_free_outs); RUN_SLOW / RUN_NOMEM:
 * *outs_out is NULL. */
int fp_run_batch(const Plan *pl, const Str *recs, fp_ssize nrows, OutBuf **outs_out);

/* Frees the output buffers of a batch (NULL is fine). */
void fp_free_outs(OutBuf *outs, fp_ssize nops);

#endif
