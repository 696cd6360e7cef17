//! Narrowing a [`RunRequest`] to one vendor's part: the one place a client matches on
//! [`VendorSpec`].
//!
//! Each vendor module says once, in its `impl VendorRun`, which variant is its own and how it
//! words the (wiring-bug) error of being handed another vendor's request; its `Vendor` methods
//! then call [`run_of`] instead of repeating the `match`.

use runbridge_core::{ResolvedRequest, VendorKind, VendorSpec};

use crate::VendorError;

/// One vendor's part of a request (`AmcRun`, `AmperityRun`, …).
pub(crate) trait VendorRun: Sized {
    /// The vendor whose part this is.
    const VENDOR: VendorKind;

    /// This vendor's part of `spec`, if `spec` is for this vendor.
    fn narrow(spec: &VendorSpec) -> Option<&Self>;

    /// The message when a request for `other` reaches this vendor's client.
    fn mismatch(other: VendorKind) -> String;
}

/// This vendor's part of `request`; a request for another vendor is a configuration error (the
/// registry routes by vendor, so only a wiring mistake gets here).
pub(crate) fn run_of<R: VendorRun>(request: &ResolvedRequest) -> Result<&R, VendorError> {
    R::narrow(&request.spec).ok_or_else(|| VendorError::Config {
        vendor: R::VENDOR,
        setting: "vendor".into(),
        message: R::mismatch(request.vendor()),
    })
}
