//! The example requests in `examples/`, compiled in so `runbridge demo` needs no files.

/// `(name, request JSON)` for the demo's runs, in the order it runs them (all at once): two AMC
/// accounts under named profiles (NA, `amc-na`, and EU, `amc-eu`, with different refresh
/// tokens), Amperity's default profile and a second tenant (profile `amperity-b`), and Adobe's
/// and CARTO's default profiles. The sandbox configures the named profiles
/// ([`crate::sandbox::DEMO_PROFILES`]). `examples/amc.json` is the NA request under AMC's
/// `default` profile, for a deployment with one AMC account.
pub const DEMO: [(&str, &str); 6] = [
    ("amc-na", include_str!("../../examples/amc-na.json")),
    ("amc-eu", include_str!("../../examples/amc-eu.json")),
    ("amperity", include_str!("../../examples/amperity.json")),
    ("amperity-b", include_str!("../../examples/amperity-b.json")),
    ("adobe", include_str!("../../examples/adobe.json")),
    ("carto", include_str!("../../examples/carto.json")),
];
