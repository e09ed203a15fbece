//! The event log (SPEC §13): every change the catalog makes appends one event in the
//! change's own transaction, so a rolled-back or retried attempt leaves no event of its
//! own, and the log replays to the live tables.
//!
//! An event records the row's full new state as JSON (NULL once the row is removed), the
//! owner of the row, the row's identity in its table (`row_key`), and the model it is
//! about. Ids increase in the order events are appended; two changes of one row are always
//! appended in the order they were made (the event follows the row write, which holds the
//! row's lock until commit). On Postgres a later commit can still hold a smaller id than an
//! event already visible, for changes of different rows, and ids have gaps where a
//! transaction rolled back.
//!
//! Nothing deletes or changes an event: the only statement on the table is the append.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Catalog;
use super::rows::{self, status_enum};
use crate::clock::now_micros;
use crate::error::{CatalogError, Result};
use crate::store::{Backend, DbRow, OwnedWrite, OwnerParam, Tx, Value, args};
use crate::tenant::{Scope, owner_of};

status_enum! {
    /// What an event records.
    EventKind {
        /// A model version was created.
        ModelRegistered => "model_registered",
        /// An existing model version was registered again, or its artifact path written.
        ModelUpdated => "model_updated",
        /// A model version was deleted.
        ModelDeleted => "model_deleted",
        /// An alias was created or moved.
        AliasSet => "alias_set",
        /// An alias was removed.
        AliasRemoved => "alias_removed",
        /// A tag was set (created or given a new value).
        TagSet => "tag_set",
        /// A tag was removed (or went with its model version).
        TagRemoved => "tag_removed",
        /// A training job was queued.
        TrainingJobCreated => "training_job_created",
        /// A worker claimed a training job.
        TrainingJobClaimed => "training_job_claimed",
        /// A worker extended its lease.
        TrainingJobHeartbeat => "training_job_heartbeat",
        /// A training job completed.
        TrainingJobCompleted => "training_job_completed",
        /// A training job failed (by its worker, or out of attempts at a reclaim).
        TrainingJobFailed => "training_job_failed",
        /// An expired lease was reclaimed and the job queued again.
        TrainingJobRequeued => "training_job_requeued",
        /// A training job was deleted.
        TrainingJobDeleted => "training_job_deleted",
        /// An eval run was recorded.
        EvalRunCreated => "eval_run_created",
        /// An eval run was deleted.
        EvalRunDeleted => "eval_run_deleted",
        /// A result table was created.
        ResultTableCreated => "result_table_created",
        /// A result table's status changed.
        ResultTableStatusSet => "result_table_status_set",
        /// A result table was deleted.
        ResultTableDeleted => "result_table_deleted",
    }
}

impl EventKind {
    /// The catalog table whose row the event changes (as named in `jammi.public`).
    pub fn entity(self) -> &'static str {
        use EventKind::*;
        match self {
            ModelRegistered | ModelUpdated | ModelDeleted => "models",
            AliasSet | AliasRemoved => "model_aliases",
            TagSet | TagRemoved => "model_tags",
            TrainingJobCreated | TrainingJobClaimed | TrainingJobHeartbeat
            | TrainingJobCompleted | TrainingJobFailed | TrainingJobRequeued
            | TrainingJobDeleted => "training_jobs",
            EvalRunCreated | EvalRunDeleted => "eval_runs",
            ResultTableCreated | ResultTableStatusSet | ResultTableDeleted => "result_tables",
        }
    }
}

/// One event, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Increasing in the order events were appended (not gap-free).
    pub event_id: i64,
    /// When the change was made (µs since the epoch, UTC).
    pub event_time: i64,
    /// The owner of the changed row; `None` for a global row.
    pub tenant_id: Scope,
    /// What changed.
    pub kind: EventKind,
    /// The table of the changed row (`models`, `model_aliases`, …).
    pub entity: String,
    /// The changed row's identity within its table and owner: `name::version` for a
    /// model, `name::alias` for an alias, `name::version::key` for a tag, the id of a job
    /// or run, the name of a result table.
    pub row_key: String,
    /// The model the change is about, where there is one.
    pub model_id: Option<String>,
    /// That model's version, where there is one.
    pub version: Option<i32>,
    /// The row's full new state as JSON (the columns of its SQL table); `None` when the
    /// row was removed.
    pub state: Option<String>,
}

impl Event {
    /// The event as one JSON object, as `jammi events` prints it and a webhook receives it:
    /// its fields by name, `tenant_id` null for a global row, and `state` the row's state
    /// as a nested object (null once the row was removed).
    pub fn to_json(&self) -> serde_json::Value {
        let state = self.state.as_deref().map(|text| {
            serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::from(text))
        });
        serde_json::json!({
            "event_id": self.event_id,
            "event_time": self.event_time,
            "tenant_id": self.tenant_id.map(|t| t.to_string()),
            "kind": self.kind.as_str(),
            "entity": self.entity,
            "row_key": self.row_key,
            "model_id": self.model_id,
            "version": self.version,
            "state": state,
        })
    }
}

/// A row whose changes are recorded: its state is its serde form.
pub(crate) trait Recorded: Serialize {
    /// The row's identity within its table and owner (see [`Event::row_key`]).
    fn row_key(&self) -> String;
    /// The model the row is about, and its version, where there is one.
    fn model_ref(&self) -> (Option<&str>, Option<i32>);
}

