/*
 * ntcomm_lpc.sys: a driver that carries ntcomm's LPC into a winedevice.exe
 * (Wine only). Installed as a service in the client driver's LoadOrderGroup
 * and started before it, so both share one winedevice; importing kernel32
 * makes Wine call the entry point as DllMain first, which patches ntdll and
 * ntoskrnl in that process, and then as DriverEntry.
 *
 * Being the one ntcomm piece loaded first into that winedevice, it also
 * installs the IRP quarantine (compat/wine-irp) against Wine 8's cancel race,
 * IRQL tracking (compat/wine-irql) for every driver that loads after it, and the
 * kernel routines Wine 8 lacks or stubs fatally (compat/wine-kapi).
 */
#include <windows.h>
#include <string.h>

#include "lpc.h"
#include "../wine-irp/quarantine.h"
#include "../wine-irql/irql.h"
#include "../wine-kapi/kapi.h"

extern IMAGE_DOS_HEADER __ImageBase;

/* DRIVER_OBJECT.DriverUnload on x64 (wdm.h cannot be mixed with windows.h). */
#define DRIVER_UNLOAD_OFFSET 0x68

static void WINAPI unload(void *driver)
{
    /* The patches stay: a client driver in this process may still hold ports. */
    (void)driver;
}

/* Points ntoskrnl's IoFreeIrp at the quarantine, on Wine 8 only: the replacement
 * frees IRPs the way Wine 8's IoFreeIrp does. Elsewhere nothing is patched. */
static int install_irp_quarantine(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll"), krnl = GetModuleHandleW(L"ntoskrnl.exe");
    const char *(CDECL *version)(void);
    unsigned char *p;

    if (!ntdll || !krnl) return 0;
    version = (const char *(CDECL *)(void))(void *)GetProcAddress(ntdll, "wine_get_version");
    if (!version || strncmp(version(), "8.", 2) != 0) return 1;
    if (!(p = (unsigned char *)(void *)GetProcAddress(krnl, "IoFreeIrp"))) return 0;
    if (ntcomm_is_jump(p)) return 1; /* already patched */
    return ntcomm_write_jump(p, (const void *)quarantine_free_irp);
}

LONG WINAPI LpcHelperEntry(void *a, ULONG_PTR b, void *c)
{
    (void)c;
    if (a == (void *)&__ImageBase) {
        /* DllMain(hinst, reason, reserved) */
        if (b == DLL_PROCESS_ATTACH)
            return ntcomm_lpc_install(1) && install_irp_quarantine() && ntcomm_irql_install() && ntcomm_kapi_install() ? TRUE
                                                                                                                     : FALSE;
        return TRUE;
    }
    /* DriverEntry(DriverObject, RegistryPath) */
    *(void **)((char *)a + DRIVER_UNLOAD_OFFSET) = (void *)unload;
    return 0; /* STATUS_SUCCESS */
}
