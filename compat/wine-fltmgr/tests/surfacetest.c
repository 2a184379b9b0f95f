/*
 * surfacetest.exe: loads surfaceflt.sys (35 Filter Manager imports beyond the nine
 * port routines), connects to its port with <fltuser.h>, and checks each record the
 * minifilter made against the documented answer; then stops it.
 *
 *   surfacetest.exe C:\path\surfaceflt.sys
 *
 * Prints one line per check and "RESULT: n failed".
 */
#include <windows.h>
#include <fltuser.h>
#include <stdio.h>

#include "../../wine-lpc/helper_service.h"

#include "surface.h"

#define SERVICE L"ntcomm_surfaceflt"

static int failures;

static void check(int ok, const char *what, long long a, long long b)
{
    printf("%s: %s (%llx, %llx)\n", ok ? "ok  " : "FAIL", what, a, b);
    fflush(stdout);
    if (!ok) failures++;
}

int main(int argc, char **argv)
{
    static struct surface_result r[SURFACE_MAX];
    WCHAR image[MAX_PATH];
    SC_HANDLE scm, svc;
    SERVICE_STATUS ss;
    HANDLE port = INVALID_HANDLE_VALUE;
    DWORD got = 0, i, n;
    HRESULT hr;

    if (argc < 2) {
        fprintf(stderr, "usage: surfacetest C:\\path\\surfaceflt.sys\n");
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
    if (!svc) return 1;
    check(StartServiceW(svc, 0, NULL), "StartService: the minifilter and its fltmgr.sys imports load", GetLastError(), 0);
    hr = FilterConnectCommunicationPort(L"\\NtCommSurfacePort", 0, NULL, 0, NULL, &port);
    check(hr == S_OK, "connect to its port", hr, 0);
    if (hr == S_OK) hr = FilterSendMessage(port, "results", 7, r, sizeof(r), &got);
    check(hr == S_OK && got >= sizeof(r[0]) && got % sizeof(r[0]) == 0, "the port serves the records", hr, got);
    n = hr == S_OK ? got / sizeof(r[0]) : 0;
    check(n >= 30, "30 checks or more recorded", n, 0);
    for (i = 0; i < n; i++) {
        r[i].name[sizeof(r[i].name) - 1] = 0;
        check(r[i].got == r[i].want, r[i].name, r[i].got, r[i].want);
    }
    if (port != INVALID_HANDLE_VALUE) CloseHandle(port);
    check(ControlService(svc, SERVICE_CONTROL_STOP, &ss), "stop (FilterUnloadCallback)", GetLastError(), 0);
    for (i = 0; i < 100; i++) {
        if (QueryServiceStatus(svc, &ss) && ss.dwCurrentState == SERVICE_STOPPED) break;
        Sleep(20);
    }
    DeleteService(svc);
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    printf("RESULT: %d failed\n", failures);
    return failures ? 1 : 0;
}
