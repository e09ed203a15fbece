//! The catalog tables as SQL sees them (SPEC §3, §6): names, columns, Arrow types,
//! and the storage expression behind each column. Defined once; the Arrow schema, the
//! scan's SELECT list and the filter translator all read from here, so no identifier in
//! generated SQL comes from anywhere but these constants.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::access::Access;

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
    /// Whether it is an integer (of either width).
    pub fn is_integer(self) -> bool {
        matches!(self, ColumnKind::Int32 | ColumnKind::Int64)
    }

    /// Its Arrow type.
    pub fn data_type(self) -> DataType {
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
    /// The storage expression that yields it.
    pub storage: &'static str,
}

/// Which catalog table a definition describes (for the DML that differs per table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TableKind {
    Models,
    TrainingJobs,
    EvalRuns,
    ResultTables,
    ModelAliases,
    ModelTags,
    /// Read-only: `INSERT` and `DELETE` are refused.
    Events,
    /// Read-only from SQL ([`TableDef::managed_by`]).
    Webhooks,
    /// Read-only from SQL ([`TableDef::managed_by`]).
    WebhookDeliveries,
}

/// One catalog table.
#[derive(Debug)]
pub(crate) struct TableDef {
    /// Which table this is.
    pub kind: TableKind,
    /// The table name in `jammi.public`.
    pub name: &'static str,
    /// The storage table.
    pub storage: &'static str,
    /// Columns in SQL order.
    pub columns: &'static [ColumnDef],
    /// Columns only the catalog sets: an `INSERT` may leave them out or give NULL.
    pub catalog_set: &'static [&'static str],
    /// For a table SQL only reads: what writes its rows instead (`INSERT` and `DELETE` are
    /// refused, naming it).
    pub managed_by: Option<&'static str>,
}

impl TableDef {
    /// The access level an `INSERT INTO` this table needs (SPEC §14), and the statement as
    /// a refusal names it.
    pub fn insert_needs(&self) -> (Access, String) {
        (
            Access::Write,
            format!("INSERT INTO jammi.public.{}", self.name),
        )
    }

    /// The access level a `DELETE FROM` this table needs (SPEC §14), and the statement as
    /// a refusal names it.
    pub fn delete_needs(&self) -> (Access, String) {
        (
            Access::to_delete_from(self.storage),
            format!("DELETE FROM jammi.public.{}", self.name),
        )
    }

