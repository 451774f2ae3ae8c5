/*
 * The vocabulary table of the column ops: open addressing over FarmHash
 * Fingerprint64 (strings) or a 64-bit mix (int64 keys). Plain C kernel; the
 * look-ups are inline here because the column ops call them per value.
 */
#ifndef FP_KERNELS_VOCAB_H
#define FP_KERNELS_VOCAB_H

#include "common.h"
#include "farmhash.h"

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

static inline uint64_t
mix64(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    v *= 0xc4ceb9fe1a85ec53ULL;
    v ^= v >> 33;
    return v;
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

static inline size_t
pow2_at_least(size_t n)
{
    size_t s = 16;
    while (s < n) {
        s <<= 1;
    }
    return s;
}


/* Fills v's slots from its keys (v->keys_s or v->keys_i, v->size of them,
 * set by the caller): 0, -1 when out of memory, or -2 with the reason (a
 * ValueError) in *msg. */
int fp_vocab_index(Vocab *v, const char **msg);

/* Frees what a Vocab owns. */
void fp_vocab_clear(Vocab *v);

#endif
