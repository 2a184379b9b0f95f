/*
 * IRQL tracking, kernel side (Wine only): the replacements drivers' imports are
 * pointed at, and Wine 8's IoCallDriver / IoCancelIrp with IRQL checks. Each
 * replacement checks, updates the tracked IRQL and calls Wine's routine (or, for
 * pure IRQL routines, only updates the tracked value). See README.md for the rules
 * and the Microsoft pages each code comes from.
 */
#include <ddk/wdm.h>

#include "irql.h"
#include "../wine-verifier/verifier.h"

#define RET __builtin_return_address(0)

/* Bug check codes and Driver Verifier parameter 1 values (README.md cites each). */
#define IRQL_NOT_LESS_OR_EQUAL 0x0A
#define IRQL_GT_ZERO_AT_SYSTEM_SERVICE 0x4A
#define DRIVER_VERIFIER_DETECTED_VIOLATION 0xC4
#define DRIVER_VERIFIER_IOMANAGER_VIOLATION 0xC9
#define WORKER_THREAD_RETURNED_AT_BAD_IRQL 0xE1
#define C4_PAGED_ALLOC_ABOVE_APC 0x01
#define C4_NONPAGED_ALLOC_ABOVE_DISPATCH 0x02
#define C4_FREE_ABOVE_DISPATCH 0x12
#define C4_RAISE_TO_LOWER 0x30
#define C4_LOWER_TO_HIGHER 0x31
#define C4_RELEASE_NOT_AT_DISPATCH 0x32
#define C4_ACQUIRE_AT_DPC_BELOW_DISPATCH 0x40
#define C4_RELEASE_AT_DPC_BELOW_DISPATCH 0x41
#define C4_ACQUIRE_ABOVE_DISPATCH 0x42
#define C4_SET_EVENT_ABOVE_DISPATCH 0x80
#define C4_DELAY_ABOVE_APC 0x2000F     /* IrqlKeApcLte1 */
#define C4_RELEASE_WRONG_IRQL 0x20015  /* IrqlKeReleaseSpinLock */
#define C4_PS_NOT_PASSIVE 0x2001C      /* IrqlPsPassive */
#define C4_ZW_NOT_PASSIVE 0x2001F      /* IrqlZwPassive */
#define C4_RELEASE_NOT_HELD 0x4000B    /* SpinlockRelease */
#define C9_IRQL_CHANGED 0x05

/* The cancel spin lock's identity in the held-lock list (Wine's own is private). */
static const char cancel_lock_id;
#define CANCEL_LOCK ((const void *)&cancel_lock_id)

void *irql_orig_IoAcquireCancelSpinLock, *irql_orig_IoReleaseCancelSpinLock;

#define ORIG(name) static void *orig_##name
ORIG(KeAcquireSpinLockRaiseToDpc);
ORIG(KeReleaseSpinLock);
ORIG(KeAcquireSpinLockAtDpcLevel);
ORIG(KeReleaseSpinLockFromDpcLevel);
ORIG(KefAcquireSpinLockAtDpcLevel);
ORIG(KefReleaseSpinLockFromDpcLevel);
ORIG(KeAcquireInStackQueuedSpinLock);
ORIG(KeReleaseInStackQueuedSpinLock);
ORIG(KeAcquireInStackQueuedSpinLockAtDpcLevel);
ORIG(KeReleaseInStackQueuedSpinLockFromDpcLevel);
ORIG(IoAcquireCancelSpinLock);
ORIG(IoReleaseCancelSpinLock);
ORIG(KeWaitForSingleObject);
ORIG(KeWaitForMultipleObjects);
ORIG(KeDelayExecutionThread);
ORIG(ExAllocatePool);
ORIG(ExAllocatePoolWithTag);
ORIG(ExAllocatePoolWithQuotaTag);
ORIG(ExAllocatePoolWithTagPriority);
ORIG(ExAllocatePool2);
ORIG(ExFreePool);
ORIG(ExFreePoolWithTag);
ORIG(IofCompleteRequest);
ORIG(KeSetEvent);
ORIG(PsCreateSystemThread);
ORIG(KfRaiseIrql);
ORIG(KeRaiseIrqlToDpcLevel);
ORIG(KfLowerIrql);
ORIG(KeLowerIrql);
ORIG(KeGetCurrentIrql);
ORIG(IoQueueWorkItem);

