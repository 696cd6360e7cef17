//! The example requests in `examples/`, compiled in so `runbridge demo` needs no files.

/// `(name, request JSON)` for one example per vendor's default profile, plus a second AMC
/// account (EU, profile `amc-eu`) and a second Amperity tenant (profile `amperity-b`), in the
/// order the demo runs them (all at once). The sandbox configures both profiles
/// ([`crate::sandbox::DEMO_PROFILES`]).
pub const DEMO: [(&str, &str); 6] = [
    ("amc", include_str!("../../examples/amc.json")),
    ("amc-eu", include_str!("../../examples/amc-eu.json")),
    ("amperity", include_str!("../../examples/amperity.json")),
    ("amperity-b", include_str!("../../examples/amperity-b.json")),
    ("adobe", include_str!("../../examples/adobe.json")),
    ("carto", include_str!("../../examples/carto.json")),
];
