/*
 * Unload rules (Wine only): what a tracked driver creates that must be gone when
 * its image is unloaded (devices, symbolic links, system threads, timers, executive
 * work items), IoDeleteDevice twice, and ZwClose of an invalid handle (README.md,
 * rules unload-*, device-*, handle-*). Also the device registry behind the
 * dispatch gate of irp.c.
 */
#include <ddk/wdm.h>

#include "../wine-irql/irql.h"
#include "verifier.h"
#include "codes.h"
#include "../wine-kapi/kapi.h"

enum kind { DEVICE = 1, LINK, THREAD, TIMER, DPC, LOOKASIDE, HANDLE_, WORK };

struct thing {
    enum kind kind;
    const void *key;         /* device, timer, thread handle (ours), work item */
    const void *caller;      /* code in the driver that made it */
    const void *routine;     /* thread start, timer DPC routine, work routine */
    long inflight;           /* devices: dispatch calls in progress */
    unsigned char deleted;   /* devices: IoDeleteDevice called, waiting for dispatches */
    unsigned long long due;  /* timers: when a one-shot timer fires (ms); 0 periodic */
    WCHAR name[96];          /* links */
    const char *opener;      /* handles: the routine that opened it (a literal) */
    struct thing *next;
};

/* One list per kind: the dispatch gate walks only the devices. */
static struct thing *lists[WORK + 1];
/* Threads created since the last sweep of ended ones. */
static unsigned threads_since_sweep;
/* Devices deleted lately: an IRP Wine already fetched for one is refused, and a
 * second IoDeleteDevice is caught. An entry counts for DELETED_MS only: the
 * address may then belong to a device some other module made. */
#define DELETED_RING 256
#define DELETED_MS 5000
static struct { const void *device; unsigned long long at; } deleted[DELETED_RING];
static unsigned long deleted_next;

static struct thing *find(enum kind kind, const void *key)
{
    struct thing *t;
    for (t = lists[kind]; t; t = t->next)
        if (t->key == key) return t;
    return NULL;
}

static struct thing *add(enum kind kind, const void *key, const void *caller, const void *routine)
{
    struct thing *t = ExAllocatePoolWithTag(NonPagedPool, sizeof(*t), VF_POOL_TAG);
    if (!t) return NULL;
    RtlZeroMemory(t, sizeof(*t));
    t->kind = kind;
    t->key = key;
    t->caller = caller;
    t->routine = routine;
    t->next = lists[kind];
    lists[kind] = t;
    return t;
}

static void unlink_thing(struct thing *gone)
{
    struct thing **p;
    for (p = &lists[gone->kind]; *p; p = &(*p)->next)
        if (*p == gone) {
            *p = gone->next;
            return;
        }
}

static int was_deleted(const void *device)
{
    unsigned long long now = vf_now_ms();
    unsigned long i;
    for (i = 0; i < DELETED_RING; i++)
        if (deleted[i].device == device && now - deleted[i].at < DELETED_MS) return 1;
    return 0;
}

static void forget_deleted(const void *device)
{
    unsigned long i;
    for (i = 0; i < DELETED_RING; i++)
        if (deleted[i].device == device) deleted[i].device = NULL;
}

/* ----- the dispatch gate ----------------------------------------------------------- */

int vf_device_enter(void *device)
{
    struct thing *d;
    int live;
    vf_lock();
    d = find(DEVICE, device);
    if (d && !d->deleted) d->inflight++;
    live = d ? !d->deleted : was_deleted(device) ? 0 : -1;
    vf_unlock();
    return live;
}

void vf_device_leave(void *device)
{
    struct thing *d;
    vf_lock();
    if ((d = find(DEVICE, device)) && d->inflight > 0) d->inflight--;
    vf_unlock();
}

