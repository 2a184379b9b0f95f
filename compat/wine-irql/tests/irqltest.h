/* irqltest.sys: one IOCTL per IRQL rule, each broken exactly once (Wine test driver). */
#ifndef IRQLTEST_H
#define IRQLTEST_H

#define IRQLTEST_USER_PATH "\\\\.\\NtCommIrqlTest"
#define IRQLTEST_IOCTL(n) (0x8000u << 16 | 0u << 14 | (0x800u + (n)) << 2 | 0u) /* BUFFERED, any access */

enum irqltest_case {
    IRQLTEST_CLEAN = 0,          /* every rule kept: no finding; output byte = IRQL seen under a lock */
    IRQLTEST_RAISED_RETURN,      /* KeRaiseIrql(DISPATCH) and return */
    IRQLTEST_LOCK_HELD_RETURN,   /* KeAcquireSpinLock and return */
    IRQLTEST_WAIT_UNDER_LOCK,    /* KeWaitForSingleObject (no timeout) holding a spin lock */
    IRQLTEST_ZW_AT_DISPATCH,     /* ZwClose at DISPATCH_LEVEL */
    IRQLTEST_PAGED_AT_DISPATCH,  /* ExAllocatePoolWithTag(PagedPool) holding a spin lock */
    IRQLTEST_RELEASE_WRONG_IRQL, /* KeReleaseSpinLock with DISPATCH_LEVEL instead of the old IRQL */
    IRQLTEST_CANCEL_KEEPS_LOCK,  /* cancel routine returns without IoReleaseCancelSpinLock */
    IRQLTEST_CANCEL_RAISED,      /* cancel routine releases the cancel lock, then raises to DISPATCH */
    IRQLTEST_WORK_ITEM_RAISED,   /* a work item returns at DISPATCH_LEVEL */
    IRQLTEST_CASES
};

#endif
