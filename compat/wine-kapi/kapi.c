/*
 * Kernel routines that Windows drivers call and Wine 8's ntoskrnl.exe lacks
 * (ExAllocatePool2, IoCsqInitializeEx, IoCsqInsertIrpEx) or has as stubs that kill
 * the driver host (ExQueueWorkItem, IoCsqInsertIrp, IoCsqRemoveIrp,
 * IoCsqRemoveNextIrp, ObSetSecurityObjectByPointer) or that do nothing
 * (IoCsqInitialize). Wine only: compiled into the driver-host helper
 * ntcomm_lpc.sys (compat/wine-lpc), whose DllMain calls ntcomm_kapi_install().
 * Semantics follow Microsoft's documentation of each routine; README.md lists them
 * and what differs.
 */
#include <ddk/wdm.h>

#include "kapi.h"
#include "../wine-lpc/lpc.h"
#include "../wine-irql/irql.h"
#include "../wine-verifier/verifier.h"

/* kernel32 and ntdll, declared here: windows.h cannot be mixed with the DDK headers. */
__declspec(dllimport) void *__stdcall GetModuleHandleW(const WCHAR *name);
__declspec(dllimport) void *__stdcall GetProcAddress(void *module, const char *name);
__declspec(dllimport) int __stdcall QueueUserWorkItem(ULONG(__stdcall *fn)(void *), void *ctx, ULONG flags);
__declspec(dllimport) void *__stdcall CreateThread(void *attrs, SIZE_T stack, ULONG(__stdcall *fn)(void *), void *ctx, ULONG flags,
                                                   ULONG *id);
__declspec(dllimport) int __stdcall CloseHandle(void *handle);

/* ntifs.h (which needs the ddk directory on the include path) */
NTSTATUS NTAPI ObOpenObjectByPointer(PVOID object, ULONG attributes, PVOID access_state, ACCESS_MASK access,
                                     POBJECT_TYPE type, KPROCESSOR_MODE mode, PHANDLE handle);
NTSTATUS NTAPI ZwSetSecurityObject(HANDLE handle, SECURITY_INFORMATION info, PSECURITY_DESCRIPTOR sd);
#ifndef LABEL_SECURITY_INFORMATION
#define LABEL_SECURITY_INFORMATION 0x00000010
#endif

#define WORKER_THREAD_RETURNED_AT_BAD_IRQL 0xE1

/* ----- ExAllocatePool2 ------------------------------------------------------------ */

/* POOL_FLAGS (wdm.h, Windows 10 2004) */
#define POOL_FLAG_USE_QUOTA 0x1ull
#define POOL_FLAG_UNINITIALIZED 0x2ull
#define POOL_FLAG_SESSION 0x4ull
#define POOL_FLAG_CACHE_ALIGNED 0x8ull
#define POOL_FLAG_RAISE_ON_FAILURE 0x20ull
#define POOL_FLAG_NON_PAGED 0x40ull
#define POOL_FLAG_NON_PAGED_EXECUTE 0x80ull
#define POOL_FLAG_PAGED 0x100ull
#define POOL_FLAG_REQUIRED_MASK 0xFFFFFFFFull
#define POOL_FLAG_KNOWN_REQUIRED 0x1FFull /* bits up to POOL_FLAG_PAGED (0x10 is reserved) */

/* Exactly one pool type is required. Unknown required flags fail the call (NULL),
   as Microsoft documents for required flags the system does not know; optional
   flags (above bit 31, e.g. POOL_FLAG_SPECIAL_POOL) are ignored. Zeroed unless
   POOL_FLAG_UNINITIALIZED; POOL_FLAG_RAISE_ON_FAILURE raises
   STATUS_INSUFFICIENT_RESOURCES instead of returning NULL. Freed with ExFreePool*. */
static PVOID NTAPI kapi_ExAllocatePool2(ULONG64 flags, SIZE_T size, ULONG tag)
{
    ULONG64 types = flags & (POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE | POOL_FLAG_PAGED);
    ULONG64 required = flags & POOL_FLAG_REQUIRED_MASK;
    POOL_TYPE type;
    PVOID p = NULL;

    if ((required & ~POOL_FLAG_KNOWN_REQUIRED) || (required & 0x10) || (types & (types - 1)) || !types) goto fail;
    type = types == POOL_FLAG_PAGED ? PagedPool : types == POOL_FLAG_NON_PAGED_EXECUTE ? NonPagedPoolExecute : NonPagedPoolNx;
    if (flags & POOL_FLAG_CACHE_ALIGNED) type = (POOL_TYPE)(type + 4); /* the ...CacheAligned types */
    if (flags & POOL_FLAG_USE_QUOTA)
        p = ExAllocatePoolWithQuotaTag(type, size, tag); /* Wine: HeapAlloc too */
    else
        p = ExAllocatePoolWithTag(type, size, tag);
    if (p && !(flags & POOL_FLAG_UNINITIALIZED)) RtlZeroMemory(p, size);
    if (p) return p;
fail:
    if (flags & POOL_FLAG_RAISE_ON_FAILURE) ExRaiseStatus(STATUS_INSUFFICIENT_RESOURCES);
    return NULL;
}

