//! BENCHMARKS section 6's last part: a scaled-down day on the real stack beside the model.

use runbridge_bench::realday::compare::{per_run_polls, rows, table, TOLERANCE};
use runbridge_bench::realday::figures::RealFigures;
use runbridge_bench::realday::stack::BUDGET_SHARE;
use runbridge_bench::realday::Compared;
use runbridge_bench::Table;
use runbridge_core::VendorKind;

/// Why a figure of the real day may differ from the model's, by the row's name.
fn why(name: &str, speed: f64, real: &RealFigures) -> String {
    let past_deadline =
        !real.failures.is_empty() && real.failures.iter().all(|f| f.contains("deadline"));
    if name.starts_with("runs failed") && past_deadline {
        let [amc, amperity, _, carto] = VendorKind::ALL.map(VendorKind::default_deadline_seconds);
        format!(
            "both cancel a run still going at its vendor's default deadline (AMC {amc} s, CARTO \
             {carto} s, Amperity and Adobe {amperity} s); a run whose end falls within a poll of \
             its deadline lands on either side of it, as scaled real time moves the real polls"
        )
    } else if name.starts_with("runs completed") && past_deadline {
        "the runs cancelled at their deadline (the next row)".to_owned()
    } else if name.starts_with("storage GETs") || name.starts_with("storage PUTs") {
        "the model charges each step the requests it makes without contention (BENCHMARKS §5's \
         per-step figures for AMC's queue); in a burst the real enqueue of an AMC run retries \
         its conditional write of the scope's record when another run's write came first, a \
         read and a write each time (see the per-step counts below)"
            .to_owned()
    } else if name.starts_with("polls") || name.starts_with("state transitions") {
        format!(
            "scaled real time: each millisecond the real handlers take is {speed:.0} simulated \
             ms, which moves polls near a predicted end, and an AMC run waiting for a slot \
             starts when a real execution hands it on"
        )
    } else if name.starts_with("peak AMC") {
        "when the real executions give a slot back and the next is admitted moves with the \
         scaled clock"
            .to_owned()
    } else {
        "not explained by this benchmark: a difference to look into".to_owned()
    }
}

pub fn print(c: &Compared) {
    let w = &c.day.workload;
    let (real, model) = (&c.real, &c.model);
    println!("### The real stack beside the model\n");
    println!(
        "A scaled-down day on the real stack (`runbridge_bench::realday`): {} runs of the \
         same mix (seed {}; {} AMC instances, {} Amperity tenants, {} Adobe and CARTO accounts; \
         durations {}–{} s, each workflow's 20 previous runs within ±30 % of its median), all \
         sent at 02:00, each through a real `LocalDeployment` — the trigger, poll and collect \
         handlers, the deployed state machine in the ASL interpreter, the four vendor simulators \
         over HTTP on loopback with AMC's 10 executions per instance and Amperity's 10 requests \
         per second per tenant. Each run's simulator script has its workload duration, and its \
         workflow's history is stored before the day, so its polls follow the prediction as the \
         model's do. Workflows the simulators' catalogs make shared (one per Amperity tenant, \
         one Adobe flow) take the history of their first run, their other runs' durations \
         scaled by the ratio of the medians; the model runs the same specs, with AMC's queue, \
         runbridge's plan and one Amperity budget per tenant (the real day is one process).\n",
        w.runs,
        w.seed,
        w.amc_instances,
        w.amperity_tenants,
        w.other_accounts,
        w.shortest,
        w.longest,
    );
    println!(
        "**Scaled real time, not a virtual clock:** the simulators' clock and the Wait states \
         run {:.0}× real time, so every millisecond the real handlers take is {:.0} ms of \
         simulated time; the day took {:.1} s of wall time. The requests go to the trigger \
         handler directly (no SQS, no Lambda: the model's intake, AWS quotas and Lambda stages \
         have no counterpart here), and the vendor clients' rate limiter \
         (`runbridge_vendors::rate`) counts its limits on the simulators' clock at {:.0} % of \
         each limit, because milliseconds of scheduling delay bunch requests by whole \
         simulated seconds. Storage is counted by wrappers around the ledger, slots, history \
         and result sink, as the S3 requests they stand for.\n",
        c.day.speed,
        c.day.speed,
        real.wall.as_secs_f64(),
        BUDGET_SHARE * 100.0,
    );
    println!("{}", table(c));
    if !real.failures.is_empty() {
        println!("Failed on the real stack:\n");
        for failure in &real.failures {
            println!("- {failure}");
        }
        println!();
    }
    let (gap, differing) = per_run_polls(real, model);
    println!(
        "Run by run, real and model polls differ on {differing} of {} runs, by {gap:.2} polls \
         on average.\n",
        real.polls_by_index.len()
    );
    let far: Vec<String> = rows(real, model)
        .into_iter()
        .filter(|r| r.differs())
        .map(|r| format!("- **{}**: {}.", r.name, why(&r.name, c.day.speed, real)))
        .collect();
    if far.is_empty() {
        println!(
            "Every figure is within {:.0} % of the model's.\n",
            TOLERANCE * 100.0
        );
    } else {
        println!(
            "Figures more than {:.0} % from the model's, and why:\n\n{}\n",
            TOLERANCE * 100.0,
            far.join("\n")
        );
    }
    let mut t = Table::new(["step", "GETs per run", "PUTs per run"]);
    for (step, gets, puts) in &real.storage_by_step {
        t.row([step.to_string(), format!("{gets:.2}"), format!("{puts:.2}")]);
    }
    println!("Storage requests of the real day by step (mean over its runs):\n");
    println!("{}", t.markdown());
}
