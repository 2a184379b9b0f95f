/* Offsets and sizes of the kernel structures ntcomm-km declares by hand,
 * as the mingw-w64 DDK headers lay them out. build.rs compiles this with
 * x86_64-w64-mingw32-gcc -S and turns each constant into a Rust const;
 * src/sys/layout.rs asserts the Rust declarations against them at compile
 * time, so a layout bug fails the build instead of a driver. */
#include <ntifs.h>
#include <stddef.h>

#define OFF(name, type, field) const unsigned long long ntc_off_##name = offsetof(type, field);
#define SIZE(type) const unsigned long long ntc_size_##type = sizeof(type);

SIZE(UNICODE_STRING)
OFF(UNICODE_STRING_Buffer, UNICODE_STRING, Buffer)
SIZE(LIST_ENTRY)
SIZE(IO_STATUS_BLOCK)
OFF(IO_STATUS_BLOCK_Information, IO_STATUS_BLOCK, Information)
SIZE(KEVENT)
SIZE(KDPC)
SIZE(OBJECT_ATTRIBUTES)
OFF(OBJECT_ATTRIBUTES_ObjectName, OBJECT_ATTRIBUTES, ObjectName)
OFF(OBJECT_ATTRIBUTES_Attributes, OBJECT_ATTRIBUTES, Attributes)
OFF(OBJECT_ATTRIBUTES_SecurityDescriptor, OBJECT_ATTRIBUTES, SecurityDescriptor)

SIZE(MDL)
OFF(MDL_MdlFlags, MDL, MdlFlags)
OFF(MDL_MappedSystemVa, MDL, MappedSystemVa)
OFF(MDL_StartVa, MDL, StartVa)
OFF(MDL_ByteCount, MDL, ByteCount)
OFF(MDL_ByteOffset, MDL, ByteOffset)

SIZE(IRP)
OFF(IRP_MdlAddress, IRP, MdlAddress)
OFF(IRP_Flags, IRP, Flags)
OFF(IRP_AssociatedIrp, IRP, AssociatedIrp.SystemBuffer)
OFF(IRP_IoStatus, IRP, IoStatus)
OFF(IRP_RequestorMode, IRP, RequestorMode)
OFF(IRP_PendingReturned, IRP, PendingReturned)
OFF(IRP_StackCount, IRP, StackCount)
OFF(IRP_CurrentLocation, IRP, CurrentLocation)
OFF(IRP_Cancel, IRP, Cancel)
OFF(IRP_CancelIrql, IRP, CancelIrql)
OFF(IRP_CancelRoutine, IRP, CancelRoutine)
OFF(IRP_UserBuffer, IRP, UserBuffer)
OFF(IRP_Tail_DriverContext, IRP, Tail.Overlay.DriverContext)
OFF(IRP_Tail_Thread, IRP, Tail.Overlay.Thread)
OFF(IRP_Tail_ListEntry, IRP, Tail.Overlay.ListEntry)
OFF(IRP_Tail_CurrentStackLocation, IRP, Tail.Overlay.CurrentStackLocation)
OFF(IRP_Tail_OriginalFileObject, IRP, Tail.Overlay.OriginalFileObject)

