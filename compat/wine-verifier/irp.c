/*
 * IRP rules (Wine only): every IRP the I/O manager (winedevice) or a driver sends
 * to a tracked driver is followed from its dispatch to its completion and free, and
 * what Driver Verifier's I/O verification checks is checked (README.md, rules
 * irp-*). Also the dispatch gate: an IRP for a device its driver has deleted is not
 * dispatched (Wine 8 would call into the unloaded image; Windows keeps the device
 * until its last reference is gone).
 */
#include <ddk/wdm.h>

#include "../wine-irql/irql.h"
#include "verifier.h"
#include "codes.h"

enum state { DISPATCHING = 1, PENDED, COMPLETED };

struct irp_entry {
    IRP *irp;                /* NULL: empty slot */
    unsigned char state;
    unsigned char io_manager; /* sent by the I/O manager: a driver must not IoFreeIrp it */
    unsigned char marked;     /* SL_PENDING_RETURNED when completed */
    unsigned char cancel_checked;
    unsigned char levels;     /* tracked dispatch routines it was sent to (forwarded: > 1) */
    LONG status;              /* IoStatus.Status when completed */
    const void *completer;    /* who completed it */
    const void *dispatch;     /* the dispatch routine it was last sent to */
    unsigned char *copy;      /* its contents when its completion returned (pool), or NULL */
    unsigned size;            /* bytes copied */
    unsigned long serial;
};

#define IRP_SLOTS 32768 /* the quarantine holds 4,096 freed IRPs; the rest are in flight */
static struct irp_entry *irps;
static unsigned long irp_count, serials;

static unsigned long home(const void *p)
{
    unsigned long long h = (unsigned long long)(ULONG_PTR)p;
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ull;
    return (unsigned long)(h >> 49); /* 15 bits */
}

static struct irp_entry *lookup(const IRP *irp)
{
    unsigned long s;
    if (!irps) return NULL;
    for (s = home(irp); irps[s].irp; s = (s + 1) & (IRP_SLOTS - 1))
        if (irps[s].irp == irp) return &irps[s];
    return NULL;
}

static struct irp_entry *insert(IRP *irp)
{
    unsigned long s;
    if (!irps) {
        irps = ExAllocatePoolWithTag(NonPagedPool, IRP_SLOTS * sizeof(*irps), VF_POOL_TAG);
        if (!irps) return NULL;
        RtlZeroMemory(irps, IRP_SLOTS * sizeof(*irps));
    }
    for (s = home(irp); irps[s].irp && irps[s].irp != irp; s = (s + 1) & (IRP_SLOTS - 1)) {}
    if (!irps[s].irp && irp_count * 4 > IRP_SLOTS * 3) return NULL; /* full: not tracked */
    if (!irps[s].irp) irp_count++;
    else if (irps[s].copy) ExFreePool(irps[s].copy); /* the same address sent again */
    RtlZeroMemory(&irps[s], sizeof(irps[s]));
    irps[s].irp = irp;
    irps[s].serial = ++serials;
    return &irps[s];
}

static void erase(struct irp_entry *e)
{
    unsigned long hole = (unsigned long)(e - irps), s = hole;
    for (;;) {
        unsigned long h;
        s = (s + 1) & (IRP_SLOTS - 1);
        if (!irps[s].irp) break;
        h = home(irps[s].irp);
        if ((s > hole && (h <= hole || h > s)) || (s < hole && h <= hole && h > s)) {
            irps[hole] = irps[s];
            hole = s;
        }
    }
    irps[hole].irp = NULL;
    irp_count--;
}

void vf_irp_begin(void *irp_, int from_io_manager)
{
    IRP *irp = irp_;
    struct irp_entry *e;
    if (!vf_on) return;
    vf_lock();
    e = lookup(irp);
    if (!e || e->state == COMPLETED) {
        /* new, or an address the quarantine has not yet freed but reused */
        if ((e = insert(irp))) e->io_manager = (unsigned char)from_io_manager;
    }
    if (e) {
        e->state = DISPATCHING;
        if (e->levels < 255) e->levels++;
    }
    vf_unlock();
}

