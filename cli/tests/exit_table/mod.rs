//! The exit-code table ([`runbridge::exit::Exit`]), command by command: every command × outcome
//! (success, invalid input, not found, AWS error, run failed, vendor refusal) is either a
//! [`Case`] run through the binary, or [`NOT_APPLICABLE`] with the reason. Each case runs twice:
//! for people (a failure says `error: …` on stderr, without a backtrace) and with `--json` (stdout
//! is one JSON document; an error object carries the same `exit_code`).
//!
//! The cases that need no AWS, or that meet a dead endpoint (an AWS error, or invalid input
//! refused before any call), run in `exit_codes.rs`; the ones that need the moto stack run in
//! `ops.rs`. `$NAME` in an argument is replaced by [`Vars`].
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

use runbridge::exit::Exit;

/// An outcome of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command did its job.
    Success,
    /// A bad request, argument or usage.
    InvalidInput,
    /// No such key, stack or output.
    NotFound,
    /// An AWS call failed.
    AwsError,
    /// A run did not succeed.
    RunFailed,
    /// The vendor refused the run.
    VendorRefusal,
    /// Anything else (beyond the table's six; where a command can meet it).
    Other,
}

impl Outcome {
    /// The six every command is checked against.
    pub const REQUIRED: [Outcome; 6] = [
        Outcome::Success,
        Outcome::InvalidInput,
        Outcome::NotFound,
        Outcome::AwsError,
        Outcome::RunFailed,
        Outcome::VendorRefusal,
    ];

    /// The exit the outcome must end with: a vendor's refusal is a run that did not succeed,
    /// whichever vendor.
    pub fn exit(self) -> Exit {
        match self {
            Outcome::Success => Exit::Success,
            Outcome::InvalidInput => Exit::InvalidInput,
            Outcome::NotFound => Exit::NotFound,
            Outcome::AwsError => Exit::AwsError,
            Outcome::RunFailed | Outcome::VendorRefusal => Exit::RunFailed,
            Outcome::Other => Exit::Other,
        }
    }
}

/// Every command of the binary.
pub const COMMANDS: [&str; 12] = [
    "run", "demo", "sim", "validate", "schema", "submit", "status", "list", "cancel", "rerun",
    "backfill", "dlq",
];

/// What a case needs around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Nothing (AWS is pointed at a dead endpoint, to show nothing is called).
    Local,
    /// The moto stack (`$STACK`, the keys of its runs).
    Moto,
}

/// One command line and the outcome it must end with.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The command (the first word after the global options).
    pub command: &'static str,
    /// The outcome.
    pub outcome: Outcome,
    /// What it shows, for the failure message.
    pub what: &'static str,
    /// The arguments, separated by spaces, with `$NAME` placeholders.
    pub args: &'static str,
    /// Where it runs.
    pub place: Place,
}

const fn case(
    command: &'static str,
    outcome: Outcome,
    what: &'static str,
    place: Place,
    args: &'static str,
) -> Case {
    Case {
        command,
        outcome,
        what,
        args,
        place,
    }
}

use Outcome::*;
use Place::*;

