#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H
#include <zlib.h>

/// deflateInit2 is a macro Swift cannot call: it passes the library's version and struct size.
static inline int chat_deflate_init_gzip(z_streamp stream, int level) {
    // 15 window bits + 16: a gzip header and trailer instead of zlib's.
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

#endif
