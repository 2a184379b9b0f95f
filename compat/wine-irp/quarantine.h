/* IRP quarantine for Wine 8's cancel race: see quarantine.c. Wine only. */
#ifndef NTCOMM_WINE_IRP_QUARANTINE_H
#define NTCOMM_WINE_IRP_QUARANTINE_H

/* The replacement for ntoskrnl's IoFreeIrp (takes a PIRP; declared untyped here so
 * that callers need not include wdm.h). */
void __attribute__((ms_abi)) quarantine_free_irp(void *irp);

#endif
