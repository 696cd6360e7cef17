//! A CARTO SQL job: its connection, query and metadata, its state at a given moment (`PENDING`,
//! `RUNNING`, `DONE` with or without `errorResult`, `FAILED`, `CANCELED`), and the job document
//! CARTO answers.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{Outcome, RunPhase, ScriptedRun};

/// One simulated job.
#[derive(Clone)]
pub(super) struct Job {
    pub(super) id: String,
    pub(super) connection: String,
    pub(super) query: String,
    pub(super) metadata: Value,
    pub(super) run: ScriptedRun,
}

/// The job's vendor state and `errorResult` at `now`.
pub(super) fn job_status(job: &Job, now: OffsetDateTime) -> Value {
    let (state, error_result) = match job.run.phase(now) {
        RunPhase::Queued => ("PENDING", None),
        RunPhase::Running | RunPhase::Ended(Outcome::NeverFinish) => ("RUNNING", None),
        RunPhase::Cancelled { stopping: true } => ("RUNNING", None),
        RunPhase::Cancelled { stopping: false } => ("CANCELED", None),
        RunPhase::Publishing | RunPhase::Ended(Outcome::Succeed) => ("DONE", None),
        RunPhase::Ended(Outcome::Fail {
            message,
            customer: true,
        }) => (
            "DONE",
            Some(json!({"reason": "invalidQuery", "location": "query", "message": message})),
        ),
        RunPhase::Ended(Outcome::Fail {
            message,
            customer: false,
        }) => (
            "DONE",
            Some(json!({"reason": "backendError", "message": message})),
        ),
        RunPhase::Ended(Outcome::Reject { message }) => (
            "FAILED",
            Some(json!({"reason": "invalid", "message": message})),
        ),
    };
    let mut status = json!({ "state": state });
    if let Some(e) = error_result {
        status["errorResult"] = e;
    }
    status
}

/// The job document CARTO answers.
pub(super) fn describe(job: &Job, now: OffsetDateTime) -> Value {
    json!({
        "externalId": job.id,
        "accountId": "ac_sim00001",
        "userId": "auth0|sim-carto-user",
        "connectionId": connection_id(&job.connection),
        "metadata": job.metadata,
        "createdAt": timestamp(job.run.created_at),
        "query": job.query,
        "jobMetadata": {"location": "US"},
        "status": job_status(job, now),
    })
}

/// A stable UUID-shaped id per connection name.
fn connection_id(connection: &str) -> String {
    let h = hex::encode(&Sha256::digest(connection.as_bytes())[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `2023-10-04T16:10:35.732Z`, as in the doc.
fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_stable_uuids() {
        assert_eq!(connection_id("x"), connection_id("x"));
        assert_eq!(connection_id("x").len(), 36);
    }
}
