/*
 * LPC ports for Wine 8, in-process (Wine only; never install on Windows).
 *
 * Wine's ntdll returns STATUS_NOT_IMPLEMENTED from every Nt*Port call and its
 * ntoskrnl's NtRequestPort is a fatal stub. ntcomm_lpc_install() overwrites
 * the start of those functions with a jump to the implementations below, in
 * the process it runs in: every Rust program (through the bcryptprimitives
 * shim's DllMain) and the driver host winedevice.exe (through the helper
 * driver ntcomm_lpc.sys, which shares a winedevice with the client driver by
 * LoadOrderGroup). NtClose is hooked too, so that closing a port handle
 * closes the port.
 *
 * Transport: one named pipe per server port, \\.\pipe\ntcomm-lpc<port name>,
 * one pipe instance per connection, message mode. Every pipe message is one
 * struct frame (below) followed by a PORT_MESSAGE and its body. Semantics
 * follow the public descriptions of LPC (ReactOS ntoskrnl/lpc, the NDK
 * headers); what is not implemented is listed in README.md.
 */
#define WIN32_NO_STATUS
#include <windows.h>
#undef WIN32_NO_STATUS
#include <ntstatus.h>

#include "lpc.h"

/* ----- NT types ---------------------------------------------------------------------- */


#define LPC_REQUEST 1
#define LPC_REPLY 2
#define LPC_DATAGRAM 3
#define LPC_PORT_CLOSED 5
#define LPC_CONNECTION_REQUEST 10
#define LPC_KERNELMODE_MESSAGE 0x8000
#define LPC_TYPE_MASK 0x00FF

#define PORT_MESSAGE_LEN 0x28

typedef struct {
    USHORT Length;
    USHORT MaximumLength;
    PWSTR Buffer;
} NT_UNICODE_STRING;

typedef struct {
    ULONG Length;
    HANDLE RootDirectory;
    NT_UNICODE_STRING *ObjectName;
    ULONG Attributes;
    PVOID SecurityDescriptor;
    PVOID SecurityQualityOfService;
} NT_OBJECT_ATTRIBUTES;

typedef struct {
    USHORT DataLength;
    USHORT TotalLength;
    USHORT Type;
    USHORT DataInfoOffset;
    ULONG64 UniqueProcess;
    ULONG64 UniqueThread;
    ULONG MessageId;
    ULONG Pad;
    ULONG64 ClientViewSize; /* or CallbackId */
} PORT_MESSAGE;

typedef struct {
    ULONG Length;
    HANDLE SectionHandle;
    ULONG SectionOffset;
    SIZE_T ViewSize;
    PVOID ViewBase;
    PVOID ViewRemoteBase;
} PORT_VIEW;

typedef struct {
    ULONG Length;
    SIZE_T ViewSize;
    PVOID ViewBase;
} REMOTE_PORT_VIEW;

_Static_assert(sizeof(PORT_MESSAGE) == 0x28, "PORT_MESSAGE is 40 bytes on x64");
_Static_assert(sizeof(PORT_VIEW) == 0x30, "PORT_VIEW is 48 bytes on x64");
_Static_assert(sizeof(REMOTE_PORT_VIEW) == 0x18, "REMOTE_PORT_VIEW is 24 bytes on x64");

/* The limits, computed as ReactOS computes them (docs/LPC.md, "Limits"): the kernel's
   message block (LPCP_MESSAGE: a list entry, three pointers, the PORT_MESSAGE) and
   connection block (LPCP_CONNECTION_MESSAGE: PORT_VIEW, two pointers, REMOTE_PORT_VIEW)
   around PORT_MAXIMUM_MESSAGE_LENGTH (512 on x64), rounded up to 16
   (sdk/include/ndk/lpctypes.h LPCP_MAX_MESSAGE_SIZE); a port's MaxMessageLength is at
   most that less the block's header, its MaxConnectionInfoLength at most that less a
   PORT_MESSAGE and the connection block (ntoskrnl/lpc/create.c LpcpCreatePort). */
typedef struct {
    void *Flink, *Blink, *SenderPort, *RepliedToThread, *PortContext;
    PORT_MESSAGE Request;
} LPCP_MESSAGE_LAYOUT;
typedef struct {
    PORT_VIEW ClientView;
    void *ClientPort, *SectionToMap;
    REMOTE_PORT_VIEW ServerView;
} LPCP_CONNECTION_MESSAGE_LAYOUT;
#define PORT_MAXIMUM_MESSAGE_LENGTH 512
#define LPCP_MAX_MESSAGE_SIZE \
    ((PORT_MAXIMUM_MESSAGE_LENGTH + sizeof(LPCP_MESSAGE_LAYOUT) + sizeof(LPCP_CONNECTION_MESSAGE_LAYOUT) + 15) & ~(SIZE_T)15)
#define LPC_MAX_MESSAGE_LENGTH (LPCP_MAX_MESSAGE_SIZE - __builtin_offsetof(LPCP_MESSAGE_LAYOUT, Request))
#define LPC_MAX_CONNECTION_INFO (LPC_MAX_MESSAGE_LENGTH - sizeof(PORT_MESSAGE) - sizeof(LPCP_CONNECTION_MESSAGE_LAYOUT))
_Static_assert(LPC_MAX_MESSAGE_LENGTH == 0x288, "x64: MaxMessageLength up to 0x288");
_Static_assert(LPC_MAX_CONNECTION_INFO == 0x208, "x64: MaxConnectionInfoLength up to 0x208");

/* ----- the pipe protocol --------------------------------------------------------------- */

enum op {
    OP_CONNECT = 1, /* client -> server: PORT_MESSAGE(LPC_CONNECTION_REQUEST) + info */
    OP_ACCEPT = 2,  /* server -> client: + the server's connection information */
    OP_REFUSE = 3,  /* server -> client */
    OP_MESSAGE = 4, /* either way: a request, a reply, a datagram */
};

struct frame {
    ULONG op;
    ULONG max_message;     /* OP_ACCEPT: the port's maximum message length */
    ULONG64 section;       /* OP_CONNECT: the client's view section, a handle in the client */
    ULONG64 view_offset;   /* OP_CONNECT */
    ULONG64 view_size;     /* OP_CONNECT */
    ULONG64 remote_base;   /* OP_ACCEPT: where the server mapped the client's view */
    ULONG64 tag;           /* a request's tag, chosen by the client, echoed by its reply */
    PORT_MESSAGE msg;      /* followed by msg.DataLength bytes */
};

#define FRAME_MAX (sizeof(struct frame) + LPC_MAX_MESSAGE_LENGTH)
#define PIPE_PREFIX L"\\\\.\\pipe\\ntcomm-lpc"

/* ----- small helpers --------------------------------------------------------------------- */

static HANDLE heap;
static int kernel_side; /* messages from this process are marked LPC_KERNELMODE_MESSAGE */

static void *zalloc(SIZE_T n) { return HeapAlloc(heap, HEAP_ZERO_MEMORY, n); }
static void zfree(void *p) { if (p) HeapFree(heap, 0, p); }

static void copy(void *dst, const void *src, SIZE_T n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
}

static NTSTATUS status_of_win32(DWORD e)
{
    switch (e) {
    case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND: return STATUS_OBJECT_NAME_NOT_FOUND;
    case ERROR_BROKEN_PIPE: case ERROR_NO_DATA: case ERROR_PIPE_NOT_CONNECTED:
    case ERROR_OPERATION_ABORTED: case ERROR_INVALID_HANDLE: return STATUS_PORT_DISCONNECTED;
    case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: return STATUS_NO_MEMORY;
    case ERROR_ACCESS_DENIED: case ERROR_PIPE_BUSY: return STATUS_OBJECT_NAME_COLLISION;
    default: return STATUS_PORT_DISCONNECTED;
    }
}

