/*
 * Kernel routines Wine 8's ntoskrnl lacks or fatally stubs, for drivers in the
 * driver host (Wine only). See README.md.
 */
#ifndef NTCOMM_WINE_KAPI_H
#define NTCOMM_WINE_KAPI_H

/* On Wine 8 only: points ntoskrnl's fatal stubs (and IoCsqInitialize, which does
 * nothing there) at the implementations in kapi.c, and adds the exports it lacks.
 * For the helper's DllMain, before any driver that needs them loads. Returns nonzero
 * on success (and when there is nothing to do). */
int ntcomm_kapi_install(void);

/* An image in [lo, hi) is being unloaded: its DPCs leave the queue, and one running
 * is waited for (up to 5 s), so that none runs in the unmapped image. */
void kapi_dpc_unloading(const unsigned char *lo, const unsigned char *hi);

#endif
