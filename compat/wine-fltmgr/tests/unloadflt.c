/*
 * unloadflt.sys: a minifilter that sets no DriverUnload of its own, only a
 * FilterUnloadCallback, as Microsoft's samples do. A service stop must reach
 * that callback (a mandatory unload), which closes the port and calls
 * FltUnregisterFilter; then the driver unloads. unloadtest.c drives it.
 *
 * Port \NtCommUnloadPort answers each FilterSendMessage with its own input
 * and the driver's load count. The callback sets the named event
 * \BaseNamedObjects\NtCommUnloadFlt-<flags> (opened at DriverEntry for
 * flags 1, FLTFL_FILTER_UNLOAD_MANDATORY, and 0) so the client can see which
 * kind of unload it was.
 */
#include <ntifs.h>

/* fltKernel.h is not in mingw: the few declarations used. */
typedef PVOID PFLT_FILTER, PFLT_PORT;
typedef NTSTATUS (NTAPI *PFLT_FILTER_UNLOAD_CALLBACK)(ULONG);
typedef struct {
    USHORT Size, Version;
    ULONG Flags;
    PVOID ContextRegistration, OperationRegistration;
    PFLT_FILTER_UNLOAD_CALLBACK FilterUnloadCallback;
    PVOID InstanceSetupCallback, InstanceQueryTeardownCallback, InstanceTeardownStartCallback,
        InstanceTeardownCompleteCallback, GenerateFileNameCallback, NormalizeNameComponentCallback,
        NormalizeContextCleanupCallback, TransactionNotificationCallback, NormalizeNameComponentExCallback,
        SectionNotificationCallback;
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

#define FLTFL_FILTER_UNLOAD_MANDATORY 1

static PFLT_FILTER filter;
static PFLT_PORT server_port, client_port;
static HANDLE unload_event[2];
static LONG loads;

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
    (void)conn;
    if (!out || out_len < sizeof(ULONG) + in_len) return STATUS_BUFFER_TOO_SMALL;
    *(ULONG *)out = (ULONG)loads;
    if (in_len) RtlCopyMemory((UCHAR *)out + sizeof(ULONG), in, in_len);
    *returned = sizeof(ULONG) + in_len;
    return STATUS_SUCCESS;
}

static void close_events(void)
{
    int i;
    for (i = 0; i < 2; i++) {
        if (unload_event[i]) ZwClose(unload_event[i]);
        unload_event[i] = NULL;
    }
}

static NTSTATUS NTAPI filter_unload(ULONG flags)
{
    HANDLE e = unload_event[flags == FLTFL_FILTER_UNLOAD_MANDATORY ? 1 : 0];
    FltCloseCommunicationPort(server_port);
    FltUnregisterFilter(filter);
    if (e) ZwSetEvent(e, NULL);
    close_events();
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT drv, PUNICODE_STRING path)
{
    UNICODE_STRING port_name = RTL_CONSTANT_STRING(L"\\NtCommUnloadPort");
    UNICODE_STRING ev_name[2] = { RTL_CONSTANT_STRING(L"\\BaseNamedObjects\\NtCommUnloadFlt-0"),
                                  RTL_CONSTANT_STRING(L"\\BaseNamedObjects\\NtCommUnloadFlt-1") };
    FLT_REGISTRATION reg;
    OBJECT_ATTRIBUTES oa;
    NTSTATUS st;
    int i;
    (void)path;

    /* ZwCreateEvent, not IoCreateNotificationEvent: Wine 8's fails when the
       name exists (the client keeps the events across loads). */
    for (i = 0; i < 2; i++) {
        InitializeObjectAttributes(&oa, &ev_name[i], OBJ_KERNEL_HANDLE | OBJ_OPENIF, NULL, NULL);
        st = ZwCreateEvent(&unload_event[i], EVENT_ALL_ACCESS, &oa, NotificationEvent, FALSE);
        if (!NT_SUCCESS(st)) {
            unload_event[i] = NULL;
            close_events();
            return st;
        }
    }
    RtlZeroMemory(&reg, sizeof(reg));
    reg.Size = sizeof(reg);
    reg.Version = 0x0203;
    reg.FilterUnloadCallback = filter_unload;
    st = FltRegisterFilter(drv, &reg, &filter);
    if (!NT_SUCCESS(st)) {
        close_events();
        return st;
    }
    /* FltRegisterFilter put the Filter Manager's unload routine in place. */
    if (!drv->DriverUnload) {
        st = STATUS_UNSUCCESSFUL;
        goto fail;
    }
    InitializeObjectAttributes(&oa, &port_name, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL, NULL);
    st = FltCreateCommunicationPort(filter, &server_port, &oa, NULL, on_connect, on_disconnect, on_message, 1);
    if (!NT_SUCCESS(st)) goto fail;
    st = FltStartFiltering(filter);
    if (NT_SUCCESS(st)) {
        loads++;
        return st;
    }
    FltCloseCommunicationPort(server_port);
fail:
    FltUnregisterFilter(filter);
    close_events();
    return st;
}
