/* base/crc32c.h - CRC-32C (Castagnoli), the checksum of stored records and
 * events: the SSE4.2 instruction where the CPU has it, else a
 * slicing-by-8 table.
 *
 * Part: base (generic). May call: nothing. */
#ifndef LASH_BASE_CRC32C_H
#define LASH_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of @p n bytes at @p p ("123456789" -> 0xe3069283). */
uint32_t lash__crc32c(const void *p, size_t n);

#endif /* LASH_BASE_CRC32C_H */
