/* CSV rows -> serialized tf.Examples: plain C kernel (csv.c).
 * The bindings (csrc/bindings/csv.c) expose it as
 *
 *   csv_cut(buf, start, delimiter, quotechar, max_records, field_limit, at_eof)
 *       -> (end, records, lines)
 *   csv_convert(buf, delimiter, quotechar, field_limit, width, plan, first_line)
 *       -> (records, positions, deferred)
 *   csv_infer(buf, delimiter, quotechar, field_limit, width, missing, settled, first_line)
 *       -> (rows, counts, unsure, deferred)
 *
 * All three run the state machine of CPython 3.11's `_csv` reader (Modules/_csv.c)
 * for the dialect featurepipe reads with: one-character delimiter and quote
 * character, doublequote, no escape character, no skipinitialspace, strict,
 * over lines split the way io.TextIOWrapper(newline="") splits them (at
 * "\r\n", "\n" or "\r"). Rows, line numbers and fields therefore come out as
 * featurepipe.convert's pure-Python reader (csv.reader over those lines) gives
 * them. Delimiter and quote character must be ASCII and neither may be "\r"
 * or "\n"; then bytes, not decoded text, can be scanned, because no byte of a
 * multi-byte UTF-8 character (nor any byte Python decodes with
 * surrogateescape) equals an ASCII character.
 *
 * csv_convert only converts rows it is sure of; every other row (a csv
 * error, a wrong field count, a byte >= 0x80, a cell that is not a plain
 * integer / decimal number, a missing required value) is handed back as a
 * byte range, and featurepipe.convert runs the pure-Python path on it, which
 * then decides what the row is (a record or a dead letter with its reason).
 * Nothing is ever decided differently here: this file only has a fast way to
 * reach the answers the Python path would give for ordinary rows.
 */
#ifndef FP_KERNELS_CSV_H
#define FP_KERNELS_CSV_H

#include "common.h"

enum {
    START_RECORD,
    START_FIELD,
    IN_FIELD,
    IN_QUOTED_FIELD,
    QUOTE_IN_QUOTED_FIELD,
    EAT_CRNL,
};

/* Kinds in a conversion plan (same codes as featurepipe.convert._C_KINDS). */
enum { KIND_BYTES = 1, KIND_FLOAT = 2, KIND_INT64 = 3 };

/* One parsed row: fields' contents end to end in `text`. */
typedef struct {
    unsigned char *text;
    fp_ssize text_cap;
    fp_ssize *off; /* field k: text[off[k] .. off[k + 1]) */
    fp_ssize off_cap;
    fp_ssize nfields;
    fp_ssize nlines;
    int error;    /* the csv module raises csv.Error for this row */
    int high;     /* the row has a byte >= 0x80 */
    int complete; /* the row ended (else: the buffer ended inside it) */
} Row;

/* Growable (start, end, line) triples: the rows left to the Python path. */
typedef struct {
    fp_ssize *v;
    size_t n, cap; /* n: 3 per row */
} FpSpans;

/* A walk over the whole records of a buffer, for csv_convert and csv_infer. */
typedef struct {
    const unsigned char *b;
    fp_ssize pos, end, line;
    int delim, quote;
    fp_ssize field_limit, width;
    fp_ssize start, row_line; /* the current row's first byte and line number */
    FpSpans *deferred;          /* (start, end, line) of the rows left to Python */
} Walk;

/* ------------------------------------------------------------------------ */
/* Conversion. */

typedef struct {
    fp_ssize column; /* index in the row, or -1: not in the file (always missing) */
    int kind;
    int required;
    const char *key; /* 0x0A varint(len(name)) name 0x12 */
    fp_ssize key_len;
    const char *default_entry; /* the whole map entry for the default value, or NULL */
    fp_ssize default_len;
    const Str *missing; /* the missing-value tokens */
    fp_ssize nmissing;
    const unsigned char *sep; /* value separator of a list column, or NULL */
    fp_ssize sep_len;
    fp_ssize want; /* values per row when fixed (a list column), else -1 */
} Feature;

typedef struct {
    int present; /* 0 absent, 1 value, 2 default entry */
    int64_t i;
    float f;
    const unsigned char *s; /* bytes value, or the whole cell of a list column */
    fp_ssize slen;
    fp_ssize payload; /* packed int64 / float payload of a list column */
    fp_ssize list_len;  /* the XxxList message */
    fp_ssize feat_len;  /* the Feature message */
    fp_ssize entry_len; /* the map entry message */
} Value;

/* Room for `text` bytes of field text and `fields` fields; -1 when out of memory. */
int fp_csv_row_reserve(Row *r, fp_ssize text, fp_ssize fields);
void fp_csv_row_free(Row *r);

/* Parses the row (csv record) starting at *pos, a line start (see csv.c); -1
 * only when out of memory. */
int fp_csv_parse_row(const unsigned char *b, fp_ssize *pos, fp_ssize end, int delim, int quote,
                     fp_ssize field_limit, int at_eof, Row *r);

/* Appends the current row of w (w->start .. w->pos, line w->row_line) to
 * w->deferred; -1 when out of memory. */
int fp_csv_defer_row(Walk *w);

/* The next row the caller may read into r: 1, or 0 at the end, -1 when out
 * of memory. Blank lines are skipped; rows Python must read are deferred. */
int fp_csv_next_row(Walk *w, Row *r);

/* A converted row's record: returns where to write its size bytes (the
 * serialized Example of the row on line `line`), or NULL to stop (an error). */
typedef unsigned char *(*FpEmitRecord)(void *ctx, fp_ssize size, fp_ssize line);

/* Converts the rest of w's rows: each row it is sure of goes to emit, every
 * other one to w->deferred. vals: room for nfeat values. Returns 0 at the
 * end, -1 when out of memory, -2 when emit returned NULL. */
int fp_csv_convert_rows(Walk *w, Row *r, const Feature *feats, fp_ssize nfeat, Value *vals,
                        FpEmitRecord emit, void *ctx);

/* A cell only Python can classify (column c, text s[0:n]); -1 to stop (an error). */
typedef int (*FpUnsureCell)(void *ctx, fp_ssize c, const unsigned char *s, fp_ssize n);

/* Schema-inference counts of the rest of w's rows (w->width columns):
 * cnt[4 * c .. 4 * c + 3] += (present, ints, floats, others) per column c,
 * *rows += the rows read; the cells only Python can classify go to `cell`.
 * done_col: one byte per column, nonzero for columns already known to be
 * text (only counted present); unsure: room for width column indices.
 * Returns 0 at the end, -1 when out of memory, -2 when cell returned -1. */
int fp_csv_infer_rows(Walk *w, Row *r, const Str *missing, fp_ssize nmissing,
                      const unsigned char *done_col, fp_ssize *cnt, fp_ssize *unsure,
                      fp_ssize *rows, FpUnsureCell cell, void *ctx);

#endif