    /// The Arrow schema of the table.
    ///
    /// Every field is declared nullable, though storage never returns NULL for a NOT NULL
    /// column: an `INSERT` may pass NULL for what the
    /// catalog fills in (versions, ids, status, timestamps), and NULL where a value is
    /// required must reach the catalog's validation, which names the row and the field,
    /// rather than fail in Arrow with a column number.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.kind.data_type(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The column named `name`, if the table has one.
    pub fn column(&self, name: &str) -> Option<&'static ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The columns a scan reads: its projection, or all `width` of them.
pub(crate) fn projected(projection: Option<&Vec<usize>>, width: usize) -> Vec<usize> {
    projection.cloned().unwrap_or_else(|| (0..width).collect())
}

const fn col(name: &'static str, kind: ColumnKind) -> ColumnDef {
    ColumnDef {
        name,
        kind,
        storage: name,
    }
}

/// Global rows store `owner = ''`; SQL shows them with a NULL `tenant_id`.
const TENANT_ID: ColumnDef = ColumnDef {
    name: "tenant_id",
    kind: ColumnKind::Text,
    storage: "NULLIF(owner, '')",
};

use ColumnKind::{Int32, Int64, Text, Timestamp};

/// `jammi.public.models`
pub(crate) static MODELS: TableDef = TableDef {
    kind: TableKind::Models,
    managed_by: None,
    catalog_set: &["tenant_id", "status", "created_at", "updated_at"],
    name: "models",
    storage: "models",
    columns: &[
        col("model_id", Text),
        col("version", Int32),
        col("model_type", Text),
        col("task", Text),
        col("backend", Text),
        col("status", Text),
        col("base_model_id", Text),
        col("artifact_path", Text),
        col("config_json", Text),
        TENANT_ID,
        col("created_at", Timestamp),
        col("updated_at", Timestamp),
    ],
};

/// `jammi.public.training_jobs`
pub(crate) static TRAINING_JOBS: TableDef = TableDef {
    kind: TableKind::TrainingJobs,
    managed_by: None,
    catalog_set: &[
        "status",
        "metrics",
        "error",
        "claimed_by",
        "lease_expires_at",
        "attempts",
        "tenant_id",
        "created_at",
        "updated_at",
    ],
    name: "training_jobs",
    storage: "training_jobs",
    columns: &[
        col("job_id", Text),
        col("base_model_id", Text),
        col("base_model_version", Int32),
        col("output_model_id", Text),
        col("output_version", Int32),
        col("training_source", Text),
        col("loss_type", Text),
        col("hyperparams", Text),
        col("status", Text),
        col("metrics", Text),
        col("error", Text),
        col("claimed_by", Text),
        col("lease_expires_at", Timestamp),
        col("attempts", Int64),
        TENANT_ID,
        col("created_at", Timestamp),
        col("updated_at", Timestamp),
    ],
};

/// `jammi.public.eval_runs`
pub(crate) static EVAL_RUNS: TableDef = TableDef {
    kind: TableKind::EvalRuns,
    managed_by: None,
    catalog_set: &["tenant_id", "created_at"],
    name: "eval_runs",
    storage: "eval_runs",
    columns: &[
        col("run_id", Text),
        col("model_id", Text),
        col("model_version", Int32),
        col("eval_type", Text),
        col("metrics", Text),
        TENANT_ID,
        col("created_at", Timestamp),
    ],
};

/// `jammi.public.result_tables`
pub(crate) static RESULT_TABLES: TableDef = TableDef {
    kind: TableKind::ResultTables,
    managed_by: None,
    catalog_set: &["tenant_id", "created_at"],
    name: "result_tables",
    storage: "result_tables",
    columns: &[
        col("table_name", Text),
        col("source_id", Text),
        col("model_id", Text),
        col("task", Text),
        col("parquet_path", Text),
        col("row_count", Int64),
        col("status", Text),
        TENANT_ID,
        col("created_at", Timestamp),
    ],
};

/// `jammi.public.model_aliases` (SPEC §13)
pub(crate) static MODEL_ALIASES: TableDef = TableDef {
    kind: TableKind::ModelAliases,
    managed_by: None,
    catalog_set: &["tenant_id", "created_at", "updated_at"],
    name: "model_aliases",
    storage: "model_aliases",
    columns: &[
        col("model_id", Text),
        col("alias", Text),
        col("version", Int32),
        TENANT_ID,
        col("created_at", Timestamp),
        col("updated_at", Timestamp),
    ],
};

/// `jammi.public.model_tags` (SPEC §13)
pub(crate) static MODEL_TAGS: TableDef = TableDef {
    kind: TableKind::ModelTags,
    managed_by: None,
    catalog_set: &["tenant_id", "created_at", "updated_at"],
    name: "model_tags",
    storage: "model_tags",
    columns: &[
        col("model_id", Text),
        col("version", Int32),
        col("key", Text),
        col("value", Text),
        TENANT_ID,
        col("created_at", Timestamp),
        col("updated_at", Timestamp),
    ],
};

/// `jammi.public.events` (SPEC §13): read-only.
pub(crate) static EVENTS: TableDef = TableDef {
    kind: TableKind::Events,
    managed_by: None,
    catalog_set: &[],
    name: "events",
    storage: "events",
    columns: &[
        col("event_id", Int64),
        col("event_time", Timestamp),
        TENANT_ID,
        col("kind", Text),
        col("entity", Text),
        col("row_key", Text),
        col("model_id", Text),
        col("version", Int32),
        col("state", Text),
    ],
};

/// `jammi.public.webhooks` (SPEC §16): every column but the secret.
pub(crate) static WEBHOOKS: TableDef = TableDef {
    kind: TableKind::Webhooks,
    managed_by: Some(
        "webhooks are created, paused, resumed and deleted with `jammi webhook` (or the Rust \
         API), which keeps their secrets out of SQL",
    ),
    catalog_set: &[],
    name: "webhooks",
    storage: "webhooks",
    columns: &[
        col("webhook_id", Text),
        col("url", Text),
        col("event_kinds", Text),
        col("model_pattern", Text),
        col("state", Text),
        col("paused_reason", Text),
        col("last_event_id", Int64),
        col("failures", Int64),
        col("claimed_by", Text),
        col("lease_expires_at", Timestamp),
        TENANT_ID,
        col("created_at", Timestamp),
        col("updated_at", Timestamp),
    ],
};

/// `jammi.public.webhook_deliveries` (SPEC §16): one row per attempt.
pub(crate) static WEBHOOK_DELIVERIES: TableDef = TableDef {
    kind: TableKind::WebhookDeliveries,
    managed_by: Some("the server delivering a webhook records each attempt"),
    catalog_set: &[],
    name: "webhook_deliveries",
    storage: "webhook_deliveries",
    columns: &[
        col("delivery_id", Text),
        col("webhook_id", Text),
        col("event_id", Int64),
        col("attempt", Int64),
        col("status_code", Int64),
        col("error", Text),
        col("duration_us", Int64),
        TENANT_ID,
        col("attempted_at", Timestamp),
    ],
};

/// Every catalog table, in the order `SHOW TABLES` lists them.
pub(crate) static ALL: [&TableDef; 9] = [
    &MODELS,
    &TRAINING_JOBS,
    &EVAL_RUNS,
    &RESULT_TABLES,
    &MODEL_ALIASES,
    &MODEL_TAGS,
    &EVENTS,
    &WEBHOOKS,
    &WEBHOOK_DELIVERIES,
];

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
