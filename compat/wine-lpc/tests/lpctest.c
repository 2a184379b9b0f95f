/*
 * A user-mode check of ntcomm's Wine LPC, written only against the ntdll
 * prototypes: a server thread and client threads in one process. Under Wine the
 * Nt*Port calls work once bcryptprimitives.dll (the shim that carries the LPC)
 * is loaded; a C program does not import it, so this one loads it first (the one
 * Wine-specific line). Exit code 0: every check passed.
 */
#define WIN32_NO_STATUS
#include <windows.h>
#undef WIN32_NO_STATUS
#include <ntstatus.h>
#include <stdio.h>
#include <string.h>

typedef struct { USHORT Length, MaximumLength; PWSTR Buffer; } USTR;
typedef struct { ULONG Length; HANDLE Root; USTR *Name; ULONG Attributes; PVOID Sd, Qos; } OA;
typedef struct {
    USHORT DataLength, TotalLength, Type, DataInfoOffset;
    ULONG64 Pid, Tid;
    ULONG MessageId, Pad;
    ULONG64 ClientViewSize;
} PM;
typedef struct { PM h; unsigned char body[648]; } LMSG;

typedef LONG (NTAPI *CreatePort)(HANDLE *, OA *, ULONG, ULONG, ULONG);
typedef LONG (NTAPI *ReplyWaitReceive)(HANDLE, PVOID *, PM *, PM *);
typedef LONG (NTAPI *Accept)(HANDLE *, PVOID, PM *, BOOLEAN, PVOID, PVOID);
typedef LONG (NTAPI *Complete)(HANDLE);
typedef LONG (NTAPI *Connect)(HANDLE *, USTR *, PVOID, PVOID, PVOID, ULONG *, PVOID, ULONG *);
typedef LONG (NTAPI *SecureConnect)(HANDLE *, USTR *, PVOID, PVOID, PVOID, PVOID, ULONG *, PVOID, ULONG *);
typedef LONG (NTAPI *RequestWaitReply)(HANDLE, PM *, PM *);
typedef LONG (NTAPI *Close)(HANDLE);
typedef LONG (NTAPI *RequestPort)(HANDLE, PM *);
typedef LONG (NTAPI *ReplyPort)(HANDLE, PM *);

static CreatePort pCreatePort;
static ReplyWaitReceive pReplyWaitReceive;
static Accept pAccept;
static Complete pComplete;
static Connect pConnect;
static SecureConnect pSecureConnect;
static RequestWaitReply pRequest;
static Close pClose;
static RequestPort pRequestPort;
static ReplyPort pReplyPort;
static volatile LONG datagrams, datagram_ok, reply_port_status = -1, long_reply_status = -1, no_id_reply_status = -1;
static int failures;
static volatile LONG closed_seen, last_info_len = -1, bad_cid_status = -1;

#define CHECK(c) do { if (!(c)) { printf("FAIL line %d: %s\n", __LINE__, #c); failures++; } } while (0)

static USTR name(PWSTR s) { USTR u = { (USHORT)(wcslen(s) * 2), (USHORT)(wcslen(s) * 2), s }; return u; }

