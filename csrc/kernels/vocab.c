/* The vocabulary table (see vocab.h). Plain C kernel. */
#include "vocab.h"

#include <stdlib.h>

int
fp_vocab_index(Vocab *v, const char **msg)
{
    fp_ssize n = (fp_ssize)v->size;
    int is_str = v->is_str;
    if (n > INT32_MAX - 1) {
        *msg = "vocabulary too large";
        return -2;
    }
    size_t slots = pow2_at_least((size_t)n + (size_t)n / 2 + 1); /* load <= 2/3 */
    v->mask = slots - 1;
    v->slot = calloc(slots, sizeof(VSlot));
    if (v->slot == NULL) {
        return -1;
    }
    for (size_t s = 0; s < slots; s++) {
        v->slot[s].idx = -1;
    }
    for (fp_ssize i = 0; i < n; i++) {
        uint64_t h = is_str ? fingerprint64(v->keys_s[i].p, v->keys_s[i].n)
                            : mix64((uint64_t)v->keys_i[i]);
        int64_t found = is_str ? vocab_find_str(v, v->keys_s[i].p, v->keys_s[i].n, h)
                               : vocab_find_int(v, v->keys_i[i]);
        if (found >= 0) {
            *msg = "duplicate vocabulary entry";
            return -2;
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
                *msg = "vocabulary entry too long";
                return -2;
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

void
fp_vocab_clear(Vocab *v)
{
    free(v->slot);
    free(v->keys_s);
    free(v->keys_i);
    free(v->store);
}