typedef KIRQL (NTAPI *acquire_fn)(PKSPIN_LOCK);
typedef VOID (NTAPI *release_fn)(PKSPIN_LOCK, KIRQL);
typedef VOID (NTAPI *lock_fn)(PKSPIN_LOCK);
typedef VOID (NTAPI *queued_fn)(PKSPIN_LOCK, PKLOCK_QUEUE_HANDLE);
typedef VOID (NTAPI *queued_release_fn)(PKLOCK_QUEUE_HANDLE);
typedef VOID (NTAPI *cancel_acquire_fn)(PKIRQL);
typedef VOID (NTAPI *cancel_release_fn)(KIRQL);

static void finding(unsigned code, ULONG64 p1, ULONG64 p2, ULONG64 p3, ULONG64 p4, const char *rule,
                    const char *routine, const void *where, const char *detail)
{
    irql_finding(code, p1, p2, p3, p4, rule, routine, where, detail);
}

/* ----- spin locks -------------------------------------------------------------------- */

static KIRQL NTAPI h_KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK lock)
{
    struct irql_thread *t = irql_thread();
    KIRQL old = t->irql;
    if (old > DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_ACQUIRE_ABOVE_DISPATCH, old, (ULONG_PTR)lock, 0,
                "acquire-above-dispatch", "KeAcquireSpinLockRaiseToDpc", RET, "spin lock acquired above DISPATCH_LEVEL");
    ((acquire_fn)orig_KeAcquireSpinLockRaiseToDpc)(lock);
    irql_push_lock(t, lock, old, LOCK_RAISE);
    if (t->irql < DISPATCH_LEVEL) t->irql = DISPATCH_LEVEL;
    return old;
}

/* Checks shared by the releases that restore an IRQL. */
static void check_release(struct irql_thread *t, const void *lock, KIRQL new_irql, const char *routine, const void *ret)
{
    struct irql_lock held;
    if (!irql_pop_lock(t, lock, &held)) {
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_RELEASE_NOT_HELD, t->irql, (ULONG_PTR)lock, 0,
                "release-not-held", routine, ret, "spin lock released that this thread does not hold");
        return;
    }
    if (t->irql != DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_RELEASE_NOT_AT_DISPATCH, t->irql, (ULONG_PTR)lock, 0,
                "release-not-at-dispatch", routine, ret,
                "spin lock released at an IRQL other than DISPATCH_LEVEL (IRQL lowered while it was held)");
    else if (new_irql != held.old_irql)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_RELEASE_WRONG_IRQL, (ULONG_PTR)lock, new_irql, held.old_irql,
                "release-wrong-irql", routine, ret, "NewIrql differs from the IRQL the acquire returned");
}

static VOID NTAPI h_KeReleaseSpinLock(PKSPIN_LOCK lock, KIRQL new_irql)
{
    struct irql_thread *t = irql_thread();
    check_release(t, lock, new_irql, "KeReleaseSpinLock", RET);
    ((release_fn)orig_KeReleaseSpinLock)(lock, new_irql);
    t->irql = new_irql;
}

static void at_dpc_acquire(PKSPIN_LOCK lock, void *orig, const char *routine, const void *ret)
{
    struct irql_thread *t = irql_thread();
    if (t->irql < DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_ACQUIRE_AT_DPC_BELOW_DISPATCH, t->irql, (ULONG_PTR)lock, 0,
                "acquire-at-dpc-below-dispatch", routine, ret, "AtDpcLevel acquire below DISPATCH_LEVEL");
    ((lock_fn)orig)(lock);
    irql_push_lock(t, lock, t->irql, LOCK_DPC);
}

static void at_dpc_release(PKSPIN_LOCK lock, void *orig, const char *routine, const void *ret)
{
    struct irql_thread *t = irql_thread();
    if (!irql_pop_lock(t, lock, NULL))
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_RELEASE_NOT_HELD, t->irql, (ULONG_PTR)lock, 0,
                "release-not-held", routine, ret, "spin lock released that this thread does not hold");
    else if (t->irql < DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_RELEASE_AT_DPC_BELOW_DISPATCH, t->irql, (ULONG_PTR)lock, 0,
                "release-at-dpc-below-dispatch", routine, ret, "FromDpcLevel release below DISPATCH_LEVEL");
    ((lock_fn)orig)(lock);
}

static VOID NTAPI h_KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK l) { at_dpc_acquire(l, orig_KeAcquireSpinLockAtDpcLevel, "KeAcquireSpinLockAtDpcLevel", RET); }
static VOID NTAPI h_KefAcquireSpinLockAtDpcLevel(PKSPIN_LOCK l) { at_dpc_acquire(l, orig_KefAcquireSpinLockAtDpcLevel, "KefAcquireSpinLockAtDpcLevel", RET); }
static VOID NTAPI h_KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK l) { at_dpc_release(l, orig_KeReleaseSpinLockFromDpcLevel, "KeReleaseSpinLockFromDpcLevel", RET); }
static VOID NTAPI h_KefReleaseSpinLockFromDpcLevel(PKSPIN_LOCK l) { at_dpc_release(l, orig_KefReleaseSpinLockFromDpcLevel, "KefReleaseSpinLockFromDpcLevel", RET); }

