//! The Rust API of the catalog (SPEC §4), on both backends.

#[path = "../common/mod.rs"]
mod common;

mod concurrency;
mod eval_runs_and_result_tables;
mod faults;
mod fuzz;
mod migrations;
mod models;
mod training_jobs;
mod validation;
