/*
 * Verifier mode (Wine only): the Driver Verifier style checks the rig makes on
 * every driver it tracks (compat/wine-irql says which). Rules, codes and sources:
 * README.md. This header is shared by the wdm.h side (hooks, irp.c, pool.c,
 * unload.c) and the windows.h side (track.c); plain C types only.
 */
#ifndef NTCOMM_WINE_VERIFIER_H
#define NTCOMM_WINE_VERIFIER_H

/* The verifier's own blocks (not tracked: the helper's imports are not patched). */
#define VF_POOL_TAG 0x21665676 /* 'vVf!' */

int __cdecl _snprintf(char *buf, __SIZE_TYPE__ size, const char *format, ...);
__declspec(dllimport) unsigned short __stdcall RtlCaptureStackBackTrace(unsigned long skip, unsigned long count, void **frames,
                                                                        unsigned long *hash);

/* Whether the checks are on: the registry switch (docs/VERIFIER.md), read each
 * time a tracked driver's image loads. */
extern int vf_on;
void vf_read_switch(void);

/* One lock for the verifier's tables (an SRW lock: never held across a call into
 * a driver, never taken twice on one thread). */
void vf_lock(void);
void vf_unlock(void);

/* Milliseconds since boot, for deferred checks. */
unsigned long long vf_now_ms(void);
/* Runs fn(arg) once after `ms` milliseconds on a thread-pool thread. */
int vf_after(unsigned ms, void (*fn)(void *), void *arg);

/* Handles (windows.h side): a private duplicate of a thread handle, whether it
 * is signaled (the thread has ended), and closing it. */
void *vf_dup_handle(void *handle);
int vf_handle_signaled(void *handle);
void vf_close_handle(void *handle);
/* Whether the pool block at `p` is allocated (by anyone) now. */
int vf_pool_block_in_use(void *p);
/* Whether a handle of this process is open. */
int vf_handle_open(void *handle);

/* ----- pool.c ----- */
void vf_pool_alloc(void *p, unsigned long long size, unsigned long tag, int type, const void *caller);
/* Returns 0 when the block must not be freed (a double free, already reported). */
int vf_pool_free(void *p, unsigned long tag, int with_tag, const char *routine, const void *caller);
void vf_pool_unloading(const unsigned char *lo, const unsigned char *hi);

/* ----- irp.c ----- */
/* Before and after a tracked driver's dispatch routine (after vf_device_enter). */
void vf_irp_begin(void *irp, int from_io_manager);
void vf_dispatch_leave(void *device, void *irp, void *stack, long status, const void *dispatch, int from_io_manager);
/* At IoCompleteRequest by a tracked driver: 0 when the IRP must not be completed
 * again (completed twice, already reported). */
int vf_complete(void *irp, const void *caller);
/* At IoCancelIrp of a tracked driver's IRP. */
void vf_cancel(void *irp);
/* After IoCompleteRequest returned (its contents must not change any more), and
 * when the IRP quarantine frees an IRP for good. */
void vf_completed(void *irp);
void vf_irp_freed(void *irp);

/* ----- unload.c ----- */
/* A DPC queued (compat/wine-kapi), and run or taken off the queue. */
void vf_dpc_queued(const void *dpc, const void *routine);
void vf_dpc_done(const void *dpc, const void *routine);
void vf_work_queued(const void *routine);
void vf_work_done(const void *routine);
void vf_thread_created(void *handle, const void *start, const void *caller);
/* The handle PsCreateSystemThread returned to the driver, to follow until ZwClose. */
void vf_handle_from_thread(void *handle, const void *caller);
/* A tracked image is being unmapped (after DriverUnload returned). */
void vf_module_unloading(const unsigned char *lo, const unsigned char *hi);
/* The device registry, for the dispatch gate: 1 live, 0 deleted (do not dispatch),
 * -1 not a tracked driver's. Every call that did not return 0 is paired with a
 * vf_device_leave (vf_dispatch_leave makes it). */
int vf_device_enter(void *device);
void vf_device_leave(void *device);


#endif