/* In-stack queued spin locks are tracked by their handle. */
static VOID NTAPI h_KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK lock, PKLOCK_QUEUE_HANDLE h)
{
    struct irql_thread *t = irql_thread();
    KIRQL old = t->irql;
    if (old > DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_ACQUIRE_ABOVE_DISPATCH, old, (ULONG_PTR)lock, 0,
                "acquire-above-dispatch", "KeAcquireInStackQueuedSpinLock", RET, "spin lock acquired above DISPATCH_LEVEL");
    ((queued_fn)orig_KeAcquireInStackQueuedSpinLock)(lock, h);
    h->OldIrql = old;
    irql_push_lock(t, h, old, LOCK_QUEUED);
    if (t->irql < DISPATCH_LEVEL) t->irql = DISPATCH_LEVEL;
}

static VOID NTAPI h_KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE h)
{
    struct irql_thread *t = irql_thread();
    KIRQL to = h->OldIrql;
    check_release(t, h, to, "KeReleaseInStackQueuedSpinLock", RET);
    ((queued_release_fn)orig_KeReleaseInStackQueuedSpinLock)(h);
    t->irql = to;
}

static VOID NTAPI h_KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK lock, PKLOCK_QUEUE_HANDLE h)
{
    struct irql_thread *t = irql_thread();
    if (t->irql < DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_ACQUIRE_AT_DPC_BELOW_DISPATCH, t->irql, (ULONG_PTR)lock, 0,
                "acquire-at-dpc-below-dispatch", "KeAcquireInStackQueuedSpinLockAtDpcLevel", RET,
                "AtDpcLevel acquire below DISPATCH_LEVEL");
    ((queued_fn)orig_KeAcquireInStackQueuedSpinLockAtDpcLevel)(lock, h);
    irql_push_lock(t, h, t->irql, LOCK_QUEUED_DPC);
}

static VOID NTAPI h_KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE h)
{
    struct irql_thread *t = irql_thread();
    if (!irql_pop_lock(t, h, NULL))
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_RELEASE_NOT_HELD, t->irql, (ULONG_PTR)h, 0, "release-not-held",
                "KeReleaseInStackQueuedSpinLockFromDpcLevel", RET, "queued spin lock released that this thread does not hold");
    else if (t->irql < DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_RELEASE_AT_DPC_BELOW_DISPATCH, t->irql, (ULONG_PTR)h, 0,
                "release-at-dpc-below-dispatch", "KeReleaseInStackQueuedSpinLockFromDpcLevel", RET,
                "FromDpcLevel release below DISPATCH_LEVEL");
    ((queued_release_fn)orig_KeReleaseInStackQueuedSpinLockFromDpcLevel)(h);
}

/* ----- the cancel spin lock ---------------------------------------------------------- */

static VOID NTAPI h_IoAcquireCancelSpinLock(PKIRQL irql)
{
    struct irql_thread *t = irql_thread();
    KIRQL old = t->irql;
    if (old > DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_ACQUIRE_ABOVE_DISPATCH, old, 0, 0, "acquire-above-dispatch",
                "IoAcquireCancelSpinLock", RET, "cancel spin lock acquired above DISPATCH_LEVEL");
    ((cancel_acquire_fn)irql_orig_IoAcquireCancelSpinLock)(irql);
    *irql = old;
    irql_push_lock(t, CANCEL_LOCK, old, LOCK_CANCEL);
    t->irql = DISPATCH_LEVEL;
}

static VOID NTAPI h_IoReleaseCancelSpinLock(KIRQL new_irql)
{
    struct irql_thread *t = irql_thread();
    if (!irql_holds(t, CANCEL_LOCK)) {
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_RELEASE_NOT_HELD, t->irql, 0, 0, "release-not-held",
                "IoReleaseCancelSpinLock", RET, "cancel spin lock released that this thread does not hold");
        return; /* releasing Wine's lock for another thread would let two in */
    }
    check_release(t, CANCEL_LOCK, new_irql, "IoReleaseCancelSpinLock", RET);
    ((cancel_release_fn)irql_orig_IoReleaseCancelSpinLock)(new_irql);
    t->irql = new_irql;
}

/* ----- raise, lower, query ----------------------------------------------------------- */

