/*
 * For C test clients of ntcomm's Wine layers: run a test driver in the driver host
 * of the helper ntcomm_lpc.sys (compat/wine-lpc), so that it gets the layers (LPC,
 * the IRP quarantine, IRQL tracking, verifier mode: docs/VERIFIER.md). The helper's
 * service joins load-order group NtComm and starts first; a test driver installed
 * in that group then loads into the same winedevice.exe. Under Windows (no
 * wine_get_version) nothing is done. Header-only: include it in one client.
 */
#ifndef NTCOMM_HELPER_SERVICE_H
#define NTCOMM_HELPER_SERVICE_H

#include <windows.h>

#define NTCOMM_HELPER_SERVICE L"NtCommWineLpc"
#define NTCOMM_HELPER_GROUP L"NtComm"

/* Starts the helper (creating its service if needed); 0 or a Win32 error. */
static DWORD ntcomm_start_helper(SC_HANDLE scm)
{
    WCHAR image[MAX_PATH];
    SERVICE_STATUS ss;
    SC_HANDLE h;
    DWORD e = 0;
    if (!GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version")) return 0; /* Windows */
    if (!GetSystemDirectoryW(image, MAX_PATH - 32)) return GetLastError();
    lstrcatW(image, L"\\drivers\\ntcomm_lpc.sys");
    h = OpenServiceW(scm, NTCOMM_HELPER_SERVICE, SERVICE_ALL_ACCESS);
    if (!h)
        h = CreateServiceW(scm, NTCOMM_HELPER_SERVICE, NTCOMM_HELPER_SERVICE, SERVICE_ALL_ACCESS, SERVICE_KERNEL_DRIVER,
                           SERVICE_DEMAND_START, SERVICE_ERROR_NORMAL, image, NTCOMM_HELPER_GROUP, NULL, NULL, NULL, NULL);
    if (!h) return GetLastError();
    if (!(QueryServiceStatus(h, &ss) && ss.dwCurrentState == SERVICE_RUNNING) && !StartServiceW(h, 0, NULL) &&
        GetLastError() != ERROR_SERVICE_ALREADY_RUNNING)
        e = GetLastError();
    CloseServiceHandle(h);
    return e;
}

#endif
