//! The user-mode LPC server on its own under Wine with ntcomm's compat LPC
//! (installed by `cargo xtask setup`; the driver side is tested in
//! tools/ntcomm/tests/wine_lpc.rs): a port name is taken once, limits and
//! names are checked before the system call, and the entry points the
//! compat layer does not supply are a typed `Missing`, not a crash.
#![cfg(windows)]

use ntcomm_proto::lpc::{LpcError as WireError, LPC_MAX_CONNECTION_INFO_SIZE, PORT_MAXIMUM_MESSAGE_LENGTH};
use ntcomm_proto::NtStatus;
use ntcomm_um::lpc::{self, LpcError, LpcServer};

#[test]
fn a_port_name_is_taken_until_its_server_closes_it() {
    let name = r"\RPC Control\ntcomm-um-lpc-Test";
    let first = LpcServer::create(name, LPC_MAX_CONNECTION_INFO_SIZE, PORT_MAXIMUM_MESSAGE_LENGTH)
        .expect("NtCreatePort (is ntcomm's Wine LPC installed? cargo xtask setup)");
    assert_eq!(first.max_message(), PORT_MAXIMUM_MESSAGE_LENGTH);
    let err = LpcServer::create(name, 16, 256).err().expect("a second port of the same name");
    assert_eq!(err, LpcError::Status { call: "NtCreatePort", status: NtStatus::STATUS_OBJECT_NAME_COLLISION });
    // Through the crate's error type the NTSTATUS survives.
    let e: ntcomm_um::Error = err.into();
    assert_eq!(e.ntstatus(), Some(NtStatus::STATUS_OBJECT_NAME_COLLISION));
    drop(first);
    LpcServer::create(name, 16, 256).expect("the name is free again once closed");
}

#[test]
fn limits_are_checked_before_the_system_call() {
    assert_eq!(
        LpcServer::create(r"\RPC Control\ntcomm-um-lpc-Limits", 16, PORT_MAXIMUM_MESSAGE_LENGTH + 1).err(),
        Some(LpcError::Message(WireError::BadLimit))
    );
    assert_eq!(
        LpcServer::create(r"\RPC Control\ntcomm-um-lpc-Limits", LPC_MAX_CONNECTION_INFO_SIZE + 1, 256).err(),
        Some(LpcError::Message(WireError::BadLimit))
    );
    assert_eq!(LpcServer::create("bad\0name", 16, 256).err(), Some(LpcError::BadName));
}

#[test]
fn entry_points_under_the_compat_layer() {
    // ntcomm's Wine LPC patches the stubs Wine exports and adds the two Wine
    // lacks, NtReplyPort and NtRequestPort (compat/wine-lpc/README.md), so
    // every entry point is there, as on Windows.
    for (name, present) in lpc::available() {
        assert!(present, "{name}");
    }
}
