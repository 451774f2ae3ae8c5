/*
 * featurepipe._speedups, part: CSV rows -> serialized tf.Examples (see _speedups.h).
 *
 *   csv_cut(buf, start, delimiter, quotechar, max_records, field_limit, at_eof)
 *       -> (end, records, lines)
 *   csv_convert(buf, delimiter, quotechar, field_limit, width, plan, first_line)
 *       -> (records, positions, deferred)
 *   csv_infer(buf, delimiter, quotechar, field_limit, width, missing, settled, first_line)
 *       -> (rows, counts, unsure, deferred)
 *
 * Both run the state machine of CPython 3.11's `_csv` reader (Modules/_csv.c)
 * for the dialect featurepipe reads with: one-character delimiter and quote
 * character, doublequote, no escape character, no skipinitialspace, strict,
 * over lines split the way io.TextIOWrapper(newline="") splits them (at
 * "\r\n", "\n" or "\r"). Rows, line numbers and fields therefore come out as
 * featurepipe.sources' pure-Python reader (csv.reader over those lines) gives
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
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_speedups.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* The end of the line that starts at p: just past "\r\n", "\n" or "\r", or end. */
static inline Py_ssize_t
line_end(const unsigned char *b, Py_ssize_t p, Py_ssize_t end)
{
    while (p < end) {
        unsigned char c = b[p++];
        if (c == '\n') {
            return p;
        }
        if (c == '\r') {
            return (p < end && b[p] == '\n') ? p + 1 : p;
        }
    }
    return end;
}

/* One parsed row: fields' contents end to end in `text`. */
typedef struct {
    unsigned char *text;
    Py_ssize_t text_cap;
    Py_ssize_t *off; /* field k: text[off[k] .. off[k + 1]) */
    Py_ssize_t off_cap;
    Py_ssize_t nfields;
    Py_ssize_t nlines;
    int error;    /* the csv module raises csv.Error for this row */
    int high;     /* the row has a byte >= 0x80 */
    int complete; /* the row ended (else: the buffer ended inside it) */
} Row;