/* ----- ExQueueWorkItem -------------------------------------------------------------- */

/* A system worker thread runs the item at PASSIVE_LEVEL; the routine must return
   there (bug check 0xE1 otherwise, reported like IoQueueWorkItem's, compat/wine-irql).
   The item belongs to the driver, which may free or reuse it inside the routine:
   its fields are read before the call. */
static ULONG __stdcall run_work_item(void *p)
{
    WORK_QUEUE_ITEM *item = p;
    PWORKER_THREAD_ROUTINE routine = item->WorkerRoutine;
    PVOID parameter = item->Parameter;
    struct irql_thread *t = irql_thread();
    const void *saved = t->routine;

    t->irql = PASSIVE_LEVEL;
    t->nlocks = 0;
    t->routine = (const void *)routine;
    routine(parameter);
    if (t->nlocks || t->irql != PASSIVE_LEVEL)
        irql_finding(WORKER_THREAD_RETURNED_AT_BAD_IRQL, (ULONG_PTR)routine, t->irql, (ULONG_PTR)parameter, (ULONG_PTR)item,
                     t->nlocks ? "lock-held-at-return" : "worker-irql", "ExQueueWorkItem", (const void *)routine,
                     t->nlocks ? "work item returned holding a spin lock" : "work item returned above PASSIVE_LEVEL");
    t->irql = PASSIVE_LEVEL;
    t->nlocks = 0;
    t->routine = saved;
    vf_work_done((const void *)routine);
    return 0;
}

static VOID NTAPI kapi_ExQueueWorkItem(PWORK_QUEUE_ITEM item, WORK_QUEUE_TYPE type)
{
    (void)type; /* Wine's thread pool serves every queue */
    vf_work_queued((const void *)item->WorkerRoutine);
    if (!QueueUserWorkItem(run_work_item, item, 0 /* WT_EXECUTEDEFAULT */))
        KeBugCheckEx(WORKER_THREAD_RETURNED_AT_BAD_IRQL, 0, 0, 0, 0); /* cannot happen short of memory */
}

/* ----- DPCs ------------------------------------------------------------------------- */

/* Wine 8's KeInsertQueueDpc returns TRUE and never runs the DPC, KeRemoveQueueDpc
   kills the host, KeFlushQueuedDpcs returns at once. Here, as Windows documents them
   (KeInsertQueueDpc: FALSE if the DPC is already queued; the routine runs at
   DISPATCH_LEVEL with the DPC's context and the two system arguments; the DPC leaves
   the queue before its routine runs, so it may queue itself again; KeRemoveQueueDpc:
   TRUE if it took the DPC off the queue; KeFlushQueuedDpcs: returns when every DPC
   queued before it has run): one DPC thread runs the queue in order, its tracked
   IRQL DISPATCH_LEVEL (compat/wine-irql), so a DPC that waits is a finding. The
   queue is linked through the DPC's own DpcListEntry; DpcData marks it queued. */
static LIST_ENTRY dpc_queue = { &dpc_queue, &dpc_queue };
static KSPIN_LOCK dpc_lock;
static KEVENT dpc_wake;
static PKDPC dpc_running;
/* DPCs queued and DPCs run or taken off the queue, ever: a flush waits for the
   ones queued before it (a DPC that queues itself again does not hold it). */
static ULONG64 dpc_queued, dpc_done;
static volatile LONG dpc_thread_state; /* 0 none, 1 starting, 2 running */
static const char dpc_queued_mark;

