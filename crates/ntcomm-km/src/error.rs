//! The kernel library's error: an NTSTATUS with a static context.

use ntcomm_proto::NtStatus;

/// A failed kernel call or a refused request: the status to report and what
/// was being done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// The status returned by the kernel or chosen by ntcomm.
    pub status: NtStatus,
    /// What failed, e.g. `"IoCreateDevice"`.
    pub context: &'static str,
}

impl Error {
    /// An error with its context.
    pub const fn new(status: NtStatus, context: &'static str) -> Self {
        Self { status, context }
    }

    /// `Ok(())` for a success status, else the error.
    pub fn check(status: i32, context: &'static str) -> Result<(), Error> {
        if status >= 0 {
            Ok(())
        } else {
            Err(Self::new(NtStatus(status), context))
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.context, self.status)
    }
}