/* The pipe name of a port: the prefix followed by the object name. */
static WCHAR *pipe_name(const NT_UNICODE_STRING *name, NTSTATUS *st)
{
    SIZE_T prefix = sizeof(PIPE_PREFIX) / sizeof(WCHAR) - 1, n, i;
    WCHAR *w;

    if (!name || !name->Buffer || name->Length == 0 || (name->Length & 1)) {
        *st = STATUS_OBJECT_NAME_INVALID;
        return NULL;
    }
    n = name->Length / sizeof(WCHAR);
    if (n > 200) {
        *st = STATUS_OBJECT_NAME_INVALID;
        return NULL;
    }
    if (!(w = zalloc((prefix + n + 2) * sizeof(WCHAR)))) {
        *st = STATUS_NO_MEMORY;
        return NULL;
    }
    copy(w, PIPE_PREFIX, prefix * sizeof(WCHAR));
    if (name->Buffer[0] != L'\\') w[prefix++] = L'\\';
    for (i = 0; i < n; i++) {
        WCHAR c = name->Buffer[i];
        if (c == 0) {
            zfree(w);
            *st = STATUS_OBJECT_NAME_INVALID;
            return NULL;
        }
        w[prefix + i] = c;
    }
    *st = STATUS_SUCCESS;
    return w;
}

/* One overlapped pipe operation that also ends when `stop` is set. */
static NTSTATUS pipe_io(HANDLE pipe, HANDLE stop, int write, void *buf, DWORD len, DWORD *done)
{
    OVERLAPPED ov = {0};
    HANDLE waits[2];
    BOOL ok;
    DWORD n = 0, r;

    if (!(ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL))) return STATUS_INSUFFICIENT_RESOURCES;
    ok = write ? WriteFile(pipe, buf, len, NULL, &ov) : ReadFile(pipe, buf, len, NULL, &ov);
    if (!ok && GetLastError() != ERROR_IO_PENDING && GetLastError() != ERROR_MORE_DATA) {
        DWORD e = GetLastError();
        CloseHandle(ov.hEvent);
        return status_of_win32(e);
    }
    waits[0] = ov.hEvent;
    waits[1] = stop;
    r = WaitForMultipleObjects(stop ? 2 : 1, waits, FALSE, INFINITE);
    if (r != WAIT_OBJECT_0) {
        CancelIoEx(pipe, &ov);
        GetOverlappedResult(pipe, &ov, &n, TRUE);
        CloseHandle(ov.hEvent);
        return STATUS_PORT_DISCONNECTED;
    }
    ok = GetOverlappedResult(pipe, &ov, &n, TRUE);
    CloseHandle(ov.hEvent);
    if (!ok) {
        DWORD e = GetLastError();
        /* A message longer than our buffer: the peer broke the protocol. */
        return e == ERROR_MORE_DATA ? STATUS_PORT_DISCONNECTED : status_of_win32(e);
    }
    if (done) *done = n;
    if (write && n != len) return STATUS_PORT_DISCONNECTED;
    return STATUS_SUCCESS;
}

/* Reads one frame; checks that the PORT_MESSAGE inside announces what arrived. */
static NTSTATUS read_frame(HANDLE pipe, HANDLE stop, struct frame *f)
{
    DWORD n = 0;
    NTSTATUS st = pipe_io(pipe, stop, 0, f, FRAME_MAX, &n);
    if (st) return st;
    if (n < sizeof(*f) || (ULONG)f->msg.TotalLength < (ULONG)f->msg.DataLength + PORT_MESSAGE_LEN
        || f->msg.TotalLength > LPC_MAX_MESSAGE_LENGTH || n != sizeof(*f) + f->msg.DataLength)
        return STATUS_PORT_DISCONNECTED;
    return STATUS_SUCCESS;
}

static NTSTATUS write_frame(HANDLE pipe, HANDLE stop, struct frame *f, SRWLOCK *lock)
{
    NTSTATUS st;
    if (lock) AcquireSRWLockExclusive(lock);
    st = pipe_io(pipe, stop, 1, f, sizeof(*f) + f->msg.DataLength, NULL);
    if (lock) ReleaseSRWLockExclusive(lock);
    return st;
}

/* ----- objects and the handle table -------------------------------------------------------- */

enum kind { K_SERVER = 1, K_COMM, K_CLIENT };

struct queued {
    struct queued *next;
    struct conn *conn; /* referenced */
    struct frame f;    /* FRAME_MAX bytes in all */
};

struct pending_reply {
    struct pending_reply *next;
    ULONG id;
    ULONG64 tag;       /* the client's tag of the request, for its reply */
    ULONG64 tid;       /* the requesting thread (its ClientId's UniqueThread) */
    struct conn *conn; /* referenced */
};

/* A thread of a client waiting for its reply. */
struct waiter {
    struct waiter *next;
    ULONG64 tag;
    struct frame *reply; /* FRAME_MAX bytes, filled by the port's reader */
    NTSTATUS status;     /* STATUS_PENDING until the reply (or the end) came */
};

/* A server's connection port. */
struct server {
    WCHAR *pipe;
    HANDLE claim;               /* a named event that reserves the name (pipes do not) */
    ULONG max_info, max_message;
    HANDLE listener;
    HANDLE first;               /* the pipe instance made by NtCreatePort */
    SRWLOCK lock;
    CONDITION_VARIABLE ready;
    struct queued *head, *tail;
    struct pending_reply *replies;
    LONG next_id;
};

/* One connection, server side: the pipe instance and its reader thread. */
struct conn {
    LONG refs;
    struct object *server;   /* referenced */
    HANDLE pipe, stop;       /* stop: set when either side closes */
    SRWLOCK write_lock;
    volatile LONG accepted, local_close;
    PVOID context;
    ULONG64 client_pid, client_tid;
    ULONG connect_id;
    ULONG64 section, view_offset, view_size; /* the client's view, as it sent it */
    PVOID view;                              /* mapped here at accept */
    struct frame *accept_frame;              /* made by accept, sent by complete */
};

struct object {
    LONG refs;
    enum kind kind;
    HANDLE key;   /* the handle the caller holds (an unnamed event) */
    HANDLE stop;  /* set when the handle is closed */
    volatile LONG closed;
    int published; /* key belongs to the caller, closed by its NtClose */
    union {
        struct server server;
        struct { struct conn *conn; } comm; /* referenced */
        struct {
            HANDLE pipe;
            HANDLE reader;           /* the thread that reads replies */
            SRWLOCK write_lock;      /* one frame at a time on the pipe */
            SRWLOCK lock;            /* waiters, broken */
            CONDITION_VARIABLE done; /* a waiter's status changed */
            struct waiter *waiters;
            int broken;              /* the pipe is gone: no more replies */
            LONG64 next_tag;
            ULONG max_message;
            PVOID view;
        } client;
    } u;
};

#define TABLE_SIZE 1024
static SRWLOCK table_lock = SRWLOCK_INIT;
static struct object *table[TABLE_SIZE];
static volatile LONG table_count;

static void conn_release(struct conn *c);
static void object_release(struct object *o);

static void object_addref(struct object *o) { InterlockedIncrement(&o->refs); }

static struct object *object_new(enum kind kind)
{
    struct object *o = zalloc(sizeof(*o));
    if (!o) return NULL;
    o->refs = 1;
    o->kind = kind;
    o->key = CreateEventW(NULL, TRUE, FALSE, NULL);
    o->stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!o->key || !o->stop) {
        if (o->key) CloseHandle(o->key);
        if (o->stop) CloseHandle(o->stop);
        zfree(o);
        return NULL;
    }
    return o;
}

/* Publishes o under its key handle; the table holds the creator's reference. */
static NTSTATUS object_publish(struct object *o, HANDLE *out)
{
    int i;
    AcquireSRWLockExclusive(&table_lock);
    for (i = 0; i < TABLE_SIZE; i++) {
        if (!table[i]) {
            table[i] = o;
            o->published = 1;
            InterlockedIncrement(&table_count);
            ReleaseSRWLockExclusive(&table_lock);
            *out = o->key;
            return STATUS_SUCCESS;
        }
    }
    ReleaseSRWLockExclusive(&table_lock);
    return STATUS_INSUFFICIENT_RESOURCES;
}

/* The object behind a handle, referenced; NULL if the handle is not a port. */
static struct object *object_get(HANDLE h, enum kind kind)
{
    struct object *o = NULL;
    int i;
    if (!table_count) return NULL;
    AcquireSRWLockShared(&table_lock);
    for (i = 0; i < TABLE_SIZE; i++) {
        if (table[i] && table[i]->key == h) {
            if (!kind || table[i]->kind == kind || (kind == K_SERVER && table[i]->kind == K_COMM)) {
                o = table[i];
                object_addref(o);
            }
            break;
        }
    }
    ReleaseSRWLockShared(&table_lock);
    return o;
}