void vf_dispatch_leave(void *device, void *irp_, void *stack, long status, const void *dispatch, int from_io_manager)
{
    IRP *irp = irp_;
    IO_STACK_LOCATION *sp = stack;
    struct irp_entry *e;
    int marked, completed, forwarded;
    LONG completed_status;

    vf_device_leave(device);
    if (!vf_on) return;
    vf_lock();
    e = lookup(irp);
    if (!e) {
        vf_unlock();
        return;
    }
    completed = e->state == COMPLETED;
    /* The IRP's memory stays valid after completion (the quarantine parks it). */
    marked = completed ? e->marked : (sp->Control & SL_PENDING_RETURNED) != 0;
    completed_status = e->status;
    forwarded = e->levels > 1;
    if (status == STATUS_PENDING && !completed) e->state = PENDED;
    e->dispatch = dispatch;
    vf_unlock();
    /* An IRP passed between drivers: which level marked it pending, and which
     * status each level returns, follow the stack's own rules (a completion
     * routine may mark it, a level returns the lower one's status): the return
     * rules are checked on IRPs that one driver handled alone. */
    if (forwarded) return;

    if (status == STATUS_PENDING) {
        if (!marked)
            irql_finding(DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_PENDING_NOT_MARKED, (ULONG_PTR)dispatch, (ULONG_PTR)irp,
                         (ULONG)status,
                         "irp-pending-not-marked", "IoCallDriver", dispatch,
                         "dispatch routine returned STATUS_PENDING without IoMarkIrpPending");
        return;
    }
    if (marked)
        irql_finding(DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_MARKED_NOT_PENDING, (ULONG_PTR)dispatch, (ULONG_PTR)irp,
                     (ULONG)status,
                     "irp-marked-not-pending", "IoCallDriver", dispatch,
                     "IRP marked pending but the dispatch routine returned another status than STATUS_PENDING");
    if (!completed)
        irql_finding(DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_NOT_COMPLETED, (ULONG_PTR)dispatch, (ULONG_PTR)irp,
                     (ULONG)status,
                     "irp-not-completed", "IoCallDriver", dispatch,
                     "dispatch routine returned a status other than STATUS_PENDING without completing the IRP");
    else if (from_io_manager && completed_status != status)
        irql_finding(DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_STATUS_MISMATCH, (ULONG_PTR)dispatch, (ULONG_PTR)irp,
                     (ULONG)completed_status, "irp-status-mismatch", "IoCallDriver", dispatch,
                     "dispatch routine returned another status than the IoStatus.Status it completed the IRP with");
}

/* Bytes the I/O manager copies back for a buffered request: more than the caller's
 * buffer overruns it. */
static int overruns(const IRP *irp, const IO_STACK_LOCATION *sp, ULONG_PTR *limit)
{
    if (NT_ERROR(irp->IoStatus.Status)) return 0;
    if ((sp->MajorFunction == IRP_MJ_DEVICE_CONTROL || sp->MajorFunction == IRP_MJ_INTERNAL_DEVICE_CONTROL) &&
        METHOD_FROM_CTL_CODE(sp->Parameters.DeviceIoControl.IoControlCode) == METHOD_BUFFERED) {
        *limit = sp->Parameters.DeviceIoControl.OutputBufferLength;
        return irp->IoStatus.Information > *limit;
    }
    if (sp->MajorFunction == IRP_MJ_READ && sp->DeviceObject && (sp->DeviceObject->Flags & DO_BUFFERED_IO)) {
        *limit = sp->Parameters.Read.Length;
        return irp->IoStatus.Information > *limit;
    }
    return 0;
}

int vf_complete(void *irp_, const void *caller)
{
    IRP *irp = irp_;
    IO_STACK_LOCATION *sp;
    struct irp_entry *e;
    ULONG_PTR limit = 0;

    if (!vf_on) return 1;
    vf_lock();
    e = lookup(irp);
    if (!e) {
        vf_unlock();
        return 1;
    }
    if (e->state == COMPLETED) {
        vf_unlock();
        irql_finding(MULTIPLE_IRP_COMPLETE_REQUESTS, (ULONG_PTR)irp, 0, 0, 0, "irp-completed-twice", "IofCompleteRequest",
                     caller, "IoCompleteRequest on an IRP already completed (the second completion is not done)");
        return 0;
    }
    sp = IoGetCurrentIrpStackLocation(irp);
    e->state = COMPLETED;
    e->status = irp->IoStatus.Status;
    e->marked = (sp->Control & SL_PENDING_RETURNED) != 0;
    e->completer = caller;
    vf_unlock();

    if (irp->CancelRoutine)
        irql_finding(DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_COMPLETED_WITH_CANCEL_ROUTINE,
                     (ULONG_PTR)irp->CancelRoutine, (ULONG_PTR)irp, 0, "irp-completed-cancel-routine-set", "IofCompleteRequest", caller,
                     "IRP completed with its cancel routine still set");
    if (irp->IoStatus.Status == STATUS_PENDING)
        irql_finding(DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_COMPLETED_PENDING, (ULONG)irp->IoStatus.Status,
                     (ULONG_PTR)irp, 0,
                     "irp-completed-pending", "IofCompleteRequest", caller,
                     "IRP completed with IoStatus.Status STATUS_PENDING");
    if (overruns(irp, sp, &limit))
        irql_finding(DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_INFORMATION_OVERRUN, (ULONG_PTR)caller,
                     (ULONG_PTR)irp, irp->IoStatus.Information, "irp-information-overrun", "IofCompleteRequest", caller,
                     "buffered request completed with IoStatus.Information larger than the caller's buffer");
    return 1;
}