static ULONG __stdcall dpc_thread(void *unused)
{
    (void)unused;
    for (;;) {
        KIRQL old;
        PKDPC dpc = NULL;
        PKDEFERRED_ROUTINE routine = NULL;
        PVOID ctx = NULL, a1 = NULL, a2 = NULL;
        struct irql_thread *t;

        KeAcquireSpinLock(&dpc_lock, &old);
        if (!IsListEmpty(&dpc_queue)) {
            dpc = CONTAINING_RECORD(RemoveHeadList(&dpc_queue), KDPC, DpcListEntry);
            routine = dpc->DeferredRoutine;
            ctx = dpc->DeferredContext;
            a1 = dpc->SystemArgument1;
            a2 = dpc->SystemArgument2;
            dpc->DpcData = NULL; /* off the queue before it runs: it may queue itself again */
            dpc_running = dpc;
        } else {
            KeClearEvent(&dpc_wake);
        }
        KeReleaseSpinLock(&dpc_lock, old);
        if (!dpc) {
            KeWaitForSingleObject(&dpc_wake, Executive, KernelMode, FALSE, NULL);
            continue;
        }
        t = irql_thread();
        t->irql = DISPATCH_LEVEL;
        t->nlocks = 0;
        t->routine = (const void *)routine;
        routine(dpc, ctx, a1, a2);
        t->irql = PASSIVE_LEVEL;
        t->nlocks = 0;
        t->routine = NULL;
        KeAcquireSpinLock(&dpc_lock, &old);
        vf_dpc_done(dpc, (const void *)routine); /* before it is seen done: a flush then unload finds nothing */
        dpc_running = NULL;
        dpc_done++;
        KeReleaseSpinLock(&dpc_lock, old);
    }
    return 0;
}

static BOOLEAN NTAPI kapi_KeInsertQueueDpc(PRKDPC dpc, PVOID a1, PVOID a2)
{
    KIRQL old;
    if (InterlockedCompareExchange(&dpc_thread_state, 1, 0) == 0) {
        void *h = CreateThread(NULL, 0, dpc_thread, NULL, 0, NULL);
        if (h) CloseHandle(h);
        InterlockedExchange(&dpc_thread_state, h ? 2 : 0);
        if (!h) return FALSE; /* cannot run it: as if it were queued already */
    }
    KeAcquireSpinLock(&dpc_lock, &old);
    if (dpc->DpcData) {
        KeReleaseSpinLock(&dpc_lock, old);
        return FALSE;
    }
    dpc->DpcData = (PVOID)&dpc_queued_mark;
    dpc->SystemArgument1 = a1;
    dpc->SystemArgument2 = a2;
    InsertTailList(&dpc_queue, &dpc->DpcListEntry);
    dpc_queued++;
    vf_dpc_queued(dpc, (const void *)dpc->DeferredRoutine);
    KeSetEvent(&dpc_wake, IO_NO_INCREMENT, FALSE);
    KeReleaseSpinLock(&dpc_lock, old);
    return TRUE;
}

static BOOLEAN NTAPI kapi_KeRemoveQueueDpc(PRKDPC dpc)
{
    KIRQL old;
    BOOLEAN was = FALSE;
    KeAcquireSpinLock(&dpc_lock, &old);
    if (dpc->DpcData == (PVOID)&dpc_queued_mark) {
        RemoveEntryList(&dpc->DpcListEntry);
        dpc->DpcData = NULL;
        dpc_done++;
        vf_dpc_done(dpc, (const void *)dpc->DeferredRoutine);
        was = TRUE;
    }
    KeReleaseSpinLock(&dpc_lock, old);
    return was;
}

static VOID NTAPI kapi_KeFlushQueuedDpcs(void)
{
    LARGE_INTEGER ms = { .QuadPart = -10000 };
    ULONG64 target;
    KIRQL old;
    KeAcquireSpinLock(&dpc_lock, &old);
    target = dpc_queued;
    KeReleaseSpinLock(&dpc_lock, old);
    for (;;) {
        int done;
        KeAcquireSpinLock(&dpc_lock, &old);
        done = dpc_done >= target;
        KeReleaseSpinLock(&dpc_lock, old);
        if (done) return;
        KeDelayExecutionThread(KernelMode, FALSE, &ms);
    }
}

/* Takes the DPCs whose routine lies in [lo, hi) off the queue and waits (up to 5 s)
   for one of them that is running: an unloaded driver's DPC must not run in its
   unmapped image (the verifier has reported them by then). */
