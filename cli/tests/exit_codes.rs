//! The exit-code table, command by command (the cases are in `exit_table/`): every command ×
//! outcome has a case or a reason it cannot happen; the cases that need no AWS stack run here
//! (those that need one run in `ops.rs`); `sim` serves until interrupted and exits 0; and what
//! `--help`, the README and the runbook say about exit codes is what the binary does.

mod exit_table;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use exit_table::{Case, Outcome, Place, Vars, CASES, COMMANDS, NOT_APPLICABLE, SIM_SERVES};
use runbridge::exit::Exit;

fn runbridge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runbridge"));
    command
        .current_dir(exit_table::repo())
        .env_remove("RUNBRIDGE_STACK")
        .env_remove("RUNBRIDGE_PROFILES")
        .stdin(Stdio::null());
    command
}

/// The subcommands `runbridge --help` lists.
fn commands_in_help() -> BTreeSet<String> {
    let out = runbridge().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_and_outcome_has_a_case_or_a_reason() {
    assert_eq!(
        commands_in_help(),
        COMMANDS
            .iter()
            .map(|c| (*c).to_owned())
            .collect::<BTreeSet<_>>(),
        "the table's commands are the binary's"
    );
    for command in COMMANDS {
        for outcome in Outcome::REQUIRED {
            let cases = CASES
                .iter()
                .filter(|c| c.command == command && c.outcome == outcome)
                .count()
                + usize::from(command == "sim" && outcome == Outcome::Success);
            let reasons = NOT_APPLICABLE
                .iter()
                .filter(|(c, o, _)| *c == command && *o == outcome)
                .count();
            assert!(
                (cases > 0) != (reasons > 0) && reasons <= 1,
                "{command} × {outcome:?}: {cases} case(s), {reasons} reason(s); give a case or \
                 a reason, not both"
            );
        }
    }
    for case in CASES {
        assert!(
            case.args.split_whitespace().any(|a| a == case.command),
            "{case:?} does not run its command"
        );
    }
}

/// A port something listens on, held for as long as the guard lives.
fn busy_port() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

#[test]
fn the_commands_that_need_no_stack_exit_by_the_table() {
    let dir = tempfile::tempdir().unwrap();
    exit_table::write_fixtures(dir.path());
    let (_held, port) = busy_port();
    let vars = Vars {
        pairs: vec![
            ("DIR", dir.path().display().to_string()),
            ("BUSY_PORT", port.to_string()),
        ],
        moto_endpoint: None,
    };
    let local: Vec<&Case> = CASES.iter().filter(|c| c.place == Place::Local).collect();
    assert!(local.len() > 30, "{}", local.len());
    for case in local {
        vars.check(case);
    }
}

/// `sim` prints where it listens (text, or one JSON document), serves until Ctrl-C, exits 0.
#[test]
fn sim_serves_until_interrupted_then_exits_0() {
    for as_json in [false, true] {
        let mut command = runbridge();
        if as_json {
            command.arg("--json");
        }
        let mut child = command
            .args(SIM_SERVES.split_whitespace())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // The announcement is printed at once, whole; the signal handler is in place before.
        let mut printed = String::new();
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                break;
            }
            printed.push_str(&line);
            let done = if as_json {
                line.starts_with('}')
            } else {
                line.contains("export ")
            };
            if done {
                break;
            }
        }
        assert!(printed.contains("127.0.0.1:"), "{printed}");
        let interrupted = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(interrupted.success());
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        assert_eq!(status.code(), Some(0), "--json {as_json}: {printed}{rest}");
        if as_json {
            let doc: serde_json::Value = serde_json::from_str(&format!("{printed}{rest}")).unwrap();
            assert!(doc["base_url"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:"));
            assert!(doc["settings"].as_object().unwrap().len() > 4, "{doc}");
        } else {
            assert!(printed.contains("export RUNBRIDGE_"), "{printed}");
        }
    }
}

/// A usage error clap finds is exit code 2 and, with `--json`, the error object too.
#[test]
fn a_usage_error_with_json_is_an_error_object() {
    let out = runbridge()
        .args(["--json", "list", "--state", "sleeping"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["exit_code"], 2);
    assert_eq!(doc["kind"], "invalid_input");
    assert!(doc["error"].as_str().unwrap().contains("sleeping"), "{doc}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("sleeping"));
}

/// `--help` prints the table from the enum; the runbook's table is the same, row for row; the
/// README names each code.
#[test]
fn help_runbook_and_readme_show_the_one_table() {
    let help = String::from_utf8(runbridge().arg("--help").output().unwrap().stdout).unwrap();
    assert!(help.contains(&Exit::help()), "{help}");
    let runbook = std::fs::read_to_string(exit_table::repo().join("docs/RUNBOOK.md")).unwrap();
    let rows: Vec<(String, String)> = runbook
        .lines()
        .skip_while(|l| !l.starts_with("| code | meaning |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].to_owned(), cells[2].to_owned())
        })
        .collect();
    let table: Vec<(String, String)> = Exit::ALL
        .iter()
        .map(|e| (e.code().to_string(), e.meaning().to_owned()))
        .collect();
    assert_eq!(rows, table, "docs/RUNBOOK.md's exit codes");
    let readme = std::fs::read_to_string(exit_table::repo().join("README.md")).unwrap();
    // Lines wrap anywhere: compare with single spaces.
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    for exit in Exit::ALL {
        assert!(
            readme.contains(&format!("`{}` {}", exit.code(), short(exit))),
            "README.md does not say `{}` {}",
            exit.code(),
            short(exit)
        );
    }
}

/// How the README names a code: the meaning up to its first `:`, `,` or `(`.
fn short(exit: Exit) -> &'static str {
    let meaning = exit.meaning();
    let end = meaning.find([':', ',', '(']).unwrap_or(meaning.len());
    meaning[..end].trim_end()
}

/// A reader that goes away (`runbridge schema | head -1`) ends the command quietly: no panic
/// message, no crash exit code, whatever the command was printing.
#[test]
fn a_closed_stdout_is_a_quiet_exit() {
    for args in [
        vec!["schema"],
        vec!["schema", "--json"],
        vec!["--help"],
        vec!["validate", "examples/amc.json", "examples/carto.json"],
        vec!["validate", "--json", "examples/amc.json"],
        vec!["no-such-command"],
    ] {
        let mut child = runbridge()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command writes a byte: every write to stdout fails (EPIPE).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{args:?}: {stderr}"
        );
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
        assert!(out.status.code().is_some(), "{args:?} died of a signal");
    }
}

/// Hostile numbers and dates on the command line are refused as invalid input naming the
/// argument, never a panic: a speed too small for any clock, backfill dates at the calendar's
/// ends.
#[test]
fn hostile_numbers_and_dates_are_refused_without_a_panic() {
    for (args, names) in [
        (
            vec!["run", "--speed", "1e-20", "examples/amc.json"],
            "--speed",
        ),
        (vec!["demo", "--speed", "5e-324"], "--speed"),
        (
            vec![
                "backfill",
                "docs/examples/amperity-daily.json",
                "--from",
                "9999-12-30",
                "--to",
                "9999-12-31",
                "--dry-run",
            ],
            "9999",
        ),
        (
            vec![
                "backfill",
                "docs/examples/amperity-daily.json",
                "--from",
                "0000-01-01",
                "--to",
                "0000-01-02",
                "--dry-run",
            ],
            "--from",
        ),
    ] {
        let out = runbridge().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(
            out.status.code(),
            Some(i32::from(Exit::InvalidInput.code())),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}
