/*
 * vftest.sys: a driver that breaks one verifier rule per IOCTL, for the rig's
 * verifier mode (compat/wine-verifier). VFTEST_CLEAN and VFTEST_CLEAN_UNLOAD keep
 * every rule and must give no finding. The unload cases arm a defect; it is found
 * when the driver is stopped.
 */
#include <ddk/wdm.h>

#include "vftest.h"

#define TAG 0x74736676  /* 'vfst' */
#define LEAK 0x6b61654c /* 'Leak' */

NTSTATUS NTAPI ZwCreateEvent(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, EVENT_TYPE, BOOLEAN);
NTSTATUS NTAPI ZwWaitForSingleObject(HANDLE, BOOLEAN, PLARGE_INTEGER);

static UNICODE_STRING device_name, link_name;
static PDEVICE_OBJECT main_device, lower_device;
static KEVENT forwarded;
static PIRP kept;               /* VFTEST_PEND_NO_CANCEL's IRP */
static KSPIN_LOCK kept_lock;
static KEVENT never;            /* never signaled: blocks the leaked thread and work item */
static KEVENT stop_event;       /* signaled at unload: ends the clean-unload thread */
static WORK_QUEUE_ITEM leaked_item, clean_item;
static KEVENT clean_item_done;
static NPAGED_LOOKASIDE_LIST lookaside, clean_lookaside;
static HANDLE leaked_handle, clean_handle;
static KDPC clean_dpc, slow_dpc, queued_dpc;
static volatile KIRQL dpc_irql;
static volatile LONG dpc_runs;
static KTIMER timer;
static KDPC dpc;
static HANDLE clean_thread;
static PDEVICE_OBJECT clean_device;
static UNICODE_STRING clean_device_name, clean_link_name;
static void *clean_block;
static int clean_armed;

static VOID NTAPI cancel(PDEVICE_OBJECT dev, PIRP irp)
{
    (void)dev;
    IoReleaseCancelSpinLock(irp->CancelIrql);
}

static VOID NTAPI dpc_routine(PKDPC d, PVOID ctx, PVOID a, PVOID b)
{
    (void)d, (void)ctx, (void)a, (void)b;
}

static VOID NTAPI blocked_thread(PVOID ctx)
{
    (void)ctx;
    KeWaitForSingleObject(&never, Executive, KernelMode, FALSE, NULL);
}

static VOID NTAPI exiting_thread(PVOID ctx)
{
    (void)ctx;
    KeWaitForSingleObject(&stop_event, Executive, KernelMode, FALSE, NULL);
    PsTerminateSystemThread(STATUS_SUCCESS);
}

static VOID NTAPI blocked_item(PVOID ctx)
{
    (void)ctx;
    KeWaitForSingleObject(&never, Executive, KernelMode, FALSE, NULL);
}

static VOID NTAPI quick_item(PVOID ctx)
{
    (void)ctx;
    KeSetEvent(&clean_item_done, IO_NO_INCREMENT, FALSE);
}

static VOID NTAPI record_dpc(PKDPC d, PVOID ctx, PVOID a, PVOID b)
{
    (void)d, (void)ctx, (void)b;
    dpc_irql = KeGetCurrentIrql();
    if (a == (PVOID)42) InterlockedIncrement(&dpc_runs);
}

/* Runs for about a second (a DPC may not wait: it spins). */
static VOID NTAPI slow_dpc_routine(PKDPC d, PVOID ctx, PVOID a, PVOID b)
{
    volatile ULONG64 n;
    (void)d, (void)ctx, (void)a, (void)b;
    for (n = 0; n < 1000000000ull; n++) {}
}

static VOID NTAPI queued_dpc_routine(PKDPC d, PVOID ctx, PVOID a, PVOID b)
{
    (void)d, (void)ctx, (void)a, (void)b;
}

