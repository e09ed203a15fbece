//! Printing results in the four formats of SPEC §8, with arrow's own writers.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// Prints a statement's result. A result without columns (DDL) prints nothing; in csv,
/// json and ndjson a result without rows prints nothing either.
pub fn print(format: Format, schema: &Schema, batches: &[RecordBatch]) -> Result<(), ArrowError> {
    if schema.fields().is_empty() {
        return Ok(());
    }
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table => {
            let table =
                pretty_format_batches_with_schema(std::sync::Arc::new(schema.clone()), batches)?;
            writeln!(out, "{table}")?;
        }
        _ if rows == 0 => {}
        Format::Csv => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
        }
        Format::Json => {
            let mut writer = datafusion::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            drop(writer);
            writeln!(out)?;
        }
        Format::Ndjson => {
            let mut writer = datafusion::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, datafusion::arrow::json::writer::LineDelimited>(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
    }
    out.flush()?;
    Ok(())
}

/// A message on one line: the error line of SPEC §8 must not wrap into several.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
