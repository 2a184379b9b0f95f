/*
 * surfaceflt.sys: a minifilter that imports 35 Filter Manager routines beyond the
 * nine port routines, calls each once in DriverEntry and records what it got
 * against what the Wine fltmgr.sys documents (README.md, "The rest of the surface"),
 * then serves port \NtCommSurfacePort: each FilterSendMessage is answered with the
 * records (struct surface_result[]). surfacetest.c prints and checks them. Only a
 * FilterUnloadCallback: stopped like any minifilter.
 */
#include <ntddk.h>

#include "surface.h"

/* fltKernel.h is not in mingw: the declarations used, with opaque pointer types. */
typedef PVOID PFLT_FILTER, PFLT_PORT;
typedef NTSTATUS (NTAPI *PFLT_FILTER_UNLOAD_CALLBACK)(ULONG);
typedef struct {
    USHORT Size, Version;
    ULONG Flags;
    PVOID ContextRegistration, OperationRegistration;
    PFLT_FILTER_UNLOAD_CALLBACK FilterUnloadCallback;
    PVOID Rest[10];
} FLT_REGISTRATION;
typedef NTSTATUS (NTAPI *PFLT_CONNECT_NOTIFY)(PFLT_PORT, PVOID, PVOID, ULONG, PVOID *);
typedef VOID (NTAPI *PFLT_DISCONNECT_NOTIFY)(PVOID);
typedef NTSTATUS (NTAPI *PFLT_MESSAGE_NOTIFY)(PVOID, PVOID, ULONG, PVOID, ULONG, PULONG);
NTSTATUS NTAPI FltRegisterFilter(PDRIVER_OBJECT, const FLT_REGISTRATION *, PFLT_FILTER *);
NTSTATUS NTAPI FltStartFiltering(PFLT_FILTER);
VOID NTAPI FltUnregisterFilter(PFLT_FILTER);
NTSTATUS NTAPI FltCreateCommunicationPort(PFLT_FILTER, PFLT_PORT *, POBJECT_ATTRIBUTES, PVOID, PFLT_CONNECT_NOTIFY,
                                          PFLT_DISCONNECT_NOTIFY, PFLT_MESSAGE_NOTIFY, LONG);
VOID NTAPI FltCloseCommunicationPort(PFLT_PORT);
VOID NTAPI FltCloseClientPort(PFLT_FILTER, PFLT_PORT *);
NTSTATUS NTAPI FltBuildDefaultSecurityDescriptor(PSECURITY_DESCRIPTOR *, ACCESS_MASK);
VOID NTAPI FltFreeSecurityDescriptor(PSECURITY_DESCRIPTOR);
NTSTATUS NTAPI FltSendMessage(PFLT_FILTER, PFLT_PORT *, PVOID, ULONG, PVOID, PULONG, PLARGE_INTEGER);
/* beyond the nine: implemented */
NTSTATUS NTAPI FltObjectReference(PVOID);
VOID NTAPI FltObjectDereference(PVOID);
NTSTATUS NTAPI FltGetFilterFromName(PCUNICODE_STRING, PFLT_FILTER *);
NTSTATUS NTAPI FltEnumerateFilters(PFLT_FILTER *, ULONG, PULONG);
PVOID NTAPI FltAllocatePoolAlignedWithTag(PVOID, POOL_TYPE, SIZE_T, ULONG);
VOID NTAPI FltFreePoolAlignedWithTag(PVOID, PVOID, ULONG);
VOID NTAPI FltInitializePushLock(PULONG_PTR);
VOID NTAPI FltDeletePushLock(PULONG_PTR);
VOID NTAPI FltAcquirePushLockExclusive(PULONG_PTR);
VOID NTAPI FltAcquirePushLockShared(PULONG_PTR);
VOID NTAPI FltReleasePushLock(PULONG_PTR);
VOID NTAPI FltAcquireResourceExclusive(PERESOURCE);
VOID NTAPI FltAcquireResourceShared(PERESOURCE);
VOID NTAPI FltReleaseResource(PERESOURCE);
PCHAR NTAPI FltGetIrpName(UCHAR);
PVOID NTAPI FltGetRoutineAddress(PCSTR);
NTSTATUS NTAPI FltCancellableWaitForSingleObject(PVOID, PLARGE_INTEGER, PVOID);
VOID NTAPI FltGetContexts(PVOID, USHORT, PVOID *);
VOID NTAPI FltReleaseContexts(PVOID *);
BOOLEAN NTAPI FltIs32bitProcess(PVOID);
LONG NTAPI FltGetIoPriorityHintFromThread(PVOID);
typedef VOID (NTAPI *PFLT_GENERIC_WORKITEM_ROUTINE)(PVOID, PVOID, PVOID);
PVOID NTAPI FltAllocateGenericWorkItem(VOID);
NTSTATUS NTAPI FltQueueGenericWorkItem(PVOID, PVOID, PFLT_GENERIC_WORKITEM_ROUTINE, WORK_QUEUE_TYPE, PVOID);
VOID NTAPI FltFreeGenericWorkItem(PVOID);
/* beyond the nine: not supported under Wine, a defined answer */
NTSTATUS NTAPI FltGetVolumeFromName(PFLT_FILTER, PCUNICODE_STRING, PVOID *);
NTSTATUS NTAPI FltGetFileNameInformationUnsafe(PVOID, PVOID, ULONG, PVOID *);
NTSTATUS NTAPI FltAllocateContext(PFLT_FILTER, USHORT, SIZE_T, POOL_TYPE, PVOID *);
NTSTATUS NTAPI FltCreateFileEx2(PFLT_FILTER, PVOID, PHANDLE, PVOID *, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK,
                                PLARGE_INTEGER, ULONG, ULONG, ULONG, ULONG, PVOID, ULONG, ULONG, PVOID);
