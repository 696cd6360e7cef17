//! Integration tests for the ASL interpreter, one module per topic.

mod asl {
    pub mod support;

    mod callbacks;
    mod choice;
    mod definitions;
    mod infra_guard;
    mod io_processing;
    mod lambda_invoke;
    mod poll_loop;
    mod project_machine;
    mod retry_catch;
    mod timeouts;
}
