//! The accounts each simulated vendor has and the credentials of each: client ids, secrets and
//! refresh tokens. [`crate::auth`] checks them (and re-exports them: its public face); tokens
//! and resources belong to one of these accounts.

use runbridge_core::VendorKind;

/// The account every simulated resource belongs to unless assigned to another.
pub const DEFAULT_ACCOUNT: &str = "default";

/// The accounts each simulated vendor has, each with its own credentials.
pub const ACCOUNTS: [&str; 2] = [DEFAULT_ACCOUNT, "second"];

fn tag(vendor: VendorKind, account: &str) -> String {
    if account == DEFAULT_ACCOUNT {
        vendor.to_string()
    } else {
        format!("{vendor}-{account}")
    }
}

/// Client id the simulator accepts for `vendor`'s default account.
pub fn client_id(vendor: VendorKind) -> String {
    client_id_of(vendor, DEFAULT_ACCOUNT)
}

/// Client secret the simulator accepts for `vendor`'s default account.
pub fn client_secret(vendor: VendorKind) -> String {
    client_secret_of(vendor, DEFAULT_ACCOUNT)
}

/// Refresh token the simulator accepts for `vendor`'s default account (Login with Amazon).
pub fn refresh_token(vendor: VendorKind) -> String {
    refresh_token_of(vendor, DEFAULT_ACCOUNT)
}

/// Client id of `vendor`'s account `account`.
pub fn client_id_of(vendor: VendorKind, account: &str) -> String {
    format!("sim-{}-client-id", tag(vendor, account))
}

/// Client secret of `vendor`'s account `account`.
pub fn client_secret_of(vendor: VendorKind, account: &str) -> String {
    format!("sim-{}-client-secret", tag(vendor, account))
}

/// Refresh token of `vendor`'s account `account`.
pub fn refresh_token_of(vendor: VendorKind, account: &str) -> String {
    format!("sim-{}-refresh-token", tag(vendor, account))
}