/* Waits (bounded) until no dispatch but the caller's own runs on `device`. */
static void drain(const void *device, long own)
{
    unsigned i;
    LARGE_INTEGER ms = { .QuadPart = -10000 };
    for (i = 0; i < 10000; i++) {
        struct thing *d;
        long n;
        vf_lock();
        d = find(DEVICE, device);
        n = d ? d->inflight : 0;
        vf_unlock();
        if (n <= own) return;
        KeDelayExecutionThread(KernelMode, FALSE, &ms);
    }
}

/* ----- devices ---------------------------------------------------------------------- */

static void *orig_IoCreateDevice, *orig_IoDeleteDevice;

static NTSTATUS NTAPI h_IoCreateDevice(PDRIVER_OBJECT driver, ULONG ext, PUNICODE_STRING name, DEVICE_TYPE type,
                                       ULONG chars, BOOLEAN exclusive, PDEVICE_OBJECT *out)
{
    NTSTATUS s = ((NTSTATUS (NTAPI *)(PDRIVER_OBJECT, ULONG, PUNICODE_STRING, DEVICE_TYPE, ULONG, BOOLEAN,
                                      PDEVICE_OBJECT *))orig_IoCreateDevice)(driver, ext, name, type, chars, exclusive, out);
    if (NT_SUCCESS(s) && out && *out) {
        vf_lock();
        forget_deleted(*out);
        add(DEVICE, *out, __builtin_return_address(0), NULL);
        vf_unlock();
    }
    return s;
}

static VOID NTAPI h_IoDeleteDevice(PDEVICE_OBJECT device)
{
    const void *caller = __builtin_return_address(0);
    struct thing *d;
    vf_lock();
    d = find(DEVICE, device);
    if ((!d && was_deleted(device)) || (d && d->deleted)) {
        vf_unlock();
        irql_finding(DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_DELETE_DEVICE_TWICE, (ULONG_PTR)caller, 0, 0,
                     "device-deleted-twice", "IoDeleteDevice", caller,
                     "IoDeleteDevice on a device object already deleted (the second delete is not done)");
        return;
    }
    if (d) d->deleted = 1; /* no new dispatch from here on */
    vf_unlock();
    if (d) {
        /* A dispatch Wine started before the delete finishes before the device goes
         * (on Windows the I/O manager's reference keeps it). A driver deleting the
         * device from its own dispatch routine waits for none but itself. */
        drain(device, irql_thread()->depth > 0 ? 1 : 0);
        vf_lock();
        unlink_thing(d);
        deleted[deleted_next % DELETED_RING].device = device;
        deleted[deleted_next++ % DELETED_RING].at = vf_now_ms();
        vf_unlock();
        ExFreePool(d);
    }
    ((VOID (NTAPI *)(PDEVICE_OBJECT))orig_IoDeleteDevice)(device);
}

/* ----- symbolic links ---------------------------------------------------------------- */

static void *orig_IoCreateSymbolicLink, *orig_IoCreateUnprotectedSymbolicLink, *orig_IoDeleteSymbolicLink;

static int same_name(const WCHAR *a, const UNICODE_STRING *b)
{
    USHORT i, n = b->Length / sizeof(WCHAR);
    for (i = 0; i < n; i++) {
        WCHAR x = a[i], y = b->Buffer[i];
        if (!x) return 0;
        if (x >= 'a' && x <= 'z') x -= 32;
        if (y >= 'a' && y <= 'z') y -= 32;
        if (x != y) return 0;
    }
    return a[n] == 0;
}

static void link_created(PUNICODE_STRING link, const void *caller)
{
    struct thing *t;
    USHORT n;
    if (!link || !link->Buffer) return;
    n = link->Length / sizeof(WCHAR);
    if (n >= 96) n = 95;
    vf_lock();
    if ((t = add(LINK, NULL, caller, NULL))) {
        RtlCopyMemory(t->name, link->Buffer, n * sizeof(WCHAR));
        t->name[n] = 0;
    }
    vf_unlock();
}

