/*
 * testclient.exe: exercises ntcomm's Wine fltmgr.sys through testflt.sys and
 * a fltlib.dll (ntcomm's compat/wine-fltlib), written against <fltuser.h>.
 *
 *   testclient.exe C:\path\testflt.sys      install, start, test, stop, delete
 *   testclient.exe child                    (internal) connect, take one message, hang
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -o testclient.exe testclient.c -lfltlib
 * Prints one line per check and "RESULT: n failed".
 */
#include <windows.h>
#include <fltuser.h>
#include <stdio.h>

#include "../../wine-lpc/helper_service.h"
#include <string.h>

#include "testflt.h"

#define PORT L"\\NtCommTestPort"
#define SERVICE L"ntcomm_testflt"

static int failures;
static HANDLE dev;

static void check(int ok, const char *what, long long a, long long b)
{
    printf("%s: %s (%llx, %llx)\n", ok ? "ok  " : "FAIL", what, a, b);
    fflush(stdout);
    if (!ok) failures++;
}

static struct stats stats(void)
{
    struct stats s;
    DWORD n = 0;
    memset(&s, 0, sizeof(s));
    DeviceIoControl(dev, IOCTL_TESTFLT_STATS, NULL, 0, &s, sizeof(s), &n, NULL);
    return s;
}

/* Asks the driver to FltSendMessage `q`; returns FltSendMessage's status. */
static LONG ask(const char *q, LONGLONG timeout, ULONG cap, ULONG flags, char *reply, ULONG *reply_len)
{
    unsigned char in[512], out[512];
    struct ask_in a = { timeout, cap, flags };
    struct ask_out *o = (struct ask_out *)out;
    DWORD n = 0, qlen = (DWORD)strlen(q);
    memcpy(in, &a, sizeof(a));
    memcpy(in + sizeof(a), q, qlen);
    memset(out, 0, sizeof(out));
    if (!DeviceIoControl(dev, IOCTL_TESTFLT_ASK, in, sizeof(a) + qlen, out, sizeof(out), &n, NULL)) return -1;
    if (reply) {
        memcpy(reply, out + sizeof(*o), o->reply_len);
        reply[o->reply_len] = 0;
    }
    if (reply_len) *reply_len = o->reply_len;
    return o->status;
}

/* The service side of the driver's questions. */
static HANDLE port;
static volatile LONG seen_reply_length = -1, late_hr = 1, big_hr = 1;

static DWORD WINAPI replier(void *unused)
{
    struct { FILTER_MESSAGE_HEADER h; char body[256]; } m;
    struct { FILTER_REPLY_HEADER h; char body[64]; } r;
    (void)unused;
    for (;;) {
        HRESULT hr;
        memset(&m, 0, sizeof(m));
        hr = FilterGetMessage(port, &m.h, sizeof(m), NULL);
        if (FAILED(hr)) return 1;
        seen_reply_length = (LONG)m.h.ReplyLength;
        if (!strcmp(m.body, "exit")) return 0;
        if (!strcmp(m.body, "noreply")) continue;
        r.h.Status = 0;
        r.h.MessageId = m.h.MessageId;
        if (!strcmp(m.body, "late")) {
            Sleep(600);
            strcpy(r.body, "too late");
            late_hr = FilterReplyMessage(port, &r.h, sizeof(r.h) + 8);
        } else if (!strcmp(m.body, "big")) {
            memset(r.body, 'B', 32);
            big_hr = FilterReplyMessage(port, &r.h, sizeof(r.h) + 32);
        } else {
            int n = snprintf(r.body, sizeof(r.body), "answer:%s", m.body);
            FilterReplyMessage(port, &r.h, sizeof(r.h) + n);
        }
    }
}

static HANDLE start_thread(LPTHREAD_START_ROUTINE f, void *arg)
{
    return CreateThread(NULL, 0, f, arg, 0, NULL);
}

static int child(void)
{
    struct { FILTER_MESSAGE_HEADER h; char body[256]; } m;
    HRESULT hr = FilterConnectCommunicationPort(PORT, 0, "child", 5, NULL, &port);
    if (FAILED(hr)) return 2;
    hr = FilterGetMessage(port, &m.h, sizeof(m), NULL);
    printf("child got message: %08lx\n", (unsigned long)hr);
    fflush(stdout);
    Sleep(INFINITE);
    return 0;
}

