/*
 * IRP quarantine: works around a use-after-free in Wine 8's ntoskrnl (Wine only).
 *
 * Wine's winedevice delivers a client's CancelIoEx as a separate request from the
 * wineserver; dispatch_cancel() then calls IoCancelIrp() on the IRP pointer the server
 * remembered. If a driver thread completed that IRP in between, IoCompleteRequest()
 * has already freed it (IoFreeIrp runs after the completion routine has left
 * irp_completion_cs), and IoCancelIrp() reads freed memory: garbage, or another IRP
 * that reused the address, whose cancel routine then runs for the wrong request.
 *
 * The fix here: IoFreeIrp's entry jumps to quarantine_free_irp(), which makes the IRP
 * inert (no cancel routine) and parks it in a ring of QUARANTINE_SLOTS entries; the
 * IRP pushed out of its slot is freed the way Wine 8's IoFreeIrp frees it (its MDL
 * chain, then the pool block). A late cancel then finds an IRP without a cancel
 * routine and does nothing, as it does on Windows for a completed request. The
 * address is reused only after QUARANTINE_SLOTS further frees (seconds at thousands
 * of IRPs a second), far longer than a queued cancel waits.
 *
 * Compiled into the driver-host helper (compat/wine-lpc/helper.c), which installs it.
 */
#include <ddk/wdm.h>

#include "quarantine.h"
#include "../wine-verifier/verifier.h"

#define QUARANTINE_SLOTS 4096

static PIRP volatile slots[QUARANTINE_SLOTS];
static volatile LONG next_slot;

/* Wine 8's IoFreeIrp: the MDL chain, then the block (IoAllocateIrp used the pool). */
static void free_irp_now(PIRP irp)
{
    PMDL mdl = irp->MdlAddress;
    vf_irp_freed(irp);
    while (mdl) {
        PMDL next = mdl->Next;
        IoFreeMdl(mdl);
        mdl = next;
    }
    ExFreePool(irp);
}

void WINAPI quarantine_free_irp(void *p)
{
    PIRP irp = p;
    LONG slot;
    PIRP old;

    if (!irp) return;
    /* A completed IRP has no cancel routine (drivers clear it first); make sure. */
    InterlockedExchangePointer((PVOID volatile *)&irp->CancelRoutine, NULL);
    slot = (LONG)((ULONG)InterlockedIncrement(&next_slot) % QUARANTINE_SLOTS);
    old = InterlockedExchangePointer((PVOID volatile *)&slots[slot], irp);
    if (old) free_irp_now(old);
}