static NTSTATUS NTAPI h_IoCreateSymbolicLink(PUNICODE_STRING link, PUNICODE_STRING target)
{
    NTSTATUS s = ((NTSTATUS (NTAPI *)(PUNICODE_STRING, PUNICODE_STRING))orig_IoCreateSymbolicLink)(link, target);
    if (NT_SUCCESS(s)) link_created(link, __builtin_return_address(0));
    return s;
}

static NTSTATUS NTAPI h_IoCreateUnprotectedSymbolicLink(PUNICODE_STRING link, PUNICODE_STRING target)
{
    NTSTATUS s = ((NTSTATUS (NTAPI *)(PUNICODE_STRING, PUNICODE_STRING))orig_IoCreateUnprotectedSymbolicLink)(link, target);
    if (NT_SUCCESS(s)) link_created(link, __builtin_return_address(0));
    return s;
}

static NTSTATUS NTAPI h_IoDeleteSymbolicLink(PUNICODE_STRING link)
{
    NTSTATUS s = ((NTSTATUS (NTAPI *)(PUNICODE_STRING))orig_IoDeleteSymbolicLink)(link);
    struct thing *t;
    if (NT_SUCCESS(s) && link && link->Buffer) {
        vf_lock();
        for (t = lists[LINK]; t; t = t->next)
            if (same_name(t->name, link)) break;
        if (t) unlink_thing(t);
        vf_unlock();
        if (t) ExFreePool(t);
    }
    return s;
}

/* ----- threads, work items, timers -------------------------------------------------- */

/* Forgets threads that have ended (under the lock): a driver that starts a
 * thread per request would otherwise grow the list without bound. */
static void sweep_threads(struct thing **ended)
{
    struct thing **p = &lists[THREAD];
    while (*p) {
        struct thing *t = *p;
        if (vf_handle_signaled((void *)t->key)) {
            *p = t->next;
            t->next = *ended;
            *ended = t;
        } else {
            p = &t->next;
        }
    }
}

void vf_thread_created(void *handle, const void *start, const void *caller)
{
    struct thing *ended = NULL, *next;
    void *own;
    if (!vf_on || !(own = vf_dup_handle(handle))) return;
    vf_lock();
    if (++threads_since_sweep >= 32) {
        threads_since_sweep = 0;
        sweep_threads(&ended);
    }
    if (!add(THREAD, own, caller, start)) {
        vf_unlock();
        vf_close_handle(own);
    } else {
        vf_unlock();
    }
    for (; ended; ended = next) {
        next = ended->next;
        vf_close_handle((void *)ended->key);
        ExFreePool(ended);
    }
}

/* Executive work items (ExQueueWorkItem, compat/wine-kapi) hold no reference on the
 * driver: one still queued or running at unload runs in an unloaded image. */
void vf_work_queued(const void *routine)
{
    if (!vf_on) return;
    vf_lock();
    add(WORK, routine, routine, routine);
    vf_unlock();
}

void vf_work_done(const void *routine)
{
    struct thing *t;
    if (!vf_on) return;
    vf_lock();
    if ((t = find(WORK, routine))) unlink_thing(t);
    vf_unlock();
    if (t) ExFreePool(t);
}

/* Queued DPCs (compat/wine-kapi runs them): queued or running at unload is a finding. */
/* `inflight` counts the DPC's queued and running turns: one that queues itself
 * again from its routine stays followed. */
void vf_dpc_queued(const void *dpc, const void *routine)
{
    struct thing *t;
    if (!vf_on) return;
    vf_lock();
    if ((t = find(DPC, dpc)) || (t = add(DPC, dpc, routine, routine))) t->inflight++;
    vf_unlock();
}

void vf_dpc_done(const void *dpc, const void *routine)
{
    struct thing *t;
    (void)routine;
    if (!vf_on) return;
    vf_lock();
    if ((t = find(DPC, dpc)) && --t->inflight <= 0)
        unlink_thing(t);
    else
        t = NULL;
    vf_unlock();
    if (t) ExFreePool(t);
}

static void *orig_KeSetTimer, *orig_KeSetTimerEx, *orig_KeCancelTimer;