void kapi_dpc_unloading(const unsigned char *lo, const unsigned char *hi)
{
    LARGE_INTEGER ms = { .QuadPart = -10000 };
    LIST_ENTRY *e, *next;
    KIRQL old;
    unsigned i;
    KeAcquireSpinLock(&dpc_lock, &old);
    for (e = dpc_queue.Flink; e != &dpc_queue; e = next) {
        PKDPC dpc = CONTAINING_RECORD(e, KDPC, DpcListEntry);
        next = e->Flink;
        if ((const unsigned char *)dpc->DeferredRoutine >= lo && (const unsigned char *)dpc->DeferredRoutine < hi) {
            RemoveEntryList(e);
            dpc->DpcData = NULL;
            dpc_done++;
        }
    }
    KeReleaseSpinLock(&dpc_lock, old);
    for (i = 0; i < 5000; i++) {
        int running;
        KeAcquireSpinLock(&dpc_lock, &old);
        running = dpc_running && (const unsigned char *)dpc_running->DeferredRoutine >= lo &&
                  (const unsigned char *)dpc_running->DeferredRoutine < hi;
        KeReleaseSpinLock(&dpc_lock, old);
        if (!running) return;
        KeDelayExecutionThread(KernelMode, FALSE, &ms);
    }
}

/* Wine 8.0's KeInsertQueueDpc (sub rsp,0x48; test byte [rip+..],1: its FIXME) and
   KeFlushQueuedDpcs (sub rsp,0x28; the same). */
static int is_wine8_dpc_fixme(const unsigned char *p)
{
    return p[0] == 0x48 && p[1] == 0x83 && p[2] == 0xec && (p[3] == 0x48 || p[3] == 0x28) && p[4] == 0xf6 && p[5] == 0x05;
}

/* ----- cancel-safe queues (IoCsq*) ---------------------------------------------------- */

/* Irp->Tail.Overlay.DriverContext[3] holds the IO_CSQ_IRP_CONTEXT the driver passed,
   or the IO_CSQ itself, while the IRP is queued (as Microsoft's csq library does). */
#define CSQ_SLOT(irp) ((irp)->Tail.Overlay.DriverContext[3])

static PIO_CSQ csq_of(PVOID slot)
{
    PIO_CSQ_IRP_CONTEXT ctx = slot;
    return ctx->Type == IO_TYPE_CSQ_IRP_CONTEXT ? ctx->Csq : (PIO_CSQ)slot;
}

/* Forgets the queue's bookkeeping for an IRP leaving it. */
static void csq_detach(PIRP irp)
{
    PIO_CSQ_IRP_CONTEXT ctx = InterlockedExchangePointer(&CSQ_SLOT(irp), NULL);
    if (ctx && ctx->Type == IO_TYPE_CSQ_IRP_CONTEXT) ctx->Irp = NULL;
}

/* The cancel routine of every queued IRP. The I/O manager has cleared the IRP's
   cancel routine before calling it, so the queue operations below (which first
   clear it themselves) leave such an IRP alone: only this routine removes it. */
static VOID NTAPI csq_cancel(PDEVICE_OBJECT device, PIRP irp)
{
    PIO_CSQ csq;
    KIRQL irql;

    (void)device;
    IoReleaseCancelSpinLock(irp->CancelIrql);
    csq = csq_of(CSQ_SLOT(irp));
    csq->CsqAcquireLock(csq, &irql);
    csq->CsqRemoveIrp(csq, irp);
    csq_detach(irp);
    csq->CsqReleaseLock(csq, irql);
    csq->CsqCompleteCanceledIrp(csq, irp);
}

static NTSTATUS NTAPI kapi_IoCsqInitialize(PIO_CSQ csq, PIO_CSQ_INSERT_IRP insert, PIO_CSQ_REMOVE_IRP remove,
                                           PIO_CSQ_PEEK_NEXT_IRP peek, PIO_CSQ_ACQUIRE_LOCK acquire,
                                           PIO_CSQ_RELEASE_LOCK release, PIO_CSQ_COMPLETE_CANCELED_IRP complete)
{
    csq->Type = IO_TYPE_CSQ;
    csq->CsqInsertIrp = insert;
    csq->CsqRemoveIrp = remove;
    csq->CsqPeekNextIrp = peek;
    csq->CsqAcquireLock = acquire;
    csq->CsqReleaseLock = release;
    csq->CsqCompleteCanceledIrp = complete;
    csq->ReservePointer = NULL;
    return STATUS_SUCCESS;
}