static KIRQL NTAPI h_KfRaiseIrql(KIRQL new_irql)
{
    struct irql_thread *t = irql_thread();
    KIRQL old = t->irql;
    if (new_irql < old || new_irql > HIGH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_RAISE_TO_LOWER, old, new_irql, 0, "raise-to-lower",
                "KfRaiseIrql", RET, "KeRaiseIrql to a lower IRQL than the current one");
    t->irql = new_irql;
    return old;
}

static KIRQL NTAPI h_KeRaiseIrqlToDpcLevel(void)
{
    struct irql_thread *t = irql_thread();
    KIRQL old = t->irql;
    if (old > DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_RAISE_TO_LOWER, old, DISPATCH_LEVEL, 0, "raise-to-lower",
                "KeRaiseIrqlToDpcLevel", RET, "KeRaiseIrqlToDpcLevel above DISPATCH_LEVEL");
    t->irql = DISPATCH_LEVEL;
    return old;
}

static void lower(KIRQL new_irql, const char *routine, const void *ret)
{
    struct irql_thread *t = irql_thread();
    if (new_irql > t->irql)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_LOWER_TO_HIGHER, t->irql, new_irql, 0, "lower-to-higher",
                routine, ret, "KeLowerIrql to a higher IRQL than the current one");
    t->irql = new_irql;
}

static VOID NTAPI h_KfLowerIrql(KIRQL n) { lower(n, "KfLowerIrql", RET); }
static VOID NTAPI h_KeLowerIrql(KIRQL n) { lower(n, "KeLowerIrql", RET); }
static KIRQL NTAPI h_KeGetCurrentIrql(void) { return irql_thread()->irql; }

/* ----- waits, Zw*, threads, events --------------------------------------------------- */

static int blocks(const LARGE_INTEGER *timeout) { return !timeout || timeout->QuadPart != 0; }

static NTSTATUS NTAPI h_KeWaitForSingleObject(PVOID obj, KWAIT_REASON reason, KPROCESSOR_MODE mode, BOOLEAN alertable,
                                              PLARGE_INTEGER timeout)
{
    KIRQL irql = irql_thread()->irql;
    if (irql > DISPATCH_LEVEL || (irql == DISPATCH_LEVEL && blocks(timeout)))
        finding(IRQL_NOT_LESS_OR_EQUAL, (ULONG_PTR)obj, irql, 0, (ULONG_PTR)RET, "wait-at-dispatch",
                "KeWaitForSingleObject", RET, "blocking wait (non-zero or no timeout) at DISPATCH_LEVEL or above");
    return ((NTSTATUS (NTAPI *)(PVOID, KWAIT_REASON, KPROCESSOR_MODE, BOOLEAN, PLARGE_INTEGER))orig_KeWaitForSingleObject)(
        obj, reason, mode, alertable, timeout);
}

static NTSTATUS NTAPI h_KeWaitForMultipleObjects(ULONG count, PVOID objs[], WAIT_TYPE type, KWAIT_REASON reason,
                                                 KPROCESSOR_MODE mode, BOOLEAN alertable, PLARGE_INTEGER timeout,
                                                 PKWAIT_BLOCK blocks_)
{
    KIRQL irql = irql_thread()->irql;
    if (irql > DISPATCH_LEVEL || (irql == DISPATCH_LEVEL && blocks(timeout)))
        finding(IRQL_NOT_LESS_OR_EQUAL, (ULONG_PTR)objs, irql, 0, (ULONG_PTR)RET, "wait-at-dispatch",
                "KeWaitForMultipleObjects", RET, "blocking wait (non-zero or no timeout) at DISPATCH_LEVEL or above");
    return ((NTSTATUS (NTAPI *)(ULONG, PVOID *, WAIT_TYPE, KWAIT_REASON, KPROCESSOR_MODE, BOOLEAN, PLARGE_INTEGER,
                                PKWAIT_BLOCK))orig_KeWaitForMultipleObjects)(count, objs, type, reason, mode, alertable,
                                                                             timeout, blocks_);
}

static NTSTATUS NTAPI h_KeDelayExecutionThread(KPROCESSOR_MODE mode, BOOLEAN alertable, PLARGE_INTEGER interval)
{
    KIRQL irql = irql_thread()->irql;
    if (irql > APC_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_DELAY_ABOVE_APC, irql, 0, 0, "delay-above-apc",
                "KeDelayExecutionThread", RET, "KeDelayExecutionThread above APC_LEVEL");
    return ((NTSTATUS (NTAPI *)(KPROCESSOR_MODE, BOOLEAN, PLARGE_INTEGER))orig_KeDelayExecutionThread)(mode, alertable,
                                                                                                     interval);
}

