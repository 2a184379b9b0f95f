/*
 * kapitest.sys: a driver that calls the kernel routines compat/wine-kapi supplies
 * to Wine 8: ExAllocatePool2 (missing), ExQueueWorkItem (a stub that kills the
 * driver host), IoCsqInitializeEx/IoCsqInsertIrpEx (missing), IoCsqInsertIrp,
 * IoCsqRemoveIrp, IoCsqRemoveNextIrp (fatal stubs), ObSetSecurityObjectByPointer
 * (fatal stub). kapiclient.c drives it. Device \\.\NtCommKapiTest.
 */
#include <ntifs.h>

#include "kapitest.h"

/* Not in mingw's headers. */
PVOID NTAPI ExAllocatePool2(ULONG64 flags, SIZE_T size, ULONG tag);
NTSTATUS NTAPI ObSetSecurityObjectByPointer(PVOID object, SECURITY_INFORMATION info, PSECURITY_DESCRIPTOR sd);
#define POOL_FLAG_NON_PAGED 0x40ull
#define POOL_FLAG_PAGED 0x100ull
#define POOL_FLAG_RESERVED1 0x10ull

#define TAG 0x6970616bu /* 'kapi' */

static PDEVICE_OBJECT device;
static IO_CSQ csq;
static LIST_ENTRY queue;
static KSPIN_LOCK queue_lock;
static ULONG queued;
static IO_CSQ_IRP_CONTEXT the_ctx;
static struct kapi_status status;
static volatile LONG work_outstanding;

/* ----- the queue's callbacks -------------------------------------------------------- */

static NTSTATUS NTAPI q_insert(PIO_CSQ q, PIRP irp, PVOID insert_ctx)
{
    (void)q, (void)insert_ctx;
    InsertTailList(&queue, &irp->Tail.Overlay.ListEntry);
    queued++;
    return STATUS_SUCCESS;
}

static VOID NTAPI q_remove(PIO_CSQ q, PIRP irp)
{
    (void)q;
    RemoveEntryList(&irp->Tail.Overlay.ListEntry);
    queued--;
}

static PIRP NTAPI q_peek(PIO_CSQ q, PIRP irp, PVOID peek_ctx)
{
    PLIST_ENTRY next = irp ? irp->Tail.Overlay.ListEntry.Flink : queue.Flink;
    (void)q, (void)peek_ctx;
    return next == &queue ? NULL : CONTAINING_RECORD(next, IRP, Tail.Overlay.ListEntry);
}

static VOID NTAPI q_acquire(PIO_CSQ q, PKIRQL irql)
{
    (void)q;
    KeAcquireSpinLock(&queue_lock, irql);
}

static VOID NTAPI q_release(PIO_CSQ q, KIRQL irql)
{
    (void)q;
    KeReleaseSpinLock(&queue_lock, irql);
}

static VOID NTAPI q_complete_canceled(PIO_CSQ q, PIRP irp)
{
    (void)q;
    irp->IoStatus.Status = STATUS_CANCELLED;
    irp->IoStatus.Information = 0;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
}

/* ----- ExQueueWorkItem ------------------------------------------------------------------ */

struct work {
    WORK_QUEUE_ITEM item;
    PIRP irp;
    ULONG dispatch_thread;
};

static VOID NTAPI work_routine(PVOID parameter)
{
    struct work *w = parameter;
    PIRP irp = w->irp;
    struct kapi_work *out = irp->AssociatedIrp.SystemBuffer;
    out->magic = KAPI_WORK_MAGIC;
    out->dispatch_thread = w->dispatch_thread;
    out->worker_thread = (ULONG)(ULONG_PTR)PsGetCurrentThreadId();
    out->parameter_ok = w->item.Parameter == w;
    ExFreePoolWithTag(w, TAG); /* the item may go inside its routine */
    irp->IoStatus.Status = STATUS_SUCCESS;
    irp->IoStatus.Information = sizeof(*out);
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    InterlockedDecrement(&work_outstanding);
}

/* ----- dispatch ------------------------------------------------------------------------------ */

