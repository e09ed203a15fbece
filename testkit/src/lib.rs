//! What the tests and benches of jammi-catalog and the `jammi` command share: a fresh
//! database per test on both backends ([`TestDb`], [`backend_tests!`]), the small
//! two-tenant catalog most tests read ([`fixture`]), bulk catalogs for scale tests and
//! benches ([`generate`]) and a replayable random generator ([`rng`]).
//!
//! Everything here goes through the library's public API, so a fixture cannot write a row
//! the catalog itself would not (the bulk generators use SQL `INSERT INTO jammi.public.…`).

mod db;
pub mod fixture;
pub mod generate;
pub mod rng;

pub use db::TestDb;