static void timer_set(PKTIMER timer, LARGE_INTEGER due, LONG period, PKDPC dpc, const void *caller)
{
    struct thing *t;
    unsigned long long now = vf_now_ms(), at;
    if (!vf_on) return;
    /* negative: relative, in 100 ns; positive: absolute system time (taken as now:
     * the check only needs "fired already or not") */
    at = due.QuadPart < 0 ? now + (unsigned long long)(-due.QuadPart) / 10000 : now;
    vf_lock();
    if (!(t = find(TIMER, timer))) t = add(TIMER, timer, caller, dpc ? (const void *)dpc->DeferredRoutine : NULL);
    if (t) {
        t->caller = caller;
        t->routine = dpc ? (const void *)dpc->DeferredRoutine : NULL;
        t->due = period ? 0 : at + 1;
    }
    vf_unlock();
}

static BOOLEAN NTAPI h_KeSetTimer(PKTIMER timer, LARGE_INTEGER due, PKDPC dpc)
{
    timer_set(timer, due, 0, dpc, __builtin_return_address(0));
    return ((BOOLEAN (NTAPI *)(PKTIMER, LARGE_INTEGER, PKDPC))orig_KeSetTimer)(timer, due, dpc);
}

static BOOLEAN NTAPI h_KeSetTimerEx(PKTIMER timer, LARGE_INTEGER due, LONG period, PKDPC dpc)
{
    timer_set(timer, due, period, dpc, __builtin_return_address(0));
    return ((BOOLEAN (NTAPI *)(PKTIMER, LARGE_INTEGER, LONG, PKDPC))orig_KeSetTimerEx)(timer, due, period, dpc);
}

static BOOLEAN NTAPI h_KeCancelTimer(PKTIMER timer)
{
    struct thing *t;
    if (vf_on) {
        vf_lock();
        if ((t = find(TIMER, timer))) unlink_thing(t);
        vf_unlock();
        if (t) ExFreePool(t);
    }
    return ((BOOLEAN (NTAPI *)(PKTIMER))orig_KeCancelTimer)(timer);
}

/* ----- lookaside lists --------------------------------------------------------------- */

static void *orig_ExInitializeNPagedLookasideList, *orig_ExInitializePagedLookasideList;
static void *orig_ExDeleteNPagedLookasideList, *orig_ExDeletePagedLookasideList;

static void lookaside_made(const void *list, const void *caller)
{
    if (!vf_on) return;
    vf_lock();
    if (!find(LOOKASIDE, list)) add(LOOKASIDE, list, caller, NULL);
    vf_unlock();
}

static void lookaside_deleted(const void *list)
{
    struct thing *t;
    if (!vf_on) return;
    vf_lock();
    if ((t = find(LOOKASIDE, list))) unlink_thing(t);
    vf_unlock();
    if (t) ExFreePool(t);
}

static VOID NTAPI h_ExInitializeNPagedLookasideList(PNPAGED_LOOKASIDE_LIST l, PALLOCATE_FUNCTION a, PFREE_FUNCTION f,
                                                    ULONG flags, SIZE_T size, ULONG tag, USHORT depth)
{
    ((VOID (NTAPI *)(PNPAGED_LOOKASIDE_LIST, PALLOCATE_FUNCTION, PFREE_FUNCTION, ULONG, SIZE_T, ULONG,
                     USHORT))orig_ExInitializeNPagedLookasideList)(l, a, f, flags, size, tag, depth);
    lookaside_made(l, __builtin_return_address(0));
}

static VOID NTAPI h_ExInitializePagedLookasideList(PPAGED_LOOKASIDE_LIST l, PALLOCATE_FUNCTION a, PFREE_FUNCTION f,
                                                   ULONG flags, SIZE_T size, ULONG tag, USHORT depth)
{
    ((VOID (NTAPI *)(PPAGED_LOOKASIDE_LIST, PALLOCATE_FUNCTION, PFREE_FUNCTION, ULONG, SIZE_T, ULONG,
                     USHORT))orig_ExInitializePagedLookasideList)(l, a, f, flags, size, tag, depth);
    lookaside_made(l, __builtin_return_address(0));
}

