//! `runbridge`: parse the command line and dispatch to the command's module in the library.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use runbridge::exit::{CliError, Exit};
use runbridge::input::parse_speed;
use runbridge::local;
use runbridge::ops::commands::{self, StateFilter};
use runbridge::ops::{backfill, dlq, run_key, Ops, Target};
use runbridge::output::{self, Output};
use runbridge::sandbox::SandboxOptions;

#[derive(Parser)]
#[command(
    name = "runbridge",
    version,
    about = "Start vendor workflow runs, watch them, land their results."
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Print the report as JSON on stdout (every command); on an error, a JSON error object
    /// {"error", "exit_code", "kind", "field"?, "attribution"?}.
    #[arg(long, global = true)]
    json: bool,
    /// The deployed CloudFormation stack (its outputs name the queue, state machine, bucket).
    #[arg(long, global = true, env = "RUNBRIDGE_STACK")]
    stack: Option<String>,
    /// AWS profile of the shared config files.
    #[arg(long, global = true)]
    profile: Option<String>,
    /// AWS region (else the standard chain: AWS_REGION, the profile).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Append the run metrics (CloudWatch Embedded Metric Format, one JSON document a line) to
    /// this file (demo, run).
    #[arg(long, global = true, value_name = "FILE")]
    metrics: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one example per vendor end to end on the embedded simulators.
    Demo {
        /// Results directory (same layout as the S3 bucket).
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Simulated seconds per real second (above 0, at most 1e6).
        #[arg(long, default_value_t = 200.0, value_parser = parse_speed, allow_hyphen_values = true)]
        speed: f64,
        /// Plain line output instead of live progress lines.
        #[arg(long)]
        plain: bool,
    },
    /// Run one request: on the embedded simulators with --sandbox, else against the real vendor
    /// with RUNBRIDGE_* settings from the environment.
    Run {
        /// The request JSON file (`-` for stdin).
        request: PathBuf,
        /// Use the embedded simulators.
        #[arg(long)]
        sandbox: bool,
        /// Sandbox only: faults and run scripts to give the simulators first, as their admin
        /// routes take them ({"faults": [...], "scripts": {"amc": [...]}}), to rehearse how a
        /// vendor's refusal or failure is reported.
        #[arg(long, value_name = "FILE")]
        sim_setup: Option<PathBuf>,
        /// Results directory.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Simulated seconds per real second (sandbox only; above 0, at most 1e6).
        #[arg(long, default_value_t = 200.0, value_parser = parse_speed, allow_hyphen_values = true)]
        speed: f64,
    },
    /// Serve the vendor simulators on a port until interrupted.
    Sim {
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// Simulated seconds per real second (above 0, at most 1e6).
        #[arg(long, default_value_t = 1.0, value_parser = parse_speed, allow_hyphen_values = true)]
        speed: f64,
    },
    /// Print a JSON Schema: of a run request (default), of manifest.json, or of the event detail.
    Schema {
        /// Which document.
        #[arg(default_value = "request", value_parser = local::schema::DOCUMENTS)]
        of: String,
    },
    /// Send requests to the deployed stack's queue, each validated first; prints each key.
    #[command(
        after_help = "Example:\n  runbridge --stack runbridge submit examples/amperity.json"
    )]
    Submit {
        /// Request JSON files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show one run: ledger record, execution, vendor run id, polls, next poll, manifest, failure.
    #[command(
        after_help = "Exit code 1 when the run failed, 3 when no run has this key.\n\nExample:\n  runbridge --stack runbridge status amperity-daily-2026-11-26"
    )]
    Status {
        /// The run key (the execution name; `run=` in the results path).
        key: String,
    },
    /// List runs: executions of the state machine, and ledger keys that have none.
    #[command(
        after_help = "Example:\n  runbridge --stack runbridge list --state failed --vendor amc --since 24h"
    )]
    List {
        /// Only runs in this state.
        #[arg(long, value_enum)]
        state: Option<StateFilter>,
        /// Only runs of this vendor.
        #[arg(long)]
        vendor: Option<runbridge_core::VendorKind>,
        /// Only runs started within this long (90s, 30m, 24h, 7d, 2w).
        #[arg(long)]
        since: Option<String>,
    },
    /// Stop a run's execution (StopExecution).
    #[command(
        after_help = "Example:\n  runbridge --stack runbridge cancel amc-campaign-reach-2026-11-26"
    )]
    Cancel {
        /// The run key.
        key: String,
    },
    /// Start the next attempt of a finished run: re-send its stored request with `attempt` + 1.
    #[command(
        after_help = "Example:\n  runbridge --stack runbridge rerun amc-campaign-reach-2026-11-26"
    )]
    Rerun {
        /// The run key.
        key: String,
    },
    /// One request per day, week or month from --from to --to (both inclusive), each with a
    /// request_id derived from the template and its window, so repeating a backfill starts
    /// nothing twice.
    #[command(
        after_help = BACKFILL_HELP
    )]
    Backfill {
        /// The template request file.
        request: PathBuf,
        /// First day, YYYY-MM-DD (inclusive).
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD (inclusive).
        #[arg(long)]
        to: String,
        /// The window step; defaults to the request's relative_window.
        #[arg(long, value_enum)]
        every: Option<backfill::Every>,
        /// Requests sent per second.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// Print the requests and send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The dead-letter queue: what each message is, and a redrive that resends only requests.
    #[command(
        after_help = "Shapes: rejected (the trigger's own, with its reason: never resent), request (SQS redrive), lambda-failure (an OnFailure record: its request is resent, never the record), event (the rule's DLQ), schedule (the scheduler's DLQ). Only requests with a request_id are resent, anchored at their first delivery's time.\n\nExamples:\n  runbridge --stack runbridge dlq list\n  runbridge --stack runbridge dlq redrive"
    )]
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Validate request files; prints each error with its field.
    Validate {
        /// Request JSON files (`-` for stdin); at least one.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// Show each dead letter's shape and what redrive would do (changes nothing).
    List {
        /// Most messages to read.
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Resend the requests that may be resent and delete their messages; keep the rest.
    Redrive {
        /// Most messages to read.
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
}

/// The example of `backfill --help`, run as written by a test (`cli/tests/exit_codes.rs`).
pub const BACKFILL_HELP: &str = "\
The request needs a relative_window (previous_day, previous_week, previous_month); each window's \
request is it resolved at the window's end. Its request_id (without one: `backfill-` and 12 hex \
digits of the template's fingerprint) and the window name each window's request_id.

Example:
  runbridge --stack runbridge backfill docs/examples/amperity-daily.json --from 2026-11-01 --to 2026-11-30 --rate 2 --dry-run";

const OPERATORS_HELP: &str = "\
Operator commands (submit, status, list, cancel, rerun, backfill, dlq) talk to a deployed stack:
--stack NAME (or RUNBRIDGE_STACK) reads its CloudFormation outputs; or set RUNBRIDGE_QUEUE_URL,
RUNBRIDGE_STATE_MACHINE_ARN, RUNBRIDGE_RESULTS_BUCKET, RUNBRIDGE_RESULTS_PREFIX,
RUNBRIDGE_LEDGER_PREFIX. Credentials: the standard AWS chain, --profile, --region,
AWS_ENDPOINT_URL.";

const EXAMPLES_HELP: &str = "\
Examples:
  runbridge demo --out out
  runbridge --stack runbridge submit examples/amperity.json
  runbridge --stack runbridge list --state running --since 24h
  runbridge --stack runbridge --json status amperity-amperity-daily-files-2026-11-26";

/// `--help`'s closing text: the operator commands' stack, the exit-code table (from the enum),
/// examples.
fn after_help() -> String {
    format!("{OPERATORS_HELP}\n\n{}\n{EXAMPLES_HELP}", Exit::help())
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(runbridge::LOG_VAR)
        .unwrap_or_else(|_| "warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(runbridge::report::colour_allowed())
        // Log lines quote errors, and errors may quote a vendor's echo of a credential.
        .with_writer(|| runbridge_core::redact::RedactingWriter(std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::command()
        .after_help(after_help())
        .try_get_matches_from(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, &args).into(),
    };
    init_logging(&cli.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    output::conclude(runtime.block_on(dispatch(&cli)), cli.json).into()
}

/// A command line clap refused: its message as clap prints it, and with `--json` also the
/// error object, exit code 2. Help and version requests print and exit as clap does.
fn usage_error(error: clap::Error, args: &[OsString]) -> Exit {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        error.exit();
    }
    let _ = error.print();
    let as_json = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    if as_json {
        let rendered = error.render().to_string();
        let message = rendered
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        output::out_line(&CliError::invalid(message).to_json().to_string());
    }
    Exit::InvalidInput
}

/// Runs the command the command line names.
async fn dispatch(cli: &Cli) -> Result<Output, CliError> {
    if let Some(path) = &cli.metrics {
        local::write_metrics_to(path)?;
    }
    let json = cli.json;
    let target = Target {
        stack: cli.stack.clone(),
        profile: cli.profile.clone(),
        region: cli.region.clone(),
    };
    let sandbox = |out: &PathBuf, speed: f64| SandboxOptions {
        out: out.clone(),
        speed,
    };
    // Every argument is checked before connecting, so invalid input says so whatever the stack.
    match &cli.command {
        Command::Demo { out, speed, plain } => {
            local::demo::demo(&sandbox(out, *speed), *plain, json).await
        }
        Command::Run {
            request,
            sandbox: simulated,
            sim_setup,
            out,
            speed,
        } => {
            local::run::run(
                request,
                *simulated,
                sim_setup.as_deref(),
                &sandbox(out, *speed),
                json,
            )
            .await
        }
        Command::Sim { port, speed } => local::sim::sim(*port, *speed, json).await,
        Command::Schema { of } => Ok(local::schema::schema(of)),
        Command::Validate { files } => Ok(local::validate::validate(files)),
        Command::Submit { files } => {
            commands::read_requests(files)?;
            commands::submit(&Ops::connect_to(&target).await?, files).await
        }
        Command::Status { key } => {
            run_key(key)?;
            commands::status(&Ops::connect_to(&target).await?, key).await
        }
        Command::List {
            state,
            vendor,
            since,
        } => {
            let since = since.as_deref().map(commands::parse_duration).transpose()?;
            let ops = Ops::connect_to(&target).await?;
            commands::list(&ops, *state, *vendor, since).await
        }
        Command::Cancel { key } => {
            run_key(key)?;
            commands::cancel(&Ops::connect_to(&target).await?, key).await
        }
        Command::Rerun { key } => {
            run_key(key)?;
            commands::rerun(&Ops::connect_to(&target).await?, key).await
        }
        Command::Backfill {
            request,
            from,
            to,
            every,
            rate,
            dry_run,
        } => {
            let args = commands::Backfill {
                request: request.clone(),
                from: backfill::parse_date("--from", from)?,
                to: backfill::parse_date("--to", to)?,
                every: *every,
                rate: *rate,
                dry_run: *dry_run,
            };
            commands::backfill::plan(&args)?;
            let ops = match dry_run {
                true => None,
                false => Some(Ops::connect_to(&target).await?),
            };
            commands::backfill(ops.as_ref(), &args).await
        }
        Command::Dlq { action } => {
            let (max, dry_run) = match action {
                DlqAction::List { max } => (*max, true),
                DlqAction::Redrive { max } => (*max, false),
            };
            dlq::redrive(&Ops::connect_to(&target).await?, max, dry_run).await
        }
    }
}
