//! AMC's single-line SQL rule lives in `runbridge_core::request::sql`, where request validation
//! runs it too: what `validate` and the trigger accept is exactly what the client can send.

pub use runbridge_core::request::sql::normalize_sql;
