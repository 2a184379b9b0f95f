/*
 * Pool tracking (Wine only): every pool block a tracked driver allocates, with
 * its tag, size and caller, until it is freed. A free of a block already freed, a
 * free with another tag than the allocation's, and blocks still allocated when the
 * driver's image is unloaded are findings (README.md: rules pool-*).
 */
#include <ddk/wdm.h>

#include "../wine-irql/irql.h"
#include "verifier.h"
#include "codes.h"

#define STACK_FRAMES 16

struct block {
    void *p;             /* NULL: empty slot */
    const void *caller;  /* return address into the driver */
    void *stack[STACK_FRAMES]; /* the allocation's callers (a leak says where it came from) */
    unsigned long long size;
    unsigned long tag;
    unsigned char freed; /* freed lately: kept to tell a double free (see `freed` below) */
};

/* Open addressing with linear probing, grown at half full; deletion shifts back. */
static struct block *table;
static unsigned long capacity, used;
/* Blocks freed lately stay in the table, marked, to tell a double free from a free
 * of foreign memory; this ring says which to forget once FREED_RING more are freed. */
#define FREED_RING 4096
static void *freed[FREED_RING];
static unsigned long freed_next;

static unsigned long slot_of(const void *p, unsigned long cap)
{
    unsigned long long h = (unsigned long long)(ULONG_PTR)p;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    return (unsigned long)(h & (cap - 1));
}

static int grow(void)
{
    unsigned long cap = capacity ? capacity * 2 : 4096, i;
    struct block *t = ExAllocatePoolWithTag(NonPagedPool, cap * sizeof(*t), VF_POOL_TAG);
    if (!t) return 0;
    RtlZeroMemory(t, cap * sizeof(*t));
    for (i = 0; i < capacity; i++) {
        unsigned long s;
        if (!table[i].p) continue;
        for (s = slot_of(table[i].p, cap); t[s].p; s = (s + 1) & (cap - 1)) {}
        t[s] = table[i];
    }
    if (table) ExFreePool(table);
    table = t;
    capacity = cap;
    return 1;
}

static struct block *find(const void *p)
{
    unsigned long s;
    if (!capacity) return NULL;
    for (s = slot_of(p, capacity); table[s].p; s = (s + 1) & (capacity - 1))
        if (table[s].p == p) return &table[s];
    return NULL;
}

static void remove_at(unsigned long hole)
{
    unsigned long s = hole;
    for (;;) {
        unsigned long home;
        s = (s + 1) & (capacity - 1);
        if (!table[s].p) break;
        home = slot_of(table[s].p, capacity);
        /* move s back into the hole unless its home lies in (hole, s] */
        if ((s > hole && (home <= hole || home > s)) || (s < hole && home <= hole && home > s)) {
            table[hole] = table[s];
            hole = s;
        }
    }
    table[hole].p = NULL;
    used--;
}

/* Marks `b` freed and forgets the block freed FREED_RING frees ago, if it was not
 * allocated again since. */
static void mark_freed(struct block *b)
{
    void *old;
    struct block *o;
    b->freed = 1;
    old = freed[freed_next % FREED_RING];
    freed[freed_next++ % FREED_RING] = b->p;
    if (old && old != b->p && (o = find(old)) && o->freed) remove_at((unsigned long)(o - table));
}

void vf_pool_alloc(void *p, unsigned long long size, unsigned long tag, int type, const void *caller)
{
    void *stack[STACK_FRAMES] = { 0 };
    unsigned long s;
    (void)type;
    if (!vf_on || !p) return;
    RtlCaptureStackBackTrace(1, STACK_FRAMES, stack, NULL);
    vf_lock();
    if ((used + 1) * 2 > capacity && !grow()) {
        vf_unlock();
        return; /* out of memory: this block is not tracked */
    }
    for (s = slot_of(p, capacity); table[s].p && table[s].p != p; s = (s + 1) & (capacity - 1)) {}
    if (!table[s].p) used++;
    table[s].p = p;
    table[s].caller = caller;
    table[s].size = size;
    table[s].tag = tag;
    table[s].freed = 0;
    RtlCopyMemory(table[s].stack, stack, sizeof(stack));
    vf_unlock();
}

static void put_tag(char *out, unsigned long tag)
{
    int i;
    for (i = 0; i < 4; i++) {
        char c = (char)((tag >> (8 * i)) & 0xff);
        out[i] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? c : '.';
    }
    out[4] = 0;
}

