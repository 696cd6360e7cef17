//! Rules on the workspace's source tree, checked on every `cargo test --workspace`:
//! - no import circle among the files of one crate (see [`graph`] for what counts as an edge);
//! - no source file over [`MAX_LINES`] lines outside tests.
//!
//! Run with `-- --nocapture` to see the circles and the longest files.

mod graph;

use std::path::{Path, PathBuf};
use std::process::Command;

use graph::{Circle, CrateGraph};

/// Packages whose circles are known and being removed: their circles are printed, not failed on.
const CIRCLES_TOLERATED: &[&str] = &[];

/// Longest source file outside tests, in lines.
const MAX_LINES: usize = 600;

/// Files over [`MAX_LINES`] that are being split elsewhere, relative to the workspace root.
const LONG_FILES_TOLERATED: &[&str] = &[
    // removed when its split lands
    "cli/src/ops/commands.rs",
];

/// One compilation target of a workspace package: a library, binary, test, bench or example.
struct Target {
    package: String,
    /// `lib`, `bin`, `test`, …
    kind: String,
    name: String,
    root: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the system tests live one level below the workspace root")
        .to_owned()
}

/// Every target of every workspace package, as `cargo metadata` lists them.
fn workspace_targets() -> Vec<Target> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("cargo metadata writes JSON");
    let mut targets = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        for target in package["targets"].as_array().expect("targets") {
            targets.push(Target {
                package: package["name"].as_str().expect("name").to_owned(),
                kind: target["kind"][0].as_str().expect("kind").to_owned(),
                name: target["name"].as_str().expect("name").to_owned(),
                root: PathBuf::from(target["src_path"].as_str().expect("src_path")),
            });
        }
    }
    targets
}

fn load(target: &Target) -> CrateGraph {
    CrateGraph::load(&target.root)
        .unwrap_or_else(|e| panic!("{} {}: {e}", target.package, target.name))
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn describe(circle: &Circle, root: &Path) -> String {
    let files: Vec<String> = circle.files.iter().map(|f| relative(f, root)).collect();
    let mut text = format!("  circle of {} files: {}\n", files.len(), files.join(", "));
    for edge in &circle.edges {
        text.push_str(&format!(
            "    {} -> {}  ({})\n",
            relative(&edge.from, root),
            relative(&edge.to, root),
            edge.via
        ));
    }
    text
}

#[test]
fn no_crate_has_an_import_circle() {
    let root = workspace_root();
    let mut report = String::new();
    let mut failing = Vec::new();
    let mut tolerated_with_circles = Vec::new();
    for target in workspace_targets() {
        let circles = load(&target).circles();
        if circles.is_empty() {
            continue;
        }
        let tolerated = CIRCLES_TOLERATED.contains(&target.package.as_str());
        report.push_str(&format!(
            "{} ({} {}){}:\n",
            target.package,
            target.kind,
            target.name,
            if tolerated { ", tolerated" } else { "" }
        ));
        for circle in &circles {
            report.push_str(&describe(circle, &root));
        }
        if tolerated {
            tolerated_with_circles.push(target.package.clone());
        } else {
            failing.push(target.package.clone());
        }
    }
    println!("{report}");
    assert!(
        failing.is_empty(),
        "import circles in {failing:?}; break each by moving the shared piece to the module \
         that owns it, or into a leaf module both use:\n{report}"
    );
    for package in CIRCLES_TOLERATED {
        assert!(
            tolerated_with_circles.iter().any(|p| p == package),
            "{package} has no import circle any more: remove it from CIRCLES_TOLERATED"
        );
    }
}

#[test]
fn no_source_file_outside_tests_is_too_long() {
    let root = workspace_root();
    let mut seen = std::collections::BTreeMap::new();
    for target in workspace_targets().iter().filter(|t| t.kind != "test") {
        for file in load(target).files() {
            let path = relative(&file.path, &root);
            let in_tests = Path::new(&path)
                .components()
                .any(|c| c.as_os_str() == "tests");
            if !in_tests {
                seen.insert(path, file.lines);
            }
        }
    }
    let mut longest: Vec<(&String, &usize)> = seen.iter().collect();
    longest.sort_by(|a, b| b.1.cmp(a.1));
    for (path, lines) in longest.iter().take(10) {
        println!("{lines:>5} {path}");
    }
    let too_long: Vec<String> = longest
        .iter()
        .filter(|(path, lines)| {
            **lines > MAX_LINES && !LONG_FILES_TOLERATED.contains(&path.as_str())
        })
        .map(|(path, lines)| format!("{path} ({lines} lines)"))
        .collect();
    assert!(
        too_long.is_empty(),
        "source files over {MAX_LINES} lines; split them along their concerns: {too_long:#?}"
    );
    for path in LONG_FILES_TOLERATED {
        let lines = seen.get(*path).copied().unwrap_or(0);
        assert!(
            lines > MAX_LINES,
            "{path} is {lines} lines now: remove it from LONG_FILES_TOLERATED"
        );
    }
}

/// Writes `files` (path relative to a new directory, text) and loads the crate rooted at its
/// `lib.rs`.
fn synthetic(files: &[(&str, &str)]) -> (tempfile::TempDir, CrateGraph) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let graph = CrateGraph::load(&dir.path().join("lib.rs")).unwrap();
    (dir, graph)
}