/* The status for a handle that is not a port of the kind a call needs. */
static NTSTATUS wrong_kind(HANDLE h)
{
    struct object *o = object_get(h, 0);
    if (!o) return STATUS_INVALID_HANDLE;
    object_release(o);
    return STATUS_NOT_SUPPORTED;
}

static struct object *object_unpublish(HANDLE h)
{
    struct object *o = NULL;
    int i;
    if (!table_count) return NULL;
    AcquireSRWLockExclusive(&table_lock);
    for (i = 0; i < TABLE_SIZE; i++) {
        if (table[i] && table[i]->key == h) {
            o = table[i];
            table[i] = NULL;
            InterlockedDecrement(&table_count);
            break;
        }
    }
    ReleaseSRWLockExclusive(&table_lock);
    return o;
}

static void conn_release(struct conn *c)
{
    if (InterlockedDecrement(&c->refs)) return;
    if (c->view) UnmapViewOfFile(c->view);
    zfree(c->accept_frame);
    CloseHandle(c->pipe);
    CloseHandle(c->stop);
    object_release(c->server);
    zfree(c);
}

static void server_drain(struct server *s)
{
    struct queued *q;
    struct pending_reply *r;
    AcquireSRWLockExclusive(&s->lock);
    q = s->head;
    s->head = s->tail = NULL;
    r = s->replies;
    s->replies = NULL;
    ReleaseSRWLockExclusive(&s->lock);
    while (q) {
        struct queued *next = q->next;
        if (q->conn) conn_release(q->conn);
        zfree(q);
        q = next;
    }
    while (r) {
        struct pending_reply *next = r->next;
        conn_release(r->conn);
        zfree(r);
        r = next;
    }
}

static void object_release(struct object *o)
{
    if (InterlockedDecrement(&o->refs)) return;
    switch (o->kind) {
    case K_SERVER:
        server_drain(&o->u.server);
        if (o->u.server.listener) CloseHandle(o->u.server.listener);
        if (o->u.server.first) CloseHandle(o->u.server.first);
        if (o->u.server.claim) CloseHandle(o->u.server.claim);
        zfree(o->u.server.pipe);
        break;
    case K_COMM:
        if (o->u.comm.conn) conn_release(o->u.comm.conn);
        break;
    case K_CLIENT:
        if (o->u.client.view) UnmapViewOfFile(o->u.client.view);
        if (o->u.client.pipe) CloseHandle(o->u.client.pipe);
        if (o->u.client.reader) CloseHandle(o->u.client.reader);
        break;
    }
    if (!o->published) CloseHandle(o->key);
    CloseHandle(o->stop);
    zfree(o);
}

/* The caller closed the handle: the port stops serving (threads blocked on it return). */
static void object_close(struct object *o)
{
    InterlockedExchange(&o->closed, 1);
    SetEvent(o->stop);
    switch (o->kind) {
    case K_SERVER: {
        HANDLE claim;
        AcquireSRWLockExclusive(&o->u.server.lock);
        WakeAllConditionVariable(&o->u.server.ready);
        ReleaseSRWLockExclusive(&o->u.server.lock);
        /* The name is free once this returns: no listening instance, no claim. */
        if (o->u.server.listener) WaitForSingleObject(o->u.server.listener, 5000);
        claim = InterlockedExchangePointer(&o->u.server.claim, NULL);
        if (claim) CloseHandle(claim);
        break;
    }
    case K_COMM:
        /* The client sees the pipe break: its next request fails PORT_DISCONNECTED.
           The server closed it itself: no LPC_PORT_CLOSED for it. */
        InterlockedExchange(&o->u.comm.conn->local_close, 1);
        SetEvent(o->u.comm.conn->stop);
        CancelIoEx(o->u.comm.conn->pipe, NULL);
        break;
    case K_CLIENT:
        CancelIoEx(o->u.client.pipe, NULL);
        break;
    }
}

/* ----- server: queue ----------------------------------------------------------------------- */

static void server_push(struct object *so, struct queued *q)
{
    struct server *s = &so->u.server;
    AcquireSRWLockExclusive(&s->lock);
    q->next = NULL;
    if (s->tail) s->tail->next = q; else s->head = q;
    s->tail = q;
    WakeConditionVariable(&s->ready);
    ReleaseSRWLockExclusive(&s->lock);
}

static struct queued *server_pop(struct object *so)
{
    struct server *s = &so->u.server;
    struct queued *q;
    AcquireSRWLockExclusive(&s->lock);
    while (!s->head && !so->closed) SleepConditionVariableSRW(&s->ready, &s->lock, INFINITE, 0);
    q = s->head;
    if (q) {
        s->head = q->next;
        if (!s->head) s->tail = NULL;
    }
    ReleaseSRWLockExclusive(&s->lock);
    return q;
}

/* ----- server: threads ---------------------------------------------------------------------- */

static DWORD WINAPI conn_reader(void *arg)
{
    struct conn *c = arg;
    struct object *so = c->server;
    HANDLE stops[1];

    stops[0] = c->stop;
    for (;;) {
        struct queued *q = zalloc(sizeof(*q) + LPC_MAX_MESSAGE_LENGTH);
        NTSTATUS st;
        if (!q) break;
        st = read_frame(c->pipe, stops[0], &q->f);
        if (st || so->closed) {
            /* The client went away (or we closed): an accepted connection reports it. */
            if (c->accepted && !c->local_close && !so->closed) {
                q->f.op = OP_MESSAGE;
                q->f.msg = (PORT_MESSAGE){ .DataLength = 0, .TotalLength = PORT_MESSAGE_LEN,
                                           .Type = LPC_PORT_CLOSED, .UniqueProcess = c->client_pid,
                                           .UniqueThread = c->client_tid };
                InterlockedIncrement(&c->refs);
                q->conn = c;
                server_push(so, q);
            } else {
                zfree(q);
            }
            break;
        }
        if (q->f.op == OP_CONNECT && !c->connect_id) {
            if (q->f.msg.DataLength > LPC_MAX_CONNECTION_INFO) {
                zfree(q);
                break; /* the client cuts it to this: protocol violation */
            }
            c->connect_id = (ULONG)InterlockedIncrement(&so->u.server.next_id);
            c->client_pid = q->f.msg.UniqueProcess;
            c->client_tid = q->f.msg.UniqueThread;
            c->section = q->f.section;
            c->view_offset = q->f.view_offset;
            c->view_size = q->f.view_size;
            q->f.msg.Type = LPC_CONNECTION_REQUEST | (q->f.msg.Type & LPC_KERNELMODE_MESSAGE);
            q->f.msg.MessageId = c->connect_id;
            q->f.msg.ClientViewSize = c->view_size;
        } else if (q->f.op == OP_MESSAGE && c->accepted) {
            USHORT type = q->f.msg.Type & LPC_TYPE_MASK;
            if (type != LPC_REQUEST && type != LPC_DATAGRAM) {
                zfree(q);
                continue; /* a client sends nothing else */
            }
            q->f.msg.MessageId = (ULONG)InterlockedIncrement(&so->u.server.next_id);
        } else {
            zfree(q);
            break; /* protocol violation */
        }
        InterlockedIncrement(&c->refs);
        q->conn = c;
        server_push(so, q);
    }
    conn_release(c);
    return 0;
}

static HANDLE make_instance(struct server *s, BOOL first)
{
    return CreateNamedPipeW(s->pipe,
                            PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
                            PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT,
                            PIPE_UNLIMITED_INSTANCES, FRAME_MAX, FRAME_MAX, 0, NULL);
}

