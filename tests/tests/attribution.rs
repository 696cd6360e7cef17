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

/// A run the vendor fails tells the same story in the manifest and the event, for every vendor:
/// a failure the vendor blames on the request (its configuration, its query) is the customer's,
/// any other the platform's; the reason carries the vendor's words. AMC says so only by state
/// (REJECTED: it refused the query; FAILED carries no blame), the others in the failure itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_the_vendor_fails_is_attributed_as_the_vendor_says_in_every_view() {
    use runbridge_sim::Outcome;
    let h = Harness::start().await;
    for vendor in VendorKind::ALL {
        for (customer, attribution) in [
            (true, Attribution::Customer),
            (false, Attribution::Platform),
        ] {
            let id = format!("vendor-failed-{customer}");
            let message = format!("scripted failure, customer={customer}");
            let outcome = match (vendor, customer) {
                (VendorKind::Amc, true) => Outcome::Reject {
                    message: message.clone(),
                },
                _ => Outcome::Fail {
                    message: message.clone(),
                    customer,
                },
            };
            h.sim.sim.control.push_script(
                vendor,
                RunScript {
                    outcome,
                    ..RunScript::default()
                },
            );
            h.trigger
                .handle_bytes(&example_request(vendor, &id), None)
                .await
                .unwrap();
            let manifest = h.run_to_end_for(vendor, &id).await;
            assert_eq!(
                manifest.state,
                RunState::Failed,
                "{vendor} {id}: {manifest:?}"
            );
            assert_eq!(
                manifest.attribution,
                Some(attribution),
                "{vendor} {id}: {:?}",
                manifest.reason
            );
            assert!(
                manifest
                    .reason
                    .as_deref()
                    .unwrap_or_default()
                    .contains(&message),
                "{vendor} {id}: the vendor's words reach the manifest: {:?}",
                manifest.reason
            );
            let key = Harness::key_for(vendor, &id);
            let event = h
                .events
                .published()
                .into_iter()
                .find(|e| e.key == key.as_str())
                .expect("the run's event");
            assert_eq!(event.attribution, manifest.attribution, "{vendor} {id}");
            assert_eq!(event.state, manifest.state, "{vendor} {id}");
        }
    }
}
