/*
 * A minimal C driver for ntcomm-um's own tests (tests/wine.rs,
 * `driver_service_lifecycle`), independent of the Rust driver crates.
 *
 * Build:  x86_64-w64-mingw32-gcc -O2 -I/usr/share/mingw-w64/include/ddk -o umtest.sys \
 *           umtest.c -nostartfiles -nostdlib -Wl,--subsystem,native \
 *           -Wl,--entry,DriverEntry -lntoskrnl
 * Run:    NTCOMM_UM_TEST_DRIVER=/path/umtest.sys cargo test -p ntcomm-um \
 *           --target x86_64-pc-windows-gnu
 *
 * Device \\.\NtCommUmTest, three BUFFERED IOCTLs (device type 0x8e7d):
 *   0x800 ECHO      output = input (STATUS_BUFFER_TOO_SMALL if it does not fit)
 *   0x801 OVERFLOW  writes up to 4 bytes "abcd", STATUS_BUFFER_OVERFLOW (a warning)
 *   0x802 PEND      pends until cancelled (STATUS_CANCELLED)
 * anything else: STATUS_INVALID_DEVICE_REQUEST.
 */
#include <ntddk.h>
#define DT 0x8e7d
#define IOCTL_ECHO CTL_CODE(DT, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_OVERFLOW CTL_CODE(DT, 0x801, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_PEND CTL_CODE(DT, 0x802, METHOD_BUFFERED, FILE_ANY_ACCESS)
static UNICODE_STRING dev_name = RTL_CONSTANT_STRING(L"\\Device\\NtCommUmTest");
static UNICODE_STRING link_name = RTL_CONSTANT_STRING(L"\\DosDevices\\NtCommUmTest");

static NTSTATUS complete(PIRP irp, NTSTATUS st, ULONG_PTR info) {
    irp->IoStatus.Status = st; irp->IoStatus.Information = info;
    IofCompleteRequest(irp, IO_NO_INCREMENT);
    return st;
}
static NTSTATUS NTAPI ok(PDEVICE_OBJECT d, PIRP irp) { (void)d; return complete(irp, STATUS_SUCCESS, 0); }
static VOID NTAPI cancel(PDEVICE_OBJECT d, PIRP irp) {
    (void)d; IoReleaseCancelSpinLock(irp->CancelIrql);
    complete(irp, STATUS_CANCELLED, 0);
}
static NTSTATUS NTAPI ioctl(PDEVICE_OBJECT d, PIRP irp) {
    (void)d;
    PIO_STACK_LOCATION s = IoGetCurrentIrpStackLocation(irp);
    ULONG in = s->Parameters.DeviceIoControl.InputBufferLength;
    ULONG out = s->Parameters.DeviceIoControl.OutputBufferLength;
    PUCHAR buf = irp->AssociatedIrp.SystemBuffer;
    switch (s->Parameters.DeviceIoControl.IoControlCode) {
    case IOCTL_ECHO:
        if (out < in) return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
        return complete(irp, STATUS_SUCCESS, in);
    case IOCTL_OVERFLOW: {
        ULONG n = out < 4 ? out : 4;
        for (ULONG i = 0; i < n; i++) buf[i] = 'a' + i;
        return complete(irp, STATUS_BUFFER_OVERFLOW, n);
    }
    case IOCTL_PEND: {
        KIRQL irql;
        IoAcquireCancelSpinLock(&irql);
        IoSetCancelRoutine(irp, cancel);
        IoMarkIrpPending(irp);
        IoReleaseCancelSpinLock(irql);
        return STATUS_PENDING;
    }
    default:
        return complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    }
}
static VOID NTAPI unload(PDRIVER_OBJECT drv) {
    IoDeleteSymbolicLink(&link_name);
    IoDeleteDevice(drv->DeviceObject);
}
NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT drv, PUNICODE_STRING reg) {
    (void)reg;
    PDEVICE_OBJECT dev;
    NTSTATUS st = IoCreateDevice(drv, 0, &dev_name, FILE_DEVICE_UNKNOWN, 0, FALSE, &dev);
    if (!NT_SUCCESS(st)) return st;
    st = IoCreateSymbolicLink(&link_name, &dev_name);
    if (!NT_SUCCESS(st)) { IoDeleteDevice(dev); return st; }
    drv->MajorFunction[IRP_MJ_CREATE] = ok;
    drv->MajorFunction[IRP_MJ_CLOSE] = ok;
    drv->MajorFunction[IRP_MJ_DEVICE_CONTROL] = ioctl;
    drv->DriverUnload = unload;
    return STATUS_SUCCESS;
}