static NTSTATUS complete(PIRP irp, NTSTATUS st, ULONG_PTR info)
{
    irp->IoStatus.Status = st;
    irp->IoStatus.Information = info;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    return st;
}

static NTSTATUS NTAPI dispatch_ok(PDEVICE_OBJECT dev, PIRP irp)
{
    (void)dev;
    return complete(irp, STATUS_SUCCESS, 0);
}

static NTSTATUS NTAPI dispatch_ioctl(PDEVICE_OBJECT dev, PIRP irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(irp);
    ULONG out_len = sp->Parameters.DeviceIoControl.OutputBufferLength;
    PVOID buf = irp->AssociatedIrp.SystemBuffer;
    (void)dev;

    switch (sp->Parameters.DeviceIoControl.IoControlCode) {
    case IOCTL_KAPI_STATUS:
        if (out_len < sizeof(status)) return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
        RtlCopyMemory(buf, &status, sizeof(status));
        return complete(irp, STATUS_SUCCESS, sizeof(status));
    case IOCTL_KAPI_WORK: {
        struct work *w;
        if (out_len < sizeof(struct kapi_work)) return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
        w = ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*w), TAG);
        if (!w) return complete(irp, STATUS_INSUFFICIENT_RESOURCES, 0);
        w->irp = irp;
        w->dispatch_thread = (ULONG)(ULONG_PTR)PsGetCurrentThreadId();
        ExInitializeWorkItem(&w->item, work_routine, w);
        IoMarkIrpPending(irp);
        InterlockedIncrement(&work_outstanding);
        ExQueueWorkItem(&w->item, DelayedWorkQueue);
        return STATUS_PENDING;
    }
    case IOCTL_KAPI_PEND:
        IoCsqInsertIrp(&csq, irp, NULL);
        return STATUS_PENDING;
    case IOCTL_KAPI_PEND_CTX: {
        NTSTATUS st = IoCsqInsertIrpEx(&csq, irp, &the_ctx, NULL);
        return NT_SUCCESS(st) ? STATUS_PENDING : complete(irp, st, 0);
    }
    case IOCTL_KAPI_RELEASE:
    case IOCTL_KAPI_TAKE_CTX: {
        PIRP taken;
        if (out_len < sizeof(ULONG)) return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
        if (sp->Parameters.DeviceIoControl.IoControlCode == IOCTL_KAPI_RELEASE)
            taken = IoCsqRemoveNextIrp(&csq, NULL);
        else
            taken = IoCsqRemoveIrp(&csq, &the_ctx);
        if (taken) complete(taken, STATUS_SUCCESS, 0);
        *(ULONG *)buf = taken != NULL;
        return complete(irp, STATUS_SUCCESS, sizeof(ULONG));
    }
    case IOCTL_KAPI_COUNT: {
        KIRQL irql;
        if (out_len < sizeof(ULONG)) return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
        KeAcquireSpinLock(&queue_lock, &irql);
        *(ULONG *)buf = queued;
        KeReleaseSpinLock(&queue_lock, irql);
        return complete(irp, STATUS_SUCCESS, sizeof(ULONG));
    }
    }
    return complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
}

static VOID NTAPI unload(PDRIVER_OBJECT drv)
{
    UNICODE_STRING link = RTL_CONSTANT_STRING(L"\\DosDevices\\NtCommKapiTest");
    LARGE_INTEGER ms = { .QuadPart = -10000 };
    PIRP irp;
    (void)drv;
    while ((irp = IoCsqRemoveNextIrp(&csq, NULL))) q_complete_canceled(&csq, irp);
    while (work_outstanding) KeDelayExecutionThread(KernelMode, FALSE, &ms);
    IoDeleteSymbolicLink(&link);
    IoDeleteDevice(device);
}

/* ----- ObSetSecurityObjectByPointer ------------------------------------------------------------- */

