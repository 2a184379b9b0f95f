/* A small WDM driver in C for the rig's own tests: one device, two IOCTLs.
 * IOCTL_RIGDRV_PING completes with the value it was given plus one and
 * DbgPrints a line; IOCTL_RIGDRV_CRASH writes through a null pointer, so
 * the rig must report the crash of the driver host with this module's
 * name. Built with mingw-w64 against its DDK headers. */
#include <ntddk.h>
#include "rigdrv.h"

static UNICODE_STRING device_name = RTL_CONSTANT_STRING(L"\\Device\\NtCommRigTest");
static UNICODE_STRING link_name = RTL_CONSTANT_STRING(L"\\DosDevices\\NtCommRigTest");

static NTSTATUS complete(PIRP irp, NTSTATUS status, ULONG_PTR information)
{
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = information;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    return status;
}

static NTSTATUS dispatch_open_close(PDEVICE_OBJECT device, PIRP irp)
{
    UNREFERENCED_PARAMETER(device);
    return complete(irp, STATUS_SUCCESS, 0);
}

static NTSTATUS dispatch_ioctl(PDEVICE_OBJECT device, PIRP irp)
{
    PIO_STACK_LOCATION stack = IoGetCurrentIrpStackLocation(irp);
    ULONG code = stack->Parameters.DeviceIoControl.IoControlCode;
    ULONG in = stack->Parameters.DeviceIoControl.InputBufferLength;
    ULONG out = stack->Parameters.DeviceIoControl.OutputBufferLength;
    ULONG *value = irp->AssociatedIrp.SystemBuffer;
    UNREFERENCED_PARAMETER(device);
    switch (code) {
    case IOCTL_RIGDRV_PING:
        if (in < sizeof(ULONG) || out < sizeof(ULONG))
            return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
        DbgPrint("rigdrv: ping %lu\n", *value);
        *value += 1;
        return complete(irp, STATUS_SUCCESS, sizeof(ULONG));
    case IOCTL_RIGDRV_CRASH:
        DbgPrint("rigdrv: crashing on purpose\n");
        /* Writes to the address the caller sent (rigcli sends 16): a page
         * fault the compiler cannot see coming. */
        if (in < sizeof(ULONG_PTR))
            return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
        *(volatile ULONG *)*(ULONG_PTR *)value = 1;
        return complete(irp, STATUS_SUCCESS, 0);
    default:
        return complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    }
}

static void unload(PDRIVER_OBJECT driver)
{
    IoDeleteSymbolicLink(&link_name);
    IoDeleteDevice(driver->DeviceObject);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry)
{
    PDEVICE_OBJECT device;
    NTSTATUS status;
    UNREFERENCED_PARAMETER(registry);
    status = IoCreateDevice(driver, 0, &device_name, FILE_DEVICE_UNKNOWN, 0, FALSE, &device);
    if (!NT_SUCCESS(status))
        return status;
    status = IoCreateSymbolicLink(&link_name, &device_name);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(device);
        return status;
    }
    device->Flags |= DO_BUFFERED_IO;
    driver->MajorFunction[IRP_MJ_CREATE] = dispatch_open_close;
    driver->MajorFunction[IRP_MJ_CLOSE] = dispatch_open_close;
    driver->MajorFunction[IRP_MJ_DEVICE_CONTROL] = dispatch_ioctl;
    driver->DriverUnload = unload;
    device->Flags &= ~DO_DEVICE_INITIALIZING;
    DbgPrint("rigdrv: loaded\n");
    return STATUS_SUCCESS;
}
