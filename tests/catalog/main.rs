//! The Rust API of the catalog (SPEC §4), on both backends.

mod concurrency;
mod eval_runs_and_result_tables;
mod faults;
mod feed;
mod fuzz;
mod history;
mod migrations;
mod models;
mod tokens;
mod training_jobs;
mod validation;
mod webhooks;