static void security(void)
{
    static SID everyone = { SID_REVISION, 1, { SECURITY_WORLD_SID_AUTHORITY }, { SECURITY_WORLD_RID } };
    static SID system = { SID_REVISION, 1, { SECURITY_NT_AUTHORITY }, { SECURITY_LOCAL_SYSTEM_RID } };
    SECURITY_DESCRIPTOR sd;
    ULONG acl_buf[64], sd_buf[128], needed = 0;
    PACL acl = (PACL)acl_buf, got = NULL;
    BOOLEAN present = FALSE, defaulted = FALSE;
    HANDLE h = NULL;

    status.set_security = RtlCreateSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION);
    if (NT_SUCCESS(status.set_security)) status.set_security = RtlCreateAcl(acl, sizeof(acl_buf), ACL_REVISION);
    if (NT_SUCCESS(status.set_security)) status.set_security = RtlAddAccessAllowedAce(acl, ACL_REVISION, GENERIC_ALL, &system);
    if (NT_SUCCESS(status.set_security))
        status.set_security = RtlAddAccessAllowedAce(acl, ACL_REVISION, GENERIC_READ | GENERIC_WRITE, &everyone);
    if (NT_SUCCESS(status.set_security)) status.set_security = RtlSetDaclSecurityDescriptor(&sd, TRUE, acl, FALSE);
    if (NT_SUCCESS(status.set_security)) status.set_security = ObSetSecurityObjectByPointer(device, DACL_SECURITY_INFORMATION, &sd);
    if (!NT_SUCCESS(status.set_security)) return;
    status.query_security = ObOpenObjectByPointer(device, OBJ_KERNEL_HANDLE, NULL, READ_CONTROL, NULL, KernelMode, &h);
    if (!NT_SUCCESS(status.query_security)) return;
    status.query_security = ZwQuerySecurityObject(h, DACL_SECURITY_INFORMATION, sd_buf, sizeof(sd_buf), &needed);
    ZwClose(h);
    if (NT_SUCCESS(status.query_security))
        status.query_security = RtlGetDaclSecurityDescriptor((PSECURITY_DESCRIPTOR)sd_buf, &present, &got, &defaulted);
    if (NT_SUCCESS(status.query_security) && present && got) status.dacl_aces = got->AceCount;
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT drv, PUNICODE_STRING path)
{
    UNICODE_STRING name = RTL_CONSTANT_STRING(L"\\Device\\NtCommKapiTest");
    UNICODE_STRING link = RTL_CONSTANT_STRING(L"\\DosDevices\\NtCommKapiTest");
    unsigned char *p;
    NTSTATUS st;
    ULONG i;
    (void)path;

    /* ExAllocatePool2: zeroed; refused without exactly one pool type or with a
       reserved required flag. */
    p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 4096, TAG);
    if (p) {
        status.pool_zeroed = 1;
        for (i = 0; i < 4096; i++)
            if (p[i]) status.pool_zeroed = 0;
        ExFreePoolWithTag(p, TAG);
    }
    status.pool_bad_flags_null = !ExAllocatePool2(0, 16, TAG) && !ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_PAGED, 16, TAG)
                                 && !ExAllocatePool2(POOL_FLAG_PAGED | POOL_FLAG_RESERVED1, 16, TAG);

    InitializeListHead(&queue);
    KeInitializeSpinLock(&queue_lock);
    status.csq_init = IoCsqInitializeEx(&csq, q_insert, q_remove, q_peek, q_acquire, q_release, q_complete_canceled);

    st = IoCreateDevice(drv, 0, &name, FILE_DEVICE_UNKNOWN, 0, FALSE, &device);
    if (!NT_SUCCESS(st)) return st;
    st = IoCreateSymbolicLink(&link, &name);
    if (!NT_SUCCESS(st)) {
        IoDeleteDevice(device);
        return st;
    }
    security();
    device->Flags |= DO_BUFFERED_IO;
    device->Flags &= ~DO_DEVICE_INITIALIZING;
    drv->MajorFunction[IRP_MJ_CREATE] = dispatch_ok;
    drv->MajorFunction[IRP_MJ_CLOSE] = dispatch_ok;
    drv->MajorFunction[IRP_MJ_DEVICE_CONTROL] = dispatch_ioctl;
    drv->DriverUnload = unload;
    return STATUS_SUCCESS;
}
