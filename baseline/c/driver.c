/*
 * ntcomm_c.sys: the C baseline driver. It does what ntcomm-demo does on the
 * channels the benchmark compares, in the most direct WDM way, so that
 * ntcomm's overhead can be stated as a ratio:
 *
 * - an echo IOCTL in each buffer method (codes and rules in ntcomm_c.h,
 *   the same as the demo's): the output is the input; an output buffer
 *   shorter than the input fails with STATUS_BUFFER_TOO_SMALL, an input
 *   over NTCOMM_C_MAX_ECHO with STATUS_INVALID_PARAMETER;
 * - read/write as a bounded message queue (DO_BUFFERED_IO): a write queues
 *   a copy (or hands it straight to the oldest pended read), a read takes
 *   the oldest message or pends; a read too small for the message fails
 *   with STATUS_BUFFER_TOO_SMALL and the message stays; a full queue refuses
 *   the write with STATUS_DEVICE_BUSY. Pended reads have a cancel routine.
 *
 * No framework, no rundown protection, no statistics: one spin lock, two
 * lists. Under Wine IRP_MJ_CLEANUP never arrives and IRP_MJ_CLOSE does, so
 * the pended reads of a handle are completed (STATUS_CANCELLED) on either.
 * Wine dispatches on one thread, so pended reads are only ever completed
 * from the write dispatch, a cancel, a close or unload; nothing blocks.
 *
 * METHOD_NEITHER: the addresses are range-checked to lie in user space and
 * the reply is copied in place (Type3InputBuffer -> UserBuffer). A Windows
 * driver would add ProbeForRead/ProbeForWrite inside __try/__except, which
 * mingw's C compiler cannot express; under Wine these buffers are copies in
 * winedevice.exe, so the check is all that applies there. ntcomm's demo
 * captures the input into pool memory instead (fault tolerant); that extra
 * copy is part of what the benchmark measures.
 *
 * Built by `cargo xtask` (see xtask/src/main.rs, c_baseline) with
 *   x86_64-w64-mingw32-gcc -O2 -shared -nostdlib -nostartfiles \
 *     -Wl,--subsystem,native -Wl,--entry,DriverEntry \
 *     -I/usr/share/mingw-w64/include/ddk -o ntcomm_c.sys driver.c -lntoskrnl
 */
#include <ntddk.h>

#include "ntcomm_c.h"

/* One queued message. */
typedef struct {
    LIST_ENTRY link;
    ULONG len;
    UCHAR data[];
} MESSAGE;

static PDEVICE_OBJECT g_device;
static KSPIN_LOCK g_lock;      /* guards everything below */
static LIST_ENTRY g_messages;  /* MESSAGE.link, oldest first */
static ULONG g_queued;         /* entries of g_messages */
static LIST_ENTRY g_reads;     /* pended read IRPs (Tail.Overlay.ListEntry), oldest first */

/* MmUserProbeAddress as a constant (x64): the first address that is not user space. */
#define USER_PROBE_ADDRESS ((ULONG_PTR)0x7FFFFFFF0000ULL)
/* Windows 8 and later (Microsoft Learn, MmGetSystemAddressForMdlSafe); absent from mingw's wdm.h. */
#define MDL_MAPPING_NO_WRITE 0x80000000

DRIVER_INITIALIZE DriverEntry;

static NTSTATUS complete(PIRP irp, NTSTATUS status, ULONG_PTR information)
{
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = information;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    return status;
}

static BOOLEAN in_user_space(const void *p, ULONG len)
{
    ULONG_PTR a = (ULONG_PTR)p;
    return len == 0 || (p != NULL && a + len >= a && a + len <= USER_PROBE_ADDRESS);
}

/* ----- echo ----------------------------------------------------------------------- */

