/*
 * ntcomm_lpc.sys: a driver that carries ntcomm's LPC into a winedevice.exe
 * (Wine only). Installed as a service in the client driver's LoadOrderGroup
 * and started before it, so both share one winedevice; importing kernel32
 * makes Wine call the entry point as DllMain first, which patches ntdll and
 * ntoskrnl in that process, and then as DriverEntry.
 */
#include <windows.h>

#include "lpc.h"

extern IMAGE_DOS_HEADER __ImageBase;

/* DRIVER_OBJECT.DriverUnload on x64 (wdm.h cannot be mixed with windows.h). */
#define DRIVER_UNLOAD_OFFSET 0x68

static void WINAPI unload(void *driver)
{
    /* The patches stay: a client driver in this process may still hold ports. */
    (void)driver;
}

LONG WINAPI LpcHelperEntry(void *a, ULONG_PTR b, void *c)
{
    (void)c;
    if (a == (void *)&__ImageBase) {
        /* DllMain(hinst, reason, reserved) */
        if (b == DLL_PROCESS_ATTACH) return ntcomm_lpc_install(1) ? TRUE : FALSE;
        return TRUE;
    }
    /* DriverEntry(DriverObject, RegistryPath) */
    *(void **)((char *)a + DRIVER_UNLOAD_OFFSET) = (void *)unload;
    return 0; /* STATUS_SUCCESS */
}