/// The cases. `sim`'s success is [`SIM_SERVES`], interrupted by a test.
pub const CASES: &[Case] = &[
    // run
    case("run", Success, "a sandbox run", Local, "run --sandbox --speed 2000 --out $DIR/out examples/carto.json"),
    case("run", InvalidInput, "a missing field", Local, "run --sandbox --out $DIR/out $DIR/missing-field.json"),
    case("run", InvalidInput, "an unknown profile (the trigger's check)", Local, "run --sandbox --speed 2000 --out $DIR/out $DIR/unknown-profile.json"),
    case("run", InvalidInput, "a request file that cannot be read", Local, "run $DIR/absent.json"),
    case("run", InvalidInput, "a real run without the vendor's settings", Local, "run --out $DIR/out examples/carto.json"),
    case("run", RunFailed, "a run past its deadline", Local, "run --sandbox --speed 200 --out $DIR/out $DIR/carto-late.json"),
    case("run", VendorRefusal, "AMC refuses another account's instance (at admission)", Local, "run --sandbox --speed 2000 --out $DIR/out $DIR/amc-refused.json"),
    case("run", VendorRefusal, "Amperity refuses another tenant's token (at submit)", Local, "run --sandbox --speed 2000 --out $DIR/out $DIR/amperity-refused.json"),
    case("run", VendorRefusal, "Adobe refuses an unknown flow (at submit)", Local, "run --sandbox --speed 2000 --out $DIR/out $DIR/adobe-refused.json"),
    case("run", VendorRefusal, "CARTO refuses the job (a 400 at submit, from the simulator's setup)", Local, "run --sandbox --speed 2000 --out $DIR/out --sim-setup $DIR/carto-refuses.setup.json $DIR/carto-refused.json"),
    case("run", InvalidInput, "a simulator setup without --sandbox", Local, "run --out $DIR/out --sim-setup $DIR/carto-refuses.setup.json examples/carto.json"),
    case("run", InvalidInput, "a simulator setup that is none", Local, "run --sandbox --out $DIR/out --sim-setup $DIR/missing-field.json examples/carto.json"),
    // demo
    case("demo", Success, "the demo", Local, "demo --plain --speed 400 --out $DIR/demo"),
    case("demo", InvalidInput, "a speed of 0", Local, "demo --speed 0"),
    case("demo", Other, "a results directory that cannot be made", Local, "demo --out $DIR/a-file/out"),
    // sim
    case("sim", InvalidInput, "a port that is no number", Local, "sim --port http"),
    case("sim", Other, "a port in use", Local, "sim --port $BUSY_PORT"),
    // validate
    case("validate", Success, "an example", Local, "validate examples/carto.json"),
    case("validate", InvalidInput, "a missing field", Local, "validate $DIR/missing-field.json"),
    case("validate", InvalidInput, "a file that cannot be read", Local, "validate $DIR/absent.json"),
    // schema
    case("schema", Success, "the manifest's schema", Local, "schema manifest"),
    case("schema", InvalidInput, "an unknown document", Local, "schema nope"),
    // submit
    case("submit", Success, "an example", Moto, "--stack $STACK submit examples/carto.json"),
    case("submit", InvalidInput, "a missing field, before any AWS call", Local, "--stack rb-any submit $DIR/missing-field.json"),
    case("submit", NotFound, "no such stack", Moto, "--stack $MISSING submit examples/carto.json"),
    case("submit", AwsError, "a dead endpoint", Local, "--stack rb-any submit examples/carto.json"),
    // status
    case("status", Success, "a running run", Moto, "--stack $STACK status $RUNNING"),
    case("status", InvalidInput, "a text that is no key, before any AWS call", Local, "--stack rb-any status ../x"),
    case("status", NotFound, "no such key", Moto, "--stack $STACK status carto-nope"),
    case("status", AwsError, "a dead endpoint", Local, "--stack rb-any status carto-x"),
    case("status", RunFailed, "a cancelled run", Moto, "--stack $STACK status $ABORTED"),
    // list
    case("list", Success, "the last hour", Moto, "--stack $STACK list --since 1h"),
    case("list", InvalidInput, "a duration that is none", Local, "--stack rb-any list --since yesterday"),
    case("list", NotFound, "no such stack", Moto, "--stack $MISSING list"),
    case("list", AwsError, "a dead endpoint", Local, "--stack rb-any list"),
    // cancel
    case("cancel", Success, "a run already stopped (nothing to do)", Moto, "--stack $STACK cancel $ABORTED"),
    case("cancel", InvalidInput, "a text that is no key", Local, "--stack rb-any cancel ../x"),
    case("cancel", NotFound, "no such execution", Moto, "--stack $STACK cancel carto-nope"),
    case("cancel", AwsError, "a dead endpoint", Local, "--stack rb-any cancel carto-x"),
    // rerun
    case("rerun", Success, "a cancelled run", Moto, "--stack $STACK rerun $ABORTED"),
    case("rerun", InvalidInput, "a run still running", Moto, "--stack $STACK rerun $RUNNING"),
    case("rerun", InvalidInput, "a text that is no key", Local, "--stack rb-any rerun ../x"),
    case("rerun", NotFound, "no such key", Moto, "--stack $STACK rerun carto-nope"),
    case("rerun", AwsError, "a dead endpoint", Local, "--stack rb-any rerun carto-x"),
    // backfill
    case("backfill", Success, "a dry run needs no stack", Local, "backfill docs/examples/amperity-daily.json --from 2026-11-01 --to 2026-11-03 --dry-run"),
    case("backfill", Success, "two windows sent", Moto, "--stack $STACK backfill docs/examples/amperity-daily.json --from 2026-11-01 --to 2026-11-02 --rate 50"),
    case("backfill", InvalidInput, "a template with an absolute window", Local, "--stack rb-any backfill examples/amperity.json --from 2026-11-01 --to 2026-11-03"),
    case("backfill", NotFound, "no such stack", Moto, "--stack $MISSING backfill docs/examples/amperity-daily.json --from 2026-11-01 --to 2026-11-01"),
    case("backfill", AwsError, "a dead endpoint", Local, "--stack rb-any backfill docs/examples/amperity-daily.json --from 2026-11-01 --to 2026-11-01"),
    // dlq
    case("dlq", Success, "list an empty queue", Moto, "--stack $STACK dlq list --max 1"),
    case("dlq", InvalidInput, "a count that is no number", Local, "--stack rb-any dlq list --max x"),
    case("dlq", NotFound, "no such stack", Moto, "--stack $MISSING dlq list"),
    case("dlq", AwsError, "a dead endpoint", Local, "--stack rb-any dlq list"),
];

