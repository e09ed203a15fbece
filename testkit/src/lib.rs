//! What the tests and benches of jammi-catalog and the `jammi` command share: a fresh
//! database per test on both backends ([`TestDb`], [`backend_tests!`]), the small
//! two-tenant catalog most tests read ([`fixture`]), bulk catalogs for scale tests and
//! benches ([`generate`]), a replayable random generator ([`rng`]), the plumbing of the
//! pytest suites ([`python`]) and a webhook receiver ([`receiver`]).
//!
//! Everything here goes through the library's public API, so a fixture cannot write a row
//! the catalog itself would not (the bulk generators use SQL `INSERT INTO jammi.public.…`).

mod db;
pub mod fixture;
pub mod generate;
pub mod python;
pub mod receiver;
pub mod rng;

pub use db::TestDb;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// Every cell of `batches` as text (`NULL` for nulls), row by row: results compared as
/// a person reads them.
pub fn cells(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("a displayable column"))
            .collect();
        out.extend((0..batch.num_rows()).map(|row| {
            formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect()
        }));
    }
    out
}