BOOLEAN NTAPI FltIsCallbackDataDirty(PVOID);
LONG NTAPI FltCompareInstanceAltitudes(PVOID, PVOID);
LONG NTAPI FltCheckOplock(PVOID, PVOID, PVOID, PVOID, PVOID);
LONG NTAPI FltGetIoPriorityHint(PVOID);
ULONG NTAPI FltGetRequestorProcessId(PVOID);
VOID NTAPI FltReleaseContext(PVOID);
NTSTATUS NTAPI FltAttachVolume(PFLT_FILTER, PVOID, PCUNICODE_STRING, PVOID *);

#define IO_PRIORITY_NORMAL 2
#define FLT_PREOP_SUCCESS_NO_CALLBACK 1
#define TAG 0x66727573u /* 'surf' */

static PFLT_FILTER filter;
static PFLT_PORT server_port, client_port;
static struct surface_result results[SURFACE_MAX];
static ULONG nresults;

static void record(const char *name, LONGLONG got, LONGLONG want)
{
    struct surface_result *r;
    ULONG i;
    if (nresults >= SURFACE_MAX) return;
    r = &results[nresults++];
    for (i = 0; name[i] && i < sizeof(r->name) - 1; i++) r->name[i] = name[i];
    r->name[i] = 0;
    r->got = got;
    r->want = want;
}

struct work_ctx {
    KEVENT done;
    PVOID item, object;
    LONG ok;
};

static VOID NTAPI work_routine(PVOID item, PVOID object, PVOID ctx)
{
    struct work_ctx *w = ctx;
    w->ok = item == w->item && object == w->object;
    KeSetEvent(&w->done, 0, FALSE);
}