/* The usual "forward and wait": take the IRP back when the lower device completes it. */
static NTSTATUS NTAPI hold_back(PDEVICE_OBJECT dev, PIRP irp, PVOID ctx)
{
    (void)dev, (void)irp, (void)ctx;
    KeSetEvent(&forwarded, IO_NO_INCREMENT, FALSE);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

static PIRP late;  /* VFTEST_NOT_COMPLETED's IRP, completed by a work item */
static VOID NTAPI complete_late(PVOID ctx)
{
    LARGE_INTEGER ms100 = { .QuadPart = -1000000 };
    PIRP irp = InterlockedExchangePointer((PVOID *)&late, NULL);
    (void)ctx;
    KeDelayExecutionThread(KernelMode, FALSE, &ms100);
    if (irp) {
        irp->IoStatus.Status = STATUS_SUCCESS;
        irp->IoStatus.Information = 0;
        IoCompleteRequest(irp, IO_NO_INCREMENT);
    }
}
static WORK_QUEUE_ITEM late_item;

static NTSTATUS complete(PIRP irp, NTSTATUS status, ULONG_PTR info)
{
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = info;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    return status;
}

/* Every rule kept: pool, a second device and link, a pended and cancelled IRP of
 * its own... each created and undone correctly. */
static NTSTATUS clean(PDEVICE_OBJECT dev, unsigned char *out, ULONG out_len, ULONG_PTR *info)
{
    UNICODE_STRING name, link;
    PDEVICE_OBJECT second;
    HANDLE h, thread;
    LARGE_INTEGER due = { .QuadPart = -36000000000LL }; /* an hour */
    void *p = ExAllocatePoolWithTag(NonPagedPool, 64, TAG);
    PIRP irp;

    if (p) ExFreePoolWithTag(p, TAG);
    RtlInitUnicodeString(&name, L"\\Device\\NtCommVfTestClean");
    RtlInitUnicodeString(&link, L"\\DosDevices\\NtCommVfTestClean");
    if (NT_SUCCESS(IoCreateDevice(dev->DriverObject, 0, &name, FILE_DEVICE_UNKNOWN, 0, FALSE, &second))) {
        if (NT_SUCCESS(IoCreateSymbolicLink(&link, &name))) IoDeleteSymbolicLink(&link);
        IoDeleteDevice(second);
    }
    if (NT_SUCCESS(ZwCreateEvent(&h, EVENT_ALL_ACCESS, NULL, NotificationEvent, FALSE))) ZwClose(h);
    KeSetTimerEx(&timer, due, 0, &dpc);
    KeCancelTimer(&timer);
    KeClearEvent(&stop_event);
    if (NT_SUCCESS(PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, NULL, NULL, NULL, exiting_thread, NULL))) {
        KeSetEvent(&stop_event, IO_NO_INCREMENT, FALSE);
        ZwWaitForSingleObject(thread, FALSE, NULL);
        ZwClose(thread);
    }
    KeClearEvent(&clean_item_done);
    ExInitializeWorkItem(&clean_item, quick_item, NULL);
    ExQueueWorkItem(&clean_item, DelayedWorkQueue);
    KeWaitForSingleObject(&clean_item_done, Executive, KernelMode, FALSE, NULL);
    /* a DPC, run before KeFlushQueuedDpcs returns, at DISPATCH_LEVEL */
    dpc_irql = 0xff;
    dpc_runs = 0;
    if (KeInsertQueueDpc(&clean_dpc, (PVOID)42, NULL)) KeFlushQueuedDpcs();
    if (out_len >= 2) {
        out[0] = dpc_irql;
        out[1] = (unsigned char)dpc_runs;
        *info = 2;
    }
    /* an IRP of its own, cancellable, cancelled and freed */
    if ((irp = IoAllocateIrp(1, FALSE))) {
        IoSetNextIrpStackLocation(irp);
        IoGetCurrentIrpStackLocation(irp)->DeviceObject = dev;
        IoSetCancelRoutine(irp, cancel);
        IoCancelIrp(irp);
        IoFreeIrp(irp);
    }
    return STATUS_SUCCESS;
}