static DWORD WINAPI server(void *arg)
{
    HANDLE port = arg;
    LMSG m, r;
    PM *reply = NULL;
    for (;;) {
        PVOID ctx = NULL;
        LONG st = pReplyWaitReceive(port, &ctx, reply, &m.h);
        reply = NULL;
        if (st) { printf("server: receive %08lx\n", (unsigned long)st); return 0; }
        switch (m.h.Type & 0xff) {
        case 10: { /* connection request: refuse "no" */
            HANDLE comm = NULL;
            last_info_len = m.h.DataLength;
            BOOLEAN ok = !(m.h.DataLength == 2 && !memcmp(m.body, "no", 2));
            memcpy(m.body, "welcome", 7);
            m.h.DataLength = 7;
            m.h.TotalLength = sizeof(PM) + 7;
            st = pAccept(&comm, (PVOID)0x1234, &m.h, ok, NULL, NULL);
            CHECK(st == 0);
            if (ok) CHECK(pComplete(comm) == 0);
            break;
        }
        case 1: /* request: reply with the body reversed, the header as it came */
            CHECK(ctx == (PVOID)0x1234);
            r.h = m.h;
            r.h.Type = 2;
            for (int i = 0; i < m.h.DataLength; i++) r.body[i] = m.body[m.h.DataLength - 1 - i];
            if (m.h.DataLength == 6 && !memcmp(m.body, "badcid", 6)) {
                /* A reply whose ClientId names another thread reaches nobody. */
                LMSG bad = r;
                bad.h.Tid ^= 0x40;
                bad_cid_status = pReplyWaitReceive(port, NULL, &bad.h, NULL);
            }
            if (m.h.DataLength == 9 && !memcmp(m.body, "longreply", 9)) {
                /* Replies obey the lengths too (reply.c): over the port's 512, and no MessageId. */
                LMSG bad = r;
                bad.h.TotalLength = 513;
                long_reply_status = pReplyPort(port, &bad.h);
                bad = r;
                bad.h.MessageId = 0;
                no_id_reply_status = pReplyPort(port, &bad.h);
            }
            if (m.h.DataLength == 9 && !memcmp(m.body, "replyport", 9)) {
                /* answered with NtReplyPort, then a plain receive */
                reply_port_status = pReplyPort(port, &r.h);
                break;
            }
            reply = &r.h;
            break;
        case 3: /* datagram: no reply */
            if (m.h.DataLength == 8 && !memcmp(m.body, "datagram", 8) && m.h.Pid == GetCurrentProcessId() && m.h.MessageId)
                InterlockedIncrement(&datagram_ok);
            InterlockedIncrement(&datagrams);
            break;
        case 5:
            InterlockedIncrement(&closed_seen);
            break;
        default:
            printf("server: type %u\n", m.h.Type);
        }
    }
}

/* Several threads with requests in flight on ONE client port: each reply must reach
   the thread whose request it answers. */
static HANDLE shared_port;

static DWORD WINAPI shared_client(void *arg)
{
    int me = (int)(ULONG_PTR)arg;
    LMSG q, r;
    for (int k = 0; k < 500; k++) {
        int len = 16 + (k + me) % 200;
        memset(&q, 0, sizeof(q));
        for (int i = 0; i < len; i++) q.body[i] = (unsigned char)(i * 7 + k + me * 61);
        q.h.DataLength = len;
        q.h.TotalLength = sizeof(PM) + len;
        LONG st = pRequest(shared_port, &q.h, &r.h);
        CHECK(st == 0);
        if (st) return 1;
        CHECK(r.h.DataLength == len);
        for (int i = 0; i < len; i++)
            if (r.body[i] != q.body[len - 1 - i]) { CHECK(!"a reply reached the wrong thread"); return 1; }
    }
    return 0;
}

static DWORD WINAPI client(void *arg)
{
    USTR n = name(L"\\RPC Control\\ntcomm-lpctest");
    HANDLE h = NULL;
    ULONG maxm = 0, il = 5;
    char info[128] = "hello";
    LMSG q, r;
    LONG st = pConnect(&h, &n, NULL, NULL, NULL, &maxm, info, &il);
    CHECK(st == 0);
    if (st) return 1;
    CHECK(maxm == 512);
    CHECK(il == 5); /* the reply info is cut to what we sent */
    CHECK(!memcmp(info, "welco", 5));
    for (int k = 0; k < (int)(ULONG_PTR)arg; k++) {
        int len = k % 473;
        memset(&q, 0, sizeof(q));
        for (int i = 0; i < len; i++) q.body[i] = (unsigned char)(i + k);
        q.h.DataLength = len;
        q.h.TotalLength = sizeof(PM) + len;
        st = pRequest(h, &q.h, &r.h);
        CHECK(st == 0);
        if (st) break;
        CHECK(r.h.DataLength == len && (r.h.Type & 0xff) == 2);
        for (int i = 0; i < len; i++) if (r.body[i] != (unsigned char)(len - 1 - i + k)) { CHECK(0); break; }
    }
    q.h.DataLength = 473;
    q.h.TotalLength = sizeof(PM) + 473;
    CHECK(pRequest(h, &q.h, &r.h) == STATUS_PORT_MESSAGE_TOO_LONG);
    CHECK(pClose(h) == 0);
    return 0;
}