static DWORD WINAPI listener(void *arg)
{
    struct object *so = arg;
    struct server *s = &so->u.server;
    HANDLE inst = s->first;

    s->first = NULL;
    while (!so->closed) {
        OVERLAPPED ov = {0};
        HANDLE waits[2];
        struct conn *c;
        DWORD r, n;
        BOOL connected;

        if (inst == INVALID_HANDLE_VALUE || !inst) {
            inst = make_instance(s, FALSE);
            if (inst == INVALID_HANDLE_VALUE) {
                Sleep(10);
                continue;
            }
        }
        ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (!ov.hEvent) break;
        connected = ConnectNamedPipe(inst, &ov);
        if (!connected && GetLastError() == ERROR_PIPE_CONNECTED) {
            connected = TRUE;
        } else if (!connected && GetLastError() == ERROR_IO_PENDING) {
            waits[0] = ov.hEvent;
            waits[1] = so->stop;
            r = WaitForMultipleObjects(2, waits, FALSE, INFINITE);
            if (r != WAIT_OBJECT_0) {
                CancelIoEx(inst, &ov);
                GetOverlappedResult(inst, &ov, &n, TRUE);
                CloseHandle(ov.hEvent);
                break;
            }
            connected = GetOverlappedResult(inst, &ov, &n, TRUE);
        }
        CloseHandle(ov.hEvent);
        if (!connected) {
            CloseHandle(inst);
            inst = NULL;
            continue;
        }
        c = zalloc(sizeof(*c));
        if (c) c->stop = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (!c || !c->stop) {
            zfree(c);
            CloseHandle(inst);
            inst = NULL;
            continue;
        }
        c->refs = 1; /* the reader's */
        c->pipe = inst;
        inst = NULL;
        InitializeSRWLock(&c->write_lock);
        object_addref(so);
        c->server = so;
        {
            HANDLE t = CreateThread(NULL, 0, conn_reader, c, 0, NULL);
            if (t) CloseHandle(t); else conn_release(c);
        }
    }
    if (inst && inst != INVALID_HANDLE_VALUE) CloseHandle(inst);
    object_release(so);
    return 0;
}

/* ----- the Nt*Port implementations ------------------------------------------------------------- */

static NTSTATUS NTAPI lpc_NtCreatePort(HANDLE *out, NT_OBJECT_ATTRIBUTES *oa, ULONG max_info, ULONG max_message,
                                      ULONG max_pool)
{
    struct object *o;
    struct server *s;
    NTSTATUS st;
    HANDLE t;

    (void)max_pool;
    if (!out || !oa) return STATUS_INVALID_PARAMETER;
    /* LpcpCreatePort: these two checks, in this order, and the port keeps the
       MaxMessageLength asked for (smaller than a header: every message is too long). */
    if (max_info > LPC_MAX_CONNECTION_INFO) return STATUS_INVALID_PARAMETER_3;
    if (max_message > LPC_MAX_MESSAGE_LENGTH) return STATUS_INVALID_PARAMETER_4;
    if (!(o = object_new(K_SERVER))) return STATUS_NO_MEMORY;
    s = &o->u.server;
    InitializeSRWLock(&s->lock);
    InitializeConditionVariable(&s->ready);
    s->max_info = max_info;
    s->max_message = max_message;
    if (!(s->pipe = pipe_name(oa->ObjectName, &st))) goto fail;
    /* Wine does not refuse a second FILE_FLAG_FIRST_PIPE_INSTANCE: a named event,
       Global\ntcomm-lpc!<name with '!' for '\'>, makes the name taken. */
    {
        SIZE_T prefix = sizeof(PIPE_PREFIX) / sizeof(WCHAR) - 1, i, n;
        static const WCHAR global[] = L"Global\\ntcomm-lpc";
        SIZE_T g = sizeof(global) / sizeof(WCHAR) - 1;
        WCHAR *claim;
        for (n = 0; s->pipe[prefix + n]; n++) {}
        if (!(claim = zalloc((g + n + 1) * sizeof(WCHAR)))) {
            st = STATUS_NO_MEMORY;
            goto fail;
        }
        copy(claim, global, g * sizeof(WCHAR));
        for (i = 0; i < n; i++) claim[g + i] = s->pipe[prefix + i] == L'\\' ? L'!' : s->pipe[prefix + i];
        s->claim = CreateEventW(NULL, TRUE, FALSE, claim);
        zfree(claim);
        if (!s->claim || GetLastError() == ERROR_ALREADY_EXISTS) {
            st = STATUS_OBJECT_NAME_COLLISION;
            goto fail;
        }
    }
    /* The first instance now, so a client connecting right after this call finds the port. */
    s->first = make_instance(s, TRUE);
    if (s->first == INVALID_HANDLE_VALUE) {
        s->first = NULL;
        st = STATUS_OBJECT_NAME_COLLISION;
        goto fail;
    }
    object_addref(o); /* the listener's */
    if (!(t = CreateThread(NULL, 0, listener, o, 0, NULL))) {
        object_release(o);
        st = STATUS_INSUFFICIENT_RESOURCES;
        goto fail;
    }
    s->listener = t;
    if ((st = object_publish(o, out))) {
        object_close(o);
        goto fail;
    }
    return STATUS_SUCCESS;
fail:
    object_release(o);
    return st;
}

/* The conn a connection request (or a reply) belongs to, referenced. */
static struct conn *take_pending_reply(struct server *s, ULONG id, ULONG64 *tag, ULONG64 *tid)
{
    struct pending_reply **pp, *r;
    struct conn *c = NULL;
    AcquireSRWLockExclusive(&s->lock);
    for (pp = &s->replies; (r = *pp); pp = &r->next) {
        if (r->id == id) {
            *pp = r->next;
            c = r->conn;
            if (tag) *tag = r->tag;
            if (tid) *tid = r->tid;
            zfree(r);
            break;
        }
    }
    ReleaseSRWLockExclusive(&s->lock);
    return c;
}

static NTSTATUS remember_reply(struct server *s, ULONG id, struct conn *c, ULONG64 tag, ULONG64 tid)
{
    struct pending_reply *r = zalloc(sizeof(*r));
    if (!r) return STATUS_NO_MEMORY;
    r->id = id;
    r->tag = tag;
    r->tid = tid;
    InterlockedIncrement(&c->refs);
    r->conn = c;
    AcquireSRWLockExclusive(&s->lock);
    r->next = s->replies;
    s->replies = r;
    ReleaseSRWLockExclusive(&s->lock);
    return STATUS_SUCCESS;
}

/* The length checks ReactOS makes on every message sent (reply.c NtReplyPort,
   NtReplyWaitReceivePortEx; send.c NtRequestPort, NtRequestWaitReplyPort): a header
   that does not hold its data is invalid; a TotalLength over the port's
   MaxMessageLength (or not above DataLength) is too long. */
static NTSTATUS check_lengths(const PORT_MESSAGE *m, ULONG max_message)
{
    if ((ULONG)m->DataLength + PORT_MESSAGE_LEN > (ULONG)m->TotalLength) return STATUS_INVALID_PARAMETER;
    if ((ULONG)m->TotalLength > max_message || m->TotalLength <= m->DataLength) return STATUS_PORT_MESSAGE_TOO_LONG;
    return STATUS_SUCCESS;
}

static NTSTATUS send_reply(struct object *so, PORT_MESSAGE *reply)
{
    struct server *s = &so->u.server;
    struct frame *f;
    struct conn *c;
    ULONG64 tag = 0, tid = 0;
    NTSTATUS st;

    if ((st = check_lengths(reply, s->max_message))) return st;
    if (!reply->MessageId) return STATUS_INVALID_PARAMETER;
    if (!(c = take_pending_reply(s, reply->MessageId, &tag, &tid))) return STATUS_REPLY_MESSAGE_MISMATCH;
    if (c->client_pid != reply->UniqueProcess || tid != reply->UniqueThread) {
        /* The ClientId does not name the thread waiting for this message id (reply.c
           finds the thread by the reply's ClientId): put it back. */
        remember_reply(s, reply->MessageId, c, tag, tid);
        conn_release(c);
        return STATUS_REPLY_MESSAGE_MISMATCH;
    }
    if (!(f = zalloc(FRAME_MAX))) {
        conn_release(c);
        return STATUS_NO_MEMORY;
    }
    f->op = OP_MESSAGE;
    f->tag = tag;
    /* As LpcpMoveMessage moves a reply (reply.c): the header as the server built it,
       lengths and ClientId included; only the type is set. */
    copy(&f->msg, reply, PORT_MESSAGE_LEN + reply->DataLength);
    f->msg.Type = LPC_REPLY;
    st = write_frame(c->pipe, c->stop, f, &c->write_lock);
    zfree(f);
    conn_release(c);
    /* A client gone before the reply: the reply is lost, not the server's error. */
    return st == STATUS_PORT_DISCONNECTED ? STATUS_SUCCESS : st;
}

