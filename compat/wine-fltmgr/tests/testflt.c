/*
 * testflt.sys: a tiny minifilter for testing ntcomm's Wine fltmgr.sys on its
 * own. Registers, opens port \NtCommTestPort (MaxConnections 1), echoes
 * FilterSendMessage input in MessageNotify, and on IOCTLs of its own device
 * (\\.\NtCommTestFlt) sends questions with FltSendMessage, closes the client
 * port, or reports what its callbacks saw.
 *
 * Build (see README.md):
 *   x86_64-w64-mingw32-dlltool -d ../fltmgr.def -l libfltmgr.a
 *   x86_64-w64-mingw32-gcc -O2 -shared -nostdlib -nostartfiles \
 *     -Wl,--subsystem,native -Wl,--entry,DriverEntry \
 *     -I/usr/share/mingw-w64/include/ddk -o testflt.sys testflt.c \
 *     libfltmgr.a -lntoskrnl
 */
#include <ntddk.h>

/* fltKernel.h is not in mingw: the few declarations used. */
typedef PVOID PFLT_FILTER, PFLT_PORT;
typedef struct {
    USHORT Size, Version;
    ULONG Flags;
    PVOID ContextRegistration, OperationRegistration, FilterUnloadCallback, InstanceSetupCallback,
        InstanceQueryTeardownCallback, InstanceTeardownStartCallback, InstanceTeardownCompleteCallback,
        GenerateFileNameCallback, NormalizeNameComponentCallback, NormalizeContextCleanupCallback,
        TransactionNotificationCallback, NormalizeNameComponentExCallback, SectionNotificationCallback;
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
NTSTATUS NTAPI FltSendMessage(PFLT_FILTER, PFLT_PORT *, PVOID, ULONG, PVOID, PULONG, PLARGE_INTEGER);
VOID NTAPI FltCloseClientPort(PFLT_FILTER, PFLT_PORT *);
NTSTATUS NTAPI FltBuildDefaultSecurityDescriptor(PSECURITY_DESCRIPTOR *, ACCESS_MASK);
VOID NTAPI FltFreeSecurityDescriptor(PSECURITY_DESCRIPTOR);

#include "testflt.h"

static PFLT_FILTER filter;
static PFLT_PORT server_port;
static PFLT_PORT client_port;
static PDEVICE_OBJECT device;
static volatile LONG connects, disconnects, messages, refused;
static ULONG last_context_len;
static UCHAR last_context[64];
static ULONG_PTR last_server_cookie;
static char cookie_anchor;

static NTSTATUS NTAPI on_connect(PFLT_PORT port, PVOID server_cookie, PVOID ctx, ULONG ctx_len, PVOID *conn_cookie)
{
    last_server_cookie = (ULONG_PTR)server_cookie;
    last_context_len = ctx_len;
    RtlZeroMemory(last_context, sizeof(last_context));
    if (ctx && ctx_len) RtlCopyMemory(last_context, ctx, ctx_len < sizeof(last_context) ? ctx_len : sizeof(last_context));
    if (ctx_len == 6 && RtlCompareMemory(ctx, "refuse", 6) == 6) {
        InterlockedIncrement(&refused);
        return STATUS_ACCESS_DENIED;
    }
    client_port = port;
    *conn_cookie = &cookie_anchor;
    InterlockedIncrement(&connects);
    return STATUS_SUCCESS;
}

static VOID NTAPI on_disconnect(PVOID conn_cookie)
{
    if (conn_cookie == &cookie_anchor) InterlockedIncrement(&disconnects);
    FltCloseClientPort(filter, &client_port);
}

/* Echo; input "status:XXXXXXXX" returns that status instead. */
static NTSTATUS NTAPI on_message(PVOID conn_cookie, PVOID in, ULONG in_len, PVOID out, ULONG out_len, PULONG ret)
{
    ULONG n = in_len < out_len ? in_len : out_len;
    InterlockedIncrement(&messages);
    if (conn_cookie != &cookie_anchor) return STATUS_INVALID_PARAMETER_1;
    if (in_len >= 7 && RtlCompareMemory(in, "refuse!", 7) == 7) return STATUS_ACCESS_DENIED;
    if (n) RtlCopyMemory(out, in, n);
    *ret = n;
    return STATUS_SUCCESS;
}

static NTSTATUS complete(PIRP irp, NTSTATUS status, ULONG_PTR info)
{
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = info;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    return status;
}

static NTSTATUS NTAPI dispatch_ok(PDEVICE_OBJECT dev, PIRP irp)
{
    (void)dev;
    return complete(irp, STATUS_SUCCESS, 0);
}

static NTSTATUS NTAPI dispatch_ioctl(PDEVICE_OBJECT dev, PIRP irp)
{
    PIO_STACK_LOCATION sl = IoGetCurrentIrpStackLocation(irp);
    ULONG code = sl->Parameters.DeviceIoControl.IoControlCode;
    ULONG in_len = sl->Parameters.DeviceIoControl.InputBufferLength;
    ULONG out_len = sl->Parameters.DeviceIoControl.OutputBufferLength;
    UCHAR *buf = irp->AssociatedIrp.SystemBuffer;
    (void)dev;

    if (code == IOCTL_TESTFLT_ASK) {
        struct ask_in a;
        struct ask_out *o = (struct ask_out *)buf;
        UCHAR *question, *reply;
        ULONG qlen, rlen;
        LARGE_INTEGER t;
        NTSTATUS st;
        if (in_len < sizeof(a) || out_len < sizeof(*o)) return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
        RtlCopyMemory(&a, buf, sizeof(a));
        qlen = in_len - sizeof(a);
        if (a.reply_cap > out_len - sizeof(*o)) return complete(irp, STATUS_INVALID_PARAMETER, 0);
        question = ExAllocatePoolWithTag(NonPagedPool, qlen + a.reply_cap + 1, 0x746c6674);
        if (!question) return complete(irp, STATUS_INSUFFICIENT_RESOURCES, 0);
        RtlCopyMemory(question, buf + sizeof(a), qlen);
        reply = question + qlen;
        rlen = a.reply_cap;
        t.QuadPart = a.timeout;
        st = FltSendMessage(filter, &client_port, question, qlen, (a.flags & ASK_NO_REPLY) ? NULL : reply,
                            (a.flags & ASK_NO_REPLY) ? NULL : &rlen, a.timeout ? &t : NULL);
        o->status = st;
        o->reply_len = (a.flags & ASK_NO_REPLY) ? 0 : rlen;
        if (!(a.flags & ASK_NO_REPLY) && (st == STATUS_SUCCESS || st == STATUS_BUFFER_OVERFLOW))
            RtlCopyMemory(buf + sizeof(*o), reply, rlen);
        else
            o->reply_len = 0;
        ExFreePoolWithTag(question, 0x746c6674);
        return complete(irp, STATUS_SUCCESS, sizeof(*o) + o->reply_len);
    }
    if (code == IOCTL_TESTFLT_STATS) {
        struct stats *s = (struct stats *)buf;
        if (out_len < sizeof(*s)) return complete(irp, STATUS_BUFFER_TOO_SMALL, 0);
        s->connects = connects;
        s->disconnects = disconnects;
        s->messages = messages;
        s->refused = refused;
        s->connected = client_port != NULL;
        s->context_len = last_context_len;
        s->server_cookie = last_server_cookie;
        RtlCopyMemory(s->context, last_context, sizeof(s->context));
        return complete(irp, STATUS_SUCCESS, sizeof(*s));
    }
    if (code == IOCTL_TESTFLT_CLOSE_CLIENT) {
        FltCloseClientPort(filter, &client_port);
        return complete(irp, client_port == NULL ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL, 0);
    }
    return complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
}

static VOID NTAPI unload(PDRIVER_OBJECT drv)
{
    UNICODE_STRING link = RTL_CONSTANT_STRING(L"\\DosDevices\\NtCommTestFlt");
    (void)drv;
    FltCloseCommunicationPort(server_port);
    FltUnregisterFilter(filter);
    IoDeleteSymbolicLink(&link);
    IoDeleteDevice(device);
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT drv, PUNICODE_STRING path)
{
    UNICODE_STRING port_name = RTL_CONSTANT_STRING(L"\\NtCommTestPort");
    UNICODE_STRING dev_name = RTL_CONSTANT_STRING(L"\\Device\\NtCommTestFlt");
    UNICODE_STRING link = RTL_CONSTANT_STRING(L"\\DosDevices\\NtCommTestFlt");
    FLT_REGISTRATION reg;
    OBJECT_ATTRIBUTES oa;
    PSECURITY_DESCRIPTOR sd;
    PFLT_PORT dup;
    NTSTATUS st;
    (void)path;

    RtlZeroMemory(&reg, sizeof(reg));
    reg.Size = sizeof(reg);
    reg.Version = 0x0203;
    st = FltRegisterFilter(drv, &reg, &filter);
    if (!NT_SUCCESS(st)) return st;

    st = FltBuildDefaultSecurityDescriptor(&sd, 0x001F0001 /* FLT_PORT_ALL_ACCESS */);
    if (!NT_SUCCESS(st)) goto fail;
    InitializeObjectAttributes(&oa, &port_name, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL, sd);
    st = FltCreateCommunicationPort(filter, &server_port, &oa, (PVOID)0x5eed, on_connect, on_disconnect, on_message, 1);
    if (NT_SUCCESS(st)) {
        /* A second port with the same name (other case) must collide; MaxConnections 0 is invalid. */
        UNICODE_STRING upper = RTL_CONSTANT_STRING(L"\\NTCOMMTESTPORT");
        OBJECT_ATTRIBUTES oa2;
        InitializeObjectAttributes(&oa2, &upper, OBJ_KERNEL_HANDLE, NULL, sd);
        if (FltCreateCommunicationPort(filter, &dup, &oa2, NULL, on_connect, on_disconnect, on_message, 1) != STATUS_OBJECT_NAME_COLLISION)
            st = STATUS_UNSUCCESSFUL;
        else if (FltCreateCommunicationPort(filter, &dup, &oa2, NULL, on_connect, on_disconnect, on_message, 0) != STATUS_INVALID_PARAMETER)
            st = STATUS_UNSUCCESSFUL;
    }
    FltFreeSecurityDescriptor(sd);
    if (!NT_SUCCESS(st)) goto fail;

    st = IoCreateDevice(drv, 0, &dev_name, FILE_DEVICE_UNKNOWN, 0, FALSE, &device);
    if (!NT_SUCCESS(st)) goto fail_port;
    st = IoCreateSymbolicLink(&link, &dev_name);
    if (!NT_SUCCESS(st)) {
        IoDeleteDevice(device);
        goto fail_port;
    }
    device->Flags |= DO_BUFFERED_IO;
    device->Flags &= ~DO_DEVICE_INITIALIZING;
    drv->MajorFunction[IRP_MJ_CREATE] = dispatch_ok;
    drv->MajorFunction[IRP_MJ_CLOSE] = dispatch_ok;
    drv->MajorFunction[IRP_MJ_DEVICE_CONTROL] = dispatch_ioctl;
    drv->DriverUnload = unload;
    st = FltStartFiltering(filter);
    if (NT_SUCCESS(st)) return st;
    IoDeleteSymbolicLink(&link);
    IoDeleteDevice(device);
fail_port:
    FltCloseCommunicationPort(server_port);
fail:
    FltUnregisterFilter(filter);
    return st;
}
