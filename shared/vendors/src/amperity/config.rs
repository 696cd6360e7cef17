//! Amperity settings: the per-tenant URL templates, the API version every request names, and
//! the optional config-id → workflow-name map reconciliation needs.

use std::collections::HashMap;
use std::num::NonZeroU32;

use super::VENDOR;
use crate::{Settings, VendorError};

/// Amperity's documented limit: 10 requests per second per tenant.
pub const RATE_LIMIT_PER_SECOND: u32 = 10;

/// `amperity.requests_per_second` (default [`RATE_LIMIT_PER_SECOND`]): the per-tenant limit this
/// process keeps to.
pub(super) fn requests_per_second(settings: &Settings) -> Result<NonZeroU32, VendorError> {
    let Some(value) = settings.plain(VENDOR, "requests_per_second") else {
        return Ok(NonZeroU32::new(RATE_LIMIT_PER_SECOND).expect("non-zero"));
    };
    value
        .trim()
        .parse::<NonZeroU32>()
        .map_err(|_| VendorError::Config {
            vendor: VENDOR,
            setting: "amperity.requests_per_second".into(),
            message: format!("is `{value}`; must be a whole number above 0"),
        })
}

/// The API version every request names.
pub const API_VERSION: &str = "2024-04-01";
/// Base URL of tenants hosted on Microsoft Azure (the OpenAPI spec's per-tenant server): the
/// default of the `amperity.api_base` setting.
pub const AZURE_API_BASE: &str = "https://{tenant}.amperity.com/api";
/// Base URL of tenants hosted on Amazon AWS (the spec's shared server; the tenant travels in the
/// `amperity-tenant` header). Set `amperity.api_base` to this for an AWS tenant.
pub const AWS_API_BASE: &str = "https://app.amperity.com/api";
/// Default base URL template (`amperity.api_base`; `{tenant}` is replaced by the request's
/// tenant): the Azure form, [`AZURE_API_BASE`]. AWS tenants set [`AWS_API_BASE`].
pub const DEFAULT_API_BASE: &str = AZURE_API_BASE;
/// Default token endpoint template.
pub const DEFAULT_TOKEN_URL: &str = "https://{tenant}.amperity.com/api/v0/oauth2/token";

/// Parses `cg-1=Daily files;og-2=Nightly` into config id → workflow name.
pub(super) fn parse_workflow_names(text: &str) -> Result<HashMap<String, String>, VendorError> {
    let mut names = HashMap::new();
    for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((id, name)) = pair.split_once('=') else {
            return Err(VendorError::Config {
                vendor: VENDOR,
                setting: "amperity.workflow_names".into(),
                message: format!("entry `{pair}` is not `config_id=Workflow name`"),
            });
        };
        names.insert(id.trim().to_owned(), name.trim().to_owned());
    }
    Ok(names)
}
