/* tf.Example wire decoding into per-feature columns (see example.h). Plain C kernel. */
#include "example.h"

#include <stdlib.h>
#include <string.h>

static uint64_t
hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 1099511628211ULL;
    }
    return h;
}

void
fp_decoder_free(Decoder *d)
{
    for (fp_ssize i = 0; i < d->ncols; i++) {
        Column *c = &d->cols[i];
        free(c->name);
        d->hooks->free_column(d->ctx, c);
        free(c->buf);
        free(c->row_lengths);
        free(c->present);
        free(c->kindless);
        free(c->step_lengths);
    }
    free(d->cols);
    free(d->slots);
}

static int
decoder_rehash(Decoder *d, size_t nslots)
{
    fp_ssize *slots = calloc(nslots, sizeof(fp_ssize));
    if (slots == NULL) {
        return -1;
    }
    for (fp_ssize i = 0; i < d->ncols; i++) {
        size_t s = (size_t)hash_bytes((unsigned char *)d->cols[i].name,
                                      (size_t)d->cols[i].name_len) &
                   (nslots - 1);
        while (slots[s]) {
            s = (s + 1) & (nslots - 1);
        }
        slots[s] = i + 1;
    }
    free(d->slots);
    d->slots = slots;
    d->nslots = nslots;
    return 0;
}

/* The first min(klen, 8) key bytes as a number; `end` bounds what may be
 * read. One whole load where 8 bytes are readable (a byte-wise copy through
 * memory would stall on store forwarding). */
static inline uint64_t
key_head(const unsigned char *key, size_t klen, const unsigned char *end)
{
    uint64_t h;
    if (end - key >= 8) {
        h = load_le64(key);
        if (klen < 8) {
            h &= ((uint64_t)1 << (8 * klen)) - 1;
        }
    } else {
        h = 0;
        for (size_t i = 0; i < klen && i < 8; i++) {
            h |= (uint64_t)key[i] << (8 * i);
        }
    }
    return h;
}

static inline int
key_equal(const Column *c, const unsigned char *key, size_t klen, uint64_t head)
{
    if ((size_t)c->name_len != klen || c->head != head) {
        return 0;
    }
    if (klen <= 8) {
        return 1;
    }
    const unsigned char *a = (const unsigned char *)c->name + 8;
    key += 8;
    klen -= 8;
    while (klen >= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, key, 8);
        if (x != y) {
            return 0;
        }
        a += 8;
        key += 8;
        klen -= 8;
    }
    while (klen--) {
        if (*a++ != *key++) {
            return 0;
        }
    }
    return 1;
}

/* Find the column for key, or create it; prev is the previous entry's
 * column in this record (-1 for the first). Returns NULL with *status set. */
static Column *
decoder_column(Decoder *d, const unsigned char *key, size_t klen, const unsigned char *end,
               fp_ssize prev, int *status)
{
    fp_ssize *link = prev < 0 ? &d->first : &d->cols[prev].next;
    uint64_t head = key_head(key, klen, end);
    fp_ssize guess = *link;
    if (guess >= 0) {
        if (key_equal(&d->cols[guess], key, klen, head)) {
            return &d->cols[guess];
        }
        /* The usual miss: the feature that came next last time is absent. */
        guess = d->cols[guess].next;
        if (guess >= 0 && key_equal(&d->cols[guess], key, klen, head)) {
            *link = guess;
            return &d->cols[guess];
        }
    }
    uint64_t h = hash_bytes(key, klen);
    size_t s = (size_t)h & (d->nslots - 1);
    fp_ssize idx = -1;
    while (d->slots[s]) {
        if (key_equal(&d->cols[d->slots[s] - 1], key, klen, head)) {
            idx = d->slots[s] - 1;
            break;
        }
        s = (s + 1) & (d->nslots - 1);
    }
    if (idx < 0) {
        if (d->ncols == d->cap) {
            fp_ssize ncap = d->cap ? 2 * d->cap : 16;
            Column *cols = realloc(d->cols, (size_t)ncap * sizeof(Column));
            if (cols == NULL) {
                *status = DEC_NOMEM;
                return NULL;
            }
            d->cols = cols;
            d->cap = ncap;
            link = prev < 0 ? &d->first : &d->cols[prev].next;
        }
        Column *c = &d->cols[d->ncols];
        memset(c, 0, sizeof(*c));
        c->last_row = -1;
        c->next = -1;
        c->name = malloc(klen ? klen : 1);
        c->row_lengths = calloc((size_t)d->nrows ? (size_t)d->nrows : 1, sizeof(int64_t));
        c->present = calloc((size_t)d->nrows ? (size_t)d->nrows : 1, 1);
        c->kindless = calloc((size_t)d->nrows ? (size_t)d->nrows : 1, 1);
        d->ncols++; /* counted now so decoder_free releases the parts */
        if (c->name == NULL || c->row_lengths == NULL || c->present == NULL ||
            c->kindless == NULL) {
            *status = DEC_NOMEM;
            return NULL;
        }
        /* The key must be UTF-8 (protobuf checks proto3 strings): the binding
         * decodes it into the column's name. */
        *status = d->hooks->new_column(d->ctx, c, key, klen);
        if (*status != DEC_OK) {
            return NULL;
        }
        memcpy(c->name, key, klen);
        c->name_len = (fp_ssize)klen;
        c->head = head;
        idx = d->ncols - 1;
        if ((size_t)d->ncols * 2 > d->nslots) {
            if (decoder_rehash(d, d->nslots * 2) < 0) {
                *status = DEC_NOMEM;
                return NULL;
            }
        } else {
            d->slots[s] = idx + 1;
        }
    }
    *link = idx;
    return &d->cols[idx];
}