static VOID NTAPI h_ExDeleteNPagedLookasideList(PNPAGED_LOOKASIDE_LIST l)
{
    lookaside_deleted(l);
    ((VOID (NTAPI *)(PNPAGED_LOOKASIDE_LIST))orig_ExDeleteNPagedLookasideList)(l);
}

static VOID NTAPI h_ExDeletePagedLookasideList(PPAGED_LOOKASIDE_LIST l)
{
    lookaside_deleted(l);
    ((VOID (NTAPI *)(PPAGED_LOOKASIDE_LIST))orig_ExDeletePagedLookasideList)(l);
}

/* ----- handles ---------------------------------------------------------------------- */

/* Handles the driver opened through the routines below, until ZwClose: one still
 * open when the image is unloaded is a finding. Routines not listed (and handles
 * closed another way than ZwClose/ObCloseHandle) are not followed. */
static void handle_opened(NTSTATUS s, const HANDLE *h, const char *routine, const void *caller)
{
    if (!vf_on || !NT_SUCCESS(s) || !h || !*h) return;
    vf_lock();
    if (!find(HANDLE_, *h)) {
        struct thing *t = add(HANDLE_, *h, caller, NULL);
        if (t) t->opener = routine;
    }
    vf_unlock();
}

static void handle_closed(HANDLE h)
{
    struct thing *t;
    if (!vf_on) return;
    vf_lock();
    if ((t = find(HANDLE_, h))) unlink_thing(t);
    vf_unlock();
    if (t) ExFreePool(t);
}

static void *orig_ZwClose, *orig_ObCloseHandle, *orig_ZwCreateFile, *orig_ZwOpenFile, *orig_ZwCreateKey, *orig_ZwOpenKey;
static void *orig_ZwCreateEvent, *orig_ZwCreateSection, *orig_ZwOpenSection, *orig_ZwOpenProcess;
static void *orig_ZwOpenProcessTokenEx, *orig_ObOpenObjectByPointer;

#define RET_ __builtin_return_address(0)

static NTSTATUS NTAPI h_ZwClose(HANDLE h)
{
    NTSTATUS s;
    irql_zw_check("ZwClose", RET_);
    s = ((NTSTATUS (NTAPI *)(HANDLE))orig_ZwClose)(h);
    if (NT_SUCCESS(s)) handle_closed(h);
    if (vf_on && s == STATUS_INVALID_HANDLE)
        irql_finding(INVALID_KERNEL_HANDLE, (ULONG_PTR)h, 1, 0, 0, "handle-close-invalid", "ZwClose", RET_,
                     "ZwClose of a handle that is not open");
    return s;
}

static NTSTATUS NTAPI h_ObCloseHandle(HANDLE h, KPROCESSOR_MODE mode)
{
    NTSTATUS s = ((NTSTATUS (NTAPI *)(HANDLE, KPROCESSOR_MODE))orig_ObCloseHandle)(h, mode);
    if (NT_SUCCESS(s)) handle_closed(h);
    if (vf_on && s == STATUS_INVALID_HANDLE && mode == KernelMode)
        irql_finding(INVALID_KERNEL_HANDLE, (ULONG_PTR)h, 1, 0, 0, "handle-close-invalid", "ObCloseHandle", RET_,
                     "ObCloseHandle of a handle that is not open");
    return s;
}

static NTSTATUS NTAPI h_ZwCreateFile(PHANDLE h, ACCESS_MASK a, POBJECT_ATTRIBUTES oa, PIO_STATUS_BLOCK io, PLARGE_INTEGER size,
                                     ULONG attrs, ULONG share, ULONG disp, ULONG opts, PVOID ea, ULONG ea_len)
{
    NTSTATUS s;
    irql_zw_check("ZwCreateFile", RET_);
    s = ((NTSTATUS (NTAPI *)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG, ULONG, ULONG,
                             ULONG, PVOID, ULONG))orig_ZwCreateFile)(h, a, oa, io, size, attrs, share, disp, opts, ea, ea_len);
    handle_opened(s, h, "ZwCreateFile", RET_);
    return s;
}

