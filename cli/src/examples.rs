//! The example requests in `examples/`, compiled in so `runbridge demo` needs no files.

/// `(name, request JSON)` for one example per vendor, in the order the demo runs them.
pub const DEMO: [(&str, &str); 4] = [
    ("amc", include_str!("../../examples/amc.json")),
    ("amperity", include_str!("../../examples/amperity.json")),
    ("adobe", include_str!("../../examples/adobe.json")),
    ("carto", include_str!("../../examples/carto.json")),
];
