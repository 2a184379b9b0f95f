/*
 * irqltest.sys: a driver that breaks one IRQL rule per IOCTL, for the rig's IRQL
 * tracker (compat/wine-irql). IRQLTEST_CLEAN keeps every rule and must give no
 * finding. KeRaiseIrql/KeLowerIrql/KeGetCurrentIrql are mingw's inline `mov cr8`.
 */
#include <ddk/wdm.h>

#include "irqltest.h"

#define TAG 0x74717269 /* 'irqt' */

NTSTATUS NTAPI ZwCreateEvent(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, EVENT_TYPE, BOOLEAN);

static KSPIN_LOCK lock, leaked_lock;
static KEVENT signaled;
static UNICODE_STRING device_name, link_name;
static KIRQL seen_in_cancel;

static VOID NTAPI good_cancel(PDEVICE_OBJECT dev, PIRP irp)
{
    (void)dev;
    seen_in_cancel = KeGetCurrentIrql();
    IoReleaseCancelSpinLock(irp->CancelIrql);
}

static VOID NTAPI cancel_keeps_lock(PDEVICE_OBJECT dev, PIRP irp)
{
    (void)dev;
    (void)irp;
}

/* Releases the cancel lock properly, then returns raised (as a lock guard that
 * restores DISPATCH_LEVEL after the release would). */
static VOID NTAPI cancel_raised(PDEVICE_OBJECT dev, PIRP irp)
{
    KIRQL old;
    (void)dev;
    IoReleaseCancelSpinLock(irp->CancelIrql);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
}

static KEVENT work_done;

static VOID NTAPI raised_worker(PDEVICE_OBJECT dev, PVOID ctx)
{
    KIRQL old;
    (void)dev;
    (void)ctx;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeSetEvent(&work_done, IO_NO_INCREMENT, FALSE);
}

/* Queues `raised_worker` and waits until it has run. */
static void run_raised_work_item(PDEVICE_OBJECT dev)
{
    PIO_WORKITEM item = IoAllocateWorkItem(dev);
    if (!item) return;
    KeClearEvent(&work_done);
    IoQueueWorkItem(item, raised_worker, DelayedWorkQueue, NULL);
    KeWaitForSingleObject(&work_done, Executive, KernelMode, FALSE, NULL);
    IoFreeWorkItem(item);
}

/* IoCancelIrp on an IRP of our own with `routine` as its cancel routine. */
static BOOLEAN cancel_own_irp(PDEVICE_OBJECT dev, PDRIVER_CANCEL routine)
{
    PIRP irp = IoAllocateIrp(1, FALSE);
    BOOLEAN r;
    if (!irp) return FALSE;
    IoSetNextIrpStackLocation(irp);
    IoGetCurrentIrpStackLocation(irp)->DeviceObject = dev;
    IoSetCancelRoutine(irp, routine);
    r = IoCancelIrp(irp);
    IoFreeIrp(irp);
    return r;
}

static NTSTATUS clean(PDEVICE_OBJECT dev, unsigned char *out)
{
    KIRQL old, old2;
    LARGE_INTEGER zero;
    void *p;

    p = ExAllocatePoolWithTag(PagedPool, 16, TAG); /* PASSIVE: fine */
    if (p) ExFreePoolWithTag(p, TAG);
    KeAcquireSpinLock(&lock, &old);
    out[0] = KeGetCurrentIrql();                  /* DISPATCH_LEVEL if tracked */
    zero.QuadPart = 0;
    KeWaitForSingleObject(&signaled, Executive, KernelMode, FALSE, &zero); /* zero timeout: fine */
    p = ExAllocatePoolWithTag(NonPagedPool, 16, TAG);
    if (p) ExFreePoolWithTag(p, TAG);
    KeReleaseSpinLock(&lock, old);
    KeRaiseIrql(DISPATCH_LEVEL, &old2);
    KeLowerIrql(old2);
    out[1] = KeGetCurrentIrql();                  /* PASSIVE_LEVEL */
    seen_in_cancel = 0xff;
    cancel_own_irp(dev, good_cancel);
    out[2] = seen_in_cancel;                      /* DISPATCH_LEVEL if tracked */
    out[3] = KeGetCurrentIrql();                  /* PASSIVE_LEVEL */
    return STATUS_SUCCESS;
}