/* A pended IRP its caller cancels must be cancellable: with no cancel routine it
 * can only hang. The driver may be completing it right now (removed from its queue,
 * routine cleared): it is a finding only if still not completed a while later. */
struct late { IRP *irp; unsigned long serial; const void *dispatch; };

static void cancel_recheck(void *p)
{
    struct late l = *(struct late *)p;
    struct irp_entry *e;
    int hung;
    ExFreePool(p);
    vf_lock();
    e = lookup(l.irp);
    hung = e && e->serial == l.serial && e->state == PENDED;
    vf_unlock();
    if (hung)
        irql_finding(DRIVER_VERIFIER_DETECTED_VIOLATION, C4_CANCELLED_IRP_NOT_COMPLETED, (ULONG_PTR)l.irp, 2000, 0,
                     "irp-pended-not-cancellable", "IoCancelIrp", l.dispatch,
                     "pended IRP cancelled by its caller has no cancel routine and was not completed within 2 s");
}

void vf_cancel(void *irp_)
{
    IRP *irp = irp_;
    struct irp_entry *e;
    struct late *l;
    if (!vf_on || irp->CancelRoutine) return;
    vf_lock();
    e = lookup(irp);
    if (!e || e->state != PENDED || e->cancel_checked) {
        vf_unlock();
        return;
    }
    e->cancel_checked = 1;
    l = ExAllocatePoolWithTag(NonPagedPool, sizeof(*l), VF_POOL_TAG);
    if (l) {
        l->irp = irp;
        l->serial = e->serial;
        l->dispatch = e->dispatch;
    }
    vf_unlock();
    if (l && !vf_after(2000, cancel_recheck, l)) ExFreePool(l);
}

/* Whether byte `i` of an IRP is one Wine may still write after the completion:
 * Cancel and CancelIrql (a late cancel), CancelRoutine (the quarantine clears it),
 * UserBuffer (winedevice frees the output buffer of a request completed after it
 * was pended, and clears the field, when the wineserver has taken the result). */
static int may_change(unsigned i)
{
    const unsigned routine = FIELD_OFFSET(IRP, CancelRoutine), user = FIELD_OFFSET(IRP, UserBuffer);
    return i == FIELD_OFFSET(IRP, Cancel) || i == FIELD_OFFSET(IRP, CancelIrql) ||
           (i >= routine && i < routine + sizeof(void *)) || (i >= user && i < user + sizeof(void *));
}

/* The IRP field at byte `i`, for the finding. */
static const char *field_at(unsigned i)
{
    static const struct { unsigned at, size; const char *name; } fields[] = {
        { FIELD_OFFSET(IRP, MdlAddress), 8, "MdlAddress" },
        { FIELD_OFFSET(IRP, Flags), 4, "Flags" },
        { FIELD_OFFSET(IRP, AssociatedIrp), 8, "AssociatedIrp" },
        { FIELD_OFFSET(IRP, ThreadListEntry), 16, "ThreadListEntry" },
        { FIELD_OFFSET(IRP, IoStatus), 16, "IoStatus" },
        { FIELD_OFFSET(IRP, PendingReturned), 1, "PendingReturned" },
        { FIELD_OFFSET(IRP, UserIosb), 8, "UserIosb" },
        { FIELD_OFFSET(IRP, UserEvent), 8, "UserEvent" },
        { FIELD_OFFSET(IRP, Overlay), 16, "Overlay" },
        { FIELD_OFFSET(IRP, UserBuffer), 8, "UserBuffer" },
        { FIELD_OFFSET(IRP, Tail.Overlay.DriverContext), 32, "Tail.Overlay.DriverContext" },
        { FIELD_OFFSET(IRP, Tail.Overlay.Thread), 8, "Tail.Overlay.Thread" },
        { FIELD_OFFSET(IRP, Tail.Overlay.AuxiliaryBuffer), 8, "Tail.Overlay.AuxiliaryBuffer" },
        { FIELD_OFFSET(IRP, Tail.Overlay.ListEntry), 16, "Tail.Overlay.ListEntry" },
        { FIELD_OFFSET(IRP, Tail.Overlay.CurrentStackLocation), 8, "Tail.Overlay.CurrentStackLocation" },
        { FIELD_OFFSET(IRP, Tail.Overlay.OriginalFileObject), 8, "Tail.Overlay.OriginalFileObject" },
    };
    unsigned k;
    if (i >= sizeof(IRP)) return "a stack location";
    for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
        if (i >= fields[k].at && i < fields[k].at + fields[k].size) return fields[k].name;
    return "the IRP header";
}