static NTSTATUS NTAPI lpc_NtReplyWaitReceivePort(HANDLE h, PVOID *context, PORT_MESSAGE *reply, PORT_MESSAGE *msg)
{
    struct object *o = object_get(h, K_SERVER), *so;
    struct queued *q;
    NTSTATUS st = STATUS_SUCCESS;

    if (!o) return wrong_kind(h);
    so = o->kind == K_COMM ? o->u.comm.conn->server : o;
    if (reply && (st = send_reply(so, reply))) goto out;
    if (!msg) {
        st = STATUS_INVALID_PARAMETER;
        goto out;
    }
    for (;;) {
        q = server_pop(so);
        if (!q) {
            st = STATUS_INVALID_HANDLE; /* the port was closed while we waited */
            goto out;
        }
        if ((q->f.msg.Type & LPC_TYPE_MASK) == LPC_REQUEST
            && (st = remember_reply(&so->u.server, q->f.msg.MessageId, q->conn, q->f.tag, q->f.msg.UniqueThread))) {
            conn_release(q->conn);
            zfree(q);
            goto out;
        }
        break;
    }
    copy(msg, &q->f.msg, PORT_MESSAGE_LEN + q->f.msg.DataLength);
    if (context) *context = (q->f.msg.Type & LPC_TYPE_MASK) == LPC_CONNECTION_REQUEST ? NULL : q->conn->context;
    if ((q->f.msg.Type & LPC_TYPE_MASK) == LPC_CONNECTION_REQUEST) {
        /* Keep the conn for NtAcceptConnectPort, found by the message id. */
        st = remember_reply(&so->u.server, q->f.msg.MessageId, q->conn, 0, 0);
    }
    conn_release(q->conn);
    zfree(q);
out:
    object_release(o);
    return st;
}

static NTSTATUS NTAPI lpc_NtListenPort(HANDLE h, PORT_MESSAGE *msg)
{
    for (;;) {
        PVOID ctx;
        NTSTATUS st = lpc_NtReplyWaitReceivePort(h, &ctx, NULL, msg);
        if (st) return st;
        if ((msg->Type & LPC_TYPE_MASK) == LPC_CONNECTION_REQUEST) return STATUS_SUCCESS;
        /* NtListenPort waits for connection requests only; anything else is dropped
           (a request dropped here would never be answered: count it as lost). */
    }
}

static NTSTATUS NTAPI lpc_NtAcceptConnectPort(HANDLE *out, PVOID context, PORT_MESSAGE *req, BOOLEAN accept,
                                             PORT_VIEW *server_view, REMOTE_PORT_VIEW *client_view)
{
    struct object *so = NULL, *o = NULL;
    struct conn *c = NULL;
    NTSTATUS st;
    int i;

    if (!req || (accept && !out)) return STATUS_INVALID_PARAMETER;
    if (server_view) return STATUS_NOT_SUPPORTED; /* server views: not implemented (README) */
    if ((ULONG)req->DataLength + PORT_MESSAGE_LEN > (ULONG)req->TotalLength) return STATUS_INVALID_PARAMETER;
    /* Any server port of this process may hold the connection; find it by message id. */
    AcquireSRWLockShared(&table_lock);
    for (i = 0; i < TABLE_SIZE && !c; i++) {
        struct object *t = table[i];
        struct pending_reply *r;
        if (!t || t->kind != K_SERVER) continue;
        AcquireSRWLockShared(&t->u.server.lock);
        for (r = t->u.server.replies; r; r = r->next) {
            if (r->id == req->MessageId && r->conn->connect_id == req->MessageId && !r->conn->accepted) {
                so = t;
                object_addref(so);
                break;
            }
        }
        ReleaseSRWLockShared(&t->u.server.lock);
        if (so) c = take_pending_reply(&so->u.server, req->MessageId, NULL, NULL);
    }
    ReleaseSRWLockShared(&table_lock);
    if (!c) {
        if (so) object_release(so);
        return STATUS_REPLY_MESSAGE_MISMATCH;
    }
    if (!accept) {
        st = STATUS_SUCCESS;
        goto refuse;
    }
    if (c->section) {
        /* Map the client's section here: duplicate its handle out of the client. */
        HANDLE proc = OpenProcess(PROCESS_DUP_HANDLE, FALSE, (DWORD)c->client_pid), dup = NULL;
        if (proc && DuplicateHandle(proc, (HANDLE)(ULONG_PTR)c->section, GetCurrentProcess(), &dup, 0, FALSE,
                                    DUPLICATE_SAME_ACCESS)) {
            c->view = MapViewOfFile(dup, FILE_MAP_READ | FILE_MAP_WRITE, (DWORD)(c->view_offset >> 32),
                                    (DWORD)c->view_offset, (SIZE_T)c->view_size);
            CloseHandle(dup);
        }
        if (proc) CloseHandle(proc);
        if (!c->view) {
            st = STATUS_INSUFFICIENT_RESOURCES;
            goto refuse;
        }
        if (client_view) {
            client_view->ViewSize = c->view_size;
            client_view->ViewBase = c->view;
        }
    }
    if (!(o = object_new(K_COMM))) {
        st = STATUS_NO_MEMORY;
        goto refuse;
    }
    if (!(c->accept_frame = zalloc(FRAME_MAX))) {
        object_release(o);
        o = NULL;
        st = STATUS_NO_MEMORY;
        goto refuse;
    }
    /* The client is released by NtCompleteConnectPort, which sends this frame. */
    c->accept_frame->op = OP_ACCEPT;
    c->accept_frame->max_message = so->u.server.max_message;
    c->accept_frame->remote_base = (ULONG64)(ULONG_PTR)c->view;
    /* The server's connection information, cut to the port's maximum as the
       client's is (connect.c "Normalize connection information"). */
    copy(&c->accept_frame->msg, req, PORT_MESSAGE_LEN);
    c->accept_frame->msg.DataLength = req->DataLength > LPC_MAX_CONNECTION_INFO ? LPC_MAX_CONNECTION_INFO : req->DataLength;
    copy(c->accept_frame + 1, req + 1, c->accept_frame->msg.DataLength);
    c->accept_frame->msg.TotalLength = PORT_MESSAGE_LEN + c->accept_frame->msg.DataLength;
    c->context = context;
    o->u.comm.conn = c; /* takes our reference */
    InterlockedExchange(&c->accepted, 1);
    if ((st = object_publish(o, out))) {
        object_release(o); /* releases c: the reader sees the client's pipe close */
        SetEvent(c->stop);
        object_release(so);
        return st;
    }
    object_release(so);
    return STATUS_SUCCESS;

refuse:
    {
        struct frame f = {0};
        f.op = OP_REFUSE;
        f.msg.TotalLength = PORT_MESSAGE_LEN;
        write_frame(c->pipe, c->stop, &f, &c->write_lock);
        SetEvent(c->stop);
        CancelIoEx(c->pipe, NULL);
        conn_release(c);
    }
    object_release(so);
    return st;
}

static NTSTATUS NTAPI lpc_NtCompleteConnectPort(HANDLE h)
{
    struct object *o = object_get(h, K_COMM);
    struct conn *c;
    struct frame *f;
    NTSTATUS st = STATUS_SUCCESS;

    if (!o) return STATUS_INVALID_HANDLE;
    c = o->u.comm.conn;
    f = (struct frame *)InterlockedExchangePointer((PVOID *)&c->accept_frame, NULL);
    if (f) {
        st = write_frame(c->pipe, c->stop, f, &c->write_lock);
        zfree(f);
        /* A client that left meanwhile: its reader reports LPC_PORT_CLOSED. */
        if (st == STATUS_PORT_DISCONNECTED) st = STATUS_SUCCESS;
    }
    object_release(o);
    return st;
}

static DWORD WINAPI client_reader(void *arg);

/* NtSecureConnectPort's RequiredServerSid, as ReactOS and Windows check it: the
   user SID of the primary token of the process that serves the port must equal
   the required SID, else STATUS_SERVER_SID_MISMATCH, before the server sees a
   connection request. Here the server of a connection is the process at the
   other end of our pipe instance (GetNamedPipeServerProcessId), so a process
   that added instances under the port's pipe name is judged as itself.
   Under Wine every process runs as one user: the check is real but cannot
   tell two processes of that user apart. */
