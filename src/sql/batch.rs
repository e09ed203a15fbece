//! Database rows into Arrow record batches, one typed builder per projected column.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, RecordBatch, RecordBatchOptions, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;

use super::tables::{ColumnDef, ColumnKind};
use crate::error::{CatalogError, Result};
use crate::store::RowValues;

enum ColumnBuilder {
    Text(StringBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

/// Accumulates rows whose columns are the projected catalog columns, in order.
pub(crate) struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<(&'static str, ColumnBuilder)>,
    rows: usize,
}

impl BatchBuilder {
    /// A builder for `columns`, whose Arrow schema is `schema`.
    pub fn new(schema: SchemaRef, columns: &[&'static ColumnDef], batch_size: usize) -> Self {
        // Pre-allocate for a small batch; the builders grow by doubling past it (and
        // start from nothing after each `finish`). A full 8 192-row allocation made every
        // small answer ~190 KB in memory, and a hash join built on it judged its keys too
        // large to offer the probe side's scan as a list (SPEC §15).
        let capacity = batch_size.min(1024);
        let columns = columns
            .iter()
            .map(|c| {
                let builder = match c.kind {
                    ColumnKind::Text => {
                        ColumnBuilder::Text(StringBuilder::with_capacity(capacity, capacity * 16))
                    }
                    ColumnKind::Int32 => {
                        ColumnBuilder::Int32(Int32Builder::with_capacity(capacity))
                    }
                    ColumnKind::Int64 => {
                        ColumnBuilder::Int64(Int64Builder::with_capacity(capacity))
                    }
                    ColumnKind::Timestamp => ColumnBuilder::Timestamp(
                        TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
                    ),
                };
                (c.name, builder)
            })
            .collect();
        BatchBuilder {
            schema,
            columns,
            rows: 0,
        }
    }

    /// Rows appended since the last [`BatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Appends one row; its i-th value is the i-th projected column.
    pub fn append(&mut self, row: &impl RowValues) -> Result<()> {
        for (i, (name, builder)) in self.columns.iter_mut().enumerate() {
            let named = |e: CatalogError| match e {
                CatalogError::TypeConversion { detail, .. } => CatalogError::TypeConversion {
                    column: (*name).to_owned(),
                    detail,
                },
                other => other,
            };
            match builder {
                ColumnBuilder::Text(b) => b.append_option(row.str_at(i).map_err(named)?),
                ColumnBuilder::Int64(b) => b.append_option(row.int_at(i).map_err(named)?),
                ColumnBuilder::Timestamp(b) => b.append_option(row.int_at(i).map_err(named)?),
                ColumnBuilder::Int32(b) => {
                    let v = row.int_at(i).map_err(named)?;
                    let v = v.map(i32::try_from).transpose().map_err(|e| {
                        CatalogError::TypeConversion {
                            column: (*name).to_owned(),
                            detail: e.to_string(),
                        }
                    })?;
                    b.append_option(v)
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows so far as a batch; the builder starts over empty.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|(_, b)| -> ArrayRef {
                match b {
                    ColumnBuilder::Text(b) => Arc::new(b.finish()),
                    ColumnBuilder::Int32(b) => Arc::new(b.finish()),
                    ColumnBuilder::Int64(b) => Arc::new(b.finish()),
                    ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        // With no projected column (e.g. COUNT(*)) the batch carries only its row count.
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), arrays, &options).map_err(|e| {
            CatalogError::TypeConversion {
                column: "(batch)".into(),
                detail: e.to_string(),
            }
        })
    }
}
