//! Kernel structures, declared by hand after the mingw-w64 DDK headers and
//! checked field by field against them in `layout.rs`. Only what ntcomm
//! touches is named; the rest is opaque padding of the right size.
#![allow(non_camel_case_types, non_snake_case, missing_docs)]

use core::ffi::c_void;

pub type NTSTATUS = i32;
pub type KIRQL = u8;
pub type KPROCESSOR_MODE = i8;
pub type BOOLEAN = u8;
pub type HANDLE = *mut c_void;
pub type KSPIN_LOCK = usize;
pub type ACCESS_MASK = u32;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct UNICODE_STRING {
    pub Length: u16,
    pub MaximumLength: u16,
    pub Buffer: *mut u16,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct LIST_ENTRY {
    pub Flink: *mut LIST_ENTRY,
    pub Blink: *mut LIST_ENTRY,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct IO_STATUS_BLOCK {
    /// `Status` (the union with `Pointer` is pointer sized).
    pub Status: usize,
    pub Information: usize,
}

/// A dispatcher object header plus wait list: only ever used through Ke*.
#[repr(C, align(8))]
pub struct KEVENT {
    pub opaque: [u8; 24],
}

#[repr(C, align(8))]
pub struct KDPC {
    pub opaque: [u8; 64],
}

#[repr(C)]
pub struct OBJECT_ATTRIBUTES {
    pub Length: u32,
    pub RootDirectory: HANDLE,
    pub ObjectName: *mut UNICODE_STRING,
    pub Attributes: u32,
    pub SecurityDescriptor: *mut c_void,
    pub SecurityQualityOfService: *mut c_void,
}

#[repr(C)]
pub struct MDL {
    pub Next: *mut MDL,
    pub Size: i16,
    pub MdlFlags: i16,
    pub Process: *mut c_void,
    pub MappedSystemVa: *mut c_void,
    pub StartVa: *mut c_void,
    pub ByteCount: u32,
    pub ByteOffset: u32,
}

pub type PDRIVER_CANCEL = Option<unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP)>;
pub type PDRIVER_DISPATCH = Option<unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP) -> NTSTATUS>;
pub type PDRIVER_UNLOAD = Option<unsafe extern "system" fn(*mut DRIVER_OBJECT)>;
pub type PKSTART_ROUTINE = Option<unsafe extern "system" fn(*mut c_void)>;
pub type PIO_WORKITEM_ROUTINE = Option<unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut c_void)>;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct IRP_OVERLAY_TAIL {
    pub DriverContext: [*mut c_void; 4],
    pub Thread: *mut c_void,
    pub AuxiliaryBuffer: *mut u8,
    pub ListEntry: LIST_ENTRY,
    /// Union with `PacketType`.
    pub CurrentStackLocation: *mut IO_STACK_LOCATION,
    pub OriginalFileObject: *mut c_void,
}

#[repr(C)]
pub union IRP_TAIL {
    pub Overlay: IRP_OVERLAY_TAIL,
    pub Apc: [u8; 0x58],
}

