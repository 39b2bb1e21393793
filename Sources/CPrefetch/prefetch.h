/* Cache hints for RMRCore's dirty map. A prefetch changes no value and has no effect a
   program can observe except time, so the core stays pure and deterministic with it.
   Swift has no prefetch intrinsic; clang inlines these into the Swift callers. */
#ifndef RMR_PREFETCH_H
#define RMR_PREFETCH_H

/* Start loading the cache line of `p` for a write soon (locality: keep in all levels). */
static inline __attribute__((always_inline)) void rmr_prefetch_write(const void *p) {
    __builtin_prefetch(p, 1, 3);
}

#endif