/* Objects the clean unload must undo (VFTEST_CLEAN_UNLOAD). */
static void arm_clean_unload(PDEVICE_OBJECT dev)
{
    LARGE_INTEGER due = { .QuadPart = -36000000000LL };
    if (clean_armed) return;
    clean_armed = 1;
    clean_block = ExAllocatePoolWithTag(NonPagedPool, 128, TAG);
    RtlInitUnicodeString(&clean_device_name, L"\\Device\\NtCommVfTestKept");
    RtlInitUnicodeString(&clean_link_name, L"\\DosDevices\\NtCommVfTestKept");
    if (NT_SUCCESS(IoCreateDevice(dev->DriverObject, 0, &clean_device_name, FILE_DEVICE_UNKNOWN, 0, FALSE, &clean_device)))
        IoCreateSymbolicLink(&clean_link_name, &clean_device_name);
    KeSetTimerEx(&timer, due, 0, &dpc);
    ExInitializeNPagedLookasideList(&clean_lookaside, NULL, NULL, 0, 64, TAG, 0);
    if (!NT_SUCCESS(ZwCreateEvent(&clean_handle, EVENT_ALL_ACCESS, NULL, NotificationEvent, FALSE))) clean_handle = NULL;
    KeClearEvent(&stop_event);
    if (!NT_SUCCESS(PsCreateSystemThread(&clean_thread, THREAD_ALL_ACCESS, NULL, NULL, NULL, exiting_thread, NULL)))
        clean_thread = NULL;
}

