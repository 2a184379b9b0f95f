/*
 * kapiclient.exe: drives kapitest.sys, which calls the kernel routines
 * compat/wine-kapi supplies. Under Wine the driver must share the driver host
 * with the helper ntcomm_lpc.sys that carries them: both go in load-order group
 * NtComm and the helper starts first (service NtCommWineLpc, as the CLI's rig
 * installs it). On Windows the helper is absent and the kernel has the routines.
 *
 *   kapiclient.exe C:\path\kapitest.sys
 *
 * Prints one line per check and "RESULT: n failed".
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>

#include "kapitest.h"
#include "../../wine-lpc/helper_service.h"

#define SERVICE L"NtCommKapiTest"
#define GROUP NTCOMM_HELPER_GROUP

static int failures;

static void check(int ok, const char *what, long long a, long long b)
{
    printf("%s: %s (%llx, %llx)\n", ok ? "ok  " : "FAIL", what, a, b);
    fflush(stdout);
    if (!ok) failures++;
}

static DWORD state_of(SC_HANDLE svc)
{
    SERVICE_STATUS ss;
    return QueryServiceStatus(svc, &ss) ? ss.dwCurrentState : 0;
}

/* Under Wine: the helper in group NtComm, running (started before the test driver). */
static void start_helper(SC_HANDLE scm)
{
    DWORD e = ntcomm_start_helper(scm);
    check(e == 0, "the helper NtCommWineLpc runs", e, 0);
}

static BOOL ioctl(HANDLE dev, DWORD code, void *out, DWORD out_len, DWORD *got)
{
    return DeviceIoControl(dev, code, NULL, 0, out, out_len, got, NULL);
}

/* An overlapped IOCTL left pending; returns whether it pended. */
static BOOL pend(HANDLE dev, DWORD code, OVERLAPPED *ov)
{
    memset(ov, 0, sizeof(*ov));
    ov->hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    return !DeviceIoControl(dev, code, NULL, 0, NULL, 0, NULL, ov) && GetLastError() == ERROR_IO_PENDING;
}

/* Waits for an overlapped IOCTL; returns 0 or its Win32 error. */
static DWORD finish(HANDLE dev, OVERLAPPED *ov, DWORD ms)
{
    DWORD n, e = 0;
    if (WaitForSingleObject(ov->hEvent, ms) != WAIT_OBJECT_0) return WAIT_TIMEOUT;
    if (!GetOverlappedResult(dev, ov, &n, FALSE)) e = GetLastError();
    CloseHandle(ov->hEvent);
    return e;
}

static ULONG count(HANDLE dev)
{
    ULONG c = 0xffffffff;
    DWORD n;
    ioctl(dev, IOCTL_KAPI_COUNT, &c, sizeof(c), &n);
    return c;
}

