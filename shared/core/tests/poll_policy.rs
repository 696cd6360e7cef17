//! A request's own poll policy: bounded, and it replaces the default waits.

use runbridge_core::{BackoffPolicy, RunRequest};

fn with_poll(poll: &str) -> Result<RunRequest, runbridge_core::ValidationError> {
    RunRequest::from_json(
        format!(r#"{{"vendor":"carto","connection":"c","query":"SELECT 1","poll":{poll}}}"#)
            .as_bytes(),
    )
}

#[test]
fn a_poll_policy_replaces_the_default_waits() {
    let r = with_poll(r#"{"first_seconds":5,"factor":0.2,"max_seconds":60}"#).unwrap();
    let policy = r.backoff(BackoffPolicy::default());
    assert_eq!(policy.next_wait(0, None, u64::MAX), 5);
    assert_eq!(policy.next_wait(100, None, u64::MAX), 20);
    assert_eq!(policy.next_wait(10_000, None, u64::MAX), 60);
    let plain = RunRequest::from_json(br#"{"vendor":"carto","connection":"c","query":"SELECT 1"}"#)
        .unwrap();
    assert_eq!(
        plain.backoff(BackoffPolicy::default()),
        BackoffPolicy::default()
    );
}

#[test]
fn a_poll_policy_out_of_bounds_is_refused_by_field() {
    for (poll, field) in [
        (
            r#"{"first_seconds":1,"factor":0.5,"max_seconds":60}"#,
            "poll.first_seconds",
        ),
        (
            r#"{"first_seconds":10,"factor":3,"max_seconds":60}"#,
            "poll.factor",
        ),
        (
            r#"{"first_seconds":10,"factor":0.5,"max_seconds":5}"#,
            "poll.max_seconds",
        ),
        (
            r#"{"first_seconds":10,"factor":0.5,"max_seconds":7200}"#,
            "poll.max_seconds",
        ),
        (r#"{"first_seconds":10,"factor":0.5}"#, "poll.max_seconds"),
        (
            r#"{"first_seconds":10,"factor":0.5,"max_seconds":60,"x":1}"#,
            "poll.x",
        ),
    ] {
        let e = with_poll(poll).unwrap_err();
        assert_eq!(e.field, field, "{poll}: {e}");
    }
}
