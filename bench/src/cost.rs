//! What a run costs on AWS, by line item, from what it did: the Step Functions state transitions
//! it passed, the Lambda invocations it made (and their GB-seconds at the functions' configured
//! memory), and its S3 requests. Prices are AWS's public list prices (us-east-1, Step Functions
//! Standard, Lambda on arm64, S3 Standard); durations of Lambda invocations are assumptions,
//! stated in [`ASSUMPTIONS`], because nothing here runs on Lambda.

/// Step Functions Standard: USD per state transition ($0.025 per 1,000).
pub const USD_PER_TRANSITION: f64 = 0.025 / 1_000.0;
/// Lambda: USD per request ($0.20 per million).
pub const USD_PER_LAMBDA_REQUEST: f64 = 0.20 / 1_000_000.0;
/// Lambda on arm64: USD per GB-second (first pricing tier).
pub const USD_PER_GB_SECOND_ARM64: f64 = 0.000_013_333_4;
/// S3 Standard: USD per GET (and other read) request ($0.0004 per 1,000).
pub const USD_PER_S3_GET: f64 = 0.0004 / 1_000.0;
/// S3 Standard: USD per PUT, COPY, POST or LIST request ($0.005 per 1,000).
pub const USD_PER_S3_PUT: f64 = 0.005 / 1_000.0;

/// Memory of the trigger and poll functions, MB (`infra/template.yaml`, `Globals.Function`).
pub const TRIGGER_MEMORY_MB: f64 = 256.0;
/// Memory of the poll function, MB (the global default).
pub const POLL_MEMORY_MB: f64 = 256.0;
/// Memory of the collect function, MB (`CollectMemorySize`'s default).
pub const COLLECT_MEMORY_MB: f64 = 512.0;

/// Assumed billed duration of one trigger invocation per run (claim, submit, record, start).
pub const TRIGGER_SECONDS: f64 = 0.4;
/// Assumed billed duration of one poll (a ledger read and one vendor status call).
pub const POLL_SECONDS: f64 = 0.2;
/// Assumed billed duration of one collect of a small result (one file, the manifest).
pub const COLLECT_SECONDS: f64 = 2.0;

/// The assumptions behind the Lambda GB-second line, for the document.
pub const ASSUMPTIONS: &str = "Lambda durations are assumed, not measured (nothing here runs on \
    Lambda): a trigger 0.4 s per run (one invocation per run; SQS batches of up to 10 make it \
    less), a poll 0.2 s (a ledger read and one vendor status call), a collect 2 s (a small \
    result); memory as `infra/template.yaml` configures it: trigger and poll 256 MB, collect \
    512 MB (`CollectMemorySize`'s default); arm64 at $0.0000133334 per GB-s, $0.20 per million \
    requests. Step Functions Standard $0.025 per 1,000 transitions; S3 GET $0.0004 and PUT \
    $0.005 per 1,000 requests";

/// What one run did, in the units AWS bills.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Step Functions state transitions (every state entered, retries included).
    pub transitions: f64,
    /// Trigger invocations.
    pub triggers: f64,
    /// Poll function invocations (polls; for a queued run also its enqueue and admit steps).
    pub polls: f64,
    /// Collect function invocations.
    pub collects: f64,
    /// S3 GET requests.
    pub s3_gets: f64,
    /// S3 PUT-class requests.
    pub s3_puts: f64,
}

/// What a run (or many) cost, by line item, in USD.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    /// Step Functions transitions.
    pub transitions: f64,
    /// Lambda requests.
    pub lambda_requests: f64,
    /// Lambda GB-seconds.
    pub lambda_compute: f64,
    /// S3 GETs.
    pub s3_gets: f64,
    /// S3 PUTs.
    pub s3_puts: f64,
}