int main(int argc, char **argv)
{
    WCHAR image[MAX_PATH];
    SC_HANDLE scm, svc;
    SERVICE_STATUS ss;
    struct kapi_status st;
    HANDLE dev;
    DWORD n;
    int i;

    if (argc < 2) {
        fprintf(stderr, "usage: kapiclient C:\\path\\kapitest.sys\n");
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
    start_helper(scm);
    svc = CreateServiceW(scm, SERVICE, SERVICE, SERVICE_ALL_ACCESS, SERVICE_KERNEL_DRIVER, SERVICE_DEMAND_START,
                         SERVICE_ERROR_NORMAL, image, GROUP, NULL, NULL, NULL, NULL);
    check(svc != NULL, "CreateService", GetLastError(), 0);
    if (!svc) return 1;
    /* A driver importing ExAllocatePool2 does not even load without it. */
    check(StartServiceW(svc, 0, NULL), "StartService (imports ExAllocatePool2, IoCsq*, ExQueueWorkItem...)", GetLastError(), 0);
    dev = CreateFileW(L"\\\\.\\NtCommKapiTest", GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
    check(dev != INVALID_HANDLE_VALUE, "open the device", GetLastError(), 0);
    if (dev == INVALID_HANDLE_VALUE) goto out;

    {
        OVERLAPPED ov;
        memset(&st, 0, sizeof(st));
        memset(&ov, 0, sizeof(ov));
        ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (!DeviceIoControl(dev, IOCTL_KAPI_STATUS, NULL, 0, &st, sizeof(st), NULL, &ov) && GetLastError() != ERROR_IO_PENDING)
            check(0, "IOCTL_KAPI_STATUS", GetLastError(), 0);
        GetOverlappedResult(dev, &ov, &n, TRUE);
        CloseHandle(ov.hEvent);
    }
    check(st.pool_zeroed, "ExAllocatePool2(POOL_FLAG_NON_PAGED): zeroed memory", st.pool_zeroed, 0);
    check(st.pool_bad_flags_null, "ExAllocatePool2: NULL without exactly one pool type or with a reserved flag", st.pool_bad_flags_null, 0);
    check(st.csq_init == 0, "IoCsqInitializeEx", st.csq_init, 0);
    check(st.set_security == 0, "ObSetSecurityObjectByPointer(device, DACL)", st.set_security, 0);
    check(st.query_security == 0 && st.dacl_aces == 2, "... the DACL reads back with its 2 ACEs", st.query_security, st.dacl_aces);

    /* ExQueueWorkItem: 50 IOCTLs, each completed from its work item on another thread. */
    {
        int good = 0;
        for (i = 0; i < 50; i++) {
            struct kapi_work w;
            OVERLAPPED ov;
            memset(&w, 0, sizeof(w));
            memset(&ov, 0, sizeof(ov));
            ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
            if (!DeviceIoControl(dev, IOCTL_KAPI_WORK, NULL, 0, &w, sizeof(w), NULL, &ov) && GetLastError() != ERROR_IO_PENDING) break;
            if (WaitForSingleObject(ov.hEvent, 5000) != WAIT_OBJECT_0) break;
            if (GetOverlappedResult(dev, &ov, &n, FALSE) && n == sizeof(w) && w.magic == KAPI_WORK_MAGIC && w.parameter_ok
                && w.worker_thread && w.worker_thread != w.dispatch_thread)
                good++;
            CloseHandle(ov.hEvent);
        }
        check(good == 50, "ExQueueWorkItem: 50 requests completed by work items on a worker thread", good, 0);
    }

    /* IoCsq: queue, cancel, remove. */
    {
        OVERLAPPED a, b, c;
        ULONG taken = 9;
        check(pend(dev, IOCTL_KAPI_PEND, &a), "IoCsqInsertIrp: request A pends", GetLastError(), 0);
        check(pend(dev, IOCTL_KAPI_PEND, &b), "IoCsqInsertIrp: request B pends", GetLastError(), 0);
        check(count(dev) == 2, "two IRPs queued", count(dev), 0);
        check(CancelIoEx(dev, &a), "CancelIoEx(A)", GetLastError(), 0);
        n = finish(dev, &a, 5000);
        check(n == ERROR_OPERATION_ABORTED, "A completes cancelled (CsqCompleteCanceledIrp)", n, 0);
        check(count(dev) == 1, "... and left the queue (CsqRemoveIrp)", count(dev), 0);
        {
            OVERLAPPED r;
            memset(&r, 0, sizeof(r));
            r.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
            if (!DeviceIoControl(dev, IOCTL_KAPI_RELEASE, NULL, 0, &taken, sizeof(taken), NULL, &r) && GetLastError() != ERROR_IO_PENDING)
                taken = 9;
            GetOverlappedResult(dev, &r, &n, TRUE);
            CloseHandle(r.hEvent);
        }
        check(taken == 1, "IoCsqRemoveNextIrp takes B", taken, 0);
        n = finish(dev, &b, 5000);
        check(n == 0, "B completes with success", n, 0);
        check(count(dev) == 0, "queue empty", count(dev), 0);

        /* A context: IoCsqInsertIrpEx, then IoCsqRemoveIrp on it; a cancelled one is
           not returned by IoCsqRemoveIrp. */
        check(pend(dev, IOCTL_KAPI_PEND_CTX, &c), "IoCsqInsertIrpEx with a context: C pends", GetLastError(), 0);
        {
            OVERLAPPED r;
            memset(&r, 0, sizeof(r));
            r.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
            taken = 9;
            if (!DeviceIoControl(dev, IOCTL_KAPI_TAKE_CTX, NULL, 0, &taken, sizeof(taken), NULL, &r) && GetLastError() != ERROR_IO_PENDING)
                taken = 9;
            GetOverlappedResult(dev, &r, &n, TRUE);
            CloseHandle(r.hEvent);
        }
        check(taken == 1, "IoCsqRemoveIrp(context) takes C", taken, 0);
        n = finish(dev, &c, 5000);
        check(n == 0, "C completes with success", n, 0);
        check(pend(dev, IOCTL_KAPI_PEND_CTX, &c), "C' pends with the context", GetLastError(), 0);
        CancelIoEx(dev, &c);
        n = finish(dev, &c, 5000);
        check(n == ERROR_OPERATION_ABORTED, "C' cancelled", n, 0);
        {
            OVERLAPPED r;
            memset(&r, 0, sizeof(r));
            r.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
            taken = 9;
            if (!DeviceIoControl(dev, IOCTL_KAPI_TAKE_CTX, NULL, 0, &taken, sizeof(taken), NULL, &r) && GetLastError() != ERROR_IO_PENDING)
                taken = 9;
            GetOverlappedResult(dev, &r, &n, TRUE);
            CloseHandle(r.hEvent);
        }
        check(taken == 0, "IoCsqRemoveIrp(context) after the cancel: nothing", taken, 0);

        /* Many at once: 200 queued, all cancelled by one CancelIoEx, the queue drains. */
        {
            static OVERLAPPED many[200];
            int pended = 0, cancelled = 0;
            for (i = 0; i < 200; i++) pended += pend(dev, IOCTL_KAPI_PEND, &many[i]);
            check(pended == 200 && count(dev) == 200, "200 IRPs queued", pended, count(dev));
            CancelIoEx(dev, NULL);
            for (i = 0; i < 200; i++) cancelled += finish(dev, &many[i], 5000) == ERROR_OPERATION_ABORTED;
            check(cancelled == 200 && count(dev) == 0, "CancelIoEx(all): 200 cancelled, queue empty", cancelled, count(dev));
        }
    }
    CloseHandle(dev);

out:
    check(ControlService(svc, SERVICE_CONTROL_STOP, &ss), "stop the driver", GetLastError(), 0);
    for (i = 0; i < 100 && state_of(svc) != SERVICE_STOPPED; i++) Sleep(20);
    DeleteService(svc);
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    printf("RESULT: %d failed\n", failures);
    return failures ? 1 : 0;
}