static int
row_reserve(Row *r, Py_ssize_t text, Py_ssize_t fields)
{
    if (text > r->text_cap) {
        Py_ssize_t cap = r->text_cap ? r->text_cap : 4096;
        while (cap < text) {
            cap *= 2;
        }
        unsigned char *t = PyMem_Realloc(r->text, (size_t)cap);
        if (t == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->text = t;
        r->text_cap = cap;
    }
    if (fields + 2 > r->off_cap) {
        Py_ssize_t cap = r->off_cap ? r->off_cap : 64;
        while (cap < fields + 2) {
            cap *= 2;
        }
        Py_ssize_t *o = PyMem_Realloc(r->off, (size_t)cap * sizeof(Py_ssize_t));
        if (o == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->off = o;
        r->off_cap = cap;
    }
    return 0;
}

static void
row_free(Row *r)
{
    PyMem_Free(r->text);
    PyMem_Free(r->off);
}

/* parse_row's two actions, as CPython's parse_add_char (with its field-size
 * limit: a csv.Error) and parse_save_field. */
#define ADD_CHAR()                  \
    do {                            \
        if (flen >= field_limit) {  \
            goto error;             \
        }                           \
        t[tlen++] = c;              \
        flen++;                     \
    } while (0)
#define SAVE_FIELD()                \
    do {                            \
        r->off[++r->nfields] = tlen; \
        flen = 0;                   \
    } while (0)

/*
 * Parses the row (csv record) starting at *pos, a line start. On return *pos
 * is just past the row's last line. With at_eof == 0 and the buffer ending
 * before the row does (or right after a "\r" that a "\n" may follow), the row
 * is incomplete and *pos is left alone. Returns -1 only on MemoryError.
 */
static int
parse_row(const unsigned char *b, Py_ssize_t *pos, Py_ssize_t end, int delim, int quote,
          Py_ssize_t field_limit, int at_eof, Row *r)
{
    Py_ssize_t p = *pos;
    Py_ssize_t tlen = 0;
    Py_ssize_t flen = 0; /* the current field's length so far */
    int state = START_RECORD;
    unsigned char high = 0;
    r->nfields = 0;
    r->nlines = 0;
    r->error = 0;
    r->complete = 0;
    r->off[0] = 0;
    while (p < end) {
        Py_ssize_t le = line_end(b, p, end);
        if (!at_eof && le == end && (b[le - 1] != '\n' && b[le - 1] != '\r')) {
            return 0; /* the line may go on in the next buffer */
        }
        if (!at_eof && le == end && b[le - 1] == '\r') {
            return 0; /* a "\n" may follow in the next buffer */
        }
        r->nlines++;
        /* Room for the whole line in the field text, and for the fields it can end:
         * one per delimiter, plus the one its line end or end-of-line marker ends. */
        Py_ssize_t ends = 2;
        for (Py_ssize_t k = p; k < le; k++) {
            ends += b[k] == delim;
        }
        if (row_reserve(r, tlen + (le - p), r->nfields + ends) < 0) {
            return -1;
        }
        unsigned char *t = r->text;
        for (; p < le; p++) {
            unsigned char c = b[p];
            high |= c;
            switch (state) {
            case START_RECORD:
                if (c == '\n' || c == '\r') {
                    state = EAT_CRNL;
                    break;
                }
                state = START_FIELD;
                /* fall through */
            case START_FIELD:
                if (c == '\n' || c == '\r') {
                    SAVE_FIELD();
                    state = EAT_CRNL;
                }
                else if (c == quote) {
                    state = IN_QUOTED_FIELD;
                }
                else if (c == delim) {
                    SAVE_FIELD();
                }
                else {
                    ADD_CHAR();
                    state = IN_FIELD;
                }
                break;
            case IN_FIELD:
                if (c == '\n' || c == '\r') {
                    SAVE_FIELD();
                    state = EAT_CRNL;
                }
                else if (c == delim) {
                    SAVE_FIELD();
                    state = START_FIELD;
                }
                else {
                    ADD_CHAR();
                }
                break;
            case IN_QUOTED_FIELD:
                if (c == quote) {
                    state = QUOTE_IN_QUOTED_FIELD;
                }
                else {
                    ADD_CHAR();
                }
                break;
            case QUOTE_IN_QUOTED_FIELD:
                if (c == quote) {
                    ADD_CHAR();
                    state = IN_QUOTED_FIELD;
                }
                else if (c == delim) {
                    SAVE_FIELD();
                    state = START_FIELD;
                }
                else if (c == '\n' || c == '\r') {
                    SAVE_FIELD();
                    state = EAT_CRNL;
                }
                else {
                    goto error; /* "',' expected after '\"'" */
                }
                break;
            case EAT_CRNL:
                if (c != '\n' && c != '\r') {
                    goto error; /* cannot happen: line ends are last in a line */
                }
                break;
            }
        }
        /* The end-of-line marker the csv module processes after each line. */
        switch (state) {
        case START_RECORD:
        case EAT_CRNL:
            state = START_RECORD;
            break;
        case START_FIELD:
        case IN_FIELD:
        case QUOTE_IN_QUOTED_FIELD:
            SAVE_FIELD();
            state = START_RECORD;
            break;
        case IN_QUOTED_FIELD:
            break; /* the field goes on in the next line */
        }
        if (state == START_RECORD) {
            r->complete = 1;
            r->high = high >= 0x80;
            *pos = p;
            return 0;
        }
    }
    /* The buffer ended inside a quoted field. */
    if (at_eof) {
        /* "unexpected end of data": the row is an error that runs to the end. */
        r->error = 1;
        r->complete = 1;
        r->high = high >= 0x80;
        *pos = end;
    }
    return 0;
error:
    /* The csv module raises and drops the rest of the line; the next row
     * starts at the next line. */
    r->error = 1;
    r->complete = 1;
    {
        Py_ssize_t le = line_end(b, p, end);
        for (; p < le; p++) {
            high |= b[p];
        }
    }
    r->high = high >= 0x80;
    *pos = p;
    return 0;
}

#undef ADD_CHAR
#undef SAVE_FIELD

static PyObject *
py_csv_cut(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t start, max_records, field_limit;
    int delim, quote, at_eof;
    if (!PyArg_ParseTuple(args, "y*nCCnnp", &view, &start, &delim, &quote, &max_records,
                          &field_limit, &at_eof)) {
        return NULL;
    }
    const unsigned char *b = view.buf;
    Py_ssize_t end = view.len;
    Py_ssize_t pos = start < 0 ? 0 : (start > end ? end : start);
    Py_ssize_t records = 0, lines = 0;
    Row r;
    memset(&r, 0, sizeof r);
    if (row_reserve(&r, 1, 1) < 0) {
        goto fail;
    }
    while (pos < end && records < max_records) {
        if (parse_row(b, &pos, end, delim, quote, field_limit, at_eof, &r) < 0) {
            goto fail;
        }
        if (!r.complete) {
            break;
        }
        records++;
        lines += r.nlines;
    }
    row_free(&r);
    PyBuffer_Release(&view);
    return Py_BuildValue("nnn", pos, records, lines);
fail:
    row_free(&r);
    PyBuffer_Release(&view);
    return NULL;
}

/* A walk over the whole records of a buffer, for csv_convert and csv_infer. */
typedef struct {
    const unsigned char *b;
    Py_ssize_t pos, end, line;
    int delim, quote;
    Py_ssize_t field_limit, width;
    Py_ssize_t start, row_line; /* the current row's first byte and line number */
    PyObject *deferred;         /* (start, end, line) of the rows left to Python */
} Walk;

static int
defer_row(Walk *w)
{
    PyObject *span = Py_BuildValue("nnn", w->start, w->pos, w->row_line);
    if (span == NULL || PyList_Append(w->deferred, span) < 0) {
        Py_XDECREF(span);
        return -1;
    }
    Py_DECREF(span);
    return 0;
}

/* The next row the caller may read into r: 1, or 0 at the end, -1 on error.
 * Blank lines are skipped; a row with a csv error, a byte >= 0x80 or the wrong
 * number of fields is deferred to Python and skipped. */
static int
next_row(Walk *w, Row *r)
{
    while (w->pos < w->end) {
        w->start = w->pos;
        if (parse_row(w->b, &w->pos, w->end, w->delim, w->quote, w->field_limit, 1, r) < 0) {
            return -1;
        }
        w->row_line = w->line;
        w->line += r->nlines;
        if (!r->error && r->nfields == 0) {
            continue; /* a blank line is not a row */
        }
        if (r->error || r->high || r->nfields != w->width) {
            if (defer_row(w) < 0) {
                return -1;
            }
            continue;
        }
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Conversion. */

typedef struct {
    Py_ssize_t column; /* index in the row, or -1: not in the file (always missing) */
    int kind;
    int required;
    const char *key; /* 0x0A varint(len(name)) name 0x12 */
    Py_ssize_t key_len;
    const char *default_entry; /* the whole map entry for the default value, or NULL */
    Py_ssize_t default_len;
    PyObject *missing; /* tuple of bytes */
    const unsigned char *sep; /* value separator of a list column, or NULL */
    Py_ssize_t sep_len;
    Py_ssize_t want; /* values per row when fixed (a list column), else -1 */
} Feature;

typedef struct {
    int present; /* 0 absent, 1 value, 2 default entry */
    int64_t i;
    float f;
    const unsigned char *s; /* bytes value, or the whole cell of a list column */
    Py_ssize_t slen;
    Py_ssize_t payload; /* packed int64 / float payload of a list column */
    Py_ssize_t list_len;  /* the XxxList message */
    Py_ssize_t feat_len;  /* the Feature message */
    Py_ssize_t entry_len; /* the map entry message */
} Value;

static inline Py_ssize_t
varint_len(uint64_t v)
{
    Py_ssize_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline unsigned char *
put_varint(unsigned char *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *o++ = (unsigned char)v;
    return o;
}

/* "[+-]?[0-9]{1,18}" exactly (no overflow possible); else 0: Python decides. */
static inline int
parse_int(const unsigned char *s, Py_ssize_t n, int64_t *out)
{
    Py_ssize_t i = 0;
    int neg = 0;
    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (n - i < 1 || n - i > 18) {
        return 0;
    }
    int64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)s[i] - '0';
        if (d > 9) {
            return 0;
        }
        v = v * 10 + (int64_t)d;
    }
    *out = neg ? -v : v;
    return 1;
}

/*
 * A plain decimal number: [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?
 * (what both Python's float() and strtod() read, both correctly rounded, so
 * the double is the same; float32 rounding is then the same as numpy's).
 * Anything else (inf, nan, spaces, underscores, hex) returns 0: Python decides.
 */
static inline int
parse_float(const unsigned char *s, Py_ssize_t n, float *out)
{
    char tmp[72];
    if (n < 1 || n > 64) {
        return 0;
    }
    Py_ssize_t i = 0, digits = 0;
    if (s[i] == '-' || s[i] == '+') {
        i++;
    }
    while (i < n && (unsigned)s[i] - '0' <= 9) {
        i++;
        digits++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && (unsigned)s[i] - '0' <= 9) {
            i++;
            digits++;
        }
    }
    if (digits == 0) {
        return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+')) {
            i++;
        }
        Py_ssize_t e = 0;
        while (i < n && (unsigned)s[i] - '0' <= 9) {
            i++;
            e++;
        }
        if (e == 0) {
            return 0;
        }
    }
    if (i != n) {
        return 0;
    }
    memcpy(tmp, s, (size_t)n);
    tmp[n] = 0;
    char *endp = NULL;
    errno = 0;
    double d = strtod(tmp, &endp); /* ERANGE: +-inf or a (sub)normal, as Python gives */
    if (endp != tmp + n) {
        return 0; /* a locale with another decimal point: let Python do it */
    }
    *out = (float)d;
    return 1;
}

static inline int
is_missing(PyObject *tokens, const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t k = PyTuple_GET_SIZE(tokens);
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *tok = PyTuple_GET_ITEM(tokens, j);
        if (PyBytes_GET_SIZE(tok) == n && memcmp(PyBytes_AS_STRING(tok), s, (size_t)n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The next value of a list cell: s[*i .. *e); returns 0 after the last. */
static inline int
next_item(const unsigned char *s, Py_ssize_t n, const unsigned char *sep, Py_ssize_t sep_len,
          Py_ssize_t *i, Py_ssize_t *e)
{
    if (*i > n) {
        return 0;
    }
    Py_ssize_t j = *i;
    for (; j + sep_len <= n; j++) {
        if (s[j] == sep[0] && memcmp(s + j, sep, (size_t)sep_len) == 0) {
            *e = j;
            return 1;
        }
    }
    *e = n;
    return 1;
}

/* Checks and sizes a list cell (str.split(sep) semantics); 0: Python decides. */
static int
list_values(const Feature *ft, const unsigned char *s, Py_ssize_t n, Value *v)
{
    Py_ssize_t i = 0, e = 0, count = 0, payload = 0;
    while (next_item(s, n, ft->sep, ft->sep_len, &i, &e)) {
        const unsigned char *x = s + i;
        Py_ssize_t m = e - i;
        int64_t iv;
        float fv;
        switch (ft->kind) {
        case KIND_INT64:
            if (!parse_int(x, m, &iv)) {
                return 0;
            }
            payload += varint_len((uint64_t)iv);
            break;
        case KIND_FLOAT:
            if (!parse_float(x, m, &fv)) {
                return 0;
            }
            payload += 4;
            break;
        default:
            payload += 1 + varint_len((uint64_t)m) + m;
            break;
        }
        count++;
        i = e + ft->sep_len;
    }
    if (ft->want >= 0 && count != ft->want) {
        return 0; /* FEATURE_TYPE_LOW/HIGH_NUMBER_VALUES */
    }
    v->s = s;
    v->slen = n;
    v->payload = payload;
    v->list_len = ft->kind == KIND_BYTES ? payload : 1 + varint_len((uint64_t)payload) + payload;
    return 1;
}

static unsigned char *
put_list(unsigned char *o, const Feature *ft, const Value *v)
{
    Py_ssize_t i = 0, e = 0;
    if (ft->kind != KIND_BYTES) {
        *o++ = 0x0A; /* packed */
        o = put_varint(o, (uint64_t)v->payload);
    }
    while (next_item(v->s, v->slen, ft->sep, ft->sep_len, &i, &e)) {
        const unsigned char *x = v->s + i;
        Py_ssize_t m = e - i;
        int64_t iv = 0; /* list_values checked every item: the parses succeed */
        float fv = 0;
        uint32_t bits;
        switch (ft->kind) {
        case KIND_INT64:
            parse_int(x, m, &iv);
            o = put_varint(o, (uint64_t)iv);
            break;
        case KIND_FLOAT:
            parse_float(x, m, &fv);
            memcpy(&bits, &fv, 4);
            for (int k = 0; k < 4; k++) {
                *o++ = (unsigned char)(bits >> (8 * k));
            }
            break;
        default:
            *o++ = 0x0A;
            o = put_varint(o, (uint64_t)m);
            memcpy(o, x, (size_t)m);
            o += m;
            break;
        }
        i = e + ft->sep_len;
    }
    return o;
}

/* Fills vals for one parsed row; returns 0 when Python must decide the row. */
static int
row_values(const Row *r, const Feature *feats, Py_ssize_t nfeat, Value *vals,
           Py_ssize_t *body_len)
{
    Py_ssize_t body = 0;
    for (Py_ssize_t j = 0; j < nfeat; j++) {
        const Feature *ft = &feats[j];
        Value *v = &vals[j];
        const unsigned char *s = NULL;
        Py_ssize_t n = 0;
        int missing = 1;
        if (ft->column >= 0) {
            s = r->text + r->off[ft->column];
            n = r->off[ft->column + 1] - r->off[ft->column];
            missing = is_missing(ft->missing, s, n);
        }
        if (missing) {
            if (ft->default_entry != NULL) {
                v->present = 2;
                body += ft->default_len;
            }
            else if (ft->required) {
                return 0; /* a dead letter: SCHEMA_MISSING_COLUMN */
            }
            else {
                v->present = 0;
            }
            continue;
        }
        v->present = 1;
        Py_ssize_t payload;
        if (ft->sep != NULL) {
            if (!list_values(ft, s, n, v)) {
                return 0;
            }
            goto sized;
        }
        switch (ft->kind) {
        case KIND_INT64:
            if (!parse_int(s, n, &v->i)) {
                return 0;
            }
            payload = varint_len((uint64_t)v->i);
            break;
        case KIND_FLOAT:
            if (!parse_float(s, n, &v->f)) {
                return 0;
            }
            payload = 4;
            break;
        default:
            v->s = s;
            v->slen = n;
            payload = n;
            break;
        }
        v->list_len = 1 + varint_len((uint64_t)payload) + payload;
    sized:
        v->feat_len = 1 + varint_len((uint64_t)v->list_len) + v->list_len;
        v->entry_len = ft->key_len + varint_len((uint64_t)v->feat_len) + v->feat_len;
        body += 1 + varint_len((uint64_t)v->entry_len) + v->entry_len;
    }
    *body_len = body;
    return 1;
}

static PyObject *
encode_row(const Feature *feats, Py_ssize_t nfeat, const Value *vals, Py_ssize_t body)
{
    PyObject *out = PyBytes_FromStringAndSize(NULL, 1 + varint_len((uint64_t)body) + body);
    if (out == NULL) {
        return NULL;
    }
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    *o++ = 0x0A;
    o = put_varint(o, (uint64_t)body);
    for (Py_ssize_t j = 0; j < nfeat; j++) {
        const Feature *ft = &feats[j];
        const Value *v = &vals[j];
        if (v->present == 0) {
            continue;
        }
        if (v->present == 2) {
            memcpy(o, ft->default_entry, (size_t)ft->default_len);
            o += ft->default_len;
            continue;
        }
        *o++ = 0x0A;
        o = put_varint(o, (uint64_t)v->entry_len);
        memcpy(o, ft->key, (size_t)ft->key_len);
        o += ft->key_len;
        o = put_varint(o, (uint64_t)v->feat_len);
        if (ft->sep != NULL) {
            *o++ = ft->kind == KIND_INT64 ? 0x1A : ft->kind == KIND_FLOAT ? 0x12 : 0x0A;
            o = put_varint(o, (uint64_t)v->list_len);
            o = put_list(o, ft, v);
            continue;
        }
        switch (ft->kind) {
        case KIND_INT64:
            *o++ = 0x1A;
            o = put_varint(o, (uint64_t)v->list_len);
            *o++ = 0x0A;
            o = put_varint(o, (uint64_t)varint_len((uint64_t)v->i));
            o = put_varint(o, (uint64_t)v->i);
            break;
        case KIND_FLOAT: {
            uint32_t bits;
            memcpy(&bits, &v->f, 4);
            *o++ = 0x12;
            o = put_varint(o, (uint64_t)v->list_len);
            *o++ = 0x0A;
            *o++ = 4;
            for (int k = 0; k < 4; k++) {
                *o++ = (unsigned char)(bits >> (8 * k));
            }
            break;
        }
        default:
            *o++ = 0x0A;
            o = put_varint(o, (uint64_t)v->list_len);
            *o++ = 0x0A;
            o = put_varint(o, (uint64_t)v->slen);
            memcpy(o, v->s, (size_t)v->slen);
            o += v->slen;
            break;
        }
    }
    return out;
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
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, j);
        PyObject *key, *dflt, *missing, *sep = Py_None;
        Feature *ft = &feats[j];
        ft->want = -1;
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
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(missing); k++) {
            if (!PyBytes_Check(PyTuple_GET_ITEM(missing, k))) {
                PyErr_SetString(PyExc_TypeError, "missing values must be bytes");
                goto fail;
            }
        }
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
        ft->missing = missing;
    }
    /* The borrowed pointers stay valid: the caller keeps `plan` alive. */
    Py_DECREF(seq);
    *nfeat = n;
    return feats;
fail:
    Py_DECREF(seq);
    PyMem_Free(feats);
    return NULL;
}

static PyObject *
py_csv_convert(PyObject *self, PyObject *args)
{
    Py_buffer view;
    int delim, quote;
    Py_ssize_t field_limit, width, first_line;
    PyObject *plan;
    if (!PyArg_ParseTuple(args, "y*CCnnOn", &view, &delim, &quote, &field_limit, &width, &plan,
                          &first_line)) {
        return NULL;
    }
    PyObject *records = NULL, *positions = NULL, *deferred = NULL, *result = NULL;
    Value *vals = NULL;
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
    deferred = PyList_New(0);
    if (vals == NULL || records == NULL || positions == NULL || deferred == NULL ||
        row_reserve(&r, 1, 1) < 0) {
        if (vals == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    Walk w = {view.buf, 0, view.len, first_line, delim, quote, field_limit, width, 0, 0, deferred};
    int more;
    while ((more = next_row(&w, &r)) == 1) {
        Py_ssize_t body = 0;
        if (!row_values(&r, feats, nfeat, vals, &body)) {
            if (defer_row(&w) < 0) {
                goto done;
            }
            continue;
        }
        PyObject *rec = encode_row(feats, nfeat, vals, body);
        PyObject *ln = rec ? PyLong_FromSsize_t(w.row_line) : NULL;
        if (ln == NULL || PyList_Append(records, rec) < 0 || PyList_Append(positions, ln) < 0) {
            Py_XDECREF(rec);
            Py_XDECREF(ln);
            goto done;
        }
        Py_DECREF(rec);
        Py_DECREF(ln);
    }
    if (more < 0) {
        goto done;
    }
    result = PyTuple_Pack(3, records, positions, deferred);
done:
    Py_XDECREF(records);
    Py_XDECREF(positions);
    Py_XDECREF(deferred);
    PyMem_Free(vals);
    PyMem_Free(feats);
    row_free(&r);
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------------ */
/* Schema inference counts. */

/* Every byte could belong to text Python's int() or float() accepts (digits,
 * signs, '.', '_', exponents, spaces, "inf", "infinity", "nan"). */
static inline int
maybe_number(const unsigned char *s, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if ((unsigned)c - '0' <= 9) {
            continue;
        }
        switch (c | 0x20) { /* ASCII lower case (digits and signs are not letters) */
        case 'e': case 'i': case 'n': case 'f': case 't': case 'y': case 'a':
            continue;
        }
        switch (c) {
        case '+': case '-': case '.': case '_': case ' ': case '\t': case '\n': case '\r':
        case '\v': case '\f':
            continue;
        }
        return 0;
    }
    return 1;
}

/*
 * csv_infer(buf, delimiter, quotechar, field_limit, width, missing, settled, first_line)
 *     -> (rows, counts, unsure, deferred)
 * counts: [present, ints, floats, others] per column; unsure: (column, text)
 * of cells only Python can classify; settled: one byte per column, nonzero
 * for columns already known to be text (they are only counted present).
 */
static PyObject *
py_csv_infer(PyObject *self, PyObject *args)
{
    Py_buffer view, settled;
    int delim, quote;
    Py_ssize_t field_limit, width, first_line;
    PyObject *missing;
    if (!PyArg_ParseTuple(args, "y*CCnnO!y*n", &view, &delim, &quote, &field_limit, &width,
                          &PyTuple_Type, &missing, &settled, &first_line)) {
        return NULL;
    }
    PyObject *result = NULL, *unsure = NULL, *deferred = NULL, *counts = NULL;
    Py_ssize_t *cnt = NULL;
    Row r;
    memset(&r, 0, sizeof r);
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(missing); k++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(missing, k))) {
            PyErr_SetString(PyExc_TypeError, "missing values must be bytes");
            goto done;
        }
    }
    if (settled.len != width) {
        PyErr_SetString(PyExc_ValueError, "settled must have one byte per column");
        goto done;
    }
    cnt = PyMem_Calloc((size_t)(4 * (width ? width : 1)), sizeof(Py_ssize_t));
    unsure = PyList_New(0);
    deferred = PyList_New(0);
    if (cnt == NULL || unsure == NULL || deferred == NULL || row_reserve(&r, 1, 1) < 0) {
        if (cnt == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    const unsigned char *done_col = settled.buf;
    Py_ssize_t rows = 0;
    Walk w = {view.buf, 0, view.len, first_line, delim, quote, field_limit, width, 0, 0, deferred};
    int more;
    while ((more = next_row(&w, &r)) == 1) {
        rows++;
        for (Py_ssize_t c = 0; c < width; c++) {
            const unsigned char *s = r.text + r.off[c];
            Py_ssize_t n = r.off[c + 1] - r.off[c];
            if (is_missing(missing, s, n)) {
                continue;
            }
            Py_ssize_t *k = cnt + 4 * c;
            k[0]++;
            if (done_col[c]) {
                continue;
            }
            int64_t iv;
            float fv;
            if (parse_int(s, n, &iv)) {
                k[1]++;
            }
            else if (parse_float(s, n, &fv)) {
                k[2]++;
            }
            else if (!maybe_number(s, n)) {
                k[3]++;
            }
            else {
                PyObject *u = Py_BuildValue("(ny#)", c, (const char *)s, n);
                if (u == NULL || PyList_Append(unsure, u) < 0) {
                    Py_XDECREF(u);
                    goto done;
                }
                Py_DECREF(u);
            }
        }
    }
    if (more < 0) {
        goto done;
    }
    counts = PyList_New(width);
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
    row_free(&r);
    PyBuffer_Release(&view);
    PyBuffer_Release(&settled);
    return result;
}

static PyMethodDef csv_methods[] = {
    {"csv_cut", py_csv_cut, METH_VARARGS,
     "csv_cut(buf, start, delimiter, quotechar, max_records, field_limit, at_eof)\n"
     "    -> (end, records, lines)\n\n"
     "Walk whole CSV records (blank lines count) from buf[start:], a record start,\n"
     "up to max_records; end is just past the last whole one. Without at_eof a\n"
     "record the buffer cuts (or a final \"\\r\" a \"\\n\" may follow) is left out."},
    {"csv_convert", py_csv_convert, METH_VARARGS,
     "csv_convert(buf, delimiter, quotechar, field_limit, width, plan, first_line)\n"
     "    -> (records, positions, deferred)\n\n"
     "Convert the whole CSV records in buf (line first_line first) into serialized\n"
     "tf.Examples following plan; rows it does not convert come back in deferred\n"
     "as (start, end, line) for the pure-Python path."},
    {"csv_infer", py_csv_infer, METH_VARARGS,
     "csv_infer(buf, delimiter, quotechar, field_limit, width, missing, settled, first_line)\n"
     "    -> (rows, counts, unsure, deferred)\n\n"
     "Schema-inference counts of the whole CSV records in buf: per column\n"
     "(present, ints, floats, others); cells only Python can classify come back in\n"
     "unsure as (column, bytes), rows it does not read in deferred."},
    {NULL, NULL, 0, NULL},
};

int
fp_csv_register(PyObject *module)
{
    return PyModule_AddFunctions(module, csv_methods);
}