/// `sim`'s success: it serves until Ctrl-C, then exits 0.
pub const SIM_SERVES: &str = "sim --port 0";

const NO_KEY: &str = "names no key or stack (a request file that cannot be read is invalid input)";
const NO_AWS: &str = "calls no AWS service";
const NO_RUN: &str = "starts no run";
const OPS_NO_RUN: &str = "talks to AWS only; a failed or refused run is what `status` reports";

/// The command × outcome pairs that cannot happen, and why.
pub const NOT_APPLICABLE: &[(&str, Outcome, &str)] = &[
    ("run", NotFound, NO_KEY),
    ("run", AwsError, NO_AWS),
    ("demo", NotFound, NO_KEY),
    ("demo", AwsError, NO_AWS),
    (
        "demo",
        RunFailed,
        "its requests and simulator scripts are fixed, to succeed",
    ),
    (
        "demo",
        VendorRefusal,
        "its requests and simulator scripts are fixed, to succeed",
    ),
    ("sim", NotFound, NO_KEY),
    ("sim", AwsError, NO_AWS),
    ("sim", RunFailed, NO_RUN),
    ("sim", VendorRefusal, NO_RUN),
    ("validate", NotFound, NO_KEY),
    ("validate", AwsError, NO_AWS),
    ("validate", RunFailed, NO_RUN),
    ("validate", VendorRefusal, NO_RUN),
    ("schema", NotFound, NO_KEY),
    ("schema", AwsError, NO_AWS),
    ("schema", RunFailed, NO_RUN),
    ("schema", VendorRefusal, NO_RUN),
    ("submit", RunFailed, OPS_NO_RUN),
    ("submit", VendorRefusal, OPS_NO_RUN),
    ("status", VendorRefusal, OPS_NO_RUN),
    ("list", RunFailed, OPS_NO_RUN),
    ("list", VendorRefusal, OPS_NO_RUN),
    ("cancel", RunFailed, OPS_NO_RUN),
    ("cancel", VendorRefusal, OPS_NO_RUN),
    ("rerun", RunFailed, OPS_NO_RUN),
    ("rerun", VendorRefusal, OPS_NO_RUN),
    ("backfill", RunFailed, OPS_NO_RUN),
    ("backfill", VendorRefusal, OPS_NO_RUN),
    ("dlq", RunFailed, OPS_NO_RUN),
    ("dlq", VendorRefusal, OPS_NO_RUN),
];