static NTSTATUS NTAPI h_ZwOpenFile(PHANDLE h, ACCESS_MASK a, POBJECT_ATTRIBUTES oa, PIO_STATUS_BLOCK io, ULONG share, ULONG opts)
{
    NTSTATUS s;
    irql_zw_check("ZwOpenFile", RET_);
    s = ((NTSTATUS (NTAPI *)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, ULONG, ULONG))orig_ZwOpenFile)(
        h, a, oa, io, share, opts);
    handle_opened(s, h, "ZwOpenFile", RET_);
    return s;
}

static NTSTATUS NTAPI h_ZwCreateKey(PHANDLE h, ACCESS_MASK a, POBJECT_ATTRIBUTES oa, ULONG index, PUNICODE_STRING cls,
                                    ULONG opts, PULONG disp)
{
    NTSTATUS s;
    irql_zw_check("ZwCreateKey", RET_);
    s = ((NTSTATUS (NTAPI *)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, ULONG, PUNICODE_STRING, ULONG, PULONG))orig_ZwCreateKey)(
        h, a, oa, index, cls, opts, disp);
    handle_opened(s, h, "ZwCreateKey", RET_);
    return s;
}

static NTSTATUS NTAPI h_ZwOpenKey(PHANDLE h, ACCESS_MASK a, POBJECT_ATTRIBUTES oa)
{
    NTSTATUS s;
    irql_zw_check("ZwOpenKey", RET_);
    s = ((NTSTATUS (NTAPI *)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES))orig_ZwOpenKey)(h, a, oa);
    handle_opened(s, h, "ZwOpenKey", RET_);
    return s;
}

static NTSTATUS NTAPI h_ZwCreateEvent(PHANDLE h, ACCESS_MASK a, POBJECT_ATTRIBUTES oa, EVENT_TYPE type, BOOLEAN state)
{
    NTSTATUS s;
    irql_zw_check("ZwCreateEvent", RET_);
    s = ((NTSTATUS (NTAPI *)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, EVENT_TYPE, BOOLEAN))orig_ZwCreateEvent)(h, a, oa, type,
                                                                                                              state);
    handle_opened(s, h, "ZwCreateEvent", RET_);
    return s;
}

static NTSTATUS NTAPI h_ZwCreateSection(PHANDLE h, ACCESS_MASK a, POBJECT_ATTRIBUTES oa, PLARGE_INTEGER size, ULONG prot,
                                        ULONG attrs, HANDLE file)
{
    NTSTATUS s;
    irql_zw_check("ZwCreateSection", RET_);
    s = ((NTSTATUS (NTAPI *)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PLARGE_INTEGER, ULONG, ULONG, HANDLE))orig_ZwCreateSection)(
        h, a, oa, size, prot, attrs, file);
    handle_opened(s, h, "ZwCreateSection", RET_);
    return s;
}

static NTSTATUS NTAPI h_ZwOpenSection(PHANDLE h, ACCESS_MASK a, POBJECT_ATTRIBUTES oa)
{
    NTSTATUS s;
    irql_zw_check("ZwOpenSection", RET_);
    s = ((NTSTATUS (NTAPI *)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES))orig_ZwOpenSection)(h, a, oa);
    handle_opened(s, h, "ZwOpenSection", RET_);
    return s;
}

static NTSTATUS NTAPI h_ZwOpenProcess(PHANDLE h, ACCESS_MASK a, POBJECT_ATTRIBUTES oa, PCLIENT_ID id)
{
    NTSTATUS s;
    irql_zw_check("ZwOpenProcess", RET_);
    s = ((NTSTATUS (NTAPI *)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PCLIENT_ID))orig_ZwOpenProcess)(h, a, oa, id);
    handle_opened(s, h, "ZwOpenProcess", RET_);
    return s;
}

