/*
 * bcryptprimitives.dll shim for Wine 8: ProcessPrng over RtlGenRandom.
 *
 * Wine only. Never install this on Windows, which has the real DLL.
 * See README.md for why it exists.
 */
#include <windows.h>
#include <limits.h>

#include "../wine-lpc/lpc.h"

#define STATUS_INTERNAL_ERROR_CODE 0xC00000E5u

/* advapi32!SystemFunction036, a.k.a. RtlGenRandom. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG len);

/* Consecutive failed RtlGenRandom calls tolerated before giving up. */
#define MAX_FAILURES 1000

/*
 * Windows documents ProcessPrng as always returning TRUE: callers (Rust std among them)
 * treat the buffer as filled. So this never returns FALSE and never returns with part of
 * the buffer unfilled. RtlGenRandom takes a ULONG length, so large requests are split into
 * chunks of at most ULONG_MAX bytes. If RtlGenRandom fails (it does not in practice under
 * Wine), the chunk is retried, with a growing sleep; after MAX_FAILURES consecutive
 * failures (about 8 minutes) the process is terminated rather than handed bytes that are
 * not random: the same outcome as Windows, which fails fast when its RNG is broken.
 */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    unsigned failures = 0;

    while (len > 0) {
        ULONG chunk = len > (SIZE_T)ULONG_MAX ? ULONG_MAX : (ULONG)len;

        if (SystemFunction036(data, chunk)) {
            data += chunk;
            len -= chunk;
            failures = 0;
            continue;
        }
        if (++failures >= MAX_FAILURES)
            TerminateProcess(GetCurrentProcess(), STATUS_INTERNAL_ERROR_CODE);
        Sleep(failures < 10 ? 0 : failures < 100 ? 1 : 500);
    }
    return TRUE;
}

/* No CRT: this is the whole entry point. */
BOOL WINAPI DllMainCRTStartup(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)reserved;
    if (reason == DLL_PROCESS_ATTACH) {
        DisableThreadLibraryCalls(inst);
        /* Every Rust program loads this DLL: it is how ntcomm's LPC for Wine gets into
           user processes (compat/wine-lpc). A failure leaves Wine's stubs in place. */
        ntcomm_lpc_install(0);
    }
    return TRUE;
}