int vf_pool_free(void *p, unsigned long tag, int with_tag, const char *routine, const void *caller)
{
    struct block *b;
    if (!vf_on || !p) return 1;
    vf_lock();
    b = find(p);
    if (b && b->freed && vf_pool_block_in_use(p)) {
        /* Freed by the driver, then allocated again by someone the rig does not
         * follow (Wine, for the driver: e.g. a buffer the caller frees): a free of
         * that block, not a second free. */
        remove_at((unsigned long)(b - table));
        b = NULL;
    }
    if (!b || b->freed) {
        int twice = b != NULL;
        vf_unlock();
        if (twice) {
            irql_finding(BAD_POOL_CALLER, C2_DOUBLE_FREE, 0, 0, (ULONG_PTR)p, "pool-double-free", routine, caller,
                         "pool block freed twice (the second free is not done)");
            return 0;
        }
        return 1; /* not allocated by a tracked driver (e.g. by Wine for it) */
    }
    if (with_tag && b->tag != tag) {
        char have[5], got[5], detail[96];
        unsigned long alloc_tag = b->tag;
        put_tag(have, alloc_tag);
        put_tag(got, tag);
        vf_unlock();
        _snprintf(detail, sizeof(detail), "ExFreePoolWithTag with tag '%s', block allocated with tag '%s'", got, have);
        irql_finding(BAD_POOL_CALLER, C2_WRONG_TAG, (ULONG_PTR)p, alloc_tag, tag, "pool-wrong-tag", routine, caller,
                     detail);
        vf_lock();
        b = find(p);
        if (!b || b->freed) {
            vf_unlock();
            return 1;
        }
    }
    mark_freed(b);
    vf_unlock();
    return 1;
}

/* Blocks allocated from code in [lo, hi) and still allocated: one finding with the
 * count and bytes (0xC4 / 0x62), the first few listed by tag and size; then they
 * are forgotten (the image is gone, its next load starts from zero). */
void vf_pool_unloading(const unsigned char *lo, const unsigned char *hi)
{
    unsigned long i, count = 0, listed = 0;
    unsigned long long bytes = 0;
    const void *first = NULL;
    void *first_stack[STACK_FRAMES] = { 0 };
    char detail[1100];
    int n;

    if (!vf_on) return;
    n = 0;
    detail[0] = 0;
    vf_lock();
    for (i = 0; i < capacity;) {
        const unsigned char *c = table[i].caller;
        if (!table[i].p || table[i].freed || c < lo || c >= hi) {
            i++;
            continue;
        }
        count++;
        bytes += table[i].size;
        if (!first) {
            first = table[i].caller;
            RtlCopyMemory(first_stack, table[i].stack, sizeof(first_stack));
        }
        if (listed < 8 && n >= 0 && n < (int)sizeof(detail) - 64) {
            char tag[5];
            put_tag(tag, table[i].tag);
            n += _snprintf(detail + n, sizeof(detail) - n, " '%s' %llu bytes at %p;", tag, table[i].size, table[i].p);
            listed++;
        }
        remove_at(i); /* the slot now holds a later entry, or is empty: look again */
    }
    vf_unlock();
    if (!count) return;
    {
        char head[96];
        int h = _snprintf(head, sizeof(head), "driver unloaded with %lu pool blocks (%llu bytes) not freed:", count, bytes);
        if (h > 0 && h + n < (int)sizeof(detail)) {
            memmove(detail + h, detail, n + 1);
            memcpy(detail, head, h);
            n += h;
        }
    }
    if (count > listed && n >= 0 && n < (int)sizeof(detail) - 32)
        n += _snprintf(detail + n, sizeof(detail) - n, " and %lu more", count - listed);
    if (n >= 0 && n < (int)sizeof(detail) - 40) {
        n += _snprintf(detail + n, sizeof(detail) - n, " first allocated from:");
        if (n > 0 && n < (int)sizeof(detail)) irql_describe_stack(first_stack, STACK_FRAMES, detail + n, sizeof(detail) - n);
    }
    irql_finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_POOL_LEAK_AT_UNLOAD, (ULONG_PTR)lo, 0, count, "pool-leak-at-unload",
                 "DriverUnload", first, detail);
}