static volatile LONG async_status;
static DWORD WINAPI ask_thread(void *unused)
{
    (void)unused;
    async_status = ask("for-child", 0, 32, 0, NULL, NULL);
    return 0;
}

static DWORD WINAPI get_thread(void *unused)
{
    struct { FILTER_MESSAGE_HEADER h; char body[64]; } m;
    (void)unused;
    return (DWORD)FilterGetMessage(port, &m.h, sizeof(m), NULL);
}

static int wait_for(int (*cond)(void), int ms)
{
    for (int t = 0; t < ms; t += 20) {
        if (cond()) return 1;
        Sleep(20);
    }
    return cond();
}
static LONG want_disconnects;
static int disconnected(void) { struct stats s = stats(); return s.disconnects >= want_disconnects && !s.connected; }
static int connected(void) { return stats().connected; }

enum shape { SHAPE_IOCP, SHAPE_IOCP_EX, SHAPE_EVENT };

/* Connects, pends an overlapped FilterGetMessage, has the driver FltCloseClientPort, and
   checks that the read completes with ERROR_INVALID_HANDLE through `shape`. */
static void overlapped_disconnect(enum shape shape)
{
    static const char *names[] = { "completion port", "GetQueuedCompletionStatusEx", "event" };
    struct { FILTER_MESSAGE_HEADER h; char body[64]; } m;
    OVERLAPPED ov, *got = NULL;
    ULONG_PTR key = 0;
    HANDLE iocp = NULL, p;
    HRESULT hr = E_FAIL;
    DWORD n = 0;
    BOOL ok;
    char what[160];

    for (int i = 0; i < 100 && FAILED(hr); i++) {
        hr = FilterConnectCommunicationPort(PORT, 0, NULL, 0, NULL, &p);
        if (FAILED(hr)) Sleep(20); /* the closed connection's slot comes back shortly */
    }
    snprintf(what, sizeof(what), "%s: connect for the overlapped FilterGetMessage", names[shape]);
    check(hr == S_OK, what, hr, 0);
    memset(&ov, 0, sizeof(ov));
    if (shape == SHAPE_EVENT) {
        ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    } else {
        iocp = CreateIoCompletionPort(p, NULL, 7, 1);
        snprintf(what, sizeof(what), "%s: on the port handle", names[shape]);
        check(iocp != NULL, what, GetLastError(), 0);
    }
    hr = FilterGetMessage(p, &m.h, sizeof(m), &ov);
    snprintf(what, sizeof(what), "%s: overlapped FilterGetMessage pends", names[shape]);
    check(hr == HRESULT_FROM_WIN32(ERROR_IO_PENDING), what, hr, 0);
    Sleep(200);
    snprintf(what, sizeof(what), "%s: read still pending before FltCloseClientPort", names[shape]);
    check(!HasOverlappedIoCompleted(&ov), what, ov.Internal, 0);
    check(DeviceIoControl(dev, IOCTL_TESTFLT_CLOSE_CLIENT, NULL, 0, NULL, 0, &n, NULL), "FltCloseClientPort", GetLastError(), 0);
    if (shape == SHAPE_IOCP) {
        ok = GetQueuedCompletionStatus(iocp, &n, &key, &got, 3000);
        hr = ok ? S_OK : HRESULT_FROM_WIN32(GetLastError());
        snprintf(what, sizeof(what), "%s: the pending FilterGetMessage completes", names[shape]);
        check(!ok && got == &ov && key == 7, what, hr, (long long)key);
    } else if (shape == SHAPE_IOCP_EX) {
        OVERLAPPED_ENTRY e;
        ULONG count = 0;
        memset(&e, 0, sizeof(e));
        ok = GetQueuedCompletionStatusEx(iocp, &e, 1, &count, 3000, FALSE);
        snprintf(what, sizeof(what), "%s: the pending FilterGetMessage completes", names[shape]);
        check(ok && count == 1 && e.lpOverlapped == &ov && e.lpCompletionKey == 7, what, ok ? (long long)count : GetLastError(), 0);
        /* The entry's Internal is the I/O's NTSTATUS: STATUS_PORT_DISCONNECTED, which
           RtlNtStatusToDosError turns into ERROR_INVALID_HANDLE. */
        snprintf(what, sizeof(what), "%s: the entry's status is STATUS_PORT_DISCONNECTED", names[shape]);
        check(e.Internal == 0xC0000037, what, (long long)e.Internal, 0);
    } else {
        snprintf(what, sizeof(what), "%s: the pending FilterGetMessage sets the event", names[shape]);
        check(WaitForSingleObject(ov.hEvent, 3000) == WAIT_OBJECT_0, what, 0, 0);
    }
    if (shape == SHAPE_IOCP) {
        snprintf(what, sizeof(what), "%s: ... with HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE)", names[shape]);
        check(hr == HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE), what, hr, 0);
    }
    /* GetOverlappedResult and HasOverlappedIoCompleted read the OVERLAPPED itself. */
    snprintf(what, sizeof(what), "%s: HasOverlappedIoCompleted", names[shape]);
    check(HasOverlappedIoCompleted(&ov), what, ov.Internal, 0);
    ok = GetOverlappedResult(p, &ov, &n, FALSE);
    hr = ok ? S_OK : HRESULT_FROM_WIN32(GetLastError());
    snprintf(what, sizeof(what), "%s: GetOverlappedResult: HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE)", names[shape]);
    check(!ok && hr == HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE) && n == 0, what, hr, n);
    CloseHandle(p);
    if (iocp) CloseHandle(iocp);
    if (ov.hEvent) CloseHandle(ov.hEvent);
}