fn circle_files(circles: &[Circle], root: &Path) -> Vec<Vec<String>> {
    circles
        .iter()
        .map(|c| c.files.iter().map(|f| relative(f, root)).collect())
        .collect()
}

#[test]
fn circles_in_a_synthetic_crate_are_found() {
    let (dir, graph) = synthetic(&[
        (
            "lib.rs",
            "mod a; mod b; mod c; mod d; mod e; mod f; mod g; mod h; mod i;\n\
             pub use g::Reexported;",
        ),
        // A plain circle: a `use crate::` one way, a `super::` path in code the other.
        ("a.rs", "use crate::b::B;\npub struct A;"),
        ("b.rs", "pub struct B;\nfn f() { let _ = super::a::A; }"),
        // Through a re-export at the root: the edge goes to the defining file.
        ("f.rs", "use crate::Reexported;\npub struct F;"),
        ("g.rs", "pub struct Reexported(crate::f::F);"),
        // A path inside a macro call.
        (
            "h.rs",
            "pub const H: u8 = 1;\nfn f() { println!(\"{}\", crate::i::I); }",
        ),
        ("i.rs", "pub const I: u8 = crate::h::H;"),
        // No circle: test-only code, and a parent reaching into its child.
        ("c.rs", "pub struct C;"),
        (
            "d.rs",
            "pub struct D(crate::c::C);\n#[cfg(test)]\nmod tests { use crate::c::C; }",
        ),
        (
            "e/mod.rs",
            "mod inner;\npub use inner::Inner;\npub fn helper() {}",
        ),
        ("e/inner.rs", "use super::helper;\npub struct Inner;"),
    ]);
    let circles = graph.circles();
    for circle in &circles {
        print!("{}", describe(circle, dir.path()));
    }
    assert_eq!(
        circle_files(&circles, dir.path()),
        [
            vec!["a.rs", "b.rs"],
            vec!["f.rs", "g.rs"],
            vec!["h.rs", "i.rs"]
        ]
    );
    let a_b = &circles[0].edges;
    assert_eq!(a_b.len(), 2);
    assert_eq!(a_b[0].via, "crate::b::B");
    assert_eq!(a_b[1].via, "super::a::A");
}

#[test]
fn a_circle_through_three_files_and_a_test_only_cycle() {
    let (dir, graph) = synthetic(&[
        ("lib.rs", "mod x; mod y; mod z; mod t;"),
        ("x.rs", "pub fn x() { crate::y::y() }"),
        ("y.rs", "pub fn y() { crate::z::z() }"),
        ("z.rs", "use crate::x;\npub fn z() { x::x() }"),
        // `t` and `x` only meet in test code: no circle.
        (
            "t.rs",
            "pub fn t() { crate::x::x() }\n#[cfg(test)]\nmod tests;",
        ),
        ("t/tests.rs", "use crate::y::y;"),
    ]);
    assert_eq!(
        circle_files(&graph.circles(), dir.path()),
        [vec!["x.rs", "y.rs", "z.rs"]]
    );
    assert!(
        graph
            .files()
            .iter()
            .all(|f| !f.path.ends_with("t/tests.rs")),
        "a #[cfg(test)] module file is not part of the crate's graph"
    );
}