void __attribute__((ms_abi)) irql_zw_check(const char *name, const void *ret)
{
    KIRQL irql = irql_thread()->irql;
    if (irql != PASSIVE_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_ZW_NOT_PASSIVE, irql, 0, 0, "zw-not-passive", name, ret,
                "Zw* routine called above PASSIVE_LEVEL");
}

static NTSTATUS NTAPI h_PsCreateSystemThread(PHANDLE h, ULONG access, POBJECT_ATTRIBUTES oa, HANDLE process,
                                             PCLIENT_ID client, PKSTART_ROUTINE start, PVOID ctx)
{
    KIRQL irql = irql_thread()->irql;
    NTSTATUS s;
    if (irql != PASSIVE_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_PS_NOT_PASSIVE, irql, 0, 0, "ps-not-passive",
                "PsCreateSystemThread", RET, "PsCreateSystemThread above PASSIVE_LEVEL");
    s = ((NTSTATUS (NTAPI *)(PHANDLE, ULONG, POBJECT_ATTRIBUTES, HANDLE, PCLIENT_ID, PKSTART_ROUTINE,
                             PVOID))orig_PsCreateSystemThread)(h, access, oa, process, client, start, ctx);
    if (NT_SUCCESS(s) && h) {
        vf_thread_created(*h, (const void *)start, RET);
        vf_handle_from_thread(*h, RET);
    }
    return s;
}

static LONG NTAPI h_KeSetEvent(PRKEVENT ev, KPRIORITY inc, BOOLEAN wait)
{
    KIRQL irql = irql_thread()->irql;
    if (irql > DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_SET_EVENT_ABOVE_DISPATCH, irql, (ULONG_PTR)ev, 0,
                "set-event-above-dispatch", "KeSetEvent", RET, "KeSetEvent above DISPATCH_LEVEL");
    return ((LONG (NTAPI *)(PRKEVENT, KPRIORITY, BOOLEAN))orig_KeSetEvent)(ev, inc, wait);
}

/* ----- pool -------------------------------------------------------------------------- */

static void check_alloc(POOL_TYPE type, SIZE_T size, const char *routine, const void *ret)
{
    KIRQL irql = irql_thread()->irql;
    if ((type & 1) && irql > APC_LEVEL) /* PagedPool and its variants have bit 0 set */
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_PAGED_ALLOC_ABOVE_APC, irql, type, size, "paged-alloc-above-apc",
                routine, ret, "paged pool allocated above APC_LEVEL");
    else if (irql > DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_NONPAGED_ALLOC_ABOVE_DISPATCH, irql, type, size,
                "alloc-above-dispatch", routine, ret, "nonpaged pool allocated above DISPATCH_LEVEL");
}

static PVOID NTAPI h_ExAllocatePool(POOL_TYPE type, SIZE_T size)
{
    PVOID p;
    check_alloc(type, size, "ExAllocatePool", RET);
    p = ((PVOID (NTAPI *)(POOL_TYPE, SIZE_T))orig_ExAllocatePool)(type, size);
    vf_pool_alloc(p, size, 0x656e6f4e /* 'None', as Windows tags untagged blocks */, type, RET);
    return p;
}

static PVOID NTAPI h_ExAllocatePoolWithTag(POOL_TYPE type, SIZE_T size, ULONG tag)
{
    PVOID p;
    check_alloc(type, size, "ExAllocatePoolWithTag", RET);
    p = ((PVOID (NTAPI *)(POOL_TYPE, SIZE_T, ULONG))orig_ExAllocatePoolWithTag)(type, size, tag);
    vf_pool_alloc(p, size, tag, type, RET);
    return p;
}

static PVOID NTAPI h_ExAllocatePoolWithQuotaTag(POOL_TYPE type, SIZE_T size, ULONG tag)
{
    PVOID p;
    check_alloc(type, size, "ExAllocatePoolWithQuotaTag", RET);
    p = ((PVOID (NTAPI *)(POOL_TYPE, SIZE_T, ULONG))orig_ExAllocatePoolWithQuotaTag)(type, size, tag);
    vf_pool_alloc(p, size, tag, type, RET);
    return p;
}

static PVOID NTAPI h_ExAllocatePoolWithTagPriority(POOL_TYPE type, SIZE_T size, ULONG tag, EX_POOL_PRIORITY prio)
{
    PVOID p;
    check_alloc(type, size, "ExAllocatePoolWithTagPriority", RET);
    p = ((PVOID (NTAPI *)(POOL_TYPE, SIZE_T, ULONG, EX_POOL_PRIORITY))orig_ExAllocatePoolWithTagPriority)(type, size, tag,
                                                                                                        prio);
    vf_pool_alloc(p, size, tag, type, RET);
    return p;
}