/* After the completion of an IRP from the I/O manager (no driver may touch it any
 * more: unlike its own IRPs, which a completion routine may take back, these are
 * only freed), its contents are copied; the free compares them. */
void vf_completed(void *irp_)
{
    IRP *irp = irp_;
    struct irp_entry *e;
    unsigned size = 0;
    unsigned char *copy = NULL;
    int take = 0;
    if (!vf_on || !irps) return;
    vf_lock();
    if ((e = lookup(irp)) && e->state == COMPLETED) {
        if (irp->CurrentLocation <= irp->StackCount) {
            /* A completion routine held the completion back (it returned
             * STATUS_MORE_PROCESSING_REQUIRED): the IRP is its driver's again, to
             * complete later. */
            e->state = DISPATCHING;
        } else if (e->io_manager && !e->copy) {
            take = 1;
            size = IoSizeOfIrp(irp->StackCount);
        }
    }
    vf_unlock();
    if (!take || !(copy = ExAllocatePoolWithTag(NonPagedPool, size, VF_POOL_TAG))) return;
    RtlCopyMemory(copy, irp, size);
    vf_lock();
    if ((e = lookup(irp)) && e->state == COMPLETED && !e->copy) {
        e->copy = copy;
        e->size = size;
        copy = NULL;
    }
    vf_unlock();
    if (copy) ExFreePool(copy);
}

void vf_irp_freed(void *irp)
{
    struct irp_entry *e;
    const void *who = NULL;
    unsigned char *copy = NULL;
    unsigned size = 0, i;
    if (!irps) return;
    vf_lock();
    if ((e = lookup(irp))) {
        copy = e->copy;
        size = e->size;
        who = e->completer ? e->completer : e->dispatch;
        erase(e);
    }
    vf_unlock();
    if (!copy) return;
    for (i = 0; i < size; i++)
        if (!may_change(i) && copy[i] != ((const unsigned char *)irp)[i]) break;
    if (i < size) {
        char detail[200];
        _snprintf(detail, sizeof(detail),
                  "IRP changed after its completion: byte 0x%x (%s) was 0x%02x, is 0x%02x (seen when it was freed; "
                  "`at` is who completed it)",
                  i, field_at(i), copy[i], ((const unsigned char *)irp)[i]);
        irql_finding(DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, (ULONG_PTR)irp + i, 1, 0, 0, "irp-written-after-completion",
                     "IoFreeIrp", who, detail);
    }
    ExFreePool(copy);
}

/* ----- the driver's own calls ------------------------------------------------------- */

void *vf_orig_IoFreeIrp;

VOID NTAPI vf_h_IoFreeIrp(PIRP irp)
{
    struct irp_entry *e;
    int owned = 0;
    if (vf_on && irp) {
        vf_lock();
        e = lookup(irp);
        owned = e && e->io_manager;
        vf_unlock();
    }
    if (owned) {
        irql_finding(DRIVER_VERIFIER_IOMANAGER_VIOLATION, C9_FREE_THREADED_IRP, (ULONG_PTR)irp, 0, 0,
                     "irp-freed-by-driver", "IoFreeIrp", __builtin_return_address(0),
                     "IoFreeIrp on an IRP the I/O manager sent (it is not freed)");
        return;
    }
    ((VOID (NTAPI *)(PIRP))vf_orig_IoFreeIrp)(irp);
}
