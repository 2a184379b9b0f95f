/*
 * unloadtest.exe: a service stop unloads a minifilter that has only a
 * FilterUnloadCallback (unloadflt.c), as on Windows: three times, install or
 * start, talk to its port, stop with ControlService(SERVICE_CONTROL_STOP), and
 * check that the stop succeeded, that the callback saw a mandatory unload,
 * that the port is gone and that the image was really unloaded (a fresh
 * load count). The last round stops it with a client still connected.
 *
 *   unloadtest.exe C:\path\unloadflt.sys
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -o unloadtest.exe unloadtest.c -lfltlib
 * Prints one line per check and "RESULT: n failed".
 */
#include <windows.h>
#include <fltuser.h>
#include <stdio.h>

#include "../../wine-lpc/helper_service.h"
#include <string.h>

#define PORT L"\\NtCommUnloadPort"
#define SERVICE L"ntcomm_unloadflt"

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

/* Waits up to `ms` for the service to reach `state`. */
static DWORD wait_state(SC_HANDLE svc, DWORD state, int ms)
{
    DWORD s = state_of(svc);
    for (; s != state && ms > 0; ms -= 20) {
        Sleep(20);
        s = state_of(svc);
    }
    return s;
}

int main(int argc, char **argv)
{
    WCHAR image[MAX_PATH];
    SC_HANDLE scm, svc;
    SERVICE_STATUS ss;
    HANDLE ev[2] = { NULL, NULL };
    int round;

    if (argc < 2) {
        fprintf(stderr, "usage: unloadtest C:\\path\\unloadflt.sys\n");
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
    if (!svc) goto out;

    for (round = 1; round <= 3; round++) {
        HANDLE port = INVALID_HANDLE_VALUE;
        struct { ULONG loads; char text[8]; } reply;
        DWORD got = 0;
        HRESULT hr;
        BOOL stopped;
        char what[128];

        snprintf(what, sizeof(what), "round %d: StartService", round);
        check(StartServiceW(svc, 0, NULL), what, GetLastError(), 0);
        snprintf(what, sizeof(what), "round %d: RUNNING", round);
        check(wait_state(svc, SERVICE_RUNNING, 5000) == SERVICE_RUNNING, what, state_of(svc), 0);
        if (!ev[0]) {
            ev[0] = OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, L"Global\\NtCommUnloadFlt-0");
            ev[1] = OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, L"Global\\NtCommUnloadFlt-1");
            check(ev[0] && ev[1], "open the driver's unload events", GetLastError(), 0);
        }
        if (ev[0]) ResetEvent(ev[0]);
        if (ev[1]) ResetEvent(ev[1]);

        hr = FilterConnectCommunicationPort(PORT, 0, NULL, 0, NULL, &port);
        snprintf(what, sizeof(what), "round %d: connect", round);
        check(hr == S_OK, what, hr, 0);
        memset(&reply, 0, sizeof(reply));
        if (hr == S_OK) hr = FilterSendMessage(port, "unload", 7, &reply, sizeof(reply), &got);
        snprintf(what, sizeof(what), "round %d: echo from a freshly loaded image (load count 1)", round);
        check(hr == S_OK && got == 4 + 7 && !strcmp(reply.text, "unload") && reply.loads == 1, what, hr, reply.loads);
        if (round < 3 && port != INVALID_HANDLE_VALUE) {
            CloseHandle(port);
            port = INVALID_HANDLE_VALUE;
        }

        stopped = ControlService(svc, SERVICE_CONTROL_STOP, &ss);
        snprintf(what, sizeof(what), "round %d: ControlService(STOP)%s", round, round == 3 ? " with a client connected" : "");
        check(stopped, what, GetLastError(), 0);
        snprintf(what, sizeof(what), "round %d: STOPPED", round);
        check(wait_state(svc, SERVICE_STOPPED, 5000) == SERVICE_STOPPED, what, state_of(svc), 0);
        snprintf(what, sizeof(what), "round %d: FilterUnloadCallback called with FLTFL_FILTER_UNLOAD_MANDATORY", round);
        check(ev[1] && WaitForSingleObject(ev[1], 0) == WAIT_OBJECT_0 && WaitForSingleObject(ev[0], 0) == WAIT_TIMEOUT, what,
              ev[1] ? (long long)WaitForSingleObject(ev[1], 0) : -1, ev[0] ? (long long)WaitForSingleObject(ev[0], 0) : -1);
        if (port != INVALID_HANDLE_VALUE) {
            hr = FilterSendMessage(port, "unload", 7, &reply, sizeof(reply), &got);
            check(FAILED(hr), "round 3: the connected client's port is dead after the unload", hr, 0);
            CloseHandle(port);
            port = INVALID_HANDLE_VALUE;
        }
        hr = FilterConnectCommunicationPort(PORT, 0, NULL, 0, NULL, &port);
        snprintf(what, sizeof(what), "round %d: the port is gone after the stop", round);
        check(FAILED(hr), what, hr, 0);
        if (SUCCEEDED(hr)) CloseHandle(port);
    }

    DeleteService(svc);
    CloseServiceHandle(svc);
out:
    CloseServiceHandle(scm);
    printf("RESULT: %d failed\n", failures);
    return failures ? 1 : 0;
}
