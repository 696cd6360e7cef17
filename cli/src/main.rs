//! `runbridge`: parse the command line and dispatch.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::{Parser, Subcommand};
use runbridge::input::{parse_speed, read_request};
use runbridge::report::{table, Progress};
use runbridge::sandbox::{Observer, RunSummary, Sandbox, SandboxOptions};
use runbridge_core::RunState;

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
    /// Print the JSON Schema of a run request.
    Schema,
    /// Validate request files; prints each error with its field.
    Validate {
        /// Request JSON files (`-` for stdin); at least one.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUNBRIDGE_LOG")
        .unwrap_or_else(|_| "warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    match cli.command {
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
            let summary = runner.run(&body).await?;
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
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&runbridge::request_schema())?
            );
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
                match runbridge_core::RunRequest::from_json(&body) {
                    Ok(r) => println!("{}: ok ({})", file.display(), r.vendor()),
                    Err(e) => {
                        bad += 1;
                        println!("{}: {e}", file.display());
                    }
                }
            }
            if bad > 0 {
                anyhow::bail!("{bad} of {} request(s) invalid", files.len());
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
        anyhow::bail!("{failed} run(s) did not succeed");
    }
    Ok(())
}
