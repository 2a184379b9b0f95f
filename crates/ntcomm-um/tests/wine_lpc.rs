//! The LPC server under Wine as it is today: Wine 8 implements no LPC, so
//! creating a port must fail with a typed, clear error (not a crash, not a
//! silent success). When ntcomm's Wine LPC lands (issue 5, docs/LPC.md), this
//! file is replaced by tests of the working server.
#![cfg(windows)]

use ntcomm_proto::lpc::{LpcError as WireError, PORT_MAXIMUM_MESSAGE_LENGTH};
use ntcomm_proto::NtStatus;
use ntcomm_um::lpc::{self, LpcError, LpcServer};

#[test]
fn create_port_reports_not_implemented() {
    let err = match LpcServer::create(r"\RPC Control\NtCommLpcWineTest", 16, 256) {
        Ok(_) => panic!("NtCreatePort succeeded: Wine has LPC now; update this test (docs/LPC.md)"),
        Err(e) => e,
    };
    assert_eq!(err, LpcError::Status { call: "NtCreatePort", status: NtStatus::STATUS_NOT_IMPLEMENTED });
    assert!(err.is_not_implemented());
    let text = err.to_string();
    assert!(text.contains("NtCreatePort") && text.contains("not implemented"), "{text}");
    // Through the crate's error type the NTSTATUS survives.
    let e: ntcomm_um::Error = err.into();
    assert_eq!(e.ntstatus(), Some(NtStatus::STATUS_NOT_IMPLEMENTED));
}

#[test]
fn limits_are_checked_before_the_system_call() {
    assert_eq!(
        LpcServer::create(r"\RPC Control\NtCommLpcWineTest", 16, PORT_MAXIMUM_MESSAGE_LENGTH + 1).err(),
        Some(LpcError::Message(WireError::BadLimit))
    );
    assert_eq!(LpcServer::create("bad\0name", 16, 256).err(), Some(LpcError::BadName));
}

#[test]
fn entry_points_wine_8() {
    // Wine 8 exports the stubs but not NtReplyPort/NtRequestPort (WINE-NOTES).
    for (name, present) in lpc::available() {
        let expected = !matches!(name, "NtReplyPort" | "NtRequestPort");
        assert_eq!(present, expected, "{name}");
    }
}