static NTSTATUS check_server_sid(HANDLE pipe, PSID required)
{
    typedef NTSTATUS (NTAPI *open_token_fn)(HANDLE, ACCESS_MASK, HANDLE *);
    typedef NTSTATUS (NTAPI *query_token_fn)(HANDLE, TOKEN_INFORMATION_CLASS, void *, ULONG, ULONG *);
    typedef BOOLEAN (NTAPI *sid_fn)(PSID);
    typedef BOOLEAN (NTAPI *equal_sid_fn)(PSID, PSID);
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    open_token_fn open_token = ntdll ? (open_token_fn)(void *)GetProcAddress(ntdll, "NtOpenProcessToken") : NULL;
    query_token_fn query_token = ntdll ? (query_token_fn)(void *)GetProcAddress(ntdll, "NtQueryInformationToken") : NULL;
    sid_fn valid_sid = ntdll ? (sid_fn)(void *)GetProcAddress(ntdll, "RtlValidSid") : NULL;
    equal_sid_fn equal_sid = ntdll ? (equal_sid_fn)(void *)GetProcAddress(ntdll, "RtlEqualSid") : NULL;
    ULONG64 buf[32]; /* TOKEN_USER and the SID */
    TOKEN_USER *user = (TOKEN_USER *)(void *)buf;
    ULONG pid = 0, got = 0;
    HANDLE process, token;
    NTSTATUS st;

    if (!open_token || !query_token || !valid_sid || !equal_sid) return STATUS_NOT_SUPPORTED;
    if (!valid_sid(required)) return STATUS_INVALID_SID;
    if (!GetNamedPipeServerProcessId(pipe, &pid)) return STATUS_SERVER_SID_MISMATCH; /* no server: no identity */
    if (!(process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid))) return STATUS_SERVER_SID_MISMATCH;
    st = open_token(process, TOKEN_QUERY, &token);
    CloseHandle(process);
    if (st) return STATUS_SERVER_SID_MISMATCH;
    st = query_token(token, TokenUser, buf, sizeof(buf), &got);
    CloseHandle(token);
    if (st) return STATUS_SERVER_SID_MISMATCH;
    return equal_sid(required, user->User.Sid) ? STATUS_SUCCESS : STATUS_SERVER_SID_MISMATCH;
}

