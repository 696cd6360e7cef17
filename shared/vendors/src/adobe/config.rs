//! Adobe settings defaults: the Flow Service base URL, the IMS token endpoint and scopes, and the
//! sandbox used when neither the request nor the settings name one.

/// Flow Service on the Platform gateway.
pub const DEFAULT_API_BASE: &str = "https://platform.adobe.io/data/foundation/flowservice";
/// IMS token endpoint (OAuth server-to-server).
pub const DEFAULT_TOKEN_URL: &str = "https://ims-na1.adobelogin.com/ims/token/v3";
/// Scopes of an Experience Platform OAuth server-to-server credential.
pub const DEFAULT_SCOPES: &str =
    "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session";
/// Sandbox used when neither the request nor the settings name one.
pub const DEFAULT_SANDBOX: &str = "prod";