static NTSTATUS NTAPI h_ZwOpenProcessTokenEx(HANDLE process, ACCESS_MASK a, ULONG attrs, PHANDLE h)
{
    NTSTATUS s;
    irql_zw_check("ZwOpenProcessTokenEx", RET_);
    s = ((NTSTATUS (NTAPI *)(HANDLE, ACCESS_MASK, ULONG, PHANDLE))orig_ZwOpenProcessTokenEx)(process, a, attrs, h);
    handle_opened(s, h, "ZwOpenProcessTokenEx", RET_);
    return s;
}

static NTSTATUS NTAPI h_ObOpenObjectByPointer(PVOID object, ULONG attrs, PVOID access_state, ACCESS_MASK a, PVOID type,
                                              KPROCESSOR_MODE mode, PHANDLE h)
{
    NTSTATUS s = ((NTSTATUS (NTAPI *)(PVOID, ULONG, PVOID, ACCESS_MASK, PVOID, KPROCESSOR_MODE, PHANDLE))
                      orig_ObOpenObjectByPointer)(object, attrs, access_state, a, type, mode, h);
    handle_opened(s, h, "ObOpenObjectByPointer", RET_);
    return s;
}

void vf_handle_from_thread(void *handle, const void *caller)
{
    handle_opened(STATUS_SUCCESS, (const HANDLE *)&handle, "PsCreateSystemThread", caller);
}

/* ----- at unload --------------------------------------------------------------------- */

static int in(const void *p, const unsigned char *lo, const unsigned char *hi)
{
    return (const unsigned char *)p >= lo && (const unsigned char *)p < hi;
}

/* The finding for `t`, left behind by the image in [lo, hi) at its unload. */
static void report_left(const struct thing *t, const unsigned char *lo, const unsigned char *hi, unsigned long long now)
{
    if (t->kind == DEVICE) {
        irql_finding(DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_DEVICE_NOT_DELETED, (ULONG_PTR)t->caller, 0,
                     (ULONG_PTR)t->key, "device-left-at-unload", "DriverUnload", t->caller,
                     "driver unloaded without IoDeleteDevice on a device it created");
    } else if (t->kind == LINK) {
        char detail[160], name[96];
        int i;
        for (i = 0; t->name[i] && i < 95; i++) name[i] = (char)(t->name[i] < 128 ? t->name[i] : '?');
        name[i] = 0;
        _snprintf(detail, sizeof(detail), "driver unloaded without IoDeleteSymbolicLink: %s", name);
        irql_finding(DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_DEVICE_NOT_DELETED, (ULONG_PTR)t->caller, 0, 0,
                     "symlink-left-at-unload", "DriverUnload", t->caller, detail);
    } else if (t->kind == THREAD) {
        if (!vf_handle_signaled((void *)t->key))
            irql_finding(DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, (ULONG_PTR)t->routine, 0,
                         (ULONG_PTR)t->caller, 0, "thread-alive-at-unload", "DriverUnload", t->routine,
                         "system thread still running when the driver's image is unloaded");
    } else if (t->kind == TIMER) {
        if (t->due == 0 || t->due > now)
            irql_finding(TIMER_OR_DPC_INVALID, C7_TIMER, (ULONG_PTR)t->key, (ULONG_PTR)lo, (ULONG_PTR)hi,
                         "timer-set-at-unload", "DriverUnload", t->caller,
                         t->due ? "timer still set (not yet expired, not cancelled) when the image is unloaded"
                                : "periodic timer not cancelled when the image is unloaded");
    } else if (t->kind == DPC) {
        irql_finding(TIMER_OR_DPC_INVALID, C7_DPC_ROUTINE, (ULONG_PTR)t->routine, (ULONG_PTR)lo, (ULONG_PTR)hi,
                     "dpc-queued-at-unload", "DriverUnload", t->routine,
                     "DPC queued or running when the driver's image is unloaded (taken off the queue)");
    } else if (t->kind == LOOKASIDE) {
        irql_finding(DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, (ULONG_PTR)t->key, 0, (ULONG_PTR)t->caller, 0,
                     "lookaside-left-at-unload", "DriverUnload", t->caller,
                     "lookaside list not deleted when the driver's image is unloaded");
    } else if (t->kind == HANDLE_) {
        if (vf_handle_open((void *)t->key)) {
            char detail[160];
            _snprintf(detail, sizeof(detail), "kernel handle from %s still open when the image is unloaded", t->opener);
            irql_finding(0, (ULONG_PTR)t->key, 0, (ULONG_PTR)t->caller, 0, "handle-left-at-unload", "DriverUnload",
                         t->caller, detail);
        }
    } else if (t->kind == WORK) {
        irql_finding(DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, (ULONG_PTR)t->routine, 0, 0, 0,
                     "work-item-queued-at-unload", "DriverUnload", t->routine,
                     "executive work item still queued or running when the image is unloaded");
    }
}