static NTSTATUS connect_common(HANDLE *out, NT_UNICODE_STRING *name, PORT_VIEW *client_view,
                               REMOTE_PORT_VIEW *server_view, ULONG *max_message, PVOID info, ULONG *info_len,
                               PSID server_sid)
{
    struct object *o;
    struct frame *f;
    WCHAR *path;
    HANDLE pipe = INVALID_HANDLE_VALUE;
    DWORD mode = PIPE_READMODE_MESSAGE;
    ULONG in_len = info_len ? *info_len : 0;
    NTSTATUS st;
    int tries;

    if (!out) return STATUS_INVALID_PARAMETER;
    if (in_len && !info) return STATUS_INVALID_PARAMETER;
    /* connect.c: "Normalize connection information" to the port's maximum. */
    if (in_len > LPC_MAX_CONNECTION_INFO) in_len = LPC_MAX_CONNECTION_INFO;
    if (server_view) server_view->ViewBase = NULL, server_view->ViewSize = 0;
    if (!(path = pipe_name(name, &st))) return st;
    for (tries = 0; tries < 200; tries++) {
        pipe = CreateFileW(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
        if (pipe != INVALID_HANDLE_VALUE || GetLastError() != ERROR_PIPE_BUSY) break;
        /* Every instance taken: the listener makes another one at once. */
        WaitNamedPipeW(path, 50);
    }
    zfree(path);
    if (pipe == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        return e == ERROR_PIPE_BUSY ? STATUS_INSUFFICIENT_RESOURCES : status_of_win32(e);
    }
    SetNamedPipeHandleState(pipe, &mode, NULL, NULL);
    if (server_sid && (st = check_server_sid(pipe, server_sid))) {
        CloseHandle(pipe);
        return st;
    }
    if (!(o = object_new(K_CLIENT)) || !(f = zalloc(FRAME_MAX))) {
        if (o) object_release(o);
        CloseHandle(pipe);
        return STATUS_NO_MEMORY;
    }
    o->u.client.pipe = pipe;
    InitializeSRWLock(&o->u.client.write_lock);
    InitializeSRWLock(&o->u.client.lock);
    InitializeConditionVariable(&o->u.client.done);
    f->op = OP_CONNECT;
    f->msg.Type = LPC_CONNECTION_REQUEST | (kernel_side ? LPC_KERNELMODE_MESSAGE : 0);
    f->msg.DataLength = (USHORT)in_len;
    f->msg.TotalLength = (USHORT)(PORT_MESSAGE_LEN + in_len);
    f->msg.UniqueProcess = GetCurrentProcessId();
    f->msg.UniqueThread = GetCurrentThreadId();
    if (in_len) copy(f + 1, info, in_len);
    if (client_view && client_view->SectionHandle) {
        if (client_view->Length != sizeof(PORT_VIEW) || !client_view->ViewSize) {
            st = STATUS_INVALID_PARAMETER;
            goto fail;
        }
        o->u.client.view = MapViewOfFile(client_view->SectionHandle, FILE_MAP_READ | FILE_MAP_WRITE, 0,
                                         client_view->SectionOffset, client_view->ViewSize);
        if (!o->u.client.view) {
            st = STATUS_INVALID_PARAMETER;
            goto fail;
        }
        f->section = (ULONG64)(ULONG_PTR)client_view->SectionHandle;
        f->view_offset = client_view->SectionOffset;
        f->view_size = client_view->ViewSize;
    }
    if ((st = write_frame(pipe, o->stop, f, NULL))) goto fail;
    if ((st = read_frame(pipe, o->stop, f))) goto fail; /* the server closed: no such port anymore */
    if (f->op == OP_REFUSE) {
        st = STATUS_PORT_CONNECTION_REFUSED;
        goto fail;
    }
    if (f->op != OP_ACCEPT) {
        st = STATUS_PORT_DISCONNECTED;
        goto fail;
    }
    o->u.client.max_message = f->max_message;
    if (max_message) *max_message = f->max_message;
    if (info_len) {
        ULONG n = f->msg.DataLength;
        if (n > *info_len && info) n = *info_len; /* the caller's buffer is as long as what it sent */
        if (info && n) copy(info, f + 1, n);
        *info_len = n;
    }
    if (client_view && o->u.client.view) {
        client_view->ViewBase = o->u.client.view;
        client_view->ViewRemoteBase = (PVOID)(ULONG_PTR)f->remote_base;
    }
    zfree(f);
    f = NULL;
    /* Replies are read by one thread and handed to whichever request they answer,
       so several threads may have requests in flight on this port. */
    object_addref(o);
    if (!(o->u.client.reader = CreateThread(NULL, 0, client_reader, o, 0, NULL))) {
        object_release(o);
        st = STATUS_INSUFFICIENT_RESOURCES;
        goto fail;
    }
    if ((st = object_publish(o, out))) {
        object_close(o); /* ends the reader */
        object_release(o);
        return st;
    }
    return STATUS_SUCCESS;
fail:
    zfree(f);
    object_release(o); /* closes the pipe */
    return st;
}

static NTSTATUS NTAPI lpc_NtConnectPort(HANDLE *out, NT_UNICODE_STRING *name, PVOID qos, PORT_VIEW *client_view,
                                       REMOTE_PORT_VIEW *server_view, ULONG *max_message, PVOID info,
                                       ULONG *info_len)
{
    (void)qos;
    return connect_common(out, name, client_view, server_view, max_message, info, info_len, NULL);
}

static NTSTATUS NTAPI lpc_NtSecureConnectPort(HANDLE *out, NT_UNICODE_STRING *name, PVOID qos,
                                             PORT_VIEW *client_view, PVOID server_sid,
                                             REMOTE_PORT_VIEW *server_view, ULONG *max_message, PVOID info,
                                             ULONG *info_len)
{
    (void)qos; /* accepted and ignored: a server under Wine cannot impersonate anyway (README) */
    return connect_common(out, name, client_view, server_view, max_message, info, info_len, server_sid);
}

/* Sends a request or a datagram from a client port. */
static NTSTATUS client_send(struct object *o, PORT_MESSAGE *req, USHORT type, struct frame *f, ULONG64 tag)
{
    NTSTATUS st = check_lengths(req, o->u.client.max_message);
    if (st) return st;
    f->op = OP_MESSAGE;
    copy(&f->msg, req, PORT_MESSAGE_LEN + req->DataLength);
    f->msg.Type = type | (kernel_side ? LPC_KERNELMODE_MESSAGE : 0);
    f->msg.UniqueProcess = GetCurrentProcessId();
    f->msg.UniqueThread = GetCurrentThreadId();
    f->tag = tag;
    return write_frame(o->u.client.pipe, o->stop, f, &o->u.client.write_lock);
}

static NTSTATUS NTAPI lpc_NtRequestWaitReplyPort(HANDLE h, PORT_MESSAGE *req, PORT_MESSAGE *reply)
{
    struct object *o = object_get(h, K_CLIENT);
    struct waiter w = {0}, **pp;
    struct frame *f;
    NTSTATUS st;

    if (!o) return wrong_kind(h);
    if (!req || !reply) {
        object_release(o);
        return STATUS_INVALID_PARAMETER;
    }
    f = zalloc(FRAME_MAX);
    w.reply = zalloc(FRAME_MAX);
    if (!f || !w.reply) {
        zfree(f);
        zfree(w.reply);
        object_release(o);
        return STATUS_NO_MEMORY;
    }
    /* Registered before sending, so the reader finds us whenever the reply comes. */
    w.tag = (ULONG64)InterlockedIncrement64(&o->u.client.next_tag);
    w.status = STATUS_PENDING;
    AcquireSRWLockExclusive(&o->u.client.lock);
    st = o->u.client.broken || o->closed ? STATUS_PORT_DISCONNECTED : STATUS_SUCCESS;
    if (!st) {
        w.next = o->u.client.waiters;
        o->u.client.waiters = &w;
    }
    ReleaseSRWLockExclusive(&o->u.client.lock);
    if (!st) st = client_send(o, req, LPC_REQUEST, f, w.tag);
    AcquireSRWLockExclusive(&o->u.client.lock);
    while (!st && w.status == STATUS_PENDING)
        SleepConditionVariableSRW(&o->u.client.done, &o->u.client.lock, INFINITE, 0);
    for (pp = &o->u.client.waiters; *pp; pp = &(*pp)->next) {
        if (*pp == &w) {
            *pp = w.next;
            break;
        }
    }
    ReleaseSRWLockExclusive(&o->u.client.lock);
    if (!st) st = w.status;
    if (!st) copy(reply, &w.reply->msg, PORT_MESSAGE_LEN + w.reply->msg.DataLength);
    zfree(w.reply);
    zfree(f);
    object_release(o);
    return st;
}

/* The reader of a client port: hands each reply to the request with its tag; when the
   pipe ends (the server went away, or the port was closed), every waiter gets
   STATUS_PORT_DISCONNECTED. */
static DWORD WINAPI client_reader(void *arg)
{
    struct object *o = arg;
    struct frame *f = zalloc(FRAME_MAX);
    for (;;) {
        NTSTATUS st = f ? read_frame(o->u.client.pipe, o->stop, f) : STATUS_NO_MEMORY;
        struct waiter *w;
        if (!st && (f->op != OP_MESSAGE || (f->msg.Type & LPC_TYPE_MASK) != LPC_REPLY
                    || (ULONG)f->msg.TotalLength > o->u.client.max_message))
            st = STATUS_PORT_DISCONNECTED; /* the server broke the protocol */
        AcquireSRWLockExclusive(&o->u.client.lock);
        if (st) {
            o->u.client.broken = 1;
            for (w = o->u.client.waiters; w; w = w->next)
                if (w->status == STATUS_PENDING) w->status = STATUS_PORT_DISCONNECTED;
            WakeAllConditionVariable(&o->u.client.done);
            ReleaseSRWLockExclusive(&o->u.client.lock);
            break;
        }
        for (w = o->u.client.waiters; w; w = w->next) {
            if (w->tag == f->tag && w->status == STATUS_PENDING) {
                copy(w->reply, f, sizeof(*f) + f->msg.DataLength);
                w->status = STATUS_SUCCESS;
                WakeAllConditionVariable(&o->u.client.done);
                break;
            }
        }
        /* A reply nobody waits for (its requester's send failed) is dropped. */
        ReleaseSRWLockExclusive(&o->u.client.lock);
    }
    zfree(f);
    object_release(o);
    return 0;
}

static NTSTATUS NTAPI lpc_NtRequestPort(HANDLE h, PORT_MESSAGE *req)
{
    struct object *o = object_get(h, K_CLIENT);
    struct frame *f;
    NTSTATUS st;

    if (!o) return wrong_kind(h);
    if (!req || !(f = zalloc(FRAME_MAX))) {
        object_release(o);
        return req ? STATUS_NO_MEMORY : STATUS_INVALID_PARAMETER;
    }
    st = o->closed || o->u.client.broken ? STATUS_PORT_DISCONNECTED : client_send(o, req, LPC_DATAGRAM, f, 0);
    zfree(f);
    object_release(o);
    return st;
}

/* NtReplyPort: a reply without waiting for the next message (reply.c NtReplyPort). */
static NTSTATUS NTAPI lpc_NtReplyPort(HANDLE h, PORT_MESSAGE *reply)
{
    struct object *o = object_get(h, K_SERVER), *so;
    NTSTATUS st;

    if (!o) return wrong_kind(h);
    so = o->kind == K_COMM ? o->u.comm.conn->server : o;
    st = reply ? send_reply(so, reply) : STATUS_INVALID_PARAMETER;
    object_release(o);
    return st;
}

/* ----- NtClose -------------------------------------------------------------------------------- */

static NTSTATUS (NTAPI *orig_NtClose)(HANDLE);

static NTSTATUS NTAPI lpc_NtClose(HANDLE h)
{
    struct object *o = object_unpublish(h);
    if (o) {
        object_close(o);
        object_release(o);
    }
    return orig_NtClose(h);
}

/* ----- patching --------------------------------------------------------------------------------- */

/* Wine 8's x86-64 system call stub: mov r10,rcx; mov eax,N; test byte [0x7ffe0308],1; ... */
static int is_syscall_stub(const unsigned char *p)
{
    static const unsigned char test[8] = { 0xf6, 0x04, 0x25, 0x08, 0x03, 0xfe, 0x7f, 0x01 };
    int i;
    if (p[0] != 0x4c || p[1] != 0x8b || p[2] != 0xd1 || p[3] != 0xb8) return 0;
    for (i = 0; i < 8; i++)
        if (p[8 + i] != test[i]) return 0;
    return 1;
}

/* Wine's spec stub: sub rsp,0x28; lea rcx,[rip+..]; ... call __wine_spec_unimplemented_stub. */
static int is_fatal_stub(const unsigned char *p)
{
    return p[0] == 0x48 && p[1] == 0x83 && p[2] == 0xec && p[3] == 0x28 && p[4] == 0x48 && p[5] == 0x8d;
}

/* Whether the code at `p` starts with the jump ntcomm_write_jump writes. */
int ntcomm_is_jump(const void *p)
{
    const unsigned char *c = p;
    return c[0] == 0x48 && c[1] == 0xb8 && c[10] == 0xff && c[11] == 0xe0;
}

/* movabs rax, target; jmp rax (12 bytes) over the start of `at`. */
int ntcomm_write_jump(void *at, const void *target)
{
    unsigned char code[12] = { 0x48, 0xb8 };
    ULONG64 t = (ULONG64)(ULONG_PTR)target;
    DWORD old;
    int i;
    for (i = 0; i < 8; i++) code[2 + i] = (unsigned char)(t >> (8 * i));
    code[10] = 0xff;
    code[11] = 0xe0;
    if (!VirtualProtect(at, sizeof(code), PAGE_EXECUTE_READWRITE, &old)) return 0;
    copy(at, code, sizeof(code));
    VirtualProtect(at, sizeof(code), old, &old);
    FlushInstructionCache(GetCurrentProcess(), at, sizeof(code));
    return 1;
}

static int patch(HMODULE mod, const char *name, const void *impl, int fatal_stub)
{
    unsigned char *p = (unsigned char *)GetProcAddress(mod, name);
    if (!p) return 0;
    if (p == impl) return 1;
    if (ntcomm_is_jump(p)) return 1; /* already ours */
    if (fatal_stub ? !is_fatal_stub(p) : !is_syscall_stub(p)) return 0;
    return ntcomm_write_jump(p, impl);
}

/* NtClose keeps working: a trampoline runs its first 16 bytes and jumps back to byte 16. */
static int hook_close(HMODULE ntdll)
{
    unsigned char *p = (unsigned char *)GetProcAddress(ntdll, "NtClose"), *t;
    ULONG64 back;
    int i;
    if (!p || !is_syscall_stub(p)) return 0;
    if (!(t = VirtualAlloc(NULL, 4096, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE))) return 0;
    copy(t, p, 16);
    t[16] = 0xff, t[17] = 0x25, t[18] = t[19] = t[20] = t[21] = 0; /* jmp [rip+0] */
    back = (ULONG64)(ULONG_PTR)(p + 16);
    for (i = 0; i < 8; i++) t[22 + i] = (unsigned char)(back >> (8 * i));
    orig_NtClose = (void *)t;
    return ntcomm_write_jump(p, lpc_NtClose);
}

/* ----- exports Wine's ntdll lacks ------------------------------------------------------------ */

static int str_cmp(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

/* Not turned into a strlen call: this DLL links no C library. */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) static SIZE_T str_len(const char *a)
{
    SIZE_T n = 0;
    while (a[n]) n++;
    return n;
}

/* Memory for new export data: export RVAs are 32-bit offsets from the module base, so
   it must lie above the module, within 4 GB of it. */
static unsigned char *alloc_near(unsigned char *base, SIZE_T image_size, SIZE_T size)
{
    ULONG64 at = ((ULONG64)(ULONG_PTR)base + image_size + 0xFFFF) & ~(ULONG64)0xFFFF;
    ULONG64 end = (ULONG64)(ULONG_PTR)base + 0xF0000000ull;
    for (; at < end; at += 0x10000) {
        void *p = VirtualAlloc((void *)(ULONG_PTR)at, size, MEM_RESERVE | MEM_COMMIT, PAGE_EXECUTE_READWRITE);
        if (p) return p;
    }
    return NULL;
}

/* See lpc.h. New function, name and ordinal arrays near the module, names kept
   sorted (the loader binary-searches them); each new function is a 12-byte jump
   to its implementation there. */
int ntcomm_add_exports(void *module, const struct ntcomm_export *add, int count)
{
    HMODULE mod = module;
    unsigned char *base = (unsigned char *)mod, *mem, *p;
    IMAGE_NT_HEADERS *nt = (IMAGE_NT_HEADERS *)(base + ((IMAGE_DOS_HEADER *)base)->e_lfanew);
    IMAGE_DATA_DIRECTORY *dd = &nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_EXPORT];
    IMAGE_EXPORT_DIRECTORY *exp = (IMAGE_EXPORT_DIRECTORY *)(base + dd->VirtualAddress);
    DWORD *old_funcs = (DWORD *)(base + exp->AddressOfFunctions), *old_names = (DWORD *)(base + exp->AddressOfNames);
    WORD *old_ords = (WORD *)(base + exp->AddressOfNameOrdinals);
    DWORD nf = exp->NumberOfFunctions, nn = exp->NumberOfNames, *funcs, *names;
    WORD *ords;
    int i, fresh = 0, missing[8];
    unsigned char *jumps[8];
    SIZE_T size, strings = 0;
    DWORD old;

    if (!dd->VirtualAddress || count > 8) return 0;
    for (i = 0; i < count; i++) {
        if (GetProcAddress(mod, add[i].name)) continue;
        missing[fresh++] = i;
        strings += str_len(add[i].name) + 1;
    }
    if (!fresh) return 1;
    size = (nf + fresh) * sizeof(DWORD) + (nn + fresh) * (sizeof(DWORD) + sizeof(WORD)) + strings + fresh * 16 + 64;
    if (!(mem = alloc_near(base, nt->OptionalHeader.SizeOfImage, size))) return 0;
    p = mem;
    funcs = (DWORD *)p;
    p += (nf + fresh) * sizeof(DWORD);
    names = (DWORD *)p;
    p += (nn + fresh) * sizeof(DWORD);
    ords = (WORD *)p;
    p += (nn + fresh) * sizeof(WORD);
    p = (unsigned char *)(((ULONG_PTR)p + 15) & ~(ULONG_PTR)15);
    copy(funcs, old_funcs, nf * sizeof(DWORD));
    copy(names, old_names, nn * sizeof(DWORD));
    copy(ords, old_ords, nn * sizeof(WORD));
    for (i = 0; i < fresh; i++) {
        const struct ntcomm_export *e = &add[missing[i]];
        unsigned char *jump = p, *name = p + 16;
        DWORD at;
        SIZE_T len = str_len(e->name) + 1;
        ULONG64 t = (ULONG64)(ULONG_PTR)e->impl;
        int k;
        jump[0] = 0x48, jump[1] = 0xb8; /* movabs rax, impl; jmp rax */
        for (k = 0; k < 8; k++) jump[2 + k] = (unsigned char)(t >> (8 * k));
        jump[10] = 0xff, jump[11] = 0xe0;
        jumps[i] = jump;
        /* Aliases (NtX and ZwX) share one address, as in ntdll. */
        for (k = 0; k < i; k++)
            if (add[missing[k]].impl == e->impl) jump = jumps[k];
        copy(name, e->name, len);
        p = (unsigned char *)(((ULONG_PTR)(name + len) + 15) & ~(ULONG_PTR)15);
        funcs[nf + i] = (DWORD)(jump - base);
        /* insert the name in order */
        for (at = nn + i; at > 0 && str_cmp((const char *)(base + names[at - 1]), e->name) > 0; at--) {
            names[at] = names[at - 1];
            ords[at] = ords[at - 1];
        }
        names[at] = (DWORD)(name - base);
        ords[at] = (WORD)(nf + i);
    }
    FlushInstructionCache(GetCurrentProcess(), mem, size);
    /* Point the directory at the new arrays (the directory itself stays where it is,
       so the new functions, outside it, are not taken for forwarders). */
    if (!VirtualProtect(exp, sizeof(*exp), PAGE_READWRITE, &old)) return 0;
    exp->AddressOfFunctions = (DWORD)((unsigned char *)funcs - base);
    exp->AddressOfNameOrdinals = (DWORD)((unsigned char *)ords - base);
    exp->AddressOfNames = (DWORD)((unsigned char *)names - base);
    exp->NumberOfFunctions = nf + fresh;
    exp->NumberOfNames = nn + fresh;
    VirtualProtect(exp, sizeof(*exp), old, &old);
    return 1;
}