/// One change, to be appended by [`record`].
pub(crate) struct Change {
    kind: EventKind,
    row_key: String,
    model_id: Option<String>,
    version: Option<i32>,
    state: Option<String>,
}

impl Change {
    /// `row` was written with this new state.
    pub fn written<T: Recorded>(kind: EventKind, row: &T) -> Result<Change> {
        let state = serde_json::to_string(row).map_err(|e| CatalogError::TypeConversion {
            column: "state".into(),
            detail: e.to_string(),
        })?;
        Ok(Change {
            state: Some(state),
            ..Change::removed(kind, row)
        })
    }

    /// Each of `rows`, read by `from_row`, was removed (a write's `RETURNING`).
    pub fn removed_rows<T: Recorded>(
        kind: EventKind,
        rows: &[DbRow],
        from_row: fn(&DbRow) -> Result<T>,
    ) -> Result<Vec<Change>> {
        rows.iter()
            .map(|row| Ok(Change::removed(kind, &from_row(row)?)))
            .collect()
    }

    /// `row` (its last state) was removed.
    pub fn removed<T: Recorded>(kind: EventKind, row: &T) -> Change {
        let (model_id, version) = row.model_ref();
        Change {
            kind,
            row_key: row.row_key(),
            model_id: model_id.map(str::to_owned),
            version,
            state: None,
        }
    }
}

macro_rules! append_head {
    () => {
        "INSERT INTO events (owner, event_time, kind, entity, row_key, model_id, version, state) \
         VALUES "
    };
}

const APPEND_ONE: OwnedWrite =
    OwnedWrite::new(concat!(append_head!(), "($1, $2, $3, $4, $5, $6, $7, $8)"));

/// Events per multi-row append: 3 500 parameters, under both backends' limits.
const APPEND_CHUNK: usize = 500;

/// Appends one event per change, stamped with the transaction's owner and the current
/// time, in as few statements as the backends allow (one for up to [`APPEND_CHUNK`]).
pub(crate) async fn record(tx: &mut Tx, changes: &[Change]) -> Result<()> {
    let now = now_micros();
    let values = |c: &Change| -> [Value; 7] {
        args![
            now,
            c.kind.as_str(),
            c.kind.entity(),
            c.row_key.as_str(),
            c.model_id.as_deref(),
            c.version,
            c.state.as_deref(),
        ]
    };
    if let [change] = changes {
        tx.write(&APPEND_ONE, &values(change)).await?;
        return Ok(());
    }
    for chunk in changes.chunks(APPEND_CHUNK) {
        let args: Vec<Value> = chunk.iter().flat_map(values).collect();
        // As in `models::upsert_chunk`: `$1` shared on Postgres, `?` row heads on SQLite.
        let (owner, rows) = match tx.backend() {
            Backend::Sqlite => (
                OwnerParam::RowHead,
                vec!["(?, ?, ?, ?, ?, ?, ?, ?)".to_owned(); chunk.len()],
            ),
            Backend::Postgres => (
                OwnerParam::Numbered,
                (0..chunk.len())
                    .map(|r| {
                        let p: Vec<String> =
                            (0..7).map(|k| format!("${}", 2 + r * 7 + k)).collect();
                        format!("($1, {})", p.join(", "))
                    })
                    .collect(),
            ),
        };
        // Built from the catalog's own text and placeholders only.
        let sql = [append_head!(), &rows.join(", ")].concat();
        tx.write_built(sql, owner, &args).await?;
    }
    Ok(())
}

macro_rules! event_columns {
    () => {
        "event_id, owner, event_time, kind, entity, row_key, model_id, version, state"
    };
}

const LIST_VISIBLE: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE owner IN ($1, '') ORDER BY event_id"
);

/// The states of one table's rows, in event order, up to an instant.
const STATES_UNTIL: &str = "SELECT owner, row_key, state FROM events \
     WHERE owner IN ($1, '') AND entity = $2 AND event_time <= $3 ORDER BY event_id";

pub(super) fn event_from_row(row: &DbRow) -> Result<Event> {
    Ok(Event {
        event_id: row.int("event_id")?,
        event_time: row.int("event_time")?,
        tenant_id: rows::owner(row)?,
        kind: rows::parsed(row, "kind")?,
        entity: row.text("entity")?,
        row_key: row.text("row_key")?,
        model_id: row.opt_text("model_id")?,
        version: row.opt_int32("version")?,
        state: row.opt_text("state")?,
    })
}

impl Catalog {
    /// Every visible event (the caller's own and global ones), oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_events(&self) -> Result<Vec<Event>> {
        self.list_visible(LIST_VISIBLE, event_from_row).await
    }

    /// The visible rows of `entity` as they were at `at` (µs since the epoch, UTC),
    /// replayed from the event log: for each row, the state of its last event recorded
    /// at or before `at`, unless that event removed it.
    pub(crate) async fn replay_until<T: DeserializeOwned>(
        &self,
        entity: &'static str,
        at: i64,
    ) -> Result<Vec<T>> {
        let events = self
            .store()
            .fetch_all(STATES_UNTIL, &args![owner_of(self.scope()), entity, at])
            .await?;
        let mut rows: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
        for event in &events {
            rows.insert(
                (event.text("owner")?, event.text("row_key")?),
                event.opt_text("state")?,
            );
        }
        rows.into_values()
            .flatten()
            .map(|state| {
                serde_json::from_str(&state).map_err(|e| CatalogError::TypeConversion {
                    column: format!("{entity} event state"),
                    detail: e.to_string(),
                })
            })
            .collect()
    }
}