void vf_module_unloading(const unsigned char *lo, const unsigned char *hi)
{
    struct thing *t, *next, *mine = NULL;
    unsigned long long now = vf_now_ms();

    int kind;

    /* Devices left: closed to new dispatches and drained while still registered
     * (a dispatch in progress must find its device to leave it). */
    const void *left[64];
    unsigned nleft = 0, k;

    vf_lock();
    for (t = lists[DEVICE]; t; t = t->next)
        if (in(t->caller, lo, hi)) {
            t->deleted = 1;
            if (nleft < 64) left[nleft++] = t->key;
        }
    vf_unlock();
    for (k = 0; k < nleft; k++) drain(left[k], 0);

    vf_lock();
    for (kind = DEVICE; kind <= WORK; kind++)
        for (t = lists[kind]; t; t = next) {
            next = t->next;
            if (in(t->caller, lo, hi) || (t->routine && in(t->routine, lo, hi))) {
                unlink_thing(t);
                t->next = mine;
                mine = t;
            }
        }
    vf_unlock();

    for (t = mine; t; t = next) {
        next = t->next;
        if (vf_on) report_left(t, lo, hi, now);
        if (t->kind == THREAD) vf_close_handle((void *)t->key); /* our duplicate */
        ExFreePool(t);
    }
    vf_pool_unloading(lo, hi);
    kapi_dpc_unloading(lo, hi);
}

/* ----- the table --------------------------------------------------------------------- */

extern void *vf_orig_IoFreeIrp;
VOID NTAPI vf_h_IoFreeIrp(PIRP irp);

#define HOOK(name) { #name, (void *)h_##name, &orig_##name }
const struct irql_hook vf_hooks[] = {
    HOOK(IoCreateDevice),
    HOOK(IoDeleteDevice),
    HOOK(IoCreateSymbolicLink),
    HOOK(IoCreateUnprotectedSymbolicLink),
    HOOK(IoDeleteSymbolicLink),
    HOOK(KeSetTimer),
    HOOK(KeSetTimerEx),
    HOOK(KeCancelTimer),
    HOOK(ExInitializeNPagedLookasideList),
    HOOK(ExInitializePagedLookasideList),
    HOOK(ExDeleteNPagedLookasideList),
    HOOK(ExDeletePagedLookasideList),
    HOOK(ZwClose),
    HOOK(ObCloseHandle),
    HOOK(ZwCreateFile),
    HOOK(ZwOpenFile),
    HOOK(ZwCreateKey),
    HOOK(ZwOpenKey),
    HOOK(ZwCreateEvent),
    HOOK(ZwCreateSection),
    HOOK(ZwOpenSection),
    HOOK(ZwOpenProcess),
    HOOK(ZwOpenProcessTokenEx),
    HOOK(ObOpenObjectByPointer),
    { "IoFreeIrp", (void *)vf_h_IoFreeIrp, &vf_orig_IoFreeIrp },
    { 0, 0, 0 },
};