/// The values of the `$NAME` placeholders, and the AWS endpoint of the cases.
pub struct Vars {
    pub pairs: Vec<(&'static str, String)>,
    /// `AWS_ENDPOINT_URL` of [`Place::Moto`] cases.
    pub moto_endpoint: Option<String>,
}

/// The repository root: cases run there, so `examples/…` and `docs/examples/…` resolve as in
/// the documentation.
pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Writes the request files the cases name under `dir`.
pub fn write_fixtures(dir: &Path) {
    let example = |name: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(repo().join("examples").join(name)).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let write = |name: &str, value: serde_json::Value| {
        std::fs::write(dir.join(name), serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    };
    write("missing-field.json", serde_json::json!({"vendor": "amc"}));
    let mut unknown = example("amperity.json");
    unknown["profile"] = "nope".into();
    write("unknown-profile.json", unknown);
    // The simulated CARTO job runs 180 s; its deadline is 60 s. Run at --speed 200, so the 120 s
    // between them are 0.6 s of wall time: a loaded machine's scheduling delay cannot carry the
    // first poll past the job's end (where it would see it succeed).
    let mut late = example("carto.json");
    late["deadline_seconds"] = 60.into();
    late["request_id"] = "carto-late-1".into();
    write("carto-late.json", late);
    // The sandbox's profiles hold one simulator account each (`sandbox::DEMO_PROFILES`): the NA
    // account's token is refused for the EU instance, the second Amperity tenant's for `acme`.
    let mut amc = example("amc-eu.json");
    amc["profile"] = "amc-na".into();
    write("amc-refused.json", amc);
    let mut amperity = example("amperity.json");
    amperity["profile"] = "amperity-b".into();
    write("amperity-refused.json", amperity);
    let mut adobe = example("adobe.json");
    adobe["flow_id"] = "9f1a2b3c-0000-4000-8000-00000000dead".into();
    adobe["request_id"] = "adobe-refused-1".into();
    write("adobe-refused.json", adobe);
    let mut carto = example("carto.json");
    carto["request_id"] = "carto-refused-1".into();
    write("carto-refused.json", carto);
    write(
        "carto-refuses.setup.json",
        serde_json::json!({"faults": [{
            "vendor": "carto", "method": "POST", "path_contains": "/job",
            "fault": {"kind": "status", "status": 400}
        }]}),
    );
    std::fs::write(dir.join("a-file"), b"not a directory").unwrap();
}

impl Vars {
    fn apply(&self, arg: &str) -> String {
        let mut out = arg.to_owned();
        for (name, value) in &self.pairs {
            out = out.replace(&format!("${name}"), value);
        }
        assert!(!out.contains('$'), "no value for a placeholder in {arg}");
        out
    }

    /// The binary, run at the repository root with the case's AWS endpoint, no `RUNBRIDGE_*`
    /// setting of the caller's shell, and `RUST_BACKTRACE` set (no backtrace may show anyway).
    pub fn command(&self, case: &Case, as_json: bool) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runbridge"));
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("RUNBRIDGE_")) {
            command.env_remove(name);
        }
        let endpoint = match case.place {
            Place::Local => "http://127.0.0.1:9".to_owned(),
            Place::Moto => self.moto_endpoint.clone().expect("a moto endpoint"),
        };
        command
            .current_dir(repo())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null());
        if as_json {
            command.arg("--json");
        }
        command.args(case.args.split_whitespace().map(|a| self.apply(a)));
        command
    }

    /// Runs `case` for people and with `--json`; checks the exit code, stderr and stdout.
    pub fn check(&self, case: &Case) {
        let expected = case.outcome.exit();
        let label = format!("{} ({:?}: {})", case.args, case.outcome, case.what);
        for as_json in [false, true] {
            let out = self.command(case, as_json).output().unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert_eq!(
                out.status.code(),
                Some(expected.code() as i32),
                "{label}, --json {as_json}: expected exit {} ({})\nstdout: {stdout}\nstderr: {stderr}",
                expected.code(),
                expected.meaning()
            );
            assert!(
                !stderr.contains("panicked") && !stderr.contains("stack backtrace"),
                "{label}: {stderr}"
            );
            if expected != Exit::Success {
                assert!(
                    stderr.contains("error: "),
                    "{label}: no error line: {stderr}"
                );
            }
            if as_json {
                check_json(&label, case, expected, &stdout);
            }
        }
    }
}

/// With `--json`, stdout is one JSON document: the report, or (for an error that is no report)
/// the error object with the same exit code.
fn check_json(label: &str, case: &Case, expected: Exit, stdout: &str) {
    let doc: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("{label}: stdout is not one JSON document ({e}): {stdout}"));
    if let Some(code) = doc.get("exit_code") {
        assert_eq!(code, expected.code(), "{label}: {doc}");
        assert_eq!(doc["kind"], expected.name(), "{label}: {doc}");
        assert!(doc["error"].is_string(), "{label}: {doc}");
    }
    // Only a report may say why without an error object: `status` of a failed run, the runs of
    // `run`, the files `validate` refused. Anything else is an error object.
    let report_of_failure = matches!(
        (case.command, expected),
        ("status" | "run", Exit::RunFailed) | ("validate", Exit::InvalidInput)
    );
    if expected != Exit::Success && !report_of_failure {
        assert!(
            doc.get("exit_code").is_some(),
            "{label}: no error object: {doc}"
        );
    }
    if case.outcome == Outcome::InvalidInput && doc.get("exit_code").is_some() {
        let names_field = case.what.contains("field") || case.what.contains("profile");
        if names_field {
            assert!(doc["field"].is_string(), "{label}: no field: {doc}");
        }
    }
}