/* ExAllocatePool2 (compat/wine-kapi supplies it to Wine 8): flags, not a type. */
static PVOID NTAPI h_ExAllocatePool2(ULONG64 flags, SIZE_T size, ULONG tag)
{
    PVOID p;
    check_alloc((flags & 0x100) ? PagedPool : NonPagedPool, size, "ExAllocatePool2", RET);
    p = ((PVOID (NTAPI *)(ULONG64, SIZE_T, ULONG))orig_ExAllocatePool2)(flags, size, tag);
    vf_pool_alloc(p, size, tag, (flags & 0x100) ? PagedPool : NonPagedPool, RET);
    return p;
}

static void check_free(PVOID p, const char *routine, const void *ret)
{
    KIRQL irql = irql_thread()->irql;
    if (irql > DISPATCH_LEVEL)
        finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_FREE_ABOVE_DISPATCH, irql, 0, (ULONG_PTR)p, "free-above-dispatch",
                routine, ret, "pool freed above DISPATCH_LEVEL");
}

static VOID NTAPI h_ExFreePool(PVOID p)
{
    check_free(p, "ExFreePool", RET);
    if (vf_pool_free(p, 0, 0, "ExFreePool", RET)) ((VOID (NTAPI *)(PVOID))orig_ExFreePool)(p);
}

static VOID NTAPI h_ExFreePoolWithTag(PVOID p, ULONG tag)
{
    check_free(p, "ExFreePoolWithTag", RET);
    if (vf_pool_free(p, tag, 1, "ExFreePoolWithTag", RET)) ((VOID (NTAPI *)(PVOID, ULONG))orig_ExFreePoolWithTag)(p, tag);
}

static VOID FASTCALL h_IofCompleteRequest(PIRP irp, CCHAR boost)
{
    KIRQL irql = irql_thread()->irql;
    if (irql > DISPATCH_LEVEL)
        finding(IRQL_NOT_LESS_OR_EQUAL, (ULONG_PTR)irp, irql, 0, (ULONG_PTR)RET, "complete-above-dispatch",
                "IofCompleteRequest", RET, "IoCompleteRequest above DISPATCH_LEVEL");
    if (vf_complete(irp, RET)) {
        ((VOID (FASTCALL *)(PIRP, CCHAR))orig_IofCompleteRequest)(irp, boost);
        vf_completed(irp); /* the quarantine keeps the IRP's memory valid if it was freed */
    }
}

/* ----- work items ------------------------------------------------------------------- */

/* Work items run on a system worker thread at PASSIVE_LEVEL and must return there
 * (0xE1). Wine runs them on its thread pool, whose threads keep whatever tracked state
 * an earlier callback left: each item starts from PASSIVE_LEVEL with no lock held. */
struct work { PIO_WORKITEM_ROUTINE routine; PVOID context; PIO_WORKITEM item; };

static VOID NTAPI work_wrapper(PDEVICE_OBJECT dev, PVOID p)
{
    struct work w = *(struct work *)p;
    struct irql_thread *t = irql_thread();
    const void *saved = t->routine;

    ExFreePool(p);
    t->irql = PASSIVE_LEVEL;
    t->nlocks = 0;
    t->routine = (const void *)w.routine;
    w.routine(dev, w.context);
    if (t->nlocks || t->irql != PASSIVE_LEVEL)
        finding(WORKER_THREAD_RETURNED_AT_BAD_IRQL, (ULONG_PTR)w.routine, t->irql, (ULONG_PTR)w.context,
                (ULONG_PTR)w.item, t->nlocks ? "lock-held-at-return" : "worker-irql", "IoQueueWorkItem",
                (const void *)w.routine,
                t->nlocks ? "work item returned holding a spin lock" : "work item returned above PASSIVE_LEVEL");
    t->irql = PASSIVE_LEVEL;
    t->nlocks = 0;
    t->routine = saved;
}

static VOID NTAPI h_IoQueueWorkItem(PIO_WORKITEM item, PIO_WORKITEM_ROUTINE routine, WORK_QUEUE_TYPE queue, PVOID ctx)
{
    typedef VOID (NTAPI *queue_fn)(PIO_WORKITEM, PIO_WORKITEM_ROUTINE, WORK_QUEUE_TYPE, PVOID);
    struct work *w = ExAllocatePoolWithTag(NonPagedPool, sizeof(*w), 0x71726977 /* 'wirq' */);
    if (irql_thread()->irql > DISPATCH_LEVEL)
        finding(IRQL_NOT_LESS_OR_EQUAL, (ULONG_PTR)item, irql_thread()->irql, 0, (ULONG_PTR)RET,
                "queue-work-above-dispatch", "IoQueueWorkItem", RET, "IoQueueWorkItem above DISPATCH_LEVEL");
    if (!w) {
        ((queue_fn)orig_IoQueueWorkItem)(item, routine, queue, ctx); /* untracked, but runs */
        return;
    }
    w->routine = routine;
    w->context = ctx;
    w->item = item;
    ((queue_fn)orig_IoQueueWorkItem)(item, work_wrapper, queue, w);
}