static NTSTATUS run(PDEVICE_OBJECT dev, ULONG n, unsigned char *out, ULONG *len)
{
    KIRQL old;
    HANDLE none = NULL;
    void *p;

    *len = 0;
    switch (n) {
    case IRQLTEST_CLEAN:
        *len = 4;
        return clean(dev, out);
    case IRQLTEST_RAISED_RETURN:
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        return STATUS_SUCCESS;
    case IRQLTEST_LOCK_HELD_RETURN:
        KeAcquireSpinLock(&leaked_lock, &old);
        return STATUS_SUCCESS;
    case IRQLTEST_WAIT_UNDER_LOCK:
        KeAcquireSpinLock(&lock, &old);
        KeWaitForSingleObject(&signaled, Executive, KernelMode, FALSE, NULL); /* signaled: returns at once */
        KeReleaseSpinLock(&lock, old);
        return STATUS_SUCCESS;
    case IRQLTEST_ZW_AT_DISPATCH:
        /* a valid handle: closing an invalid one is a finding of its own (0x93) */
        if (!NT_SUCCESS(ZwCreateEvent(&none, EVENT_ALL_ACCESS, NULL, NotificationEvent, FALSE))) return STATUS_UNSUCCESSFUL;
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        ZwClose(none);
        KeLowerIrql(old);
        return STATUS_SUCCESS;
    case IRQLTEST_PAGED_AT_DISPATCH:
        KeAcquireSpinLock(&lock, &old);
        p = ExAllocatePoolWithTag(PagedPool, 16, TAG);
        KeReleaseSpinLock(&lock, old);
        if (p) ExFreePoolWithTag(p, TAG);
        return STATUS_SUCCESS;
    case IRQLTEST_RELEASE_WRONG_IRQL:
        KeAcquireSpinLock(&lock, &old);
        KeReleaseSpinLock(&lock, DISPATCH_LEVEL);
        KeLowerIrql(old); /* back where it was: only the release is wrong */
        return STATUS_SUCCESS;
    case IRQLTEST_CANCEL_KEEPS_LOCK:
        cancel_own_irp(dev, cancel_keeps_lock);
        return STATUS_SUCCESS;
    case IRQLTEST_CANCEL_RAISED:
        cancel_own_irp(dev, cancel_raised);
        return STATUS_SUCCESS;
    case IRQLTEST_WORK_ITEM_RAISED:
        run_raised_work_item(dev);
        return STATUS_SUCCESS;
    }
    return STATUS_INVALID_DEVICE_REQUEST;
}

static NTSTATUS NTAPI dispatch(PDEVICE_OBJECT dev, PIRP irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(irp);
    NTSTATUS status = STATUS_SUCCESS;
    ULONG len = 0;

    if (sp->MajorFunction == IRP_MJ_DEVICE_CONTROL) {
        ULONG code = sp->Parameters.DeviceIoControl.IoControlCode;
        ULONG n = (code >> 2 & 0xfff) - 0x800;
        if ((code & ~(0xfffu << 2)) != IRQLTEST_IOCTL(0) - (0x800u << 2) || n >= IRQLTEST_CASES)
            status = STATUS_INVALID_DEVICE_REQUEST;
        else if (n == IRQLTEST_CLEAN && sp->Parameters.DeviceIoControl.OutputBufferLength < 4)
            status = STATUS_BUFFER_TOO_SMALL;
        else
            status = run(dev, n, irp->AssociatedIrp.SystemBuffer, &len);
    }
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = len;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    return status;
}

static VOID NTAPI unload(PDRIVER_OBJECT driver)
{
    IoDeleteSymbolicLink(&link_name);
    IoDeleteDevice(driver->DeviceObject);
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
    PDEVICE_OBJECT dev;
    NTSTATUS status;
    (void)path;

    KeInitializeSpinLock(&lock);
    KeInitializeSpinLock(&leaked_lock);
    KeInitializeEvent(&signaled, NotificationEvent, TRUE);
    KeInitializeEvent(&work_done, NotificationEvent, FALSE);
    RtlInitUnicodeString(&device_name, L"\\Device\\NtCommIrqlTest");
    RtlInitUnicodeString(&link_name, L"\\DosDevices\\NtCommIrqlTest");
    status = IoCreateDevice(driver, 0, &device_name, FILE_DEVICE_UNKNOWN, 0, FALSE, &dev);
    if (!NT_SUCCESS(status)) return status;
    status = IoCreateSymbolicLink(&link_name, &device_name);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(dev);
        return status;
    }
    driver->MajorFunction[IRP_MJ_CREATE] = dispatch;
    driver->MajorFunction[IRP_MJ_CLOSE] = dispatch;
    driver->MajorFunction[IRP_MJ_DEVICE_CONTROL] = dispatch;
    driver->DriverUnload = unload;
    return STATUS_SUCCESS;
}
