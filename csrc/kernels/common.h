/*
 * Shared definitions of featurepipe's C kernels (csrc/kernels): plain C, no
 * Python.h. The CPython bindings (csrc/bindings) call these kernels; a kernel
 * never touches a Python object.
 */
#ifndef FP_KERNELS_COMMON_H
#define FP_KERNELS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Signed sizes and indices: the same width as Py_ssize_t (ssize_t). */
typedef ptrdiff_t fp_ssize;

/* A byte string that the kernel does not own. */
typedef struct {
    const unsigned char *p;
    size_t n;
} Str;

#if defined(__GNUC__) || defined(__clang__)
#define FP_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define FP_ALWAYS_INLINE static inline
#endif

/* Little-endian loads and stores (portable; compilers turn them into one
 * move on little-endian machines). */

static inline uint32_t
load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t
load_le64(const unsigned char *p)
{
    return (uint64_t)load_le32(p) | ((uint64_t)load_le32(p + 4) << 32);
}

static inline void
store_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

#endif