static NTSTATUS NTAPI kapi_IoCsqInitializeEx(PIO_CSQ csq, PIO_CSQ_INSERT_IRP_EX insert, PIO_CSQ_REMOVE_IRP remove,
                                             PIO_CSQ_PEEK_NEXT_IRP peek, PIO_CSQ_ACQUIRE_LOCK acquire,
                                             PIO_CSQ_RELEASE_LOCK release, PIO_CSQ_COMPLETE_CANCELED_IRP complete)
{
    kapi_IoCsqInitialize(csq, (PIO_CSQ_INSERT_IRP)(void *)insert, remove, peek, acquire, release, complete);
    csq->Type = IO_TYPE_CSQ_EX;
    return STATUS_SUCCESS;
}

/* Queues the IRP (marked pending) unless the driver's CsqInsertIrpEx refuses it (its
   status is returned and the IRP is left alone). An IRP already cancelled is taken
   back out and completed through CsqCompleteCanceledIrp, unless its cancel routine is
   already running: a cancelled IRP is never left in the queue. */
static NTSTATUS NTAPI kapi_IoCsqInsertIrpEx(PIO_CSQ csq, PIRP irp, PIO_CSQ_IRP_CONTEXT ctx, PVOID insert_ctx)
{
    NTSTATUS status = STATUS_SUCCESS;
    int cancelled = 0;
    KIRQL irql;

    csq->CsqAcquireLock(csq, &irql);
    if (csq->Type == IO_TYPE_CSQ_EX) {
        status = ((PIO_CSQ_INSERT_IRP_EX)(void *)csq->CsqInsertIrp)(csq, irp, insert_ctx);
        if (!NT_SUCCESS(status)) {
            csq->CsqReleaseLock(csq, irql);
            return status;
        }
    } else {
        csq->CsqInsertIrp(csq, irp);
    }
    IoMarkIrpPending(irp);
    if (ctx) {
        ctx->Type = IO_TYPE_CSQ_IRP_CONTEXT;
        ctx->Irp = irp;
        ctx->Csq = csq;
        CSQ_SLOT(irp) = ctx;
    } else {
        CSQ_SLOT(irp) = csq;
    }
    IoSetCancelRoutine(irp, csq_cancel);
    if (irp->Cancel && IoSetCancelRoutine(irp, NULL)) {
        /* Cancelled before the routine was set, and IoCancelIrp did not call it. */
        csq->CsqRemoveIrp(csq, irp);
        csq_detach(irp);
        cancelled = 1;
    }
    csq->CsqReleaseLock(csq, irql);
    if (cancelled) csq->CsqCompleteCanceledIrp(csq, irp);
    return status;
}

static VOID NTAPI kapi_IoCsqInsertIrp(PIO_CSQ csq, PIRP irp, PIO_CSQ_IRP_CONTEXT ctx)
{
    kapi_IoCsqInsertIrpEx(csq, irp, ctx, NULL);
}

/* The IRP the context tracks, taken out of the queue; NULL when it was cancelled
   (its cancel routine owns it) or already removed. */
static PIRP NTAPI kapi_IoCsqRemoveIrp(PIO_CSQ csq, PIO_CSQ_IRP_CONTEXT ctx)
{
    PIRP irp;
    KIRQL irql;

    csq->CsqAcquireLock(csq, &irql);
    irp = ctx->Irp;
    if (irp && IoSetCancelRoutine(irp, NULL)) {
        csq->CsqRemoveIrp(csq, irp);
        csq_detach(irp);
    } else {
        irp = NULL;
    }
    csq->CsqReleaseLock(csq, irql);
    return irp;
}

/* The first IRP CsqPeekNextIrp offers for `peek_ctx` that is not being cancelled,
   taken out of the queue; NULL when there is none. */
static PIRP NTAPI kapi_IoCsqRemoveNextIrp(PIO_CSQ csq, PVOID peek_ctx)
{
    PIRP irp = NULL;
    KIRQL irql;

    csq->CsqAcquireLock(csq, &irql);
    while ((irp = csq->CsqPeekNextIrp(csq, irp, peek_ctx))) {
        if (!IoSetCancelRoutine(irp, NULL)) continue; /* its cancel routine will remove it */
        csq->CsqRemoveIrp(csq, irp);
        csq_detach(irp);
        break;
    }
    csq->CsqReleaseLock(csq, irql);
    return irp;
}

/* ----- ObSetSecurityObjectByPointer ----------------------------------------------------- */

/* Sets the parts of the object's security descriptor that `info` names: through a
   kernel handle with the access each part needs (WRITE_DAC, WRITE_OWNER,
   ACCESS_SYSTEM_SECURITY) and ZwSetSecurityObject, which is what the call does on
   Windows through the object type's security procedure. */