SIZE(IO_STACK_LOCATION)
OFF(IO_STACK_LOCATION_MajorFunction, IO_STACK_LOCATION, MajorFunction)
OFF(IO_STACK_LOCATION_Control, IO_STACK_LOCATION, Control)
OFF(IO_STACK_LOCATION_Parameters, IO_STACK_LOCATION, Parameters)
OFF(IO_STACK_LOCATION_Read_Length, IO_STACK_LOCATION, Parameters.Read.Length)
OFF(IO_STACK_LOCATION_Read_Key, IO_STACK_LOCATION, Parameters.Read.Key)
OFF(IO_STACK_LOCATION_Read_ByteOffset, IO_STACK_LOCATION, Parameters.Read.ByteOffset)
OFF(IO_STACK_LOCATION_Write_Length, IO_STACK_LOCATION, Parameters.Write.Length)
OFF(IO_STACK_LOCATION_Write_Key, IO_STACK_LOCATION, Parameters.Write.Key)
OFF(IO_STACK_LOCATION_Write_ByteOffset, IO_STACK_LOCATION, Parameters.Write.ByteOffset)
OFF(IO_STACK_LOCATION_Ioctl_OutputBufferLength, IO_STACK_LOCATION, Parameters.DeviceIoControl.OutputBufferLength)
OFF(IO_STACK_LOCATION_Ioctl_InputBufferLength, IO_STACK_LOCATION, Parameters.DeviceIoControl.InputBufferLength)
OFF(IO_STACK_LOCATION_Ioctl_IoControlCode, IO_STACK_LOCATION, Parameters.DeviceIoControl.IoControlCode)
OFF(IO_STACK_LOCATION_Ioctl_Type3InputBuffer, IO_STACK_LOCATION, Parameters.DeviceIoControl.Type3InputBuffer)
OFF(IO_STACK_LOCATION_Create_SecurityContext, IO_STACK_LOCATION, Parameters.Create.SecurityContext)
OFF(IO_STACK_LOCATION_Create_Options, IO_STACK_LOCATION, Parameters.Create.Options)
OFF(IO_STACK_LOCATION_DeviceObject, IO_STACK_LOCATION, DeviceObject)
OFF(IO_STACK_LOCATION_FileObject, IO_STACK_LOCATION, FileObject)
OFF(IO_STACK_LOCATION_CompletionRoutine, IO_STACK_LOCATION, CompletionRoutine)
OFF(IO_STACK_LOCATION_Context, IO_STACK_LOCATION, Context)

SIZE(DRIVER_OBJECT)
OFF(DRIVER_OBJECT_DeviceObject, DRIVER_OBJECT, DeviceObject)
OFF(DRIVER_OBJECT_Flags, DRIVER_OBJECT, Flags)
OFF(DRIVER_OBJECT_DriverExtension, DRIVER_OBJECT, DriverExtension)
OFF(DRIVER_OBJECT_DriverName, DRIVER_OBJECT, DriverName)
OFF(DRIVER_OBJECT_DriverInit, DRIVER_OBJECT, DriverInit)
OFF(DRIVER_OBJECT_DriverStartIo, DRIVER_OBJECT, DriverStartIo)
OFF(DRIVER_OBJECT_DriverUnload, DRIVER_OBJECT, DriverUnload)
OFF(DRIVER_OBJECT_MajorFunction, DRIVER_OBJECT, MajorFunction)

SIZE(DEVICE_OBJECT)
OFF(DEVICE_OBJECT_DriverObject, DEVICE_OBJECT, DriverObject)
OFF(DEVICE_OBJECT_NextDevice, DEVICE_OBJECT, NextDevice)
OFF(DEVICE_OBJECT_Flags, DEVICE_OBJECT, Flags)
OFF(DEVICE_OBJECT_Characteristics, DEVICE_OBJECT, Characteristics)
OFF(DEVICE_OBJECT_DeviceExtension, DEVICE_OBJECT, DeviceExtension)
OFF(DEVICE_OBJECT_DeviceType, DEVICE_OBJECT, DeviceType)
OFF(DEVICE_OBJECT_StackSize, DEVICE_OBJECT, StackSize)
OFF(DEVICE_OBJECT_AlignmentRequirement, DEVICE_OBJECT, AlignmentRequirement)
OFF(DEVICE_OBJECT_SecurityDescriptor, DEVICE_OBJECT, SecurityDescriptor)

SIZE(SECURITY_QUALITY_OF_SERVICE)
OFF(SECURITY_QUALITY_OF_SERVICE_ImpersonationLevel, SECURITY_QUALITY_OF_SERVICE, ImpersonationLevel)
OFF(SECURITY_QUALITY_OF_SERVICE_ContextTrackingMode, SECURITY_QUALITY_OF_SERVICE, ContextTrackingMode)
OFF(SECURITY_QUALITY_OF_SERVICE_EffectiveOnly, SECURITY_QUALITY_OF_SERVICE, EffectiveOnly)
SIZE(SID_AND_ATTRIBUTES)
OFF(SID_AND_ATTRIBUTES_Attributes, SID_AND_ATTRIBUTES, Attributes)
SIZE(TOKEN_USER)
const unsigned long long ntc_val_fsctl_pipe_get_connection_attribute = FSCTL_PIPE_GET_CONNECTION_ATTRIBUTE;
const unsigned long long ntc_val_token_query = TOKEN_QUERY;
const unsigned long long ntc_val_token_user = TokenUser;
const unsigned long long ntc_val_security_identification = SecurityIdentification;
const unsigned long long ntc_val_security_static_tracking = SECURITY_STATIC_TRACKING;
