//! The SQL-level behaviour of the catalog as sqllogictest files.
//!
//! Every file under `tests/slt/<scope>/` runs in a session bound to `<scope>` —
//! `tenant_a`, `tenant_b` (the fixture's two tenants) or `unscoped` — on a fresh catalog
//! holding the fixture rows of `testkit/src/fixture.rs`: on SQLite, and on Postgres when
//! `JAMMI_TEST_PG_URL` is set. New cases are plain text; see the existing files.
//!
//! Run one file: `cargo test --test slt -- models` (a substring of the path).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::{Catalog, Scope, register_catalog};
use sqllogictest::{DBOutput, DefaultColumnType};

use jammi_testkit::TestDb;
use jammi_testkit::fixture::{populate, tenant_a, tenant_b};

/// One DataFusion session, as sqllogictest sees a database connection.
struct Session {
    ctx: SessionContext,
}

impl Session {
    fn new(catalog: &Catalog) -> Self {
        let ctx =
            SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
        register_catalog(&ctx, catalog);
        Session { ctx }
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for Session {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let df = self.ctx.sql(sql).await?;
        let is_statement = matches!(
            df.logical_plan(),
            LogicalPlan::Dml(_)
                | LogicalPlan::Ddl(_)
                | LogicalPlan::Statement(_)
                | LogicalPlan::Copy(_)
        );
        let types = df
            .schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                t if t.is_integer() => DefaultColumnType::Integer,
                t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => {
                    DefaultColumnType::FloatingPoint
                }
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    DefaultColumnType::Text
                }
                _ => DefaultColumnType::Any,
            })
            .collect();
        let batches = df.collect().await?;
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| match f.value(row).to_string().trim_end() {
                            "" => "(empty)".to_owned(),
                            s => s.to_owned(),
                        })
                        .collect(),
                );
            }
        }
        if is_statement {
            let count = rows
                .first()
                .and_then(|r: &Vec<String>| r.first()?.parse().ok())
                .unwrap_or(0);
            return Ok(DBOutput::StatementComplete(count));
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "jammi"
    }
}

fn scope_of(file: &Path) -> Scope {
    match file
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
    {
        Some("tenant_a") => Some(tenant_a()),
        Some("tenant_b") => Some(tenant_b()),
        Some("unscoped") => None,
        other => panic!(
            "{}: put .slt files under tenant_a/, tenant_b/ or unscoped/, not {other:?}",
            file.display()
        ),
    }
}

fn slt_files(filter: Option<&str>) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).expect("tests/slt") {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "slt")
                && filter.is_none_or(|f| file.to_string_lossy().contains(f))
            {
                files.push(file);
            }
        }
    }
    files.sort();
    files
}

async fn run_file(db: TestDb, file: &Path) -> Result<(), String> {
    populate(&db.catalog).await;
    let catalog = db.catalog.with_scope(scope_of(file));
    let mut runner = sqllogictest::Runner::new(|| {
        let catalog = catalog.clone();
        async move { Ok::<_, DataFusionError>(Session::new(&catalog)) }
    });
    let outcome = runner
        .run_file_async(file)
        .await
        .map_err(|e| e.display(true).to_string());
    db.cleanup().await;
    outcome
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    // `cargo test` passes libtest flags; the first free argument, if any, filters files.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let files = slt_files(filter.as_deref());
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let name = file
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(file)
            .display()
            .to_string();
        let mut lanes = vec![("sqlite", Some(TestDb::sqlite().await))];
        lanes.push(("postgres", TestDb::postgres().await));
        for (backend, db) in lanes {
            let Some(db) = db else { continue };
            match run_file(db, file).await {
                Ok(()) => {
                    passed += 1;
                    println!("test {name} [{backend}] ... ok");
                }
                Err(e) => {
                    failed += 1;
                    println!("test {name} [{backend}] ... FAILED\n{e}");
                }
            }
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