static int
buf_reserve(Column *c, size_t extra)
{
    if (c->buf_len + extra <= c->buf_cap) {
        return 0;
    }
    size_t ncap = c->buf_cap ? c->buf_cap : 256;
    while (ncap < c->buf_len + extra) {
        ncap *= 2;
    }
    unsigned char *b = realloc(c->buf, ncap);
    if (b == NULL) {
        return -1;
    }
    c->buf = b;
    c->buf_cap = ncap;
    return 0;
}

/* Varint as upb reads it: at most 10 bytes, bits past 64 dropped. Returns
 * the position after it, or NULL when truncated or longer than 10 bytes. */
static inline const unsigned char *
read_varint(const unsigned char *p, const unsigned char *end, uint64_t *out)
{
    if (p < end && !(*p & 0x80)) {
        *out = *p;
        return p + 1;
    }
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) {
            return NULL;
        }
        uint64_t b = *p++;
        v |= (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return p;
        }
    }
    return NULL;
}

/* A length-delimited field's length: it must fit before `end`. */
static inline const unsigned char *
read_length(const unsigned char *p, const unsigned char *end, size_t *out, int *status)
{
    uint64_t v;
    p = read_varint(p, end, &v);
    if (p == NULL || v > (uint64_t)(end - p)) {
        *status = DEC_BAD;
        return NULL;
    }
    if (v >= 0x7fffffffu) {
        *status = DEC_SLOW; /* upb refuses lengths from 2^31 - 1 on: let it say so */
        return NULL;
    }
    *out = (size_t)v;
    return p;
}

/* The length of a length-delimited field that must be the last of its
 * message, running exactly to `end`: returns where its contents start, or
 * NULL with *status set (DEC_SLOW when another field follows it). */
static inline const unsigned char *
read_last_length(const unsigned char *p, const unsigned char *end, int *status)
{
    size_t len;
    p = read_length(p, end, &len, status);
    if (p == NULL) {
        return NULL;
    }
    if (len != (size_t)(end - p)) {
        *status = DEC_SLOW;
        return NULL;
    }
    return p;
}

/* Status for a tag that the canonical path does not expect. Field number 0
 * and wire types 6 and 7 are invalid everywhere; anything else is left to
 * protobuf. Multi-byte tags go to protobuf too (an over-long tag may still
 * name field 1). */
static inline int
odd_tag(unsigned char tag)
{
    if (!(tag & 0x80) && ((tag >> 3) == 0 || (tag & 7) == 6 || (tag & 7) == 7)) {
        return DEC_BAD;
    }
    return DEC_SLOW;
}

/* A field 1 of wire type 2 (tag 0x0a), the one tag that every repeated
 * message or bytes field of these messages has, at p (p < end): sets *len
 * to its length and returns where its contents start, or NULL with *status
 * set (odd_tag for another tag, read_length's status for a bad length). */
static inline const unsigned char *
read_field1(const unsigned char *p, const unsigned char *end, size_t *len, int *status)
{
    unsigned char tag = *p++;
    if (tag != 0x0a) {
        *status = odd_tag(tag);
        return NULL;
    }
    return read_length(p, end, len, status);
}

/* Parse one Feature message [p, end): append its values to column c and set
 * *count (the number of values; -1 for a Feature with no list set). */
