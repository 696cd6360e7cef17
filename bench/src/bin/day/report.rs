//! BENCHMARKS section 6: the simulated day's figures as Markdown.

use std::time::Duration;

use runbridge_bench::cost::Cost;
use runbridge_bench::day::figures::Figures;
use runbridge_bench::day::machine::MachineFacts;
use runbridge_bench::day::workload::{Intake, Vendor};
use runbridge_bench::day::{Budget, PollPolicy};
use runbridge_bench::{mib, peak_rss_bytes, ratio, Table};

/// Assumed CloudWatch Logs bytes per Lambda invocation (START/END/REPORT lines and a few JSON
/// log lines), and the ingestion price.
const LOG_BYTES_PER_INVOCATION: f64 = 1_500.0;
const USD_PER_LOG_GB: f64 = 0.50;
/// EMF custom metric series (vendor × profile dimensions, the estimate) at $0.30 per
/// metric-month, spread over a 30-day month's runs.
const METRIC_SERIES: f64 = 730.0;
const USD_PER_METRIC_MONTH: f64 = 0.30;

pub struct Report<'a> {
    pub runs: usize,
    pub facts: &'a MachineFacts,
    pub calibration: &'a [(u64, u64, u64)],
    pub queue_ratio: (f64, f64),
    pub cases: &'a [(Intake, Budget, PollPolicy, Figures)],
    pub sweep: &'a [(usize, Figures)],
    pub wall: Duration,
}

