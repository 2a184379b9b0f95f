/* Shared between kapitest.c (the driver) and kapiclient.c. */
#ifndef KAPITEST_H
#define KAPITEST_H

#define KAPI_CTL(n) ((0x8e7du << 16) | ((0x800u + (n)) << 2)) /* METHOD_BUFFERED, FILE_ANY_ACCESS */
#define IOCTL_KAPI_STATUS KAPI_CTL(0)   /* out: struct kapi_status */
#define IOCTL_KAPI_WORK KAPI_CTL(1)     /* pended, completed by an ExQueueWorkItem item; out: struct kapi_work */
#define IOCTL_KAPI_PEND KAPI_CTL(2)     /* queued in the IoCsq queue (no context) */
#define IOCTL_KAPI_RELEASE KAPI_CTL(3)  /* IoCsqRemoveNextIrp, completes it; out: ULONG released (0/1) */
#define IOCTL_KAPI_PEND_CTX KAPI_CTL(4) /* queued with the driver's one IO_CSQ_IRP_CONTEXT (IoCsqInsertIrpEx) */
#define IOCTL_KAPI_TAKE_CTX KAPI_CTL(5) /* IoCsqRemoveIrp on that context, completes it; out: ULONG taken (0/1) */
#define IOCTL_KAPI_COUNT KAPI_CTL(6)    /* out: ULONG IRPs in the queue */

#define KAPI_WORK_MAGIC 0x6b617069u

struct kapi_status {
    ULONG pool_zeroed;        /* ExAllocatePool2(NON_PAGED) gave zeroed memory */
    ULONG pool_bad_flags_null;/* no pool type / two pool types / unknown required flag: NULL */
    LONG csq_init;            /* IoCsqInitializeEx */
    LONG set_security;        /* ObSetSecurityObjectByPointer(device, DACL) */
    LONG query_security;      /* ZwQuerySecurityObject on the device afterwards */
    ULONG dacl_aces;          /* ACEs in the DACL read back (2 expected) */
};

struct kapi_work {
    ULONG magic;            /* KAPI_WORK_MAGIC */
    ULONG dispatch_thread;  /* thread of the dispatch routine */
    ULONG worker_thread;    /* thread the work item ran on */
    ULONG parameter_ok;     /* the routine got its Parameter */
};

#endif
