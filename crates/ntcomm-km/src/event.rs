//! Named events a client can open (`\BaseNamedObjects\X` is `Global\X` to
//! user mode), used to wake the other side of a shared-memory channel.

use core::time::Duration;

use crate::handle::{create_named, KernelHandle};
use crate::security::SecurityDescriptor;
use crate::{sys, Error};

/// An auto-reset (synchronization) event with a name.
pub struct NamedEvent {
    handle: KernelHandle,
}

impl NamedEvent {
    /// Creates the event, not signalled. The name must not exist yet (no
    /// squatting: an existing one fails with `STATUS_OBJECT_NAME_COLLISION`).
    pub fn create(name: &str, sd: &SecurityDescriptor) -> Result<Self, Error> {
        let handle = create_named(Some(name), Some(sd), "ZwCreateEvent", |h, attrs| {
            // SAFETY: valid out-pointer and attributes.
            unsafe { sys::ZwCreateEvent(h, sys::EVENT_ALL_ACCESS, attrs, sys::SYNCHRONIZATION_EVENT, 0) }
        })?;
        Ok(Self { handle })
    }

    /// Signals the event.
    pub fn set(&self) -> Result<(), Error> {
        // SAFETY: our event handle; the previous state is not wanted.
        Error::check(unsafe { sys::ZwSetEvent(self.handle.raw(), core::ptr::null_mut()) }, "ZwSetEvent")
    }

    /// Waits until signalled or `timeout`; `true` if signalled.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        self.handle.wait(timeout)
    }
}