static int same(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

static void run_checks(void)
{
    UNICODE_STRING me = RTL_CONSTANT_STRING(L"ntcomm_surfaceflt"), none = RTL_CONSTANT_STRING(L"NoSuchFilter");
    PFLT_FILTER got = NULL, list[8];
    ULONG n = 0, i, found = 0;
    ULONG_PTR push = 0x55;
    ERESOURCE res;
    KEVENT ev;
    LARGE_INTEGER zero = { .QuadPart = 0 };
    PVOID ctxs[6], p;
    NTSTATUS st;
    int ok;

    st = FltObjectReference(filter);
    record("FltObjectReference(filter)", st, 0);
    if (NT_SUCCESS(st)) FltObjectDereference(filter);
    st = FltGetFilterFromName(&me, &got);
    record("FltGetFilterFromName(own service)", st == 0 && got == filter, 1);
    if (st == 0) FltObjectDereference(got);
    record("FltGetFilterFromName(unknown)", FltGetFilterFromName(&none, &got), STATUS_FLT_FILTER_NOT_FOUND);
    record("FltEnumerateFilters(no list)", FltEnumerateFilters(NULL, 0, &n), STATUS_BUFFER_TOO_SMALL);
    record("... counts at least this filter", n >= 1, 1);
    st = FltEnumerateFilters(list, 8, &n);
    for (i = 0; NT_SUCCESS(st) && i < n; i++) {
        found += list[i] == filter;
        FltObjectDereference(list[i]);
    }
    record("FltEnumerateFilters(list) finds this filter", NT_SUCCESS(st) && found == 1, 1);

    p = FltAllocatePoolAlignedWithTag(NULL, NonPagedPool, 256, TAG);
    if (p) {
        RtlFillMemory(p, 256, 0xab);
        FltFreePoolAlignedWithTag(NULL, p, TAG);
    }
    record("FltAllocatePoolAlignedWithTag / FltFreePoolAlignedWithTag", p != NULL, 1);

    FltInitializePushLock(&push);
    ok = push == 0;
    FltAcquirePushLockExclusive(&push);
    ok &= push != 0;
    FltReleasePushLock(&push);
    FltAcquirePushLockShared(&push);
    FltAcquirePushLockShared(&push);
    ok &= push != 0;
    FltReleasePushLock(&push);
    FltReleasePushLock(&push);
    ok &= push == 0;
    FltDeletePushLock(&push);
    record("push lock: exclusive, shared twice, released", ok, 1);

    ExInitializeResourceLite(&res);
    FltAcquireResourceExclusive(&res);
    ok = ExIsResourceAcquiredExclusiveLite(&res);
    FltReleaseResource(&res);
    FltAcquireResourceShared(&res);
    ok &= ExIsResourceAcquiredSharedLite(&res) != 0;
    FltReleaseResource(&res);
    ok &= ExIsResourceAcquiredSharedLite(&res) == 0;
    ExDeleteResourceLite(&res);
    record("FltAcquireResourceExclusive/Shared, FltReleaseResource", ok, 1);

    record("FltGetIrpName(IRP_MJ_CREATE)", same(FltGetIrpName(IRP_MJ_CREATE), "IRP_MJ_CREATE"), 1);
    record("FltGetIrpName(IRP_MJ_VOLUME_MOUNT)", same(FltGetIrpName((UCHAR)-19), "IRP_MJ_VOLUME_MOUNT"), 1);
    {
        /* Called through the address it gives: the routine itself. */
        PCHAR (NTAPI *irp_name)(UCHAR) = (PCHAR (NTAPI *)(UCHAR))FltGetRoutineAddress("FltGetIrpName");
        record("FltGetRoutineAddress(FltGetIrpName), called", irp_name && same(irp_name(IRP_MJ_CLOSE), "IRP_MJ_CLOSE"), 1);
    }
    record("FltGetRoutineAddress(unknown)", FltGetRoutineAddress("FltNoSuchRoutine") == NULL, 1);

    KeInitializeEvent(&ev, NotificationEvent, FALSE);
    record("FltCancellableWaitForSingleObject(unsignalled, 0)", FltCancellableWaitForSingleObject(&ev, &zero, NULL), STATUS_TIMEOUT);
    KeSetEvent(&ev, 0, FALSE);
    record("FltCancellableWaitForSingleObject(signalled, 0)", FltCancellableWaitForSingleObject(&ev, &zero, NULL), STATUS_SUCCESS);

    for (i = 0; i < 6; i++) ctxs[i] = (PVOID)(ULONG_PTR)(0x1000 + i);
    FltGetContexts(NULL, 0xffff, ctxs);
    for (ok = 1, i = 0; i < 6; i++) ok &= ctxs[i] == NULL;
    FltReleaseContexts(ctxs);
    record("FltGetContexts: none", ok, 1);
    record("FltIs32bitProcess(NULL)", FltIs32bitProcess(NULL), FALSE);
    record("FltGetIoPriorityHintFromThread", FltGetIoPriorityHintFromThread(NULL), IO_PRIORITY_NORMAL);
    {
        static struct work_ctx w;
        LARGE_INTEGER five_s = { .QuadPart = -50000000LL };
        KeInitializeEvent(&w.done, NotificationEvent, FALSE);
        w.item = FltAllocateGenericWorkItem();
        w.object = filter;
        st = w.item ? FltQueueGenericWorkItem(w.item, filter, work_routine, DelayedWorkQueue, &w) : STATUS_INSUFFICIENT_RESOURCES;
        record("FltQueueGenericWorkItem", st, STATUS_SUCCESS);
        if (NT_SUCCESS(st)) st = FltCancellableWaitForSingleObject(&w.done, &five_s, NULL);
        record("... the routine ran with its item and filter", st == STATUS_SUCCESS && w.ok, 1);
        if (w.item) FltFreeGenericWorkItem(w.item);
    }

    /* Not supported under Wine: the documented defined answers. */
    record("FltGetVolumeFromName", FltGetVolumeFromName(filter, &me, &p), STATUS_NOT_SUPPORTED);
    record("FltGetFileNameInformationUnsafe", FltGetFileNameInformationUnsafe(NULL, NULL, 0, &p), STATUS_NOT_SUPPORTED);
    record("FltAllocateContext", FltAllocateContext(filter, 0x8, 16, NonPagedPool, &p), STATUS_NOT_SUPPORTED);
    record("FltCreateFileEx2", FltCreateFileEx2(filter, NULL, NULL, NULL, 0, NULL, NULL, NULL, 0, 0, 0, 0, NULL, 0, 0, NULL),
           STATUS_NOT_SUPPORTED);
    record("FltAttachVolume", FltAttachVolume(filter, NULL, NULL, NULL), STATUS_NOT_SUPPORTED);
    record("FltIsCallbackDataDirty", FltIsCallbackDataDirty(NULL), FALSE);
    record("FltCompareInstanceAltitudes", FltCompareInstanceAltitudes(NULL, NULL), 0);
    record("FltCheckOplock", FltCheckOplock(NULL, NULL, NULL, NULL, NULL), FLT_PREOP_SUCCESS_NO_CALLBACK);
    record("FltGetIoPriorityHint", FltGetIoPriorityHint(NULL), IO_PRIORITY_NORMAL);
    record("FltGetRequestorProcessId", FltGetRequestorProcessId(NULL), 0);
    FltReleaseContext(NULL);
    record("FltReleaseContext (VOID) returns", 1, 1);
}

static NTSTATUS NTAPI on_connect(PFLT_PORT client, PVOID cookie, PVOID ctx, ULONG len, PVOID *conn)
{
    (void)cookie, (void)ctx, (void)len;
    client_port = client;
    *conn = NULL;
    return STATUS_SUCCESS;
}

static VOID NTAPI on_disconnect(PVOID conn)
{
    (void)conn;
    FltCloseClientPort(filter, &client_port);
}

static NTSTATUS NTAPI on_message(PVOID conn, PVOID in, ULONG in_len, PVOID out, ULONG out_len, PULONG returned)
{
    ULONG size = nresults * sizeof(results[0]);
    (void)conn, (void)in, (void)in_len;
    if (!out || out_len < size) return STATUS_BUFFER_TOO_SMALL;
    RtlCopyMemory(out, results, size);
    *returned = size;
    return STATUS_SUCCESS;
}

static NTSTATUS NTAPI filter_unload(ULONG flags)
{
    (void)flags;
    FltCloseCommunicationPort(server_port);
    FltUnregisterFilter(filter);
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT drv, PUNICODE_STRING path)
{
    UNICODE_STRING port_name = RTL_CONSTANT_STRING(L"\\NtCommSurfacePort");
    FLT_REGISTRATION reg;
    OBJECT_ATTRIBUTES oa;
    PSECURITY_DESCRIPTOR sd;
    NTSTATUS st;
    (void)path;

    RtlZeroMemory(&reg, sizeof(reg));
    reg.Size = sizeof(reg);
    reg.Version = 0x0203;
    reg.FilterUnloadCallback = filter_unload;
    st = FltRegisterFilter(drv, &reg, &filter);
    if (!NT_SUCCESS(st)) return st;
    run_checks();
    st = FltBuildDefaultSecurityDescriptor(&sd, 0x001F0001);
    if (!NT_SUCCESS(st)) goto fail;
    InitializeObjectAttributes(&oa, &port_name, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL, sd);
    st = FltCreateCommunicationPort(filter, &server_port, &oa, NULL, on_connect, on_disconnect, on_message, 1);
    FltFreeSecurityDescriptor(sd);
    if (!NT_SUCCESS(st)) goto fail;
    st = FltStartFiltering(filter);
    if (NT_SUCCESS(st)) return st;
    FltCloseCommunicationPort(server_port);
fail:
    FltUnregisterFilter(filter);
    return st;
}
