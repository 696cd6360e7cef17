//! Who caused a failure is decided once, where the error is classified, and every view of the
//! run says the same: a run cancelled at the vendor by someone else than runbridge (its UI, its
//! API) is the customer's decision, in the manifest and in the event.

use runbridge_core::{Attribution, RunState, VendorKind};
use runbridge_handlers::Ledger;
use runbridge_sim::RunScript;
use runbridge_system_tests::harness::{example_request, Harness};
use runbridge_vendors::RunRef;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_at_the_vendor_is_the_customers_in_every_view() {
    let h = Harness::start().await;
    // Adobe has no cancel: its runs cannot be cancelled from outside either.
    for vendor in [VendorKind::Amc, VendorKind::Amperity, VendorKind::Carto] {
        h.sim.sim.control.set_default_script(
            vendor,
            RunScript {
                queue_seconds: 0.0,
                run_seconds: 36_000.0,
                ..RunScript::default()
            },
        );
        let id = "cancelled-elsewhere";
        h.trigger
            .handle_bytes(&example_request(vendor, id), None)
            .await
            .unwrap();
        let key = Harness::key_for(vendor, id);
        let entry = h.ledger.get(&key).await.unwrap().expect("claimed");
        let run = entry.run().expect("submitted at once").clone();
        // Someone cancels it through the vendor's own API, not through runbridge.
        h.collector
            .vendors
            .for_request(&entry.request)
            .unwrap()
            .cancel(RunRef {
                request: &entry.request,
                vendor_run_id: &run.vendor_run_id,
            })
            .await
            .unwrap();
        let manifest = h.run_to_end_for(vendor, id).await;
        assert_eq!(
            manifest.state,
            RunState::Cancelled,
            "{vendor}: {manifest:?}"
        );
        assert_eq!(
            manifest.attribution,
            Some(Attribution::Customer),
            "{vendor}: {manifest:?}"
        );
        let event = h
            .events
            .published()
            .into_iter()
            .find(|e| e.key == key.as_str())
            .expect("the run's event");
        assert_eq!(event.attribution, manifest.attribution, "{vendor}");
        assert_eq!(event.state, manifest.state, "{vendor}");
    }
}
