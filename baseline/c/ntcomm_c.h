/*
 * ntcomm_c.h: the protocol of the C baseline driver (driver.c) and its
 * client (client.c).
 *
 * The echo IOCTLs carry the same control codes and the same semantics as
 * ntcomm-demo's (crates/ntcomm-proto/src/demo.rs): device type 0x8e7c,
 * functions 0x800..0x803, FILE_READ_ACCESS, one per buffer method. The read/
 * write queue has the demo's limits. drivers/ntcomm-demo-proto/tests/c_baseline.rs
 * checks every number below against the Rust protocol, so they cannot drift.
 *
 * Only the names differ, so that both drivers can be installed side by side.
 */
#ifndef NTCOMM_C_H
#define NTCOMM_C_H

#define NTCOMM_C_DEVICE_NAME L"\\Device\\NtCommC"
#define NTCOMM_C_DOS_NAME L"\\DosDevices\\NtCommC"
#define NTCOMM_C_USER_PATH L"\\\\.\\NtCommC"
#define NTCOMM_C_SERVICE_NAME L"NtCommC"
#define NTCOMM_C_DRIVER_FILE "ntcomm_c.sys"
#define NTCOMM_C_POOL_TAG 0x43436d4e /* "NmCC" in a pool dump */

/* CTL_CODE(0x8e7c, 0x800 + n, METHOD_x, FILE_READ_ACCESS) */
#define NTCOMM_C_IOCTL_ECHO_BUFFERED 0x8e7c6000u  /* n = 0, METHOD_BUFFERED */
#define NTCOMM_C_IOCTL_COMPARE_IN_DIRECT 0x8e7c6005u /* n = 1, METHOD_IN_DIRECT */
#define NTCOMM_C_IOCTL_ECHO_OUT_DIRECT 0x8e7c600au /* n = 2, METHOD_OUT_DIRECT */
#define NTCOMM_C_IOCTL_ECHO_NEITHER 0x8e7c600fu   /* n = 3, METHOD_NEITHER */
/* C baseline only (the demo's GET_STATS has this role): messages queued,
 * a ULONG. CTL_CODE(0x8e7c, 0x8ff, METHOD_BUFFERED, FILE_ANY_ACCESS). */
#define NTCOMM_C_IOCTL_QUEUED 0x8e7c23fcu

/* Largest echo payload, in every method (the demo's MAX_ECHO). */
#define NTCOMM_C_MAX_ECHO 65536
/* Largest message WriteFile accepts (the demo's MAX_MESSAGE). */
#define NTCOMM_C_MAX_MESSAGE 65536
/* Messages queued before WriteFile is refused with STATUS_DEVICE_BUSY
 * (the demo's QUEUE_CAPACITY). */
#define NTCOMM_C_QUEUE_CAPACITY 256

#endif
