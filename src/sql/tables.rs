//! The four catalog tables as SQL sees them (SPEC §3, §6): names, columns, Arrow types,
//! and the storage expression behind each column. Defined once; the Arrow schema, the
//! scan's SELECT list and the filter translator all read from here, so no identifier in
//! generated SQL comes from anywhere but these constants.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The Arrow type family of a catalog column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// `Utf8` (text and JSON).
    Text,
    /// `Int32` (versions).
    Int32,
    /// `Int64` (counts).
    Int64,
    /// `Timestamp(Microsecond, "UTC")`, stored as BIGINT microseconds.
    Timestamp,
}

impl ColumnKind {
    fn data_type(self) -> DataType {
        match self {
            ColumnKind::Text => DataType::Utf8,
            ColumnKind::Int32 => DataType::Int32,
            ColumnKind::Int64 => DataType::Int64,
            ColumnKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

/// One column of a catalog table.
#[derive(Debug)]
pub(crate) struct ColumnDef {
    /// The name seen from SQL.
    pub name: &'static str,
    /// Its type family.
    pub kind: ColumnKind,
    /// Whether SQL may see NULL in it.
    pub nullable: bool,
    /// The storage expression that yields it.
    pub storage: &'static str,
}

/// One catalog table.
#[derive(Debug)]
pub(crate) struct TableDef {
    /// The table name in `jammi.public`.
    pub name: &'static str,
    /// The storage table.
    pub storage: &'static str,
    /// Columns in SQL order.
    pub columns: &'static [ColumnDef],
}

impl TableDef {
    /// The Arrow schema of the table.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.kind.data_type(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// The column named `name`, if the table has one.
    pub fn column(&self, name: &str) -> Option<&'static ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }
}

const fn col(name: &'static str, kind: ColumnKind, nullable: bool) -> ColumnDef {
    ColumnDef {
        name,
        kind,
        nullable,
        storage: name,
    }
}

/// Global rows store `owner = ''`; SQL shows them with a NULL `tenant_id`.
const TENANT_ID: ColumnDef = ColumnDef {
    name: "tenant_id",
    kind: ColumnKind::Text,
    nullable: true,
    storage: "NULLIF(owner, '')",
};

use ColumnKind::{Int32, Int64, Text, Timestamp};

/// `jammi.public.models`
pub(crate) static MODELS: TableDef = TableDef {
    name: "models",
    storage: "models",
    columns: &[
        col("model_id", Text, false),
        col("version", Int32, false),
        col("model_type", Text, false),
        col("task", Text, false),
        col("backend", Text, false),
        col("status", Text, false),
        col("base_model_id", Text, true),
        col("artifact_path", Text, true),
        col("config_json", Text, true),
        TENANT_ID,
        col("created_at", Timestamp, false),
        col("updated_at", Timestamp, false),
    ],
};

/// `jammi.public.training_jobs`
pub(crate) static TRAINING_JOBS: TableDef = TableDef {
    name: "training_jobs",
    storage: "training_jobs",
    columns: &[
        col("job_id", Text, false),
        col("base_model_id", Text, false),
        col("base_model_version", Int32, false),
        col("output_model_id", Text, false),
        col("output_version", Int32, true),
        col("training_source", Text, false),
        col("loss_type", Text, false),
        col("hyperparams", Text, false),
        col("status", Text, false),
        col("metrics", Text, true),
        col("error", Text, true),
        col("claimed_by", Text, true),
        col("lease_expires_at", Timestamp, true),
        col("attempts", Int64, false),
        TENANT_ID,
        col("created_at", Timestamp, false),
        col("updated_at", Timestamp, false),
    ],
};

/// `jammi.public.eval_runs`
pub(crate) static EVAL_RUNS: TableDef = TableDef {
    name: "eval_runs",
    storage: "eval_runs",
    columns: &[
        col("run_id", Text, false),
        col("model_id", Text, true),
        col("model_version", Int32, true),
        col("eval_type", Text, false),
        col("metrics", Text, false),
        TENANT_ID,
        col("created_at", Timestamp, false),
    ],
};

/// `jammi.public.result_tables`
pub(crate) static RESULT_TABLES: TableDef = TableDef {
    name: "result_tables",
    storage: "result_tables",
    columns: &[
        col("table_name", Text, false),
        col("source_id", Text, false),
        col("model_id", Text, false),
        col("task", Text, false),
        col("parquet_path", Text, false),
        col("row_count", Int64, true),
        col("status", Text, false),
        TENANT_ID,
        col("created_at", Timestamp, false),
    ],
};

/// Every catalog table, in the order `SHOW TABLES` lists them.
pub(crate) static ALL: [&TableDef; 4] = [&MODELS, &TRAINING_JOBS, &EVAL_RUNS, &RESULT_TABLES];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_storage_expression_is_a_plain_column_or_the_tenant_view() {
        for table in ALL {
            for c in table.columns {
                assert!(
                    c.storage == c.name || c.storage == "NULLIF(owner, '')",
                    "{}.{}",
                    table.name,
                    c.name
                );
            }
        }
    }
}
