/* vftest.sys: one IOCTL per verifier rule, each broken exactly once, and correct
 * twins that must give no finding (Wine test driver of compat/wine-verifier). */
#ifndef VFTEST_H
#define VFTEST_H

#define VFTEST_USER_PATH "\\\\.\\NtCommVfTest"
#define VFTEST_IOCTL(n) (0x8000u << 16 | 0u << 14 | (0x800u + (n)) << 2 | 0u) /* BUFFERED, any access */

enum vftest_case {
    VFTEST_CLEAN = 0,            /* every rule kept, in one dispatch: no finding; output: the IRQL its DPC ran at */
    VFTEST_COMPLETE_TWICE,       /* IoCompleteRequest twice */
    VFTEST_CANCEL_ROUTINE_SET,   /* completed with a cancel routine set */
    VFTEST_COMPLETE_PENDING,     /* completed with STATUS_PENDING (marked, returns STATUS_PENDING) */
    VFTEST_PENDING_NOT_MARKED,   /* completed, returns STATUS_PENDING without IoMarkIrpPending */
    VFTEST_MARKED_NOT_PENDING,   /* IoMarkIrpPending, completed, returns STATUS_SUCCESS */
    VFTEST_STATUS_MISMATCH,      /* completed with STATUS_SUCCESS, returns STATUS_UNSUCCESSFUL */
    VFTEST_NOT_COMPLETED,        /* returns STATUS_SUCCESS, completed 100 ms later by a work item */
    VFTEST_INFORMATION_OVERRUN,  /* buffered: Information = OutputBufferLength + 16 */
    VFTEST_FREE_IRP,             /* IoFreeIrp on the IRP it was sent, then completes it */
    VFTEST_PEND_NO_CANCEL,       /* marked and pended with no cancel routine (VFTEST_RELEASE completes it) */
    VFTEST_RELEASE,              /* completes the IRP VFTEST_PEND_NO_CANCEL kept */
    VFTEST_WRITE_AFTER_COMPLETE, /* completes, then writes IoStatus.Information */
    VFTEST_DOUBLE_FREE,          /* ExFreePoolWithTag twice */
    VFTEST_WRONG_TAG,            /* freed with another tag */
    VFTEST_DELETE_TWICE,         /* IoDeleteDevice twice on a device of its own */
    VFTEST_CLOSE_INVALID,        /* ZwClose of a handle never opened */
    /* armed now, found when the driver is unloaded */
    VFTEST_LEAK_POOL,            /* 3 blocks tagged 'Leak' never freed */
    VFTEST_LEAVE_DEVICE,         /* a second device never deleted */
    VFTEST_LEAVE_LINK,           /* a second symbolic link never deleted */
    VFTEST_LEAVE_THREAD,         /* a system thread that never exits (blocked in a wait) */
    VFTEST_LEAVE_TIMER,          /* a timer with a DPC, due in an hour, never cancelled */
    VFTEST_LEAVE_WORK_ITEM,      /* an executive work item still running (blocked in a wait) */
    VFTEST_LEAVE_LOOKASIDE,      /* a nonpaged lookaside list never deleted */
    VFTEST_LEAVE_HANDLE,         /* an event handle (ZwCreateEvent) never closed */
    VFTEST_LEAVE_DPCS,           /* a DPC that runs for a while, and a second queued behind it */
    VFTEST_CLEAN_UNLOAD,         /* twin of the above: creates each and undoes it at unload */
    VFTEST_FORWARD_AND_WAIT,     /* twin: forwarded to a second device of its own, held back by
                                    a completion routine (STATUS_MORE_PROCESSING_REQUIRED), completed again */
    VFTEST_CASES
};

#endif
