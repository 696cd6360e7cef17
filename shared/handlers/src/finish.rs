//! The finish protocol, shared by collect (a succeeded or failed run), the failure record and the
//! stop handler: write the run's `manifest.json` last, announce its outcome, count it, and give
//! back its concurrency slot.
//!
//! The manifest is the run's end: whoever sees it sees complete files. The announcement (an
//! EventBridge `Run Completed` / `Run Failed`) is at least once: it is published, then recorded
//! beside the manifest; a retry (or a redelivery, or a duplicate stop event) that finds the
//! manifest without the record announces it again, with the same `event_id` for consumers to
//! dedupe ([`Finisher::finish_existing`]).

use std::sync::Arc;

use runbridge_core::{
    Attribution, Manifest, ManifestFile, ResultLayout, ResultPaths, RunHandle, RunOutcome, RunState,
};

use crate::ports::{Callbacks, Events, ResultSink, Slots};
use crate::{Clock, HandlerError};

/// How a run ended, for its manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    /// The final state.
    pub state: RunState,
    /// Why it did not succeed.
    pub reason: Option<String>,
    /// Whose fault that was.
    pub attribution: Option<Attribution>,
    /// The files landed (a success).
    pub files: Vec<ManifestFile>,
}

/// Where a run's end is written and announced: the dependencies of the finish protocol.
#[derive(Clone)]
pub struct Finisher {
    /// Where results and manifests land.
    pub sink: Arc<dyn ResultSink>,
    /// Where outcomes are announced.
    pub events: Arc<dyn Events>,
    /// Key layout.
    pub layout: ResultLayout,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The concurrency slots: a run's slot is given back when it ends.
    pub slots: Arc<dyn Slots>,
    /// Wakes the waiter a given-back slot goes to.
    pub callbacks: Arc<dyn Callbacks>,
}

impl Finisher {
    /// Ends the run: writes its manifest, announces it, counts it (`took_seconds`: what this
    /// step spent), and gives back its slot in (or leaves the line of) its concurrency `scope`.
    /// Counted once, by the call that wrote the manifest: a retry that finds it does not count
    /// the run again.
    pub async fn finish(
        &self,
        handle: &RunHandle,
        ending: Ending,
        scope: Option<&str>,
        took_seconds: f64,
    ) -> Result<RunOutcome, HandlerError> {
        let paths = self.layout.paths(handle);
        let now = self.clock.now();
        let manifest = Manifest::new(
            handle,
            ending.state,
            ending.reason,
            ending.attribution,
            ending.files,
            now,
        );
        let manifest_key = paths.manifest();
        let body = serde_json::to_vec_pretty(&manifest).expect("a manifest always serialises");
        self.sink.put(&manifest_key, body.into()).await?;
        let outcome = RunOutcome::of(&manifest, manifest_key);
        self.announce(&outcome, &paths).await?;
        crate::metrics::run_finished(handle, &outcome, took_seconds, self.clock.now());
        self.release(scope, handle).await?;
        Ok(outcome)
    }

    /// When the run's manifest is already written (a retry, a duplicate event): announces it
    /// if no announcement of it was recorded (the event is at least once, its `event_id`
    /// dedupes) and returns its outcome, with whether this call announced it. `None` when there
    /// is no manifest of `handle`'s run: none at all, or one of another ending of the key (a
    /// submit the vendor refused, whose corrected resend runs under the same key), which this
    /// run's own end replaces.
    pub async fn finish_existing(
        &self,
        handle: &RunHandle,
    ) -> Result<Option<(RunOutcome, bool)>, HandlerError> {
        let paths = self.layout.paths(handle);
        let manifest_key = paths.manifest();
        let Some(existing) = self.sink.get(&manifest_key).await? else {
            return Ok(None);
        };
        let manifest: Manifest = serde_json::from_slice(&existing).map_err(|e| {
            HandlerError::port("sink", format!("existing manifest unreadable: {e}"), false)
        })?;
        if manifest.vendor_run_id != handle.vendor_run_id_or_empty() {
            tracing::info!(manifest_key = %manifest_key, "the manifest there is of an earlier ending of the key (no vendor run); not this run's");
            return Ok(None);
        }
        let outcome = RunOutcome::of(&manifest, manifest_key);
        let announce = !self.announced(&paths, &outcome.event_id).await?;
        if announce {
            tracing::info!(manifest_key = %outcome.manifest_key, "manifest present but not announced; announcing");
            self.announce(&outcome, &paths).await?;
        } else {
            tracing::info!(manifest_key = %outcome.manifest_key, "manifest already present and announced");
        }
        Ok(Some((outcome, announce)))
    }

    /// Whether the announcement of `event_id` is recorded (the record beside the key's runs is
    /// the latest announcement's: an earlier ending's does not count for this one).
    async fn announced(&self, paths: &ResultPaths, event_id: &str) -> Result<bool, HandlerError> {
        let Some(record) = self.sink.get(&paths.announced()).await? else {
            return Ok(false);
        };
        // A record that cannot be read (or of a version without `event_id`) counts as this
        // ending's, as before: announcing again is safe, but it is never needed twice.
        let recorded = serde_json::from_slice::<serde_json::Value>(&record)
            .ok()
            .and_then(|v| {
                v.get("event_id")
                    .and_then(|id| id.as_str())
                    .map(str::to_owned)
            });
        Ok(recorded.is_none_or(|id| id == event_id))
    }

    /// Publishes the outcome, then records that it did. A crash or a failed `PutEvents` in
    /// between leaves no record, so the retried step publishes again.
    async fn announce(
        &self,
        outcome: &RunOutcome,
        paths: &ResultPaths,
    ) -> Result<(), HandlerError> {
        self.events.publish(outcome).await?;
        // The manifest's key too: the record is found from the run key alone, so an operator's
        // view of a key whose claim was released (a refused submit) still finds its ending.
        let record = serde_json::json!({
            "event_id": outcome.event_id,
            "detail_type": outcome.detail_type(),
            "manifest_key": outcome.manifest_key,
            "at": self
                .clock
                .now()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        });
        self.sink
            .put(
                &paths.announced(),
                serde_json::to_vec(&record).expect("json").into(),
            )
            .await
    }
}

impl Finisher {
    /// Gives back `handle`'s slot in `scope` (or its place in the line), handing it to the
    /// oldest waiter. Nothing without a scope.
    pub async fn release(
        &self,
        scope: Option<&str>,
        handle: &RunHandle,
    ) -> Result<(), HandlerError> {
        match scope {
            Some(scope) => {
                crate::queue::release(
                    self.slots.as_ref(),
                    self.callbacks.as_ref(),
                    scope,
                    &handle.key,
                    self.clock.now(),
                )
                .await
            }
            None => Ok(()),
        }
    }
}
