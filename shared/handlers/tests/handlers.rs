//! Unit tests of the handlers on in-memory ports (`runbridge_test_support::memory`) and the
//! vendor simulators: one module per handler module, sharing [`handlers::support`].

mod handlers {
    pub mod support;

    mod admit;
    mod finish;
    mod stopped;
    mod submission;
}
