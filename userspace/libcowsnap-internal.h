/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers libcowsnap shares with the cowsnap CLI.  Not part of the API:
 * this header is not installed and libcowsnap.so does not export these
 * (libcowsnap.map); libcowsnap.a carries them under the csnap__ prefix.
 */
#ifndef LIBCOWSNAP_INTERNAL_H
#define LIBCOWSNAP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * 1 if @name is a valid region name or snapshot label as the module checks
 * it: 1-63 bytes of [A-Za-z0-9._-], not starting with '.'; else 0.
 */
int csnap__name_valid(const char *name);

/*
 * Parse a size: decimal digits with an optional K, M, G or T suffix (any
 * case, powers of 1024).  EINVAL: malformed or 0; ERANGE: overflows 64 bits.
 * Page alignment is left to the kernel.
 */
int csnap__parse_size(const char *str, uint64_t *size);

/* CRC-32C (Castagnoli) of @len bytes, continuing @crc (0 to start). */
uint32_t csnap__crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* LIBCOWSNAP_INTERNAL_H */
