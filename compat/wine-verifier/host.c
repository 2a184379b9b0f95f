/*
 * Verifier mode, host side (Wine only): the switch, the lock, time, deferred
 * checks and thread handles, for the wdm.h side (irp.c, pool.c, unload.c).
 */
#include <windows.h>

#include "verifier.h"

int vf_on = 1;

/* HKLM\Software\ntcomm\rig, DWORD Verifier: 0 turns the checks off (README.md). */
void vf_read_switch(void)
{
    DWORD value = 1, size = sizeof(value);
    if (RegGetValueW(HKEY_LOCAL_MACHINE, L"Software\\ntcomm\\rig", L"Verifier", RRF_RT_REG_DWORD, NULL, &value, &size) ==
        ERROR_SUCCESS)
        vf_on = value != 0;
}

static SRWLOCK lock = SRWLOCK_INIT;

void vf_lock(void) { AcquireSRWLockExclusive(&lock); }
void vf_unlock(void) { ReleaseSRWLockExclusive(&lock); }

unsigned long long vf_now_ms(void) { return GetTickCount64(); }

struct later { void (*fn)(void *); void *arg; HANDLE timer; };

static void CALLBACK fire(void *p, BOOLEAN timed_out)
{
    struct later *l = p;
    (void)timed_out;
    l->fn(l->arg);
    DeleteTimerQueueTimer(NULL, l->timer, NULL); /* no wait: allowed from its own callback */
    HeapFree(GetProcessHeap(), 0, l);
}

int vf_after(unsigned ms, void (*fn)(void *), void *arg)
{
    struct later *l = HeapAlloc(GetProcessHeap(), 0, sizeof(*l));
    if (!l) return 0;
    l->fn = fn;
    l->arg = arg;
    if (!CreateTimerQueueTimer(&l->timer, NULL, fire, l, ms, 0, WT_EXECUTEONLYONCE)) {
        HeapFree(GetProcessHeap(), 0, l);
        return 0;
    }
    return 1;
}

void *vf_dup_handle(void *handle)
{
    HANDLE own = NULL;
    if (!DuplicateHandle(GetCurrentProcess(), handle, GetCurrentProcess(), &own, SYNCHRONIZE, FALSE, 0)) return NULL;
    return own;
}

int vf_handle_signaled(void *handle) { return WaitForSingleObject(handle, 0) == WAIT_OBJECT_0; }

void vf_close_handle(void *handle) { CloseHandle(handle); }

int vf_handle_open(void *handle)
{
    DWORD flags;
    return GetHandleInformation(handle, &flags) != 0;
}

/* Wine 8's pool is its process heap (ExAllocatePool* is HeapAlloc(GetProcessHeap())),
 * whose HeapSize fails for a block that is not allocated. */
int vf_pool_block_in_use(void *p)
{
    return HeapSize(GetProcessHeap(), 0, p) != (SIZE_T)-1;
}
