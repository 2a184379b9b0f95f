//! Compile-time proof that the hand-written declarations in `types.rs` match
//! the C compiler's layout of the mingw-w64 DDK headers (see `build.rs`).

use core::mem::{offset_of, size_of};

use super::types::*;

#[allow(dead_code)]
mod c {
    include!(concat!(env!("OUT_DIR"), "/c_layout.rs"));
}

macro_rules! check {
    ($($rust:expr => $c:ident;)*) => { $(
        const _: () = assert!($rust == c::$c, concat!("layout mismatch: ", stringify!($c)));
    )* };
}

const TAIL: usize = offset_of!(IRP, Tail);

check! {
    size_of::<UNICODE_STRING>() => SIZE_UNICODE_STRING;
    offset_of!(UNICODE_STRING, Buffer) => OFF_UNICODE_STRING_BUFFER;
    size_of::<LIST_ENTRY>() => SIZE_LIST_ENTRY;
    size_of::<IO_STATUS_BLOCK>() => SIZE_IO_STATUS_BLOCK;
    offset_of!(IO_STATUS_BLOCK, Information) => OFF_IO_STATUS_BLOCK_INFORMATION;
    size_of::<KEVENT>() => SIZE_KEVENT;
    size_of::<KDPC>() => SIZE_KDPC;
    size_of::<OBJECT_ATTRIBUTES>() => SIZE_OBJECT_ATTRIBUTES;
    offset_of!(OBJECT_ATTRIBUTES, ObjectName) => OFF_OBJECT_ATTRIBUTES_OBJECTNAME;
    offset_of!(OBJECT_ATTRIBUTES, Attributes) => OFF_OBJECT_ATTRIBUTES_ATTRIBUTES;
    offset_of!(OBJECT_ATTRIBUTES, SecurityDescriptor) => OFF_OBJECT_ATTRIBUTES_SECURITYDESCRIPTOR;

    size_of::<MDL>() => SIZE_MDL;
    offset_of!(MDL, MdlFlags) => OFF_MDL_MDLFLAGS;
    offset_of!(MDL, MappedSystemVa) => OFF_MDL_MAPPEDSYSTEMVA;
    offset_of!(MDL, StartVa) => OFF_MDL_STARTVA;
    offset_of!(MDL, ByteCount) => OFF_MDL_BYTECOUNT;
    offset_of!(MDL, ByteOffset) => OFF_MDL_BYTEOFFSET;

    size_of::<IRP>() => SIZE_IRP;
    offset_of!(IRP, MdlAddress) => OFF_IRP_MDLADDRESS;
    offset_of!(IRP, Flags) => OFF_IRP_FLAGS;
    offset_of!(IRP, SystemBuffer) => OFF_IRP_ASSOCIATEDIRP;
    offset_of!(IRP, IoStatus) => OFF_IRP_IOSTATUS;
    offset_of!(IRP, RequestorMode) => OFF_IRP_REQUESTORMODE;
    offset_of!(IRP, PendingReturned) => OFF_IRP_PENDINGRETURNED;
    offset_of!(IRP, StackCount) => OFF_IRP_STACKCOUNT;
    offset_of!(IRP, CurrentLocation) => OFF_IRP_CURRENTLOCATION;
    offset_of!(IRP, Cancel) => OFF_IRP_CANCEL;
    offset_of!(IRP, CancelIrql) => OFF_IRP_CANCELIRQL;
    offset_of!(IRP, CancelRoutine) => OFF_IRP_CANCELROUTINE;
    offset_of!(IRP, UserBuffer) => OFF_IRP_USERBUFFER;
    TAIL + offset_of!(IRP_OVERLAY_TAIL, DriverContext) => OFF_IRP_TAIL_DRIVERCONTEXT;
    TAIL + offset_of!(IRP_OVERLAY_TAIL, Thread) => OFF_IRP_TAIL_THREAD;
    TAIL + offset_of!(IRP_OVERLAY_TAIL, ListEntry) => OFF_IRP_TAIL_LISTENTRY;
    TAIL + offset_of!(IRP_OVERLAY_TAIL, CurrentStackLocation) => OFF_IRP_TAIL_CURRENTSTACKLOCATION;
    TAIL + offset_of!(IRP_OVERLAY_TAIL, OriginalFileObject) => OFF_IRP_TAIL_ORIGINALFILEOBJECT;

    size_of::<IO_STACK_LOCATION>() => SIZE_IO_STACK_LOCATION;
    offset_of!(IO_STACK_LOCATION, MajorFunction) => OFF_IO_STACK_LOCATION_MAJORFUNCTION;
    offset_of!(IO_STACK_LOCATION, Control) => OFF_IO_STACK_LOCATION_CONTROL;
    offset_of!(IO_STACK_LOCATION, Parameters) => OFF_IO_STACK_LOCATION_PARAMETERS;
    offset_of!(IO_STACK_LOCATION, Parameters.Read.Length) => OFF_IO_STACK_LOCATION_READ_LENGTH;
    offset_of!(IO_STACK_LOCATION, Parameters.Read.Key) => OFF_IO_STACK_LOCATION_READ_KEY;
    offset_of!(IO_STACK_LOCATION, Parameters.Read.ByteOffset) => OFF_IO_STACK_LOCATION_READ_BYTEOFFSET;
    offset_of!(IO_STACK_LOCATION, Parameters.Write.Length) => OFF_IO_STACK_LOCATION_WRITE_LENGTH;
    offset_of!(IO_STACK_LOCATION, Parameters.Write.Key) => OFF_IO_STACK_LOCATION_WRITE_KEY;
    offset_of!(IO_STACK_LOCATION, Parameters.Write.ByteOffset) => OFF_IO_STACK_LOCATION_WRITE_BYTEOFFSET;
    offset_of!(IO_STACK_LOCATION, Parameters.DeviceIoControl.OutputBufferLength) => OFF_IO_STACK_LOCATION_IOCTL_OUTPUTBUFFERLENGTH;
    offset_of!(IO_STACK_LOCATION, Parameters.DeviceIoControl.InputBufferLength) => OFF_IO_STACK_LOCATION_IOCTL_INPUTBUFFERLENGTH;
    offset_of!(IO_STACK_LOCATION, Parameters.DeviceIoControl.IoControlCode) => OFF_IO_STACK_LOCATION_IOCTL_IOCONTROLCODE;
    offset_of!(IO_STACK_LOCATION, Parameters.DeviceIoControl.Type3InputBuffer) => OFF_IO_STACK_LOCATION_IOCTL_TYPE3INPUTBUFFER;
    offset_of!(IO_STACK_LOCATION, Parameters.Create.SecurityContext) => OFF_IO_STACK_LOCATION_CREATE_SECURITYCONTEXT;
    offset_of!(IO_STACK_LOCATION, Parameters.Create.Options) => OFF_IO_STACK_LOCATION_CREATE_OPTIONS;
    offset_of!(IO_STACK_LOCATION, DeviceObject) => OFF_IO_STACK_LOCATION_DEVICEOBJECT;
    offset_of!(IO_STACK_LOCATION, FileObject) => OFF_IO_STACK_LOCATION_FILEOBJECT;
    offset_of!(IO_STACK_LOCATION, CompletionRoutine) => OFF_IO_STACK_LOCATION_COMPLETIONROUTINE;
    offset_of!(IO_STACK_LOCATION, Context) => OFF_IO_STACK_LOCATION_CONTEXT;

    size_of::<DRIVER_OBJECT>() => SIZE_DRIVER_OBJECT;
    offset_of!(DRIVER_OBJECT, DeviceObject) => OFF_DRIVER_OBJECT_DEVICEOBJECT;
    offset_of!(DRIVER_OBJECT, Flags) => OFF_DRIVER_OBJECT_FLAGS;
    offset_of!(DRIVER_OBJECT, DriverExtension) => OFF_DRIVER_OBJECT_DRIVEREXTENSION;
    offset_of!(DRIVER_OBJECT, DriverName) => OFF_DRIVER_OBJECT_DRIVERNAME;
    offset_of!(DRIVER_OBJECT, DriverInit) => OFF_DRIVER_OBJECT_DRIVERINIT;
    offset_of!(DRIVER_OBJECT, DriverStartIo) => OFF_DRIVER_OBJECT_DRIVERSTARTIO;
    offset_of!(DRIVER_OBJECT, DriverUnload) => OFF_DRIVER_OBJECT_DRIVERUNLOAD;
    offset_of!(DRIVER_OBJECT, MajorFunction) => OFF_DRIVER_OBJECT_MAJORFUNCTION;

    size_of::<DEVICE_OBJECT>() => SIZE_DEVICE_OBJECT;
    offset_of!(DEVICE_OBJECT, DriverObject) => OFF_DEVICE_OBJECT_DRIVEROBJECT;
    offset_of!(DEVICE_OBJECT, NextDevice) => OFF_DEVICE_OBJECT_NEXTDEVICE;
    offset_of!(DEVICE_OBJECT, Flags) => OFF_DEVICE_OBJECT_FLAGS;
    offset_of!(DEVICE_OBJECT, Characteristics) => OFF_DEVICE_OBJECT_CHARACTERISTICS;
    offset_of!(DEVICE_OBJECT, DeviceExtension) => OFF_DEVICE_OBJECT_DEVICEEXTENSION;
    offset_of!(DEVICE_OBJECT, DeviceType) => OFF_DEVICE_OBJECT_DEVICETYPE;
    offset_of!(DEVICE_OBJECT, StackSize) => OFF_DEVICE_OBJECT_STACKSIZE;
    offset_of!(DEVICE_OBJECT, AlignmentRequirement) => OFF_DEVICE_OBJECT_ALIGNMENTREQUIREMENT;
    offset_of!(DEVICE_OBJECT, SecurityDescriptor) => OFF_DEVICE_OBJECT_SECURITYDESCRIPTOR;

    size_of::<SECURITY_QUALITY_OF_SERVICE>() => SIZE_SECURITY_QUALITY_OF_SERVICE;
    offset_of!(SECURITY_QUALITY_OF_SERVICE, ImpersonationLevel) => OFF_SECURITY_QUALITY_OF_SERVICE_IMPERSONATIONLEVEL;
    offset_of!(SECURITY_QUALITY_OF_SERVICE, ContextTrackingMode) => OFF_SECURITY_QUALITY_OF_SERVICE_CONTEXTTRACKINGMODE;
    offset_of!(SECURITY_QUALITY_OF_SERVICE, EffectiveOnly) => OFF_SECURITY_QUALITY_OF_SERVICE_EFFECTIVEONLY;
    size_of::<SID_AND_ATTRIBUTES>() => SIZE_SID_AND_ATTRIBUTES;
    offset_of!(SID_AND_ATTRIBUTES, Attributes) => OFF_SID_AND_ATTRIBUTES_ATTRIBUTES;
    size_of::<TOKEN_USER>() => SIZE_TOKEN_USER;
    FSCTL_PIPE_GET_CONNECTION_ATTRIBUTE as usize => VAL_FSCTL_PIPE_GET_CONNECTION_ATTRIBUTE;
    TOKEN_QUERY as usize => VAL_TOKEN_QUERY;
    TOKEN_USER_CLASS as usize => VAL_TOKEN_USER;
    SECURITY_IDENTIFICATION as usize => VAL_SECURITY_IDENTIFICATION;
    SECURITY_STATIC_TRACKING as usize => VAL_SECURITY_STATIC_TRACKING;
}