/* ----- what Wine calls drivers through ---------------------------------------------- */

/* After a dispatch or cancel routine: locks taken inside and still held, or a changed
 * IRQL, are one finding (the lock explains the IRQL); the state is then put back so
 * that one defect gives one finding, not a cascade. */
static int check_return(struct irql_thread *t, unsigned nlocks, KIRQL entry, unsigned code, ULONG64 p1, ULONG64 p2,
                        const char *routine, const void *where, const char *what)
{
    int found = 0;
    if (t->nlocks > nlocks) {
        finding(code, p1, p2, entry, t->irql, "lock-held-at-return", routine, where,
                what[0] == 'd' ? "dispatch routine returned holding a spin lock it acquired"
                               : "cancel routine returned holding a spin lock it acquired");
        t->nlocks = (unsigned char)nlocks;
        found = 1;
    } else if (t->irql != entry) {
        finding(code, p1, p2, entry, t->irql, what, routine, where,
                what[0] == 'd' ? "dispatch routine returned at another IRQL than it was entered at"
                               : "cancel routine returned at another IRQL than IoCancelIrp was called at");
        found = 1;
    }
    t->irql = entry;
    return found;
}

/* Wine 8.0's IoCallDriver, plus: dispatch routines called by Wine (winedevice) run at
 * PASSIVE_LEVEL; on return the IRQL must be the entry IRQL and no spin lock taken
 * inside may still be held (0xC9 / 0x05). */
long __attribute__((ms_abi)) irql_IoCallDriver(void *device_, void *irp_)
{
    DEVICE_OBJECT *device = device_;
    IRP *irp = irp_;
    struct irql_thread *t = irql_thread();
    IO_STACK_LOCATION *sp;
    PDRIVER_DISPATCH dispatch;
    unsigned nlocks = t->nlocks;
    const void *saved;
    KIRQL entry;
    NTSTATUS status;

    int from_io_manager = irql_in_kernel(RET);

    if (from_io_manager) t->irql = PASSIVE_LEVEL; /* an I/O request from user mode */
    entry = t->irql;
    --irp->CurrentLocation;
    sp = --irp->Tail.Overlay.CurrentStackLocation;
    sp->DeviceObject = device;
    if (!vf_device_enter(device)) {
        /* Deleted by its driver after Wine fetched the request: the device (and
         * maybe the image) is gone, as the I/O manager would have it on Windows. */
        irp->IoStatus.Status = STATUS_NO_SUCH_DEVICE;
        irp->IoStatus.Information = 0;
        IoCompleteRequest(irp, IO_NO_INCREMENT); /* Wine's own: the helper's imports are not patched */
        return STATUS_NO_SUCH_DEVICE;
    }
    dispatch = device->DriverObject->MajorFunction[sp->MajorFunction];
    if (!irql_tracked((const void *)dispatch)) {
        status = dispatch(device, irp);
        vf_device_leave(device);
        return status;
    }
    vf_irp_begin(irp, from_io_manager);
    saved = t->routine;
    t->routine = (const void *)dispatch;
    t->depth++;
    status = dispatch(device, irp);
    t->depth--;
    check_return(t, nlocks, entry, DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_IRQL_CHANGED, (ULONG_PTR)device,
                 "IoCallDriver", (const void *)dispatch, "dispatch-irql");
    t->routine = saved;
    vf_dispatch_leave(device, irp, sp, status, (const void *)dispatch, from_io_manager);
    return status;
}

/* Wine 8.0's IoCancelIrp, plus what Windows does: the cancel routine runs at
 * DISPATCH_LEVEL holding the cancel spin lock, with Irp->CancelIrql the caller's
 * IRQL; it must release the lock and return at the IRQL IoCancelIrp was called at.
 * Returning raised reaches user mode raised (0x4A) on Windows. A cancel lock left
 * held is released here after the finding, or every later cancel would spin. */