static NTSTATUS device_control(PDEVICE_OBJECT dev, PIRP irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(irp);
    ULONG code = sp->Parameters.DeviceIoControl.IoControlCode;
    ULONG in_len = sp->Parameters.DeviceIoControl.InputBufferLength;
    ULONG out_len = sp->Parameters.DeviceIoControl.OutputBufferLength;
    const void *in;
    void *out;
    (void)dev;

    switch (code) {
    case NTCOMM_C_IOCTL_ECHO_BUFFERED:
    case NTCOMM_C_IOCTL_COMPARE_IN_DIRECT:
    case NTCOMM_C_IOCTL_ECHO_OUT_DIRECT:
    case NTCOMM_C_IOCTL_ECHO_NEITHER:
        break;
    case NTCOMM_C_IOCTL_QUEUED: {
        KIRQL irql;
        ULONG n;
        if (out_len < sizeof(ULONG))
            return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
        KeAcquireSpinLock(&g_lock, &irql);
        n = g_queued;
        KeReleaseSpinLock(&g_lock, irql);
        *(ULONG *)irp->AssociatedIrp.SystemBuffer = n;
        return complete(irp, STATUS_SUCCESS, sizeof(ULONG));
    }
    default:
        return complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    }

    if (in_len > NTCOMM_C_MAX_ECHO)
        return complete(irp, STATUS_INVALID_PARAMETER, 0);
    if (out_len < in_len)
        return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);

    switch (code & 3) {
    case METHOD_BUFFERED:
        /* The input already sits where the output goes. */
        return complete(irp, STATUS_SUCCESS, in_len);
    case METHOD_IN_DIRECT: {
        /* The MDL was locked for read access only: read it, never write it. */
        SIZE_T same = 0;
        if (in_len == 0)
            return complete(irp, STATUS_SUCCESS, 0);
        in = irp->AssociatedIrp.SystemBuffer;
        out = irp->MdlAddress ? MmGetSystemAddressForMdlSafe(irp->MdlAddress, NormalPagePriority | MDL_MAPPING_NO_WRITE) : NULL;
        if (in == NULL || out == NULL)
            return complete(irp, STATUS_INVALID_PARAMETER, 0);
        same = RtlCompareMemory(in, out, in_len);
        return complete(irp, STATUS_SUCCESS, same);
    }
    case METHOD_OUT_DIRECT:
        if (in_len == 0)
            return complete(irp, STATUS_SUCCESS, 0);
        in = irp->AssociatedIrp.SystemBuffer;
        out = irp->MdlAddress ? MmGetSystemAddressForMdlSafe(irp->MdlAddress, NormalPagePriority) : NULL;
        if (in == NULL || out == NULL)
            return complete(irp, STATUS_INVALID_PARAMETER, 0);
        RtlCopyMemory(out, in, in_len);
        return complete(irp, STATUS_SUCCESS, in_len);
    default: /* METHOD_NEITHER */
        in = sp->Parameters.DeviceIoControl.Type3InputBuffer;
        out = irp->UserBuffer;
        if (!in_user_space(in, in_len) || !in_user_space(out, out_len))
            return complete(irp, STATUS_ACCESS_DENIED, 0);
        if (in_len)
            RtlMoveMemory(out, in, in_len);
        return complete(irp, STATUS_SUCCESS, in_len);
    }
}

/* ----- the read/write queue ------------------------------------------------------- */

/* Cancel routine of a pended read. Called with the cancel spin lock held. */
static VOID cancel_read(PDEVICE_OBJECT dev, PIRP irp)
{
    KIRQL irql;
    (void)dev;
    IoReleaseCancelSpinLock(irp->CancelIrql);
    KeAcquireSpinLock(&g_lock, &irql);
    /* Whoever took the IRP off the list first re-initialised the entry, so
     * removing it again is harmless. */
    RemoveEntryList(&irp->Tail.Overlay.ListEntry);
    InitializeListHead(&irp->Tail.Overlay.ListEntry);
    KeReleaseSpinLock(&g_lock, irql);
    complete(irp, STATUS_CANCELLED, 0);
}

/* Takes the oldest pended read off the list, or NULL. A read whose cancel
 * routine already runs is left to it. Call with g_lock held. */
