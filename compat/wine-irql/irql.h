/*
 * IRQL tracking for drivers in Wine's winedevice.exe (Wine 8 only). See README.md.
 * Shared between track.c (windows.h side: state, findings, patching) and hooks.c
 * (wdm.h side: the replacement kernel routines); plain C types only.
 */
#ifndef NTCOMM_WINE_IRQL_H
#define NTCOMM_WINE_IRQL_H

#define IRQL_PASSIVE 0
#define IRQL_APC 1
#define IRQL_DISPATCH 2
#define IRQL_HIGH 15

#define IRQL_MAX_LOCKS 16

/* What a held lock was taken with. */
enum irql_lock_kind { LOCK_RAISE = 1, LOCK_DPC, LOCK_QUEUED, LOCK_QUEUED_DPC, LOCK_CANCEL };

struct irql_lock { const void *lock; unsigned char old_irql, kind; };

/* One per thread (TLS), created at PASSIVE_LEVEL on first use. */
struct irql_thread {
    unsigned char irql;
    unsigned char nlocks;
    unsigned short depth; /* nesting of IoCallDriver seen on this thread */
    const void *routine;  /* the dispatch or cancel routine running, for attribution */
    struct irql_lock locks[IRQL_MAX_LOCKS];
};

struct irql_thread *irql_thread(void);
void irql_push_lock(struct irql_thread *t, const void *lock, unsigned char old_irql, int kind);
/* Removes the innermost entry for `lock`; returns its index + 1, 0 when not held. */
int irql_pop_lock(struct irql_thread *t, const void *lock, struct irql_lock *out);
int irql_holds(const struct irql_thread *t, const void *lock);

/*
 * Records a finding: bug check `code` with parameters p1..p4 (as Windows would),
 * `rule` (short id), the routine it was seen in, `where` (a code address in the
 * driver at fault: return address or routine) and a detail line. Appends one JSON
 * line to the findings file and prints it to stderr; never stops the process.
 * Repeats of one (rule, where) pair after the second are counted, not written.
 */
void irql_finding(unsigned code, unsigned long long p1, unsigned long long p2, unsigned long long p3,
                  unsigned long long p4, const char *rule, const char *routine, const void *where,
                  const char *detail);

/* Writes " module+0xoffset" for each of `n` code addresses (the helper's own and
 * unknown ones left out) to `out`, NUL-terminated. */
void irql_describe_stack(void *const *frames, unsigned n, char *out, unsigned size);

/* Whether `addr` lies in ntoskrnl.exe (Wine calling, not a driver). */
int irql_in_kernel(const void *addr);

/* Whether `addr` lies in a driver whose imports are tracked. Dispatch and cancel
 * routines of other modules (loaded before the helper, or left out) are called as
 * Wine calls them, unchecked: their lock calls are not seen. */
int irql_tracked(const void *addr);

/* Installs everything (Wine 8 only); for the helper's DllMain. Nonzero on success. */
int ntcomm_irql_install(void);

/* hooks.c: the table of import replacements, and the two entry-point replacements. */
struct irql_hook { const char *name; void *replacement; void **original; };
extern const struct irql_hook irql_hooks[];
/* compat/wine-verifier's (unload.c): searched after irql_hooks. */
extern const struct irql_hook vf_hooks[];
void __attribute__((ms_abi)) irql_zw_check(const char *name, const void *ret);
extern void *irql_orig_IoAcquireCancelSpinLock, *irql_orig_IoReleaseCancelSpinLock;
long __attribute__((ms_abi)) irql_IoCallDriver(void *device, void *irp);
unsigned char __attribute__((ms_abi)) irql_IoCancelIrp(void *irp);

#endif
