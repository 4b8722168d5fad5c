/*
 * generation.c - change counters for caches (see catalog.h,
 * catalog_generation).
 *
 * A fixed table of atomic counters indexed by a hash of (ws, coll). The
 * catalog's write paths call catalog_generation_bump(ws, coll) right after
 * their store_write returned 0, i.e. after the commit: a reader that loads a
 * generation and then opens a read transaction sees every write whose bump
 * it has seen. A bump increments the collection's slot, the workspace's slot
 * (coll 0) and the process-wide counter. Two collections hashing to one slot
 * share a counter: a cache then sees a change that was not its own (a
 * needless miss), never misses a real one. The table is process-wide state
 * on purpose: it is only ever incremented, so it needs no owner and no lock,
 * and stores opened later in the same process only cause extra misses.
 */
#include <stdatomic.h>

#include "catalog/catalog.h"

#define GEN_SLOTS 4096u

static _Atomic uint64_t gen_slots[GEN_SLOTS];
static _Atomic uint64_t gen_all;

static size_t gen_slot(uint64_t ws, uint64_t coll)
{
    uint64_t h = ws * 0x9E3779B97F4A7C15ull ^ (coll + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    return (size_t)(h % GEN_SLOTS);
}

uint64_t catalog_generation(uint64_t ws, uint64_t coll)
{
    return atomic_load_explicit(&gen_slots[gen_slot(ws, coll)], memory_order_acquire);
}

uint64_t catalog_generation_all(void)
{
    return atomic_load_explicit(&gen_all, memory_order_acquire);
}

void catalog_generation_bump(uint64_t ws, uint64_t coll)
{
    if (coll) atomic_fetch_add_explicit(&gen_slots[gen_slot(ws, coll)], 1, memory_order_acq_rel);
    atomic_fetch_add_explicit(&gen_slots[gen_slot(ws, 0)], 1, memory_order_acq_rel);
    atomic_fetch_add_explicit(&gen_all, 1, memory_order_acq_rel);
}
