/*
 * Bug check codes and parameter 1 values of the verifier's rules, from Microsoft's
 * bug check reference (https://learn.microsoft.com/windows-hardware/drivers/debugger/
 * bug-check-0x44--multiple-irp-complete-requests, ...-0x93--invalid-kernel-handle,
 * ...-0xc2--bad-pool-caller, ...-0xc4--driver-verifier-detected-violation,
 * ...-0xc7--timer-or-dpc-invalid, ...-0xc9--driver-verifier-iomanager-violation,
 * ...-0xce--driver-unloaded-without-cancelling-pending-operations,
 * ...-0xd5--driver-page-fault-in-freed-special-pool). docs/VERIFIER.md has the
 * table: each rule with its page, its test, and where Windows documents no code,
 * which closest one is used and why.
 */
#ifndef NTCOMM_WINE_VERIFIER_CODES_H
#define NTCOMM_WINE_VERIFIER_CODES_H

#define MULTIPLE_IRP_COMPLETE_REQUESTS 0x44     /* p1 the IRP */
#define INVALID_KERNEL_HANDLE 0x93              /* p1 the handle, p2 1: invalid handle closed */
#define BAD_POOL_CALLER 0xC2
#define C2_DOUBLE_FREE 0x07                     /* p4 the block */
#define C2_WRONG_TAG 0x0A                       /* p2 block, p3 allocation tag, p4 tag freed with */
#ifndef DRIVER_VERIFIER_DETECTED_VIOLATION
#define DRIVER_VERIFIER_DETECTED_VIOLATION 0xC4
#endif
#define C4_POOL_LEAK_AT_UNLOAD 0x62             /* p4 allocations not freed */
#define C4_CANCELLED_IRP_NOT_COMPLETED 0x135    /* p2 IRP, p3 ms allowed */
#define TIMER_OR_DPC_INVALID 0xC7
#define C7_TIMER 0x0                            /* p2 timer, p3..p4 the image's range */
#define C7_DPC_ROUTINE 0x2                      /* p2 DPC routine, p3..p4 the image's range */
#ifndef DRIVER_VERIFIER_IOMANAGER_VIOLATION
#define DRIVER_VERIFIER_IOMANAGER_VIOLATION 0xC9
#endif
#define C9_FREE_THREADED_IRP 0x02               /* p2 IRP */
#define C9_COMPLETED_PENDING 0x06               /* p2 status, p3 IRP */
#define C9_COMPLETED_WITH_CANCEL_ROUTINE 0x07   /* p2 cancel routine, p3 IRP */
#define C9_DEVICE_NOT_DELETED 0x21E             /* p4 device (closest: see README) */
#define C9_STATUS_MISMATCH 0x224                /* p2 code, p3 IRP, p4 expected status */
#define C9_NOT_COMPLETED 0x226                  /* p2 code, p3 IRP */
#define C9_PENDING_NOT_MARKED 0x23D             /* p2 code, p3 IRP, p4 status */
#define C9_MARKED_NOT_PENDING 0x23E             /* p2 code, p3 IRP, p4 status */
#define C9_DELETE_DEVICE_TWICE 0x240            /* p2 code */
#define C9_INFORMATION_OVERRUN 0x312            /* p2 code, p3 IRP */
#define DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS 0xCE /* p1 address in the image */
#define DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL 0xD5 /* p1 address, p2 1 write */

#endif
