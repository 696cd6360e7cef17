//! `runbridge`: parse the command line and dispatch.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::{Parser, Subcommand};
use runbridge::input::{parse_speed, read_request};
use runbridge::ops::backfill::Every;
use runbridge::ops::commands::{self, StateFilter};
use runbridge::ops::{Ops, OpsError, StackSelector};
use runbridge::report::{table, Progress};
use runbridge::sandbox::{Observer, RunSummary, Sandbox, SandboxOptions};
use runbridge_core::RunState;

#[derive(Parser)]
#[command(
    name = "runbridge",
    version,
    about = "Start vendor workflow runs, watch them, land their results.",
    after_help = AFTER_HELP
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Print the report as JSON on stdout (operator commands).
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
        #[arg(default_value = "request", value_parser = ["request", "manifest", "event"])]
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
    /// request_id derived from its window, so repeating a backfill starts nothing twice.
    #[command(
        after_help = "The request needs a relative_window (previous_day, previous_week, previous_month); each window's request is it resolved at the window's end.\n\nExample:\n  runbridge --stack runbridge backfill examples/amperity.json --from 2026-11-01 --to 2026-11-30 --rate 2 --dry-run"
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
        every: Option<Every>,
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

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(runbridge::LOG_VAR)
        .unwrap_or_else(|_| "warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(runbridge::report::colour_allowed())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

const AFTER_HELP: &str = "\
Operator commands (submit, status, list, cancel, rerun, backfill) talk to a deployed stack:
--stack NAME (or RUNBRIDGE_STACK) reads its CloudFormation outputs; or set RUNBRIDGE_QUEUE_URL,
RUNBRIDGE_STATE_MACHINE_ARN, RUNBRIDGE_RESULTS_BUCKET, RUNBRIDGE_RESULTS_PREFIX,
RUNBRIDGE_LEDGER_PREFIX. Credentials: the standard AWS chain, --profile, --region,
AWS_ENDPOINT_URL.

Exit codes:
  0  success
  1  a run failed (status of a failed run; demo or run with a failed run)
  2  invalid input (bad request, bad argument, usage error)
  3  not found (no such key, stack or stack output)
  4  AWS error (credentials, permissions, throttling, endpoint)
  5  any other error

Examples:
  runbridge demo --out out
  runbridge --stack runbridge submit examples/amperity.json
  runbridge --stack runbridge list --state running --since 24h
  runbridge --stack runbridge --json status amperity-amperity-daily-files-2026-11-26";

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the cause chain on one line and never a backtrace, whatever
            // RUST_BACKTRACE says: a failed run is a report, not a crash.
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(runbridge::ops::exit_code_of(&e))
        }
    }
}

async fn connect(cli: &Cli) -> Result<Ops, OpsError> {
    let sdk =
        runbridge::ops::client::sdk_config(cli.profile.as_deref(), cli.region.as_deref()).await;
    Ops::connect(&sdk, &StackSelector::from_env(cli.stack.clone())).await
}

async fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    if let Some(path) = &cli.metrics {
        let sink = runbridge_handlers::metrics::file_sink(path)
            .map_err(|e| OpsError::Invalid(format!("--metrics {}: {e}", path.display())))?;
        runbridge_handlers::metrics::set_sink(Some(sink));
    }
    match &cli.command {
        Command::Submit { files } => {
            // Validate every file before connecting, so a bad file sends nothing.
            commands::read_requests(files)?;
            let ops = connect(&cli).await?;
            commands::submit(&ops, files).await?.finish(json)?;
            return Ok(());
        }
        Command::Status { key } => {
            let ops = connect(&cli).await?;
            commands::status(&ops, key).await?.finish(json)?;
            return Ok(());
        }
        Command::List {
            state,
            vendor,
            since,
        } => {
            let since = since.as_deref().map(commands::parse_duration).transpose()?;
            let ops = connect(&cli).await?;
            commands::list(&ops, *state, *vendor, since)
                .await?
                .finish(json)?;
            return Ok(());
        }
        Command::Cancel { key } => {
            let ops = connect(&cli).await?;
            commands::cancel(&ops, key).await?.finish(json)?;
            return Ok(());
        }
        Command::Rerun { key } => {
            let ops = connect(&cli).await?;
            commands::rerun(&ops, key).await?.finish(json)?;
            return Ok(());
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
                from: runbridge::ops::backfill::parse_date("--from", from)?,
                to: runbridge::ops::backfill::parse_date("--to", to)?,
                every: *every,
                rate: *rate,
                dry_run: *dry_run,
            };
            let ops = if *dry_run {
                None
            } else {
                Some(connect(&cli).await?)
            };
            commands::backfill(ops.as_ref(), &args)
                .await?
                .finish(json)?;
            return Ok(());
        }
        Command::Dlq { action } => {
            let ops = connect(&cli).await?;
            let (max, dry_run) = match action {
                DlqAction::List { max } => (*max, true),
                DlqAction::Redrive { max } => (*max, false),
            };
            runbridge::ops::dlq::redrive(&ops, max, dry_run)
                .await?
                .finish(json)?;
            return Ok(());
        }
        _ => {}
    }
    match cli.command {
        Command::Submit { .. }
        | Command::Status { .. }
        | Command::List { .. }
        | Command::Cancel { .. }
        | Command::Rerun { .. }
        | Command::Backfill { .. }
        | Command::Dlq { .. } => unreachable!("handled above"),
        Command::Demo { out, speed, plain } => {
            let progress: Arc<dyn Observer> = Arc::new(Progress::new(plain));
            let sandbox = Sandbox::simulated(
                &SandboxOptions {
                    out: out.clone(),
                    speed,
                },
                progress,
            )
            .await?;
            let runs = futures::future::join_all(
                runbridge::examples::DEMO
                    .iter()
                    .map(|(_, req)| sandbox.run(req.as_bytes())),
            )
            .await;
            let runs: Vec<RunSummary> = runs.into_iter().collect::<Result<_>>()?;
            finish(&runs, &out)
        }
        Command::Run {
            request,
            sandbox,
            out,
            speed,
        } => {
            let body = read_request(&request)?;
            let progress: Arc<dyn Observer> = Arc::new(Progress::new(false));
            let options = SandboxOptions {
                out: out.clone(),
                speed,
            };
            let runner = if sandbox {
                Sandbox::simulated(&options, progress).await?
            } else {
                Sandbox::real(&options, progress)?
            };
            // Ctrl-C stops the execution as `runbridge cancel` does deployed: the vendor run is
            // cancelled and the run ends with a CANCELLED manifest, instead of running on, billed.
            let interrupted = async {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
                eprintln!("interrupted: stopping the execution and cancelling the vendor run");
            };
            let summary = runner.run_until(&body, interrupted).await?;
            finish(&[summary], &out)
        }
        Command::Sim { port, speed } => {
            let config = runbridge_sim::SimConfig {
                speed,
                ..Default::default()
            };
            let sim =
                runbridge_sim::SimHandle::start_on(config, ([127, 0, 0, 1], port).into()).await?;
            println!("vendor simulators listening on {}", sim.base_url());
            println!("point runbridge at them with:");
            for (k, v) in sim.client_settings() {
                println!(
                    "  export RUNBRIDGE_{}={v}",
                    k.replace('.', "_").to_ascii_uppercase()
                );
            }
            tokio::signal::ctrl_c().await?;
            sim.stop().await;
            Ok(())
        }
        Command::Schema { of } => {
            let schema = match of.as_str() {
                "manifest" => runbridge::manifest_schema(),
                "event" => runbridge::event_detail_schema(),
                _ => runbridge::request_schema(),
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(())
        }
        Command::Validate { files } => {
            let mut bad = 0;
            // Every file is checked and reported, even after one that cannot be read.
            for file in &files {
                let body = match read_request(file) {
                    Ok(body) => body,
                    Err(e) => {
                        bad += 1;
                        println!("{e}");
                        continue;
                    }
                };
                match runbridge::validate_request(&body) {
                    Ok(r) => println!("{}: ok ({})", file.display(), r.vendor()),
                    Err(e) => {
                        bad += 1;
                        println!("{}: {e}", file.display());
                    }
                }
            }
            if bad > 0 {
                return Err(OpsError::Invalid(format!(
                    "{bad} of {} request(s) invalid",
                    files.len()
                ))
                .into());
            }
            Ok(())
        }
    }
}

fn finish(runs: &[RunSummary], out: &std::path::Path) -> Result<()> {
    println!("\n{}", table(runs));
    println!("\nresults in {}", out.display());
    let failed = runs
        .iter()
        .filter(|r| r.state != RunState::Succeeded)
        .count();
    if failed > 0 {
        return Err(OpsError::RunFailed(format!("{failed} run(s) did not succeed")).into());
    }
    Ok(())
}