static LONG installed;

int ntcomm_lpc_install(int in_driver_host)
{
    HMODULE ntdll;
    int ok = 1;

    if (InterlockedExchange(&installed, 1)) return 1;
    heap = GetProcessHeap();
    kernel_side = in_driver_host;
    if (!(ntdll = GetModuleHandleW(L"ntdll.dll"))) return 0;
    /* NtClose first: a port handle must never be closed without the port noticing. */
    if (!hook_close(ntdll)) return 0;
    ok &= patch(ntdll, "NtCreatePort", lpc_NtCreatePort, 0);
    ok &= patch(ntdll, "NtListenPort", lpc_NtListenPort, 0);
    ok &= patch(ntdll, "NtAcceptConnectPort", lpc_NtAcceptConnectPort, 0);
    ok &= patch(ntdll, "NtCompleteConnectPort", lpc_NtCompleteConnectPort, 0);
    ok &= patch(ntdll, "NtConnectPort", lpc_NtConnectPort, 0);
    ok &= patch(ntdll, "NtSecureConnectPort", lpc_NtSecureConnectPort, 0);
    ok &= patch(ntdll, "NtRequestWaitReplyPort", lpc_NtRequestWaitReplyPort, 0);
    ok &= patch(ntdll, "NtReplyWaitReceivePort", lpc_NtReplyWaitReceivePort, 0);
    {
        /* Windows' ntdll exports these; Wine 8's does not. */
        static const struct ntcomm_export more[] = {
            { "NtReplyPort", lpc_NtReplyPort },
            { "NtRequestPort", lpc_NtRequestPort },
            { "ZwReplyPort", lpc_NtReplyPort },
            { "ZwRequestPort", lpc_NtRequestPort },
        };
        ok &= ntcomm_add_exports(ntdll, more, sizeof(more) / sizeof(more[0]));
    }
    if (in_driver_host) {
        /* ntoskrnl's own NtRequestPort (the datagram) is a fatal stub, not a thunk. */
        HMODULE krnl = GetModuleHandleW(L"ntoskrnl.exe");
        ok &= krnl && patch(krnl, "NtRequestPort", lpc_NtRequestPort, 1);
    }
    return ok;
}
