/* The out-of-line FarmHash Fingerprint64 (see farmhash.h). Plain C kernel. */
#include "farmhash.h"

uint64_t
fp_fingerprint64(const unsigned char *s, size_t len)
{
    return fingerprint64(s, len);
}