static PIRP pop_read_locked(void)
{
    while (!IsListEmpty(&g_reads)) {
        PLIST_ENTRY e = RemoveHeadList(&g_reads);
        PIRP irp = CONTAINING_RECORD(e, IRP, Tail.Overlay.ListEntry);
        InitializeListHead(e);
        if (IoSetCancelRoutine(irp, NULL) != NULL)
            return irp;
        /* Being cancelled: cancel_read completes it. */
    }
    return NULL;
}

static NTSTATUS dispatch_read(PDEVICE_OBJECT dev, PIRP irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(irp);
    ULONG cap = sp->Parameters.Read.Length;
    KIRQL irql;
    MESSAGE *m;
    (void)dev;

    KeAcquireSpinLock(&g_lock, &irql);
    if (IsListEmpty(&g_messages)) {
        /* Pend under the lock: a write cannot slip in between. */
        IoSetCancelRoutine(irp, cancel_read);
        if (irp->Cancel && IoSetCancelRoutine(irp, NULL) != NULL) {
            KeReleaseSpinLock(&g_lock, irql);
            return complete(irp, STATUS_CANCELLED, 0);
        }
        IoMarkIrpPending(irp);
        InsertTailList(&g_reads, &irp->Tail.Overlay.ListEntry);
        KeReleaseSpinLock(&g_lock, irql);
        return STATUS_PENDING;
    }
    m = CONTAINING_RECORD(g_messages.Flink, MESSAGE, link);
    if (cap < m->len) {
        /* The message stays for a read that can hold it. */
        KeReleaseSpinLock(&g_lock, irql);
        return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
    }
    RemoveEntryList(&m->link);
    g_queued--;
    KeReleaseSpinLock(&g_lock, irql);
    if (m->len)
        RtlCopyMemory(irp->AssociatedIrp.SystemBuffer, m->data, m->len);
    {
        ULONG n = m->len;
        ExFreePoolWithTag(m, NTCOMM_C_POOL_TAG);
        return complete(irp, STATUS_SUCCESS, n);
    }
}

static NTSTATUS dispatch_write(PDEVICE_OBJECT dev, PIRP irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(irp);
    ULONG n = sp->Parameters.Write.Length;
    const UCHAR *data = irp->AssociatedIrp.SystemBuffer;
    KIRQL irql;
    MESSAGE *m;
    (void)dev;

    if (n > 0 && data == NULL)
        return complete(irp, STATUS_INVALID_PARAMETER, 0);
    if (n > NTCOMM_C_MAX_MESSAGE)
        return complete(irp, STATUS_INVALID_BUFFER_SIZE, 0);

    KeAcquireSpinLock(&g_lock, &irql);
    if (IsListEmpty(&g_messages)) {
        /* Straight to the oldest pended read that can hold it; reads too
         * small for it fail on the way. */
        PIRP r;
        while ((r = pop_read_locked()) != NULL) {
            ULONG cap = IoGetCurrentIrpStackLocation(r)->Parameters.Read.Length;
            if (cap < n) {
                complete(r, STATUS_BUFFER_TOO_SMALL, 0);
                continue;
            }
            KeReleaseSpinLock(&g_lock, irql);
            if (n)
                RtlCopyMemory(r->AssociatedIrp.SystemBuffer, data, n);
            complete(r, STATUS_SUCCESS, n);
            return complete(irp, STATUS_SUCCESS, n);
        }
    }
    if (g_queued >= NTCOMM_C_QUEUE_CAPACITY) {
        KeReleaseSpinLock(&g_lock, irql);
        return complete(irp, STATUS_DEVICE_BUSY, 0);
    }
    m = ExAllocatePoolWithTag(NonPagedPool, sizeof(MESSAGE) + n, NTCOMM_C_POOL_TAG);
    if (m == NULL) {
        KeReleaseSpinLock(&g_lock, irql);
        return complete(irp, STATUS_INSUFFICIENT_RESOURCES, 0);
    }
    m->len = n;
    if (n)
        RtlCopyMemory(m->data, data, n);
    InsertTailList(&g_messages, &m->link);
    g_queued++;
    KeReleaseSpinLock(&g_lock, irql);
    return complete(irp, STATUS_SUCCESS, n);
}