impl Usage {
    /// What this usage costs.
    pub fn cost(&self) -> Cost {
        let gb_seconds = self.triggers * TRIGGER_MEMORY_MB / 1024.0 * TRIGGER_SECONDS
            + self.polls * POLL_MEMORY_MB / 1024.0 * POLL_SECONDS
            + self.collects * COLLECT_MEMORY_MB / 1024.0 * COLLECT_SECONDS;
        Cost {
            transitions: self.transitions * USD_PER_TRANSITION,
            lambda_requests: (self.triggers + self.polls + self.collects) * USD_PER_LAMBDA_REQUEST,
            lambda_compute: gb_seconds * USD_PER_GB_SECOND_ARM64,
            s3_gets: self.s3_gets * USD_PER_S3_GET,
            s3_puts: self.s3_puts * USD_PER_S3_PUT,
        }
    }

    /// The sum of two usages.
    pub fn plus(&self, other: &Usage) -> Usage {
        Usage {
            transitions: self.transitions + other.transitions,
            triggers: self.triggers + other.triggers,
            polls: self.polls + other.polls,
            collects: self.collects + other.collects,
            s3_gets: self.s3_gets + other.s3_gets,
            s3_puts: self.s3_puts + other.s3_puts,
        }
    }

    /// This usage scaled by `factor` (a mean from a sum, say).
    pub fn times(&self, factor: f64) -> Usage {
        Usage {
            transitions: self.transitions * factor,
            triggers: self.triggers * factor,
            polls: self.polls * factor,
            collects: self.collects * factor,
            s3_gets: self.s3_gets * factor,
            s3_puts: self.s3_puts * factor,
        }
    }
}

impl Cost {
    /// Every line item together.
    pub fn total(&self) -> f64 {
        self.transitions + self.lambda_requests + self.lambda_compute + self.s3_gets + self.s3_puts
    }

    /// The same cost for `n` runs.
    pub fn times(&self, n: f64) -> Cost {
        Cost {
            transitions: self.transitions * n,
            lambda_requests: self.lambda_requests * n,
            lambda_compute: self.lambda_compute * n,
            s3_gets: self.s3_gets * n,
            s3_puts: self.s3_puts * n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_sizes_are_the_templates() {
        let template = include_str!("../../infra/template.yaml");
        let globals = template
            .split("Globals:")
            .nth(1)
            .and_then(|g| g.split("Resources:").next())
            .expect("a Globals section");
        assert!(
            globals.contains(&format!("MemorySize: {}", TRIGGER_MEMORY_MB as u32)),
            "the functions' default memory is no longer {TRIGGER_MEMORY_MB} MB"
        );
        assert_eq!(TRIGGER_MEMORY_MB, POLL_MEMORY_MB);
        let collect = template
            .split("CollectMemorySize:")
            .nth(1)
            .expect("a CollectMemorySize parameter");
        assert!(
            collect
                .lines()
                .take(4)
                .any(|l| l.trim() == format!("Default: {}", COLLECT_MEMORY_MB as u32)),
            "CollectMemorySize's default is no longer {COLLECT_MEMORY_MB} MB"
        );
        // The trigger and poll functions set no memory of their own.
        for (function, next) in [
            ("TriggerFunction:", "PollFunction:"),
            ("PollFunction:", "CollectFunction:"),
        ] {
            let body = template.split(function).nth(1).unwrap();
            let body = body.split(next).next().unwrap();
            assert!(
                !body.contains("MemorySize"),
                "{function} sets its own memory"
            );
        }
    }

    #[test]
    fn a_poll_costs_mostly_its_three_transitions() {
        let one = Usage {
            transitions: 3.0,
            polls: 1.0,
            s3_gets: 1.0,
            ..Usage::default()
        }
        .cost();
        assert!((one.transitions - 0.000_075).abs() < 1e-12);
        assert!(one.transitions > 0.9 * one.total());
        assert!((one.times(1_000.0).total() - 1_000.0 * one.total()).abs() < 1e-9);
    }
}
