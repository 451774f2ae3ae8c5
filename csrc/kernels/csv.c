/* CSV rows -> serialized tf.Examples (see csv.h). Plain C kernel. */
#include "csv.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The end of the line that starts at p: just past "\r\n", "\n" or "\r", or end. */
static inline fp_ssize
line_end(const unsigned char *b, fp_ssize p, fp_ssize end)
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

int
fp_csv_row_reserve(Row *r, fp_ssize text, fp_ssize fields)
{
    if (text > r->text_cap) {
        fp_ssize cap = r->text_cap ? r->text_cap : 4096;
        while (cap < text) {
            cap *= 2;
        }
        unsigned char *t = realloc(r->text, (size_t)cap);
        if (t == NULL) {
            return -1;
        }
        r->text = t;
        r->text_cap = cap;
    }
    if (fields + 2 > r->off_cap) {
        fp_ssize cap = r->off_cap ? r->off_cap : 64;
        while (cap < fields + 2) {
            cap *= 2;
        }
        fp_ssize *o = realloc(r->off, (size_t)cap * sizeof(fp_ssize));
        if (o == NULL) {
            return -1;
        }
        r->off = o;
        r->off_cap = cap;
    }
    return 0;
}

void
fp_csv_row_free(Row *r)
{
    free(r->text);
    free(r->off);
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
int
fp_csv_parse_row(const unsigned char *b, fp_ssize *pos, fp_ssize end, int delim, int quote,
          fp_ssize field_limit, int at_eof, Row *r)
{
    fp_ssize p = *pos;
    fp_ssize tlen = 0;
    fp_ssize flen = 0; /* the current field's length so far */
    int state = START_RECORD;
    unsigned char high = 0;
    r->nfields = 0;
    r->nlines = 0;
    r->error = 0;
    r->complete = 0;
    r->off[0] = 0;
    while (p < end) {
        fp_ssize le = line_end(b, p, end);
        if (!at_eof && le == end && (b[le - 1] != '\n' && b[le - 1] != '\r')) {
            return 0; /* the line may go on in the next buffer */
        }
        if (!at_eof && le == end && b[le - 1] == '\r') {
            return 0; /* a "\n" may follow in the next buffer */
        }
        r->nlines++;
        /* Room for the whole line in the field text, and for the fields it can end:
         * one per delimiter, plus the one its line end or end-of-line marker ends. */
        fp_ssize ends = 2;
        for (fp_ssize k = p; k < le; k++) {
            ends += b[k] == delim;
        }
        if (fp_csv_row_reserve(r, tlen + (le - p), r->nfields + ends) < 0) {
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
        fp_ssize le = line_end(b, p, end);
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

int
fp_csv_defer_row(Walk *w)
{
    FpSpans *d = w->deferred;
    if (d->n + 3 > d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 96;
        fp_ssize *v = realloc(d->v, cap * sizeof(fp_ssize));
        if (v == NULL) {
            return -1;
        }
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = w->start;
    d->v[d->n++] = w->pos;
    d->v[d->n++] = w->row_line;
    return 0;
}

/* The next row the caller may read into r: 1, or 0 at the end, -1 on error.
 * Blank lines are skipped; a row with a csv error, a byte >= 0x80 or the wrong
 * number of fields is deferred to Python and skipped. -1: out of memory. */
int
fp_csv_next_row(Walk *w, Row *r)
{
    while (w->pos < w->end) {
        w->start = w->pos;
        if (fp_csv_parse_row(w->b, &w->pos, w->end, w->delim, w->quote, w->field_limit, 1, r) < 0) {
            return -1;
        }
        w->row_line = w->line;
        w->line += r->nlines;
        if (!r->error && r->nfields == 0) {
            continue; /* a blank line is not a row */
        }
        if (r->error || r->high || r->nfields != w->width) {
            if (fp_csv_defer_row(w) < 0) {
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

static inline fp_ssize
varint_len(uint64_t v)
{
    fp_ssize n = 1;
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
parse_int(const unsigned char *s, fp_ssize n, int64_t *out)
{
    fp_ssize i = 0;
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
parse_float(const unsigned char *s, fp_ssize n, float *out)
{
    char tmp[72];
    if (n < 1 || n > 64) {
        return 0;
    }
    fp_ssize i = 0, digits = 0;
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
        fp_ssize e = 0;
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
is_missing(const Str *tokens, fp_ssize k, const unsigned char *s, fp_ssize n)
{
    for (fp_ssize j = 0; j < k; j++) {
        const Str *tok = &tokens[j];
        if ((fp_ssize)tok->n == n && memcmp(tok->p, s, (size_t)n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The next value of a list cell: s[*i .. *e); returns 0 after the last. */
static inline int
next_item(const unsigned char *s, fp_ssize n, const unsigned char *sep, fp_ssize sep_len,
          fp_ssize *i, fp_ssize *e)
{
    if (*i > n) {
        return 0;
    }
    fp_ssize j = *i;
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
list_values(const Feature *ft, const unsigned char *s, fp_ssize n, Value *v)
{
    fp_ssize i = 0, e = 0, count = 0, payload = 0;
    while (next_item(s, n, ft->sep, ft->sep_len, &i, &e)) {
        const unsigned char *x = s + i;
        fp_ssize m = e - i;
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
    fp_ssize i = 0, e = 0;
    if (ft->kind != KIND_BYTES) {
        *o++ = 0x0A; /* packed */
        o = put_varint(o, (uint64_t)v->payload);
    }
    while (next_item(v->s, v->slen, ft->sep, ft->sep_len, &i, &e)) {
        const unsigned char *x = v->s + i;
        fp_ssize m = e - i;
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
row_values(const Row *r, const Feature *feats, fp_ssize nfeat, Value *vals,
           fp_ssize *body_len)
{
    fp_ssize body = 0;
    for (fp_ssize j = 0; j < nfeat; j++) {
        const Feature *ft = &feats[j];
        Value *v = &vals[j];
        const unsigned char *s = NULL;
        fp_ssize n = 0;
        int missing = 1;
        if (ft->column >= 0) {
            s = r->text + r->off[ft->column];
            n = r->off[ft->column + 1] - r->off[ft->column];
            missing = is_missing(ft->missing, ft->nmissing, s, n);
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
        fp_ssize payload;
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

static void
encode_row(unsigned char *o, const Feature *feats, fp_ssize nfeat, const Value *vals,
                  fp_ssize body)
{
    *o++ = 0x0A;
    o = put_varint(o, (uint64_t)body);
    for (fp_ssize j = 0; j < nfeat; j++) {
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
}

/* ------------------------------------------------------------------------ */
/* Schema inference counts. */

/* Every byte could belong to text Python's int() or float() accepts (digits,
 * signs, '.', '_', exponents, spaces, "inf", "infinity", "nan"). */
static inline int
maybe_number(const unsigned char *s, fp_ssize n)
{
    for (fp_ssize i = 0; i < n; i++) {
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

static void
infer_row(const Row *r, fp_ssize width, const Str *missing, fp_ssize nmissing,
                 const unsigned char *done_col, fp_ssize *cnt, fp_ssize *unsure,
                 fp_ssize *nunsure)
{
    fp_ssize nu = 0;
    for (fp_ssize c = 0; c < width; c++) {
        const unsigned char *s = r->text + r->off[c];
        fp_ssize n = r->off[c + 1] - r->off[c];
        if (is_missing(missing, nmissing, s, n)) {
            continue;
        }
        fp_ssize *k = cnt + 4 * c;
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
            unsure[nu++] = c;
        }
    }
    *nunsure = nu;
}

/* ------------------------------------------------------------------------ */
/* The walks of csv_convert and csv_infer. */

int
fp_csv_convert_rows(Walk *w, Row *r, const Feature *feats, fp_ssize nfeat, Value *vals,
                    FpEmitRecord emit, void *ctx)
{
    int more;
    while ((more = fp_csv_next_row(w, r)) == 1) {
        fp_ssize body = 0;
        if (!row_values(r, feats, nfeat, vals, &body)) {
            if (fp_csv_defer_row(w) < 0) {
                return -1;
            }
            continue;
        }
        unsigned char *o = emit(ctx, 1 + varint_len((uint64_t)body) + body, w->row_line);
        if (o == NULL) {
            return -2;
        }
        encode_row(o, feats, nfeat, vals, body);
    }
    return more;
}

int
fp_csv_infer_rows(Walk *w, Row *r, const Str *missing, fp_ssize nmissing,
                  const unsigned char *done_col, fp_ssize *cnt, fp_ssize *unsure,
                  fp_ssize *rows, FpUnsureCell cell, void *ctx)
{
    int more;
    while ((more = fp_csv_next_row(w, r)) == 1) {
        (*rows)++;
        fp_ssize nu = 0;
        infer_row(r, w->width, missing, nmissing, done_col, cnt, unsure, &nu);
        for (fp_ssize i = 0; i < nu; i++) {
            fp_ssize c = unsure[i];
            if (cell(ctx, c, r->text + r->off[c], r->off[c + 1] - r->off[c]) < 0) {
                return -2;
            }
        }
    }
    return more;
}