/* Completes the pended reads of `file` (all of them for NULL) with STATUS_CANCELLED. */
static void cancel_reads_of(PFILE_OBJECT file)
{
    LIST_ENTRY done;
    PLIST_ENTRY e, next;
    KIRQL irql;

    InitializeListHead(&done);
    KeAcquireSpinLock(&g_lock, &irql);
    for (e = g_reads.Flink; e != &g_reads; e = next) {
        PIRP irp = CONTAINING_RECORD(e, IRP, Tail.Overlay.ListEntry);
        next = e->Flink;
        if (file != NULL && IoGetCurrentIrpStackLocation(irp)->FileObject != file)
            continue;
        RemoveEntryList(e);
        InitializeListHead(e);
        if (IoSetCancelRoutine(irp, NULL) != NULL)
            InsertTailList(&done, e);
    }
    KeReleaseSpinLock(&g_lock, irql);
    while (!IsListEmpty(&done)) {
        e = RemoveHeadList(&done);
        complete(CONTAINING_RECORD(e, IRP, Tail.Overlay.ListEntry), STATUS_CANCELLED, 0);
    }
}

/* ----- open, close, unload, entry ------------------------------------------------- */

static NTSTATUS create_close(PDEVICE_OBJECT dev, PIRP irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(irp);
    (void)dev;
    if (sp->MajorFunction != IRP_MJ_CREATE)
        cancel_reads_of(sp->FileObject); /* CLEANUP on Windows, CLOSE under Wine */
    return complete(irp, STATUS_SUCCESS, 0);
}

static VOID unload(PDRIVER_OBJECT drv)
{
    UNICODE_STRING dos = RTL_CONSTANT_STRING(NTCOMM_C_DOS_NAME);
    KIRQL irql;
    (void)drv;

    IoDeleteSymbolicLink(&dos);
    cancel_reads_of(NULL);
    KeAcquireSpinLock(&g_lock, &irql);
    while (!IsListEmpty(&g_messages)) {
        PLIST_ENTRY e = RemoveHeadList(&g_messages);
        ExFreePoolWithTag(CONTAINING_RECORD(e, MESSAGE, link), NTCOMM_C_POOL_TAG);
    }
    g_queued = 0;
    KeReleaseSpinLock(&g_lock, irql);
    IoDeleteDevice(g_device);
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT drv, PUNICODE_STRING registry)
{
    UNICODE_STRING name = RTL_CONSTANT_STRING(NTCOMM_C_DEVICE_NAME);
    UNICODE_STRING dos = RTL_CONSTANT_STRING(NTCOMM_C_DOS_NAME);
    NTSTATUS status;
    (void)registry;

    KeInitializeSpinLock(&g_lock);
    InitializeListHead(&g_messages);
    InitializeListHead(&g_reads);
    g_queued = 0;

    status = IoCreateDevice(drv, 0, &name, FILE_DEVICE_UNKNOWN, FILE_DEVICE_SECURE_OPEN, FALSE, &g_device);
    if (!NT_SUCCESS(status))
        return status;
    status = IoCreateSymbolicLink(&dos, &name);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(g_device);
        return status;
    }
    g_device->Flags |= DO_BUFFERED_IO;
    g_device->Flags &= ~DO_DEVICE_INITIALIZING;

    drv->MajorFunction[IRP_MJ_CREATE] = create_close;
    drv->MajorFunction[IRP_MJ_CLEANUP] = create_close;
    drv->MajorFunction[IRP_MJ_CLOSE] = create_close;
    drv->MajorFunction[IRP_MJ_READ] = dispatch_read;
    drv->MajorFunction[IRP_MJ_WRITE] = dispatch_write;
    drv->MajorFunction[IRP_MJ_DEVICE_CONTROL] = device_control;
    drv->DriverUnload = unload;
    return STATUS_SUCCESS;
}