#[repr(C)]
pub struct IRP {
    pub Type: i16,
    pub Size: u16,
    pub MdlAddress: *mut MDL,
    pub Flags: u32,
    /// `AssociatedIrp`: union of MasterIrp, IrpCount and SystemBuffer.
    pub SystemBuffer: *mut c_void,
    pub ThreadListEntry: LIST_ENTRY,
    pub IoStatus: IO_STATUS_BLOCK,
    pub RequestorMode: KPROCESSOR_MODE,
    pub PendingReturned: BOOLEAN,
    pub StackCount: i8,
    pub CurrentLocation: i8,
    pub Cancel: BOOLEAN,
    pub CancelIrql: KIRQL,
    pub ApcEnvironment: i8,
    pub AllocationFlags: u8,
    pub UserIosb: *mut IO_STATUS_BLOCK,
    pub UserEvent: *mut KEVENT,
    pub Overlay: [usize; 2],
    pub CancelRoutine: PDRIVER_CANCEL,
    pub UserBuffer: *mut c_void,
    pub Tail: IRP_TAIL,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PARAMS_READ_WRITE {
    pub Length: u32,
    pub _pad0: u32,
    pub Key: u32,
    pub _pad1: u32,
    pub ByteOffset: i64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PARAMS_DEVICE_IO_CONTROL {
    pub OutputBufferLength: u32,
    pub _pad0: u32,
    pub InputBufferLength: u32,
    pub _pad1: u32,
    pub IoControlCode: u32,
    pub _pad2: u32,
    pub Type3InputBuffer: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PARAMS_CREATE {
    pub SecurityContext: *mut c_void,
    pub Options: u32,
    pub FileAttributes: u16,
    pub ShareAccess: u16,
    pub EaLength: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STACK_PARAMETERS {
    pub Create: PARAMS_CREATE,
    pub Read: PARAMS_READ_WRITE,
    pub Write: PARAMS_READ_WRITE,
    pub DeviceIoControl: PARAMS_DEVICE_IO_CONTROL,
    pub Others: [*mut c_void; 4],
}

#[repr(C)]
pub struct IO_STACK_LOCATION {
    pub MajorFunction: u8,
    pub MinorFunction: u8,
    pub Flags: u8,
    pub Control: u8,
    pub Parameters: IO_STACK_PARAMETERS,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub FileObject: *mut c_void,
    pub CompletionRoutine: *mut c_void,
    pub Context: *mut c_void,
}

pub const IRP_MJ_MAXIMUM_FUNCTION: usize = 0x1b;

#[repr(C)]
pub struct DRIVER_OBJECT {
    pub Type: i16,
    pub Size: i16,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub Flags: u32,
    pub DriverStart: *mut c_void,
    pub DriverSize: u32,
    pub DriverSection: *mut c_void,
    pub DriverExtension: *mut c_void,
    pub DriverName: UNICODE_STRING,
    pub HardwareDatabase: *mut UNICODE_STRING,
    pub FastIoDispatch: *mut c_void,
    pub DriverInit: *mut c_void,
    pub DriverStartIo: *mut c_void,
    pub DriverUnload: PDRIVER_UNLOAD,
    pub MajorFunction: [PDRIVER_DISPATCH; IRP_MJ_MAXIMUM_FUNCTION + 1],
}

#[repr(C)]
pub struct DEVICE_OBJECT {
    pub Type: i16,
    pub Size: u16,
    pub ReferenceCount: i32,
    pub DriverObject: *mut DRIVER_OBJECT,
    pub NextDevice: *mut DEVICE_OBJECT,
    pub AttachedDevice: *mut DEVICE_OBJECT,
    pub CurrentIrp: *mut IRP,
    pub Timer: *mut c_void,
    pub Flags: u32,
    pub Characteristics: u32,
    pub Vpb: *mut c_void,
    pub DeviceExtension: *mut c_void,
    pub DeviceType: u32,
    pub StackSize: i8,
    /// `Queue` (a WAIT_CONTEXT_BLOCK union).
    pub Queue: [u64; 9],
    pub AlignmentRequirement: u32,
    /// `DeviceQueue` (KDEVICE_QUEUE).
    pub DeviceQueue: [u64; 5],
    pub Dpc: KDPC,
    pub ActiveThreadCount: u32,
    pub SecurityDescriptor: *mut c_void,
    /// `DeviceLock` (KEVENT).
    pub DeviceLock: KEVENT,
    pub SectorSize: u16,
    pub Spare1: u16,
    pub DeviceObjectExtension: *mut c_void,
    pub Reserved: *mut c_void,
}

// Major functions.
pub const IRP_MJ_CREATE: usize = 0x00;
pub const IRP_MJ_CLOSE: usize = 0x02;
pub const IRP_MJ_READ: usize = 0x03;
pub const IRP_MJ_WRITE: usize = 0x04;
pub const IRP_MJ_DEVICE_CONTROL: usize = 0x0e;
pub const IRP_MJ_CLEANUP: usize = 0x12;

// Device object flags and characteristics.
pub const DO_BUFFERED_IO: u32 = 0x0000_0004;
pub const DO_DIRECT_IO: u32 = 0x0000_0010;
pub const DO_DEVICE_INITIALIZING: u32 = 0x0000_0080;
pub const FILE_DEVICE_SECURE_OPEN: u32 = 0x0000_0100;

// Stack location control flags.
pub const SL_PENDING_RETURNED: u8 = 0x01;

// MDL flags.
pub const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;
pub const MDL_SOURCE_IS_NONPAGED_POOL: i16 = 0x0004;
// `MmMapLockedPagesSpecifyCache` priorities and the flags OR'd into them
// (Windows 8 and later; mingw's wdm.h lacks the flags: values from
// Microsoft Learn, *MmGetSystemAddressForMdlSafe*).
pub const NORMAL_PAGE_PRIORITY: u32 = 16;
pub const MDL_MAPPING_NO_WRITE: u32 = 0x8000_0000;
pub const MDL_MAPPING_NO_EXECUTE: u32 = 0x4000_0000;
pub const MM_NON_CACHED: u32 = 0;
pub const MM_CACHED: u32 = 1;

// Pool types.
pub const NON_PAGED_POOL_NX: u32 = 512;

// Object attributes.
pub const OBJ_CASE_INSENSITIVE: u32 = 0x40;
pub const OBJ_KERNEL_HANDLE: u32 = 0x200;

// Wait reasons / modes.
pub const EXECUTIVE: u32 = 0;
pub const KERNEL_MODE: KPROCESSOR_MODE = 0;
pub const USER_MODE: KPROCESSOR_MODE = 1;

// Events.
pub const NOTIFICATION_EVENT: u32 = 0;
pub const SYNCHRONIZATION_EVENT: u32 = 1;

// Work queues.
pub const DELAYED_WORK_QUEUE: u32 = 1;

// Security.
pub const DACL_SECURITY_INFORMATION: u32 = 0x4;
pub const THREAD_ALL_ACCESS: ACCESS_MASK = 0x001F_FFFF;
pub const WRITE_DAC: ACCESS_MASK = 0x0004_0000;

/// Highest user-mode address + 1 on x64 (`MM_USER_PROBE_ADDRESS`).
pub const MM_USER_PROBE_ADDRESS: usize = 0x7FFF_FFFF_0000;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct CLIENT_ID {
    pub UniqueProcess: HANDLE,
    pub UniqueThread: HANDLE,
}

/// `NtCurrentProcess()`.
pub const NT_CURRENT_PROCESS: HANDLE = usize::MAX as HANDLE;

// Sections.
pub const SECTION_ALL_ACCESS: ACCESS_MASK = 0x000F_001F;
pub const PAGE_READWRITE: u32 = 0x04;
pub const SEC_COMMIT: u32 = 0x0800_0000;
pub const VIEW_UNMAP: u32 = 2;

// Processes.
pub const PROCESS_VM_OPERATION: ACCESS_MASK = 0x0008;
pub const PROCESS_QUERY_LIMITED_INFORMATION: ACCESS_MASK = 0x1000;
pub const SYNCHRONIZE: ACCESS_MASK = 0x0010_0000;

// Events.
pub const EVENT_ALL_ACCESS: ACCESS_MASK = 0x001F_0003;

// Files (pipes).
pub const FILE_WRITE_DATA: ACCESS_MASK = 0x0002;
pub const FILE_APPEND_DATA: ACCESS_MASK = 0x0004;
pub const FILE_OPEN: u32 = 1;
pub const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
pub const FILE_SYNCHRONOUS_IO_NONALERT: u32 = 0x20;
pub const FILE_ATTRIBUTE_NORMAL: u32 = 0x80;
pub const FILE_SHARE_READ: u32 = 1;
pub const FILE_SHARE_WRITE: u32 = 2;

// Security quality of service and tokens (who a connection's peer is).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SECURITY_QUALITY_OF_SERVICE {
    pub Length: u32,
    pub ImpersonationLevel: u32,
    pub ContextTrackingMode: BOOLEAN,
    pub EffectiveOnly: BOOLEAN,
}
/// `SECURITY_IMPERSONATION_LEVEL::SecurityIdentification`.
pub const SECURITY_IDENTIFICATION: u32 = 1;
/// `SECURITY_STATIC_TRACKING`.
pub const SECURITY_STATIC_TRACKING: BOOLEAN = 0;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct SID_AND_ATTRIBUTES {
    pub Sid: *mut c_void,
    pub Attributes: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct TOKEN_USER {
    pub User: SID_AND_ATTRIBUTES,
}
pub const TOKEN_QUERY: ACCESS_MASK = 0x0008;
/// `TOKEN_INFORMATION_CLASS::TokenUser`.
pub const TOKEN_USER_CLASS: u32 = 1;
/// `FSCTL_PIPE_GET_CONNECTION_ATTRIBUTE` (`CTL_CODE(FILE_DEVICE_NAMED_PIPE, 12, METHOD_BUFFERED, FILE_ANY_ACCESS)`).
pub const FSCTL_PIPE_GET_CONNECTION_ATTRIBUTE: u32 = 0x0011_0030;