static NTSTATUS run(PDEVICE_OBJECT dev, PIRP irp, PIO_STACK_LOCATION sp, ULONG n)
{
    KIRQL old;
    void *p;
    HANDLE thread;
    PDEVICE_OBJECT extra;
    UNICODE_STRING name;
    LARGE_INTEGER due = { .QuadPart = -36000000000LL };
    int i;

    switch (n) {
    case VFTEST_CLEAN: {
        ULONG_PTR info = 0;
        NTSTATUS st = clean(dev, irp->AssociatedIrp.SystemBuffer, sp->Parameters.DeviceIoControl.OutputBufferLength, &info);
        return complete(irp, st, info);
    }
    case VFTEST_COMPLETE_TWICE:
        complete(irp, STATUS_SUCCESS, 0);
        IoCompleteRequest(irp, IO_NO_INCREMENT);
        return STATUS_SUCCESS;
    case VFTEST_CANCEL_ROUTINE_SET:
        IoSetCancelRoutine(irp, cancel);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_COMPLETE_PENDING:
        IoMarkIrpPending(irp);
        complete(irp, STATUS_PENDING, 0);
        return STATUS_PENDING;
    case VFTEST_PENDING_NOT_MARKED:
        complete(irp, STATUS_SUCCESS, 0);
        return STATUS_PENDING;
    case VFTEST_MARKED_NOT_PENDING:
        IoMarkIrpPending(irp);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_STATUS_MISMATCH:
        complete(irp, STATUS_SUCCESS, 0);
        return STATUS_UNSUCCESSFUL;
    case VFTEST_NOT_COMPLETED:
        late = irp;
        ExInitializeWorkItem(&late_item, complete_late, NULL);
        ExQueueWorkItem(&late_item, DelayedWorkQueue);
        return STATUS_SUCCESS;
    case VFTEST_INFORMATION_OVERRUN:
        return complete(irp, STATUS_SUCCESS, sp->Parameters.DeviceIoControl.OutputBufferLength + 16);
    case VFTEST_FREE_IRP:
        IoFreeIrp(irp);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_PEND_NO_CANCEL:
        IoMarkIrpPending(irp);
        KeAcquireSpinLock(&kept_lock, &old);
        kept = irp;
        KeReleaseSpinLock(&kept_lock, old);
        return STATUS_PENDING;
    case VFTEST_RELEASE: {
        PIRP k;
        KeAcquireSpinLock(&kept_lock, &old);
        k = kept;
        kept = NULL;
        KeReleaseSpinLock(&kept_lock, old);
        if (k) complete(k, STATUS_CANCELLED, 0);
        return complete(irp, STATUS_SUCCESS, 0);
    }
    case VFTEST_WRITE_AFTER_COMPLETE:
        complete(irp, STATUS_SUCCESS, 0);
        irp->IoStatus.Information = 0x5a5a;
        return STATUS_SUCCESS;
    case VFTEST_DOUBLE_FREE:
        if ((p = ExAllocatePoolWithTag(NonPagedPool, 32, TAG))) {
            ExFreePoolWithTag(p, TAG);
            ExFreePoolWithTag(p, TAG);
        }
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_WRONG_TAG:
        if ((p = ExAllocatePoolWithTag(NonPagedPool, 32, TAG))) ExFreePoolWithTag(p, LEAK);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_DELETE_TWICE:
        RtlInitUnicodeString(&name, L"\\Device\\NtCommVfTestTwice");
        if (NT_SUCCESS(IoCreateDevice(dev->DriverObject, 0, &name, FILE_DEVICE_UNKNOWN, 0, FALSE, &extra))) {
            IoDeleteDevice(extra);
            IoDeleteDevice(extra);
        }
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_CLOSE_INVALID:
        ZwClose((HANDLE)(ULONG_PTR)0x7ff0);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_LEAK_POOL:
        for (i = 0; i < 3; i++) ExAllocatePoolWithTag(NonPagedPool, 100 + i, LEAK);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_LEAVE_DEVICE:
        RtlInitUnicodeString(&name, L"\\Device\\NtCommVfTestLeft");
        IoCreateDevice(dev->DriverObject, 0, &name, FILE_DEVICE_UNKNOWN, 0, FALSE, &extra);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_LEAVE_LINK: {
        UNICODE_STRING link;
        RtlInitUnicodeString(&link, L"\\DosDevices\\NtCommVfTestLeft");
        IoCreateSymbolicLink(&link, &device_name);
        return complete(irp, STATUS_SUCCESS, 0);
    }
    case VFTEST_LEAVE_THREAD:
        if (NT_SUCCESS(PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, NULL, NULL, NULL, blocked_thread, NULL)))
            ZwClose(thread);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_LEAVE_TIMER:
        KeSetTimerEx(&timer, due, 0, &dpc);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_LEAVE_WORK_ITEM:
        ExInitializeWorkItem(&leaked_item, blocked_item, NULL);
        ExQueueWorkItem(&leaked_item, DelayedWorkQueue);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_LEAVE_LOOKASIDE:
        ExInitializeNPagedLookasideList(&lookaside, NULL, NULL, 0, 64, TAG, 0);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_LEAVE_HANDLE:
        ZwCreateEvent(&leaked_handle, EVENT_ALL_ACCESS, NULL, NotificationEvent, FALSE);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_LEAVE_DPCS:
        KeInsertQueueDpc(&slow_dpc, NULL, NULL);
        KeInsertQueueDpc(&queued_dpc, NULL, NULL);
        return complete(irp, STATUS_SUCCESS, 0);
    case VFTEST_FORWARD_AND_WAIT:
        if (!lower_device || irp->CurrentLocation < 2) return complete(irp, STATUS_INVALID_DEVICE_STATE, 0);
        KeClearEvent(&forwarded);
        IoCopyCurrentIrpStackLocationToNext(irp);
        IoSetCompletionRoutine(irp, hold_back, NULL, TRUE, TRUE, TRUE);
        if (IoCallDriver(lower_device, irp) == STATUS_PENDING)
            KeWaitForSingleObject(&forwarded, Executive, KernelMode, FALSE, NULL);
        return complete(irp, irp->IoStatus.Status, 0);
    case VFTEST_CLEAN_UNLOAD:
        arm_clean_unload(dev);
        return complete(irp, STATUS_SUCCESS, 0);
    }
    return complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
}