static NTSTATUS NTAPI kapi_ObSetSecurityObjectByPointer(PVOID object, SECURITY_INFORMATION info, PSECURITY_DESCRIPTOR sd)
{
    ACCESS_MASK access = 0;
    HANDLE h = NULL;
    NTSTATUS status;

    if (info & DACL_SECURITY_INFORMATION) access |= WRITE_DAC;
    if (info & (OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION | LABEL_SECURITY_INFORMATION)) access |= WRITE_OWNER;
    if (info & SACL_SECURITY_INFORMATION) access |= ACCESS_SYSTEM_SECURITY;
    status = ObOpenObjectByPointer(object, OBJ_KERNEL_HANDLE, NULL, access, NULL, KernelMode, &h);
    if (!NT_SUCCESS(status)) return status;
    status = ZwSetSecurityObject(h, info, sd);
    ZwClose(h);
    return status;
}

/* ----- installation ----------------------------------------------------------------------- */

/* Wine's `@ stub` entry: sub rsp,0x28; lea rcx,[rip+..]; ... call __wine_spec_unimplemented_stub
   (24 bytes apart in Wine 8.0's ntoskrnl.exe, room for the 12-byte jump). */
static int is_fatal_stub(const unsigned char *p)
{
    return p[0] == 0x48 && p[1] == 0x83 && p[2] == 0xec && p[3] == 0x28 && p[4] == 0x48 && p[5] == 0x8d;
}

/* Wine 8.0's IoCsqInitialize: sub rsp,0x68; test byte [rip+..],1 (its FIXME), a
   function far longer than the jump. */
static int is_wine8_csq_init(const unsigned char *p)
{
    return p[0] == 0x48 && p[1] == 0x83 && p[2] == 0xec && p[3] == 0x68 && p[4] == 0xf6 && p[5] == 0x05;
}

static int replace(void *krnl, const char *name, const void *impl, int (*expected)(const unsigned char *))
{
    unsigned char *p = GetProcAddress(krnl, name);
    if (!p) return 0;
    if (ntcomm_is_jump(p)) return 1; /* already ours */
    if (!expected(p)) return 1;      /* not the Wine 8.0 code we know: left alone */
    return ntcomm_write_jump(p, impl);
}

int ntcomm_kapi_install(void)
{
    static const struct ntcomm_export missing[] = {
        { "ExAllocatePool2", kapi_ExAllocatePool2 },
        { "IoCsqInitializeEx", kapi_IoCsqInitializeEx },
        { "IoCsqInsertIrpEx", kapi_IoCsqInsertIrpEx },
    };
    void *ntdll = GetModuleHandleW(L"ntdll.dll"), *krnl = GetModuleHandleW(L"ntoskrnl.exe");
    const char *(__cdecl * version)(void);
    const char *v;
    int ok = 1;

    if (!ntdll || !krnl) return 0;
    version = (const char *(__cdecl *)(void))GetProcAddress(ntdll, "wine_get_version");
    if (!version || !(v = version()) || v[0] != '8' || v[1] != '.') return 1; /* Wine 8 only */
    ok &= replace(krnl, "ExQueueWorkItem", kapi_ExQueueWorkItem, is_fatal_stub);
    ok &= replace(krnl, "IoCsqInsertIrp", kapi_IoCsqInsertIrp, is_fatal_stub);
    ok &= replace(krnl, "IoCsqRemoveIrp", kapi_IoCsqRemoveIrp, is_fatal_stub);
    ok &= replace(krnl, "IoCsqRemoveNextIrp", kapi_IoCsqRemoveNextIrp, is_fatal_stub);
    ok &= replace(krnl, "ObSetSecurityObjectByPointer", kapi_ObSetSecurityObjectByPointer, is_fatal_stub);
    ok &= replace(krnl, "IoCsqInitialize", kapi_IoCsqInitialize, is_wine8_csq_init);
    KeInitializeSpinLock(&dpc_lock);
    KeInitializeEvent(&dpc_wake, NotificationEvent, FALSE);
    ok &= replace(krnl, "KeInsertQueueDpc", kapi_KeInsertQueueDpc, is_wine8_dpc_fixme);
    ok &= replace(krnl, "KeRemoveQueueDpc", kapi_KeRemoveQueueDpc, is_fatal_stub);
    ok &= replace(krnl, "KeFlushQueuedDpcs", kapi_KeFlushQueuedDpcs, is_wine8_dpc_fixme);
    ok &= ntcomm_add_exports(krnl, missing, sizeof(missing) / sizeof(missing[0]));
    return ok;
}
