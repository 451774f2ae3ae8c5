/* tf.Example wire decoding into per-feature columns: plain C kernel (example.c). */
#ifndef FP_KERNELS_EXAMPLE_H
#define FP_KERNELS_EXAMPLE_H

#include "common.h"

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

struct DecoderHooks;

enum { KIND_NONE = 0, KIND_BYTES = 1, KIND_FLOAT = 2, KIND_INT64 = 3 };
enum { DEC_OK = 0, DEC_SLOW = 1, DEC_BAD = 2, DEC_NOMEM = 3 };

typedef struct Column {
    char *name;          /* owned copy of the key bytes */
    fp_ssize name_len;
    uint64_t head;       /* first (up to) 8 key bytes, zero-padded: compared first */
    void *name_obj;      /* the binding's object for the name (see DecoderHooks) */
    int kind;
    fp_ssize last_row; /* last record that set this column; catches duplicates */
    fp_ssize next;     /* column that followed this one last time, or -1 */
    void *bytes_values;  /* the binding's container of KIND_BYTES values */
    unsigned char *buf;  /* float32 / int64 values, little-endian */
    size_t buf_len, buf_cap;
    int64_t *row_lengths;
    unsigned char *present;
    unsigned char *kindless;
    /* Feature lists (fp_parse_sequence_example): values of each step, in order. */
    int64_t *step_lengths;
    size_t nsteps, steps_cap;
} Column;

typedef struct {
    Column *cols;
    fp_ssize ncols, cap;
    fp_ssize *slots; /* open addressing: column index + 1, 0 = empty */
    size_t nslots;     /* power of two */
    fp_ssize nrows;
    /* Features come in the same order in most records (sorted keys, with
     * some missing): guess each entry's column as the one that followed the
     * previous entry's column last time. */
    fp_ssize first; /* column of the first entry last time, or -1 */
    int mixed;        /* set when the current record's kind clashes */
    const struct DecoderHooks *hooks;
    void *ctx; /* passed to the hooks */
} Decoder;

/* What the decoder leaves to its caller (the binding): the object for a new
 * column's name and the container of its bytes values. Each returns DEC_OK,
 * DEC_BAD (the record is not an Example: a key that is not UTF-8) or DEC_NOMEM. */
typedef struct DecoderHooks {
    /* A new column named key[0:klen]: set c->name_obj. */
    int (*new_column)(void *ctx, struct Column *c, const unsigned char *key, size_t klen);
    /* Append the bytes value p[0:n] to c->bytes_values (creating it when NULL). */
    int (*bytes_value)(void *ctx, struct Column *c, const unsigned char *p, size_t n);
    /* Release c->name_obj and c->bytes_values (either may be NULL). */
    void (*free_column)(void *ctx, struct Column *c);
} DecoderHooks;

/* An empty decoder for nrows records; -1 when out of memory. */
int fp_decoder_init(Decoder *d, fp_ssize nrows, const DecoderHooks *hooks, void *ctx);

/* Releases a decoder's memory (and, through free_column, its columns' objects). */
void fp_decoder_free(Decoder *d);

/* Parse one serialized Example p[0:end) as row r: a DEC_ status (d->mixed is
 * set when a feature's kind clashes with an earlier record's). */
int fp_parse_example(Decoder *d, fp_ssize r, const unsigned char *p, const unsigned char *end);

/* Parse one serialized SequenceExample p[0:end) as row r of `lists`, a decoder
 * whose columns are the feature lists (row_lengths: steps per sequence;
 * step_lengths: values per step); *ctx / *ctx_len get the context field with
 * its tag, which is a serialized Example (length 0: none). Same statuses and
 * canonical-encoding rule as fp_parse_example. */
int fp_parse_sequence_example(Decoder *lists, fp_ssize r, const unsigned char *p,
                              const unsigned char *end, const unsigned char **ctx,
                              size_t *ctx_len);

#endif
