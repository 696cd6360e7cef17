//! What the test suites share instead of copying: [`moto`], the local AWS endpoint the AWS
//! adapter, Lambda and system tests run against (with SDK clients, unique resource names and
//! object helpers); [`memory`], the handlers' ports in memory, for the handlers' unit tests;
//! [`doubles`], ports that fail on purpose around real ones; [`template`], the deployed
//! template as plain CloudFormation; and [`stack`], that template created as a stack in moto. Dev-only: no library or function depends on it.

pub mod doubles;
pub mod memory;
pub mod moto;
pub mod stack;
pub mod template;

pub use moto::{bytes, exists, moto, own_moto, read, sha256, unique, Moto, OwnMoto};