static NTSTATUS NTAPI dispatch(PDEVICE_OBJECT dev, PIRP irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(irp);
    if (dev == lower_device) /* the lower half of VFTEST_FORWARD_AND_WAIT */
        return complete(irp, STATUS_SUCCESS, 0);
    if (sp->MajorFunction == IRP_MJ_DEVICE_CONTROL) {
        ULONG code = sp->Parameters.DeviceIoControl.IoControlCode;
        ULONG n = (code >> 2 & 0xfff) - 0x800;
        if ((code & ~(0xfffu << 2)) != VFTEST_IOCTL(0) - (0x800u << 2) || n >= VFTEST_CASES)
            return complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
        return run(dev, irp, sp, n);
    }
    return complete(irp, STATUS_SUCCESS, 0);
}

static VOID NTAPI unload(PDRIVER_OBJECT driver)
{
    if (clean_armed) {
        KeCancelTimer(&timer);
        if (clean_thread) {
            KeSetEvent(&stop_event, IO_NO_INCREMENT, FALSE);
            ZwWaitForSingleObject(clean_thread, FALSE, NULL);
            ZwClose(clean_thread);
        }
        IoDeleteSymbolicLink(&clean_link_name);
        if (clean_device) IoDeleteDevice(clean_device);
        if (clean_block) ExFreePoolWithTag(clean_block, TAG);
        ExDeleteNPagedLookasideList(&clean_lookaside);
        if (clean_handle) ZwClose(clean_handle);
    }
    IoDeleteSymbolicLink(&link_name);
    (void)driver;
    if (lower_device) IoDeleteDevice(lower_device);
    IoDeleteDevice(main_device);
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
    PDEVICE_OBJECT dev;
    NTSTATUS status;
    (void)path;

    KeInitializeSpinLock(&kept_lock);
    KeInitializeEvent(&never, NotificationEvent, FALSE);
    KeInitializeEvent(&stop_event, NotificationEvent, FALSE);
    KeInitializeEvent(&clean_item_done, NotificationEvent, FALSE);
    KeInitializeTimer(&timer);
    KeInitializeDpc(&dpc, dpc_routine, NULL);
    KeInitializeDpc(&clean_dpc, record_dpc, NULL);
    KeInitializeDpc(&slow_dpc, slow_dpc_routine, NULL);
    KeInitializeDpc(&queued_dpc, queued_dpc_routine, NULL);
    RtlInitUnicodeString(&device_name, L"\\Device\\NtCommVfTest");
    RtlInitUnicodeString(&link_name, L"\\DosDevices\\NtCommVfTest");
    status = IoCreateDevice(driver, 0, &device_name, FILE_DEVICE_UNKNOWN, 0, FALSE, &dev);
    if (!NT_SUCCESS(status)) return status;
    status = IoCreateSymbolicLink(&link_name, &device_name);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(dev);
        return status;
    }
    main_device = dev;
    dev->StackSize = 2; /* room for VFTEST_FORWARD_AND_WAIT's lower device */
    KeInitializeEvent(&forwarded, NotificationEvent, FALSE);
    if (!NT_SUCCESS(IoCreateDevice(driver, 0, NULL, FILE_DEVICE_UNKNOWN, 0, FALSE, &lower_device))) lower_device = NULL;
    driver->MajorFunction[IRP_MJ_CREATE] = dispatch;
    driver->MajorFunction[IRP_MJ_CLOSE] = dispatch;
    driver->MajorFunction[IRP_MJ_DEVICE_CONTROL] = dispatch;
    driver->DriverUnload = unload;
    return STATUS_SUCCESS;
}