int main(void)
{
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    /* Wine only: load the DLL that installs ntcomm's LPC (absent: Windows' own LPC). */
    LoadLibraryW(L"bcryptprimitives.dll");
    pCreatePort = (CreatePort)GetProcAddress(nt, "NtCreatePort");
    pReplyWaitReceive = (ReplyWaitReceive)GetProcAddress(nt, "NtReplyWaitReceivePort");
    pAccept = (Accept)GetProcAddress(nt, "NtAcceptConnectPort");
    pComplete = (Complete)GetProcAddress(nt, "NtCompleteConnectPort");
    pConnect = (Connect)GetProcAddress(nt, "NtConnectPort");
    pSecureConnect = (SecureConnect)GetProcAddress(nt, "NtSecureConnectPort");
    pRequest = (RequestWaitReply)GetProcAddress(nt, "NtRequestWaitReplyPort");
    pClose = (Close)GetProcAddress(nt, "NtClose");
    /* Exported by Windows' ntdll; the layer adds them to Wine's (README). */
    pRequestPort = (RequestPort)GetProcAddress(nt, "NtRequestPort");
    pReplyPort = (ReplyPort)GetProcAddress(nt, "NtReplyPort");
    CHECK(pRequestPort != NULL && pReplyPort != NULL);
    CHECK(GetProcAddress(nt, "ZwRequestPort") == (FARPROC)pRequestPort && GetProcAddress(nt, "ZwReplyPort") == (FARPROC)pReplyPort);
    if (!pRequestPort || !pReplyPort) return 1;

    USTR n = name(L"\\RPC Control\\ntcomm-lpctest");
    OA oa = { sizeof(OA), NULL, &n, 0x40, NULL, NULL };
    HANDLE port = NULL, h = NULL;
    LONG st = pCreatePort(&port, &oa, 128, 512, 0);
    CHECK(st == 0);
    if (st) { printf("NtCreatePort %08lx\n", (unsigned long)st); return 1; }
    HANDLE dup = NULL;
    CHECK(pCreatePort(&dup, &oa, 128, 512, 0) == STATUS_OBJECT_NAME_COLLISION);
    CloseHandle(CreateThread(NULL, 0, server, port, 0, NULL));

    /* no such port, refused */
    USTR none = name(L"\\RPC Control\\ntcomm-none");
    ULONG il = 2;
    char no[128] = "no";
    CHECK(pConnect(&h, &none, NULL, NULL, NULL, NULL, NULL, NULL) == STATUS_OBJECT_NAME_NOT_FOUND);
    CHECK(pConnect(&h, &n, NULL, NULL, NULL, NULL, no, &il) == STATUS_PORT_CONNECTION_REFUSED);

    HANDLE t[4];
    DWORD t0 = GetTickCount();
    for (int i = 0; i < 4; i++) t[i] = CreateThread(NULL, 0, client, (PVOID)2500, 0, NULL);
    WaitForMultipleObjects(4, t, TRUE, INFINITE);
    printf("4 x 2500 requests in %lu ms\n", GetTickCount() - t0);
    for (int i = 0; i < 50 && closed_seen < 4; i++) Sleep(20);
    CHECK(closed_seen == 4);

    /* A required server SID: this process's own user (the server's) connects;
       LocalSystem (S-1-5-18), which no Wine process runs as, is refused with
       STATUS_SERVER_SID_MISMATCH. */
    {
        ULONG64 tu[32];
        TOKEN_USER *user = (TOKEN_USER *)(void *)tu;
        DWORD got = 0;
        HANDLE tok = NULL;
        SID_IDENTIFIER_AUTHORITY nt_auth = {SECURITY_NT_AUTHORITY};
        PSID system = NULL;
        ULONG sl = 5;
        char info[128] = "hello";
        CHECK(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
        CHECK(GetTokenInformation(tok, TokenUser, tu, sizeof(tu), &got));
        CloseHandle(tok);
        CHECK(AllocateAndInitializeSid(&nt_auth, 1, SECURITY_LOCAL_SYSTEM_RID, 0, 0, 0, 0, 0, 0, 0, &system));
        h = NULL;
        CHECK(pSecureConnect(&h, &n, NULL, NULL, system, NULL, NULL, info, &sl) == STATUS_SERVER_SID_MISMATCH);
        CHECK(h == NULL);
        sl = 5;
        CHECK(pSecureConnect(&h, &n, NULL, NULL, user->User.Sid, NULL, NULL, info, &sl) == 0);
        if (h) CHECK(pClose(h) == 0);
        FreeSid(system);
    }


    /* A reply carries the ClientId the server wrote (ReactOS reply.c moves it as is):
       here the request's, so this thread's own; one naming another thread is refused. */
    {
        ULONG maxm = 0, sl = 5;
        char info[128] = "hello";
        LMSG q, r;
        HANDLE c = NULL;
        CHECK(pConnect(&c, &n, NULL, NULL, NULL, &maxm, info, &sl) == 0);
        memset(&q, 0, sizeof(q));
        memcpy(q.body, "cid", 3);
        q.h.DataLength = 3;
        q.h.TotalLength = sizeof(PM) + 3;
        CHECK(pRequest(c, &q.h, &r.h) == 0);
        CHECK(r.h.Pid == GetCurrentProcessId() && r.h.Tid == GetCurrentThreadId());
        CHECK((r.h.Type & 0xff) == 2 && r.h.DataLength == 3 && !memcmp(r.body, "dic", 3));
        memcpy(q.body, "badcid", 6);
        q.h.DataLength = 6;
        q.h.TotalLength = sizeof(PM) + 6;
        CHECK(pRequest(c, &q.h, &r.h) == 0);
        CHECK(bad_cid_status == STATUS_REPLY_MESSAGE_MISMATCH);
        CHECK(r.h.Tid == GetCurrentThreadId() && !memcmp(r.body, "dicdab", 6));

        /* Lengths (ReactOS send.c): a header that does not hold its data is invalid; a
           TotalLength above DataLength + header is kept and reaches the server and back. */
        q.h.DataLength = 10;
        q.h.TotalLength = sizeof(PM) + 9;
        CHECK(pRequest(c, &q.h, &r.h) == STATUS_INVALID_PARAMETER);
        q.h.TotalLength = sizeof(PM) + 20;
        CHECK(pRequest(c, &q.h, &r.h) == 0);
        CHECK(r.h.DataLength == 10 && r.h.TotalLength == sizeof(PM) + 20);
        /* the port's MaxMessageLength (512) bounds TotalLength, not DataLength + header */
        q.h.DataLength = 10;
        q.h.TotalLength = 512;
        CHECK(pRequest(c, &q.h, &r.h) == 0);
        q.h.TotalLength = 513;
        CHECK(pRequest(c, &q.h, &r.h) == STATUS_PORT_MESSAGE_TOO_LONG);

        /* NtRequestPort: datagrams, no reply; the same length rules. NtReplyPort
           answers a request without waiting for the next message. */
        for (int i = 0; i < 3; i++) {
            memset(&q, 0, sizeof(q));
            memcpy(q.body, "datagram", 8);
            q.h.DataLength = 8;
            q.h.TotalLength = sizeof(PM) + 8;
            CHECK(pRequestPort(c, &q.h) == 0);
        }
        q.h.TotalLength = 513;
        CHECK(pRequestPort(c, &q.h) == STATUS_PORT_MESSAGE_TOO_LONG);
        q.h.TotalLength = sizeof(PM) + 7;
        CHECK(pRequestPort(c, &q.h) == STATUS_INVALID_PARAMETER);
        for (int i = 0; i < 100 && datagrams < 3; i++) Sleep(10);
        CHECK(datagrams == 3 && datagram_ok == 3);
        memset(&q, 0, sizeof(q));
        memcpy(q.body, "replyport", 9);
        q.h.DataLength = 9;
        q.h.TotalLength = sizeof(PM) + 9;
        CHECK(pRequest(c, &q.h, &r.h) == 0);
        /* the reply can arrive before the server thread stores NtReplyPort's status */
        for (int i = 0; i < 100 && reply_port_status == -1; i++) Sleep(10);
        CHECK(reply_port_status == 0 && r.h.DataLength == 9 && !memcmp(r.body, "tropylper", 9));
        memcpy(q.body, "longreply", 9);
        CHECK(pRequest(c, &q.h, &r.h) == 0);
        CHECK(long_reply_status == STATUS_PORT_MESSAGE_TOO_LONG && no_id_reply_status == STATUS_INVALID_PARAMETER);
        CHECK(r.h.DataLength == 9 && !memcmp(r.body, "ylpergnol", 9)); /* then the good reply arrived */
        CHECK(pClose(c) == 0);

        /* Connection information: whatever the port's MaxConnectionInfoLength (128 here),
           up to 0x208 bytes reach the server, more are cut to 0x208 (connect.c). */
        {
            static char big[0x300];
            ULONG bl = 0x208;
            memset(big, 'i', sizeof(big));
            c = NULL;
            CHECK(pConnect(&c, &n, NULL, NULL, NULL, &maxm, big, &bl) == 0);
            CHECK(last_info_len == 0x208);
            if (c) CHECK(pClose(c) == 0);
            bl = 0x209;
            c = NULL;
            CHECK(pConnect(&c, &n, NULL, NULL, NULL, &maxm, big, &bl) == 0);
            CHECK(last_info_len == 0x208);
            if (c) CHECK(pClose(c) == 0);
        }
    }

    /* NtCreatePort's limits on x64, both sides of each (ReactOS create.c):
       MaxConnectionInfoLength <= 0x208, MaxMessageLength <= 0x288, checked in that order. */
    {
        USTR bn = name(L"\\RPC Control\\ntcomm-lpctest-big");
        OA boa = { sizeof(OA), NULL, &bn, 0x40, NULL, NULL };
        HANDLE big = NULL, c = NULL;
        ULONG maxm = 0;
        LMSG q, r;
        CHECK(pCreatePort(&big, &boa, 0x209, 0x100, 0) == STATUS_INVALID_PARAMETER_3);
        CHECK(pCreatePort(&big, &boa, 0x100, 0x289, 0) == STATUS_INVALID_PARAMETER_4);
        CHECK(pCreatePort(&big, &boa, 0x209, 0x289, 0) == STATUS_INVALID_PARAMETER_3);
        CHECK(pCreatePort(&big, &boa, 0x208, 0x288, 0) == 0);
        CloseHandle(CreateThread(NULL, 0, server, big, 0, NULL));
        CHECK(pConnect(&c, &bn, NULL, NULL, NULL, &maxm, NULL, NULL) == 0);
        CHECK(maxm == 0x288);
        memset(&q, 0, sizeof(q));
        q.h.DataLength = 0x288 - sizeof(PM);
        q.h.TotalLength = 0x288;
        CHECK(pRequest(c, &q.h, &r.h) == 0);
        CHECK(r.h.DataLength == 0x288 - sizeof(PM));
        q.h.DataLength = 0x289 - sizeof(PM);
        q.h.TotalLength = 0x289;
        CHECK(pRequest(c, &q.h, &r.h) == STATUS_PORT_MESSAGE_TOO_LONG);
        if (c) CHECK(pClose(c) == 0);
        if (big) CHECK(pClose(big) == 0);
    }

    {
        ULONG maxm = 0, sl = 5;
        char info[128] = "hello";
        CHECK(pConnect(&shared_port, &n, NULL, NULL, NULL, &maxm, info, &sl) == 0);
        t0 = GetTickCount();
        for (int i = 0; i < 4; i++) t[i] = CreateThread(NULL, 0, shared_client, (PVOID)(ULONG_PTR)i, 0, NULL);
        WaitForMultipleObjects(4, t, TRUE, INFINITE);
        printf("4 threads x 500 requests on one port in %lu ms\n", GetTickCount() - t0);
        CHECK(pClose(shared_port) == 0);
    }
    CHECK(pClose(port) == 0);
    printf(failures ? "lpctest: %d FAILED\n" : "lpctest: ok\n", failures);
    return failures != 0;
}