int main(int argc, char **argv)
{
    SC_HANDLE scm, svc;
    SERVICE_STATUS ss;
    WCHAR image[MAX_PATH];
    HANDLE second, t;
    HRESULT hr;
    char reply[256], out[64];
    ULONG rlen;
    DWORD n;
    LONG st;
    struct stats s;

    if (argc > 1 && !strcmp(argv[1], "child")) return child();
    if (argc < 2) {
        fprintf(stderr, "usage: testclient C:\\path\\testflt.sys\n");
        return 2;
    }
    MultiByteToWideChar(CP_ACP, 0, argv[1], -1, image, MAX_PATH);

    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_ALL_ACCESS);
    svc = OpenServiceW(scm, SERVICE, SERVICE_ALL_ACCESS);
    if (svc) {
        ControlService(svc, SERVICE_CONTROL_STOP, &ss);
        DeleteService(svc);
        CloseServiceHandle(svc);
    }
    /* In the helper's driver host: verifier mode (docs/VERIFIER.md). */
    {
        DWORD e = ntcomm_start_helper(scm);
        check(e == 0, "the helper NtCommWineLpc runs", e, 0);
    }
    svc = CreateServiceW(scm, SERVICE, SERVICE, SERVICE_ALL_ACCESS, SERVICE_KERNEL_DRIVER, SERVICE_DEMAND_START,
                         SERVICE_ERROR_NORMAL, image, NTCOMM_HELPER_GROUP, NULL, NULL, NULL, NULL);
    check(svc != NULL, "CreateService", GetLastError(), 0);
    check(StartServiceW(svc, 0, NULL), "StartService (FltRegisterFilter, port, collision, MaxConnections 0 refused)", GetLastError(), 0);
    dev = CreateFileW(L"\\\\.\\NtCommTestFlt", GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    check(dev != INVALID_HANDLE_VALUE, "open test device", GetLastError(), 0);

    st = ask("nobody", 0, 16, 0, NULL, NULL);
    check(st == (LONG)0xC0000037, "FltSendMessage without a client: STATUS_PORT_DISCONNECTED", st, 0);

    hr = FilterConnectCommunicationPort(L"\\NoSuchPort", 0, NULL, 0, NULL, &second);
    check(hr == HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND), "connect to an unknown port: ERROR_FILE_NOT_FOUND", hr, 0);

    hr = FilterConnectCommunicationPort(L"\\ntcommtestport", 0, "hello", 5, NULL, &port);
    check(hr == S_OK, "connect (name in other case) with context", hr, 0);
    s = stats();
    check(s.connects == 1 && s.context_len == 5 && !memcmp(s.context, "hello", 5) && s.server_cookie == 0x5eed,
          "ConnectNotify got context and server cookie", s.connects, s.server_cookie);

    hr = FilterConnectCommunicationPort(PORT, 0, NULL, 0, NULL, &second);
    check(hr == HRESULT_FROM_WIN32(ERROR_CONNECTION_COUNT_LIMIT), "second connection (MaxConnections 1): ERROR_CONNECTION_COUNT_LIMIT", hr, 0);

    memset(out, 0, sizeof(out));
    hr = FilterSendMessage(port, "ping", 4, out, sizeof(out), &n);
    check(hr == S_OK && n == 4 && !memcmp(out, "ping", 4), "FilterSendMessage echo", hr, n);
    hr = FilterSendMessage(port, "ping", 4, out, 2, &n);
    check(hr == S_OK && n == 2, "FilterSendMessage echo into 2 bytes", hr, n);
    hr = FilterSendMessage(port, "refuse!", 7, out, sizeof(out), &n);
    check(hr == E_ACCESSDENIED, "MessageNotify's STATUS_ACCESS_DENIED reaches the client as E_ACCESSDENIED", hr, 0);

    t = start_thread(replier, NULL);
    st = ask("q1", 0, 64, 0, reply, &rlen);
    check(st == 0 && !strcmp(reply, "answer:q1") && rlen == 9, "FltSendMessage with reply", st, rlen);
    check(seen_reply_length == 64 + 16, "FILTER_MESSAGE_HEADER.ReplyLength = ReplyLength + 16", seen_reply_length, 0);

    st = ask("noreply", -10000000LL, 0, ASK_NO_REPLY, NULL, NULL);
    check(st == 0, "FltSendMessage without reply", st, 0);
    Sleep(100);
    check(seen_reply_length == 0, "ReplyLength 0 without reply", seen_reply_length, 0);

    st = ask("late", -2000000LL, 64, 0, NULL, NULL);
    check(st == 0x102, "relative timeout: STATUS_TIMEOUT", st, 0);
    Sleep(800);
    /* ERROR_FLT_NO_WAITER_FOR_REPLY (fltwinerror.h), already an HRESULT */
    check(late_hr == (HRESULT)0x801F0020L, "late FilterReplyMessage: ERROR_FLT_NO_WAITER_FOR_REPLY", late_hr, 0);

    {
        FILETIME ft;
        ULARGE_INTEGER now;
        GetSystemTimeAsFileTime(&ft);
        now.LowPart = ft.dwLowDateTime;
        now.HighPart = ft.dwHighDateTime;
        late_hr = 1;
        st = ask("late", (LONGLONG)now.QuadPart + 2000000LL, 64, 0, NULL, NULL);
        check(st == 0x102, "absolute timeout: STATUS_TIMEOUT", st, 0);
        Sleep(800);
    }

    st = ask("big", 0, 8, 0, reply, &rlen);
    check(st == (LONG)0x80000005 && rlen == 8, "reply longer than the buffer: STATUS_BUFFER_OVERFLOW, truncated", st, rlen);
    Sleep(100);
    check(big_hr == HRESULT_FROM_WIN32(ERROR_MORE_DATA), "replier told about the overflow: ERROR_MORE_DATA", big_hr, 0);

    st = ask("q2", 0, 64, 0, reply, &rlen);
    check(st == 0 && !strcmp(reply, "answer:q2"), "still answering after timeout and overflow", st, rlen);

    {
        int bad = 0;
        DWORD t0 = GetTickCount();
        for (int i = 0; i < 2000; i++) {
            char q[32], want[48];
            snprintf(q, sizeof(q), "n%d", i);
            snprintf(want, sizeof(want), "answer:%s", q);
            st = ask(q, -50000000LL, 64, 0, reply, &rlen);
            if (st != 0 || strcmp(reply, want)) bad++;
        }
        check(bad == 0, "2000 questions answered in order", bad, GetTickCount() - t0);
    }

    ask("exit", 0, 0, ASK_NO_REPLY, NULL, NULL);
    WaitForSingleObject(t, 5000);
    CloseHandle(t);
    CloseHandle(port);
    want_disconnects = 1;
    check(wait_for(disconnected, 3000), "closing the port handle: DisconnectNotify", stats().disconnects, stats().connected);

    hr = FilterConnectCommunicationPort(PORT, 0, "refuse", 6, NULL, &second);
    s = stats();
    check(hr == E_ACCESSDENIED && s.refused == 1, "ConnectNotify's STATUS_ACCESS_DENIED reaches the client as E_ACCESSDENIED", hr, s.refused);

    hr = FilterConnectCommunicationPort(PORT, 0, NULL, 0, NULL, &port);
    check(hr == S_OK, "connect again (slot released)", hr, 0);
    check(stats().context_len == 0, "no context: size 0", stats().context_len, 0);
    t = start_thread(get_thread, NULL);
    Sleep(200);
    check(DeviceIoControl(dev, IOCTL_TESTFLT_CLOSE_CLIENT, NULL, 0, NULL, 0, &n, NULL), "FltCloseClientPort", GetLastError(), 0);
    check(WaitForSingleObject(t, 3000) == WAIT_OBJECT_0, "pending FilterGetMessage ends", 0, 0);
    GetExitCodeThread(t, &n);
    /* What Microsoft's scanner sample checks for a port the driver disconnected. */
    check((HRESULT)n == HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE), "... with HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE)", n, 0);
    CloseHandle(t);
    Sleep(200);
    check(stats().disconnects == 1, "FltCloseClientPort does not call DisconnectNotify", stats().disconnects, 0);
    hr = FilterSendMessage(port, "ping", 4, out, sizeof(out), &n);
    check(hr == HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE), "FilterSendMessage after FltCloseClientPort: ERROR_INVALID_HANDLE", hr, 0);
    CloseHandle(port);

    /* A FilterGetMessage pending with an OVERLAPPED when the driver closes the client
       port completes with HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE), what Microsoft's scanner
       sample (completion port, GetQueuedCompletionStatus) checks for; also through
       GetQueuedCompletionStatusEx and through an event with GetOverlappedResult. */
    overlapped_disconnect(SHAPE_IOCP);
    overlapped_disconnect(SHAPE_IOCP_EX);
    overlapped_disconnect(SHAPE_EVENT);
    want_disconnects = 1;
    Sleep(200);

    {
        STARTUPINFOA si;
        PROCESS_INFORMATION pi;
        char cmd[MAX_PATH + 16];
        memset(&si, 0, sizeof(si));
        si.cb = sizeof(si);
        GetModuleFileNameA(NULL, cmd, MAX_PATH);
        strcat(cmd, " child");
        check(CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi), "start child client", GetLastError(), 0);
        check(wait_for(connected, 5000), "child connected", 0, 0);
        async_status = 1;
        t = start_thread(ask_thread, NULL);
        Sleep(500);
        TerminateProcess(pi.hProcess, 9);
        CloseHandle(pi.hThread);
        CloseHandle(pi.hProcess);
        check(WaitForSingleObject(t, 5000) == WAIT_OBJECT_0, "FltSendMessage returns when the client dies", 0, 0);
        check(async_status == (LONG)0xC0000037, "... with STATUS_PORT_DISCONNECTED", async_status, 0);
        want_disconnects = 2;
        check(wait_for(disconnected, 3000), "... and DisconnectNotify ran", stats().disconnects, 0);
        CloseHandle(t);
    }

    hr = FilterConnectCommunicationPort(PORT, 0, NULL, 0, NULL, &port);
    check(hr == S_OK, "connect before unload", hr, 0);
    t = start_thread(get_thread, NULL);
    Sleep(200);
    CloseHandle(dev);
    check(ControlService(svc, SERVICE_CONTROL_STOP, &ss), "stop the driver with a client connected", GetLastError(), 0);
    check(WaitForSingleObject(t, 5000) == WAIT_OBJECT_0, "pending FilterGetMessage ends on unload", 0, 0);
    CloseHandle(t);
    CloseHandle(port);
    for (int i = 0; i < 50; i++) {
        if (QueryServiceStatus(svc, &ss) && ss.dwCurrentState == SERVICE_STOPPED) break;
        Sleep(100);
    }
    check(ss.dwCurrentState == SERVICE_STOPPED, "driver stopped", ss.dwCurrentState, 0);
    check(StartServiceW(svc, 0, NULL), "start again (fresh fltmgr state)", GetLastError(), 0);
    dev = CreateFileW(L"\\\\.\\NtCommTestFlt", GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    hr = FilterConnectCommunicationPort(PORT, 0, NULL, 0, NULL, &port);
    check(hr == S_OK, "connect after restart", hr, 0);
    hr = FilterSendMessage(port, "ping", 4, out, sizeof(out), &n);
    check(hr == S_OK && n == 4, "echo after restart", hr, n);
    CloseHandle(port);
    CloseHandle(dev);
    ControlService(svc, SERVICE_CONTROL_STOP, &ss);
    for (int i = 0; i < 50; i++) {
        if (QueryServiceStatus(svc, &ss) && ss.dwCurrentState == SERVICE_STOPPED) break;
        Sleep(100);
    }
    DeleteService(svc);
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    printf("RESULT: %d failed\n", failures);
    return failures ? 1 : 0;
}