static int
parse_feature_values(Decoder *d, Column *c, const unsigned char *p, const unsigned char *end,
                     int64_t *count_out)
{
    int status = DEC_OK;
    if (p == end) {
        *count_out = -1;
        return DEC_OK;
    }
    unsigned char tag = *p++;
    int kind;
    if (tag == 0x0a) {
        kind = KIND_BYTES;
    } else if (tag == 0x12) {
        kind = KIND_FLOAT;
    } else if (tag == 0x1a) {
        kind = KIND_INT64;
    } else {
        return odd_tag(tag);
    }
    size_t len;
    p = read_length(p, end, &len, &status);
    if (p == NULL) {
        return status;
    }
    /* Not read_last_length: this spelling (lend for the bounds below) lets
     * gcc -O3 emit ~3% fewer instructions in this, the hottest function. */
    const unsigned char *lend = p + len;
    if (lend != end) {
        /* Another field follows: a second oneof member or a merge. */
        return DEC_SLOW;
    }
    int clash = c->kind != KIND_NONE && c->kind != kind;
    if (clash) {
        d->mixed = 1;
    }
    int64_t count = 0;
    if (kind == KIND_BYTES) {
        while (p < lend) {
            size_t vlen;
            p = read_field1(p, lend, &vlen, &status);
            if (p == NULL) {
                return status;
            }
            if (!clash) {
                int rc = d->hooks->bytes_value(d->ctx, c, p, vlen);
                if (rc != DEC_OK) {
                    return rc;
                }
            }
            p += vlen;
            count++;
        }
    } else if (p < lend) {
        size_t plen;
        p = read_field1(p, lend, &plen, &status);
        if (p == NULL) {
            return status;
        }
        const unsigned char *pend = p + plen;
        if (pend != lend) {
            return DEC_SLOW; /* a second chunk, unpacked values or another field */
        }
        if (kind == KIND_FLOAT) {
            if (plen % 4) {
                return DEC_BAD;
            }
            count = (int64_t)(plen / 4);
            if (!clash && plen) {
                if (buf_reserve(c, plen) < 0) {
                    return DEC_NOMEM;
                }
                /* Wire bytes are LE float32, kept as they are except that
                 * signalling NaNs get the quiet bit, as they do when protobuf
                 * hands the value to Python as a double. */
                unsigned char *out = c->buf + c->buf_len;
                memcpy(out, p, plen);
                for (size_t i = 0; i < plen; i += 4) {
                    uint32_t bits = load_le32(out + i);
                    if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x003fffffu) &&
                        !(bits & 0x00400000u)) {
                        out[i + 2] |= 0x40;
                    }
                }
                c->buf_len += plen;
            }
        } else {
            /* At most one value per byte: reserve for the worst case. */
            if (!clash && buf_reserve(c, plen * 8) < 0) {
                return DEC_NOMEM;
            }
            unsigned char *out = clash ? NULL : c->buf + c->buf_len;
            while (p < pend) {
                uint64_t v;
                p = read_varint(p, pend, &v);
                if (p == NULL) {
                    return DEC_SLOW; /* straddles the packed block: protobuf decides */
                }
                if (out) {
                    store_le64(out, v);
                    out += 8;
                }
                count++;
            }
            if (out) {
                c->buf_len += (size_t)count * 8;
            }
        }
    }
    if (!clash) {
        c->kind = kind;
    }
    *count_out = count;
    return DEC_OK;
}

/* Parse one Feature message [p, end) into column c for row r. */
static int
parse_feature(Decoder *d, Column *c, fp_ssize r, const unsigned char *p,
              const unsigned char *end)
{
    int64_t count;
    int status = parse_feature_values(d, c, p, end, &count);
    if (status != DEC_OK) {
        return status;
    }
    if (count < 0) {
        c->kindless[r] = 1;
    } else {
        c->present[r] = 1;
        c->row_lengths[r] = count;
    }
    return DEC_OK;
}

static int
steps_append(Column *c, int64_t n)
{
    if (c->nsteps == c->steps_cap) {
        size_t ncap = c->steps_cap ? 2 * c->steps_cap : 64;
        int64_t *s = realloc(c->step_lengths, ncap * sizeof(int64_t));
        if (s == NULL) {
            return -1;
        }
        c->step_lengths = s;
        c->steps_cap = ncap;
    }
    c->step_lengths[c->nsteps++] = n;
    return 0;
}

/* FeatureList { repeated Feature feature = 1; }
 * Parse one FeatureList message [p, end) into column c for row r:
 * row_lengths[r] is its number of steps, present[r] is set, and each step's
 * number of values goes to step_lengths (0 for a step with no list set). */
static int
parse_feature_list(Decoder *d, Column *c, fp_ssize r, const unsigned char *p,
                   const unsigned char *end)
{
    int status = DEC_OK;
    int64_t steps = 0;
    while (p < end) {
        size_t flen;
        p = read_field1(p, end, &flen, &status);
        if (p == NULL) {
            return status;
        }
        int64_t count;
        status = parse_feature_values(d, c, p, p + flen, &count);
        if (status != DEC_OK) {
            return status;
        }
        if (steps_append(c, count < 0 ? 0 : count) < 0) {
            return DEC_NOMEM;
        }
        p += flen;
        steps++;
    }
    c->present[r] = 1;
    c->row_lengths[r] = steps;
    return DEC_OK;
}