unsigned char __attribute__((ms_abi)) irql_IoCancelIrp(void *irp_)
{
    IRP *irp = irp_;
    struct irql_thread *t = irql_thread();
    unsigned nlocks = t->nlocks;
    KIRQL entry = t->irql, ignored;
    PDRIVER_CANCEL routine;
    const void *saved;

    vf_cancel(irp);
    if (!irql_tracked(irp->CancelRoutine)) {
        /* Not a tracked driver's (or none): exactly Wine 8.0's IoCancelIrp. */
        KIRQL irql;
        ((cancel_acquire_fn)irql_orig_IoAcquireCancelSpinLock)(&irql);
        irp->Cancel = TRUE;
        routine = (PDRIVER_CANCEL)InterlockedExchangePointer((PVOID volatile *)&irp->CancelRoutine, NULL);
        if (!routine) {
            ((cancel_release_fn)irql_orig_IoReleaseCancelSpinLock)(irp->CancelIrql);
            return FALSE;
        }
        irp->CancelIrql = irql;
        routine(IoGetCurrentIrpStackLocation(irp)->DeviceObject, irp);
        return TRUE;
    }
    ((cancel_acquire_fn)irql_orig_IoAcquireCancelSpinLock)(&ignored);
    irql_push_lock(t, CANCEL_LOCK, entry, LOCK_CANCEL);
    t->irql = DISPATCH_LEVEL;
    irp->Cancel = TRUE;
    routine = (PDRIVER_CANCEL)InterlockedExchangePointer((PVOID volatile *)&irp->CancelRoutine, NULL);
    if (!routine) {
        irql_pop_lock(t, CANCEL_LOCK, NULL);
        ((cancel_release_fn)irql_orig_IoReleaseCancelSpinLock)(irp->CancelIrql);
        t->irql = entry;
        return FALSE;
    }
    irp->CancelIrql = entry;
    saved = t->routine;
    t->routine = (const void *)routine;
    routine(IoGetCurrentIrpStackLocation(irp)->DeviceObject, irp);
    if (irql_holds(t, CANCEL_LOCK)) {
        finding(IRQL_GT_ZERO_AT_SYSTEM_SERVICE, (ULONG_PTR)routine, t->irql, 0, 0, "cancel-lock-held", "IoCancelIrp",
                (const void *)routine, "cancel routine returned without releasing the cancel spin lock");
        irql_pop_lock(t, CANCEL_LOCK, NULL);
        ((cancel_release_fn)irql_orig_IoReleaseCancelSpinLock)(entry);
        t->nlocks = (unsigned char)(t->nlocks > nlocks ? nlocks : t->nlocks);
        t->irql = entry;
    } else {
        unsigned code = t->irql > entry ? IRQL_GT_ZERO_AT_SYSTEM_SERVICE : DRIVER_VERIFIER_DETECTED_VIOLATION;
        ULONG64 p1 = t->irql > entry ? (ULONG_PTR)routine : C4_LOWER_TO_HIGHER;
        check_return(t, nlocks, entry, code, p1, t->irql, "IoCancelIrp", (const void *)routine, "cancel-irql");
    }
    t->routine = saved;
    return TRUE;
}

/* ----- the table --------------------------------------------------------------------- */

#define HOOK(name) { #name, (void *)h_##name, &orig_##name }
const struct irql_hook irql_hooks[] = {
    HOOK(KeAcquireSpinLockRaiseToDpc),
    HOOK(KeReleaseSpinLock),
    HOOK(KeAcquireSpinLockAtDpcLevel),
    HOOK(KeReleaseSpinLockFromDpcLevel),
    HOOK(KefAcquireSpinLockAtDpcLevel),
    HOOK(KefReleaseSpinLockFromDpcLevel),
    HOOK(KeAcquireInStackQueuedSpinLock),
    HOOK(KeReleaseInStackQueuedSpinLock),
    HOOK(KeAcquireInStackQueuedSpinLockAtDpcLevel),
    HOOK(KeReleaseInStackQueuedSpinLockFromDpcLevel),
    HOOK(IoAcquireCancelSpinLock),
    HOOK(IoReleaseCancelSpinLock),
    HOOK(KeWaitForSingleObject),
    HOOK(KeWaitForMultipleObjects),
    HOOK(KeDelayExecutionThread),
    HOOK(ExAllocatePool),
    HOOK(ExAllocatePoolWithTag),
    HOOK(ExAllocatePoolWithQuotaTag),
    HOOK(ExAllocatePoolWithTagPriority),
    HOOK(ExAllocatePool2),
    HOOK(ExFreePool),
    HOOK(ExFreePoolWithTag),
    HOOK(IofCompleteRequest),
    HOOK(KeSetEvent),
    HOOK(PsCreateSystemThread),
    HOOK(KfRaiseIrql),
    HOOK(KeRaiseIrqlToDpcLevel),
    HOOK(KfLowerIrql),
    HOOK(KeLowerIrql),
    HOOK(KeGetCurrentIrql),
    HOOK(IoQueueWorkItem),
    { 0, 0, 0 },
};