fn n(x: u64) -> String {
    let s = x.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn logs_and_metrics(day: &Figures) -> (f64, f64) {
    let per_1000 = 1_000.0 / day.runs as f64;
    let logs =
        day.lambda_invocations as f64 * LOG_BYTES_PER_INVOCATION / 1e9 * USD_PER_LOG_GB * per_1000;
    let metrics = METRIC_SERIES * USD_PER_METRIC_MONTH / 30.0 * per_1000;
    (logs, metrics)
}

fn total(day: &Figures) -> f64 {
    let (logs, metrics) = logs_and_metrics(day);
    day.cost.total() + logs + metrics
}

fn zero_text(day: &Figures) -> String {
    let bad = day.nonzero_zero_figures();
    if bad.is_empty() {
        "all zero".to_owned()
    } else {
        format!("**not zero**: {}", bad.join(", "))
    }
}

pub fn print(r: &Report<'_>) {
    let f = r.facts;
    println!("## 6. A day at scale\n");
    println!(
        "A discrete-event simulation of a whole day on one virtual clock (`runbridge_bench::day`; \
         `cargo run --release -p runbridge-bench --bin day`): {} runs (seed 22), AMC 50 % over 500 \
         instances (the busiest 10 % carry 30 %), Amperity 30 % over 50 tenants, Adobe and CARTO 10 % \
         each over 20 accounts; each run's workflow has a median log-uniform in 5 min – 6 h, its \
         20 previous runs and the run itself within ±30 % of it; 60 % of runs in 02:00–03:00, \
         the rest spread over the day. Intake shapes: requests sent to the queue spread over the \
         hour, all sent at 02:00, or EventBridge Scheduler schedules firing at 02:00:00 (delivering \
         to the queue, as deployed).\n",
        n(r.runs as u64)
    );
    println!(
        "**Run through real code:** every poll wait is `PollPlan` (`poll_sim::Schedule`, the \
         schedule §1 checks against the ASL interpreter) with the poll handler's `history_floor`; \
         the throttle Retrier of every Lambda task is read from `infra/statemachine.asl.json` \
         (`runbridge_asl::StateMachine::retriers`: {} s, ×{}, at most {} s, {} attempts, full \
         jitter: {}); transitions and history events per step are measured by running that \
         definition in the interpreter (a run: {} transitions / {} events besides its polls, each \
         poll loop {} / {}, the AMC queue's states {} / {}, each throttled attempt {} / {}); the \
         trigger handles {} messages of a batch at once (`SQS_CONCURRENCY`); prices are \
         `cost.rs`'s. **Modelled, not run:** AWS's quotas (token buckets for StartExecution \
         1,300 + 300/s and StateTransition 5,000 + 5,000/s, large regions; Lambda's 1,000 \
         account concurrency and 1,000 new environments per function per 10 s; S3's 3,500 PUT and \
         5,500 GET per prefix per second; Scheduler 1,000/s; the event source's \
         `TriggerMaxConcurrency` 5, batches of 10; SQS redelivery after 360 s and the DLQ after 5 \
         receives; the 25,000-event history), Lambda environments (each with its own vendor \
         tokens and Amperity limiter; 300 ms cold starts; idle ones reclaimed after 10 min), the \
         vendors (150 ms per request; Amperity 10 requests in any sliding second per tenant, \
         token requests included, a 429 waited out for 1 s; AMC 10 running executions per \
         instance; Adobe and CARTO publish no rate limit, so none is applied: a parameter), the \
         AMC queue (slots handed on in arrival order at collect, as §5 measures), invocation \
         durations (`cost.rs`'s: trigger 0.4 s per message, poll 0.2 s, collect 2 s, plus \
         vendor calls and limiter waits) and S3 requests per step (§1's and §5's measured \
         means). Vendors never fail a run here; no Lambda errors other than throttles. \
         Duplicate vendor runs are prevented by the ledger's claim, which the model follows \
         rather than runs.\n",
        f.throttle.interval_seconds,
        f.throttle.backoff_rate,
        f.throttle.max_delay_seconds.unwrap_or(0),
        f.throttle.max_attempts,
        f.throttle.full_jitter,
        f.base_transitions,
        f.base_events,
        f.poll_transitions,
        f.poll_events,
        f.queue_transitions,
        f.queue_events,
        f.retry_transitions,
        f.retry_events,
        runbridge_lambda::trigger::SQS_CONCURRENCY,
    );
    let matched = r.calibration.iter().all(|(_, want, got)| want == got);
    println!(
        "**Calibration.** Polls per run of one run alone without history (no latency): {} — {} \
         §1's. §5's measurement (3 runs without history, 10 predicted, then 50 at once on one \
         instance, 600 s each): first request → last manifest ÷ ideal {:.3} against §5's {:.3} \
         ({:+.1} %, bound ±10 %).\n",
        r.calibration
            .iter()
            .map(|(d, want, got)| format!("{} s {got} (§1 {want})", d))
            .collect::<Vec<_>>()
            .join(", "),
        if matched { "exactly" } else { "**not**" },
        r.queue_ratio.0,
        r.queue_ratio.1,
        (r.queue_ratio.0 / r.queue_ratio.1 - 1.0) * 100.0
    );

    let [amc, amperity, _, carto] =
        runbridge_core::VendorKind::ALL.map(runbridge_core::VendorKind::default_deadline_seconds);
    println!(
        "**Outcomes and the zero figures** (per case; vendor 429s AMC / Amperity / Adobe / CARTO). \
         A run still going at its deadline is cancelled by its poll, as the stack does, and \
         counted under *failed*: no request here sets one, so it is the vendor's default (AMC \
         {amc} s, CARTO {carto} s, Amperity and Adobe {amperity} s), which the workload's \
         longest runs (up to 1.3 × its longest median, 6 h) outlast:\n"
    );
    let mut t = Table::new([
        "intake",
        "Amperity limit",
        "polling",
        "completed",
        "failed (cause)",
        "dead-lettered",
        "duplicate vendor runs",
        "without manifest",
        "vendor 429s",
        "worst second, one Amperity tenant",
        "peak AMC running per instance",
        "largest history",
        "zero figures",
        "simulated in",
    ]);
    for (intake, budget, waits, d) in r.cases {
        let v429 = |v: Vendor| d.vendor_429s.get(&v).copied().unwrap_or(0);
        t.row([
            intake.label().to_owned(),
            budget.label().to_owned(),
            waits.label(),
            format!("{}/{}", n(d.completed as u64), n(d.runs as u64)),
            if d.failed.is_empty() {
                "0".to_owned()
            } else {
                format!("{:?}", d.failed)
            },
            d.dead_lettered.to_string(),
            d.duplicate_vendor_runs.to_string(),
            d.without_manifest.to_string(),
            format!(
                "{} / {} / {} / {}",
                v429(Vendor::Amc) + d.amc_refused,
                v429(Vendor::Amperity),
                v429(Vendor::Adobe),
                v429(Vendor::Carto)
            ),
            d.worst_second
                .get(&Vendor::Amperity)
                .copied()
                .unwrap_or(0)
                .to_string(),
            d.amc_peak_active.to_string(),
            format!(
                "{} ({:.1} % of 25,000)",
                d.largest_history,
                d.largest_history as f64 / 250.0
            ),
            zero_text(d),
            format!("{:.1} s", d.wall.as_secs_f64()),
        ]);
    }
    println!("{}", t.markdown());

    let plan: Vec<&(Intake, Budget, PollPolicy, Figures)> = r
        .cases
        .iter()
        .filter(|c| c.1 == Budget::Shared && c.2 == PollPolicy::Plan)
        .collect();
    println!("**AWS quotas** (runbridge's plan, shared Amperity budget; peak per second — per 10 s for new environments, at once for concurrency — and calls throttled):\n");
    let mut header = vec!["quota".to_owned(), "limit".to_owned()];
    header.extend(plan.iter().map(|c| c.0.label().to_owned()));
    let mut t = Table::new(header);
    if let Some(first) = plan.first() {
        for (q, quota) in first.3.quotas.iter().enumerate() {
            let mut row = vec![quota.name.to_owned(), quota.limit.clone()];
            row.extend(plan.iter().map(|c| {
                let u = &c.3.quotas[q];
                format!("{} peak, {} throttled", n(u.peak), n(u.throttled))
            }));
            t.row(row);
        }
    }
    println!("{}", t.markdown());

    println!("**Per run** (runbridge's plan, shared budget; p50 / p95 / max; detection lag: vendor end → the poll that saw it; queue wait: request sent → submitted at the vendor, an AMC run's wait for a slot included; intake wait: request sent → execution started):\n");
    let mut t = Table::new([
        "intake",
        "polls",
        "transitions",
        "Lambda GB-s",
        "S3 PUT",
        "S3 GET",
        "detection lag (s)",
        "queue wait (s)",
        "intake wait (s)",
    ]);
    for c in &plan {
        let d = &c.3;
        t.row([
            c.0.label().to_owned(),
            d.polls.text(0),
            d.transitions.text(0),
            d.gb_seconds.text(2),
            d.s3_puts.text(0),
            d.s3_gets.text(0),
            d.detection_lag.text(0),
            d.queue_wait.text(0),
            d.intake_wait.text(0),
        ]);
    }
    println!("{}", t.markdown());

    println!(
        "**Cost per 1,000 runs by line item** (USD; Lambda GB-s from the simulated invocation \
         times; logs assume {LOG_BYTES_PER_INVOCATION:.0} bytes per invocation at \
         ${USD_PER_LOG_GB}/GB; metrics {METRIC_SERIES:.0} EMF series at ${USD_PER_METRIC_MONTH} \
         per metric-month over a 30-day month of this day's volume; shared budget):\n"
    );
    let mut t = Table::new([
        "intake",
        "polling",
        "Step Functions",
        "Lambda requests",
        "Lambda GB-s",
        "S3 GET",
        "S3 PUT",
        "logs",
        "metrics",
        "total",
        "vs fixed 60 s",
    ]);
    for intake in Intake::ALL {
        let of = |w: PollPolicy| {
            r.cases
                .iter()
                .find(|c| c.0 == intake && c.1 == Budget::Shared && c.2 == w)
                .map(|c| &c.3)
        };
        let Some(anchor) = of(PollPolicy::Fixed(60)) else {
            continue;
        };
        for w in [
            PollPolicy::Plan,
            PollPolicy::Fixed(60),
            PollPolicy::Fixed(30),
        ] {
            let Some(d) = of(w) else { continue };
            let Cost {
                transitions,
                lambda_requests,
                lambda_compute,
                s3_gets,
                s3_puts,
            } = d.cost;
            let (logs, metrics) = logs_and_metrics(d);
            t.row([
                intake.label().to_owned(),
                w.label(),
                format!("{transitions:.3}"),
                format!("{lambda_requests:.3}"),
                format!("{lambda_compute:.3}"),
                format!("{s3_gets:.4}"),
                format!("{s3_puts:.3}"),
                format!("{logs:.4}"),
                format!("{metrics:.3}"),
                format!("{:.3}", total(d)),
                ratio(total(d), total(anchor)),
            ]);
        }
    }
    println!("{}", t.markdown());

    if !r.sweep.is_empty() {
        println!("**Volume sweep** (Scheduler cron at 02:00:00, runbridge's plan, shared budget, the same mix; a quota is *hit* when a call was throttled or delayed by it):\n");
        let mut t = Table::new([
            "runs a day",
            "quotas hit (throttled calls)",
            "completed",
            "failed",
            "dead-lettered",
            "queue wait p95 / max (s)",
            "intake wait p95 / max (s)",
            "Lambda peak concurrency",
            "StateTransition peak / s",
            "simulated in",
        ]);
        let mut first: Option<(usize, String)> = None;
        for (volume, d) in r.sweep {
            let hit: Vec<String> = d
                .quotas
                .iter()
                .filter(|q| q.throttled > 0)
                .map(|q| format!("{} ({})", q.name, n(q.throttled)))
                .collect();
            if first.is_none() && !hit.is_empty() {
                first = Some((*volume, hit.join("; ")));
            }
            t.row([
                n(*volume as u64),
                if hit.is_empty() {
                    "none".to_owned()
                } else {
                    hit.join("; ")
                },
                n(d.completed as u64),
                d.failed.values().sum::<usize>().to_string(),
                d.dead_lettered.to_string(),
                format!("{:.0} / {:.0}", d.queue_wait.p95, d.queue_wait.max),
                format!("{:.0} / {:.0}", d.intake_wait.p95, d.intake_wait.max),
                n(d.quotas[3].peak),
                n(d.quotas[2].peak),
                format!("{:.1} s", d.wall.as_secs_f64()),
            ]);
        }
        println!("{}", t.markdown());
        match first {
            Some((v, names)) => println!(
                "First quota hit: at {} runs a day — {names}.\n",
                n(v as u64)
            ),
            None => println!(
                "No quota was hit up to {} runs a day.\n",
                n(r.sweep.last().map_or(0, |s| s.0) as u64)
            ),
        }
    }
    println!(
        "The whole section (calibration, {} cases, the sweep) simulated in {:.1} s of wall time, \
         peak memory {:.0} MiB.\n",
        r.cases.len(),
        r.wall.as_secs_f64(),
        peak_rss_bytes().map(mib).unwrap_or(0.0)
    );
}