/* One map entry's contents [p, eend): key (1) then value (2), each once and
 * nothing after. Sets *key / *klen and returns where the value's contents
 * start (they run to eend), or NULL with *status set. */
FP_ALWAYS_INLINE const unsigned char *
read_map_entry(const unsigned char *p, const unsigned char *eend, const unsigned char **key,
               size_t *klen, int *status)
{
    if (p == eend) {
        *status = DEC_SLOW;
        return NULL;
    }
    p = read_field1(p, eend, klen, status);
    if (p == NULL) {
        return NULL;
    }
    *key = p;
    p += *klen;
    if (p == eend || *p != 0x12) {
        *status = p == eend ? DEC_SLOW : odd_tag(*p);
        return NULL;
    }
    return read_last_length(p + 1, eend, status); /* DEC_SLOW: fields after the value */
}

/* Features     { map<string, Feature> feature = 1; }
 * FeatureLists { map<string, FeatureList> feature_list = 1; }
 * Parse the map [p, end) as row r: each entry's value goes to its key's column,
 * through parse_feature_list when `lists` is set, else parse_feature. Key
 * bytes may be read up to `bound` (key_head). Inlined into both callers, so
 * each gets its own copy with `lists` a constant. */
FP_ALWAYS_INLINE int
parse_map(Decoder *d, fp_ssize r, const unsigned char *p, const unsigned char *end,
          const unsigned char *bound, int lists)
{
    int status = DEC_OK;
    fp_ssize prev = -1; /* column of the previous entry */
    while (p < end) {
        size_t elen;
        p = read_field1(p, end, &elen, &status);
        if (p == NULL) {
            return status;
        }
        const unsigned char *eend = p + elen;
        const unsigned char *key;
        size_t klen;
        p = read_map_entry(p, eend, &key, &klen, &status);
        if (p == NULL) {
            return status;
        }
        Column *c = decoder_column(d, key, klen, bound, prev, &status);
        if (c == NULL) {
            return status;
        }
        if (c->last_row == r) {
            return DEC_SLOW; /* duplicate key: the later entry wins in protobuf */
        }
        c->last_row = r;
        status = lists ? parse_feature_list(d, c, r, p, eend) : parse_feature(d, c, r, p, eend);
        if (status != DEC_OK) {
            return status;
        }
        p = eend;
        prev = c - d->cols;
    }
    return DEC_OK;
}

/* Parse one serialized SequenceExample as row r of `lists` (its feature
 * lists); *ctx / *ctx_len get the context field with its tag (a serialized
 * Example), or length 0 when there is none. */
int
fp_parse_sequence_example(Decoder *lists, fp_ssize r, const unsigned char *p,
                          const unsigned char *end, const unsigned char **ctx, size_t *ctx_len)
{
    int status = DEC_OK;
    int seen_context = 0, seen_lists = 0;
    *ctx = p;
    *ctx_len = 0;
    while (p < end) {
        const unsigned char *start = p;
        unsigned char tag = *p++;
        if (tag != 0x0a && tag != 0x12) {
            return odd_tag(tag);
        }
        size_t len;
        p = read_length(p, end, &len, &status);
        if (p == NULL) {
            return status;
        }
        if (tag == 0x0a) {
            if (seen_context) {
                return DEC_SLOW; /* given twice: protobuf merges them */
            }
            seen_context = 1;
            *ctx = start;
            *ctx_len = (size_t)(p + len - start);
        } else {
            if (seen_lists) {
                return DEC_SLOW;
            }
            seen_lists = 1;
            status = parse_map(lists, r, p, p + len, p + len, 1);
            if (status != DEC_OK) {
                return status;
            }
        }
        p += len;
    }
    return DEC_OK;
}

/* Parse one serialized Example as row r. */
int
fp_parse_example(Decoder *d, fp_ssize r, const unsigned char *p, const unsigned char *end)
{
    int status = DEC_OK;
    int seen_features = 0;
    while (p < end) {
        unsigned char tag = *p++;
        if (tag != 0x0a) {
            return odd_tag(tag);
        }
        if (seen_features) {
            return DEC_SLOW; /* features given twice: protobuf merges them */
        }
        seen_features = 1;
        size_t flen;
        p = read_length(p, end, &flen, &status);
        if (p == NULL) {
            return status;
        }
        status = parse_map(d, r, p, p + flen, end, 0);
        if (status != DEC_OK) {
            return status;
        }
        p += flen;
    }
    return DEC_OK;
}

int
fp_decoder_init(Decoder *d, fp_ssize nrows, const DecoderHooks *hooks, void *ctx)
{
    memset(d, 0, sizeof(*d));
    d->nrows = nrows;
    d->first = -1;
    d->hooks = hooks;
    d->ctx = ctx;
    return decoder_rehash(d, 64);
}
