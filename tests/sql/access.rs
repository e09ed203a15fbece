//! Access levels (SPEC §14): every write path of the library, at every level, either runs
//! or is refused with nothing written; the table of outcomes is asserted as a whole.
//!
//! A path is one way to write: a Rust API call, a catalog function, an `INSERT` or a
//! `DELETE` on a writable table. Each (path, level) runs on a tenant of its own, seeded so
//! that the path succeeds at full access; the tenant's whole catalog (every table, the event
//! log included) is read before and after, and must not change when the path is refused.

use std::time::Duration;

use datafusion::error::DataFusionError;
use futures::FutureExt;
use futures::future::BoxFuture;
use jammi_catalog::{
    Access, Catalog, CatalogError, ModelTask, NewEvalRun, NewResultTable, NewTrainingJob,
    RegisterModel, ResultTableStatus, TenantId,
};
use jammi_testkit::{TestDb, backend_tests};

use super::{rows, session};

/// A path's failure: the catalog's error from the Rust API, DataFusion's from SQL.
enum Failure {
    Catalog(CatalogError),
    Sql(DataFusionError),
}

impl From<CatalogError> for Failure {
    fn from(e: CatalogError) -> Self {
        Failure::Catalog(e)
    }
}

impl From<DataFusionError> for Failure {
    fn from(e: DataFusionError) -> Self {
        Failure::Sql(e)
    }
}

impl Failure {
    /// The access refusal inside, if that is what it is.
    fn permission_denied(&self) -> Option<&CatalogError> {
        let mut current: &(dyn std::error::Error + 'static) = match self {
            Failure::Catalog(e) => e,
            Failure::Sql(e) => e,
        };
        loop {
            if let Some(e @ CatalogError::PermissionDenied { .. }) =
                current.downcast_ref::<CatalogError>()
            {
                return Some(e);
            }
            current = current.source()?;
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Catalog(e) => e.to_string(),
            Failure::Sql(e) => e.to_string(),
        }
    }
}

type Outcome = Result<(), Failure>;
type Path = fn(Catalog) -> BoxFuture<'static, Outcome>;

/// Runs `sql` in a session of `catalog` to its end.
async fn sql(catalog: Catalog, statement: &str) -> Outcome {
    let ctx = session(&catalog);
    ctx.sql(statement).await?.collect().await?;
    Ok(())
}

const HOUR: Duration = Duration::from_secs(3600);

/// Every write path, with the level the spec says it needs.
fn paths() -> Vec<(&'static str, Path)> {
    macro_rules! path {
        ($name:literal, |$c:ident| $body:expr) => {
            ($name, |$c: Catalog| {
                async move { $body }.boxed() as BoxFuture<'static, Outcome>
            })
        };
    }
    vec![
        path!("api register_model", |c| {
            c.register_model(RegisterModel::new(
                "n",
                "embedding",
                "candle",
                ModelTask::Ner,
            ))
            .await?;
            Ok(())
        }),
        path!("api set_model_alias", |c| {
            c.set_model_alias("m", "prod", 1).await?;
            Ok(())
        }),
        path!("api remove_model_alias", |c| {
            assert!(c.remove_model_alias("m", "champion").await?);
            Ok(())
        }),
        path!("api set_model_tag", |c| {
            c.set_model_tag("m", 1, "k", "v").await?;
            Ok(())
        }),
        path!("api remove_model_tag", |c| {
            assert!(c.remove_model_tag("m", 1, "stage").await?);
            Ok(())
        }),
        path!("api create_training_job", |c| {
            c.create_training_job(NewTrainingJob::new("base", "out", "s3://d", "mse", "{}"))
                .await?;
            Ok(())
        }),
        path!("api claim_next_training_job", |c| {
            assert!(c.claim_next_training_job("w2", HOUR).await?.is_some());
            Ok(())
        }),
        path!("api heartbeat_training_job", |c| {
            assert!(c.heartbeat_training_job("j-running", "w", HOUR).await?);
            Ok(())
        }),
        path!("api fail_training_job", |c| {
            assert!(c.fail_training_job("j-running", "w", "oom").await?);
            Ok(())
        }),
        path!("api finalize_training_job", |c| {
            let done = c
                .finalize_training_job("j-running", "w", "out", 1, "/weights/out", None)
                .await?;
            assert!(done);
            Ok(())
        }),
        path!("api reclaim_expired_training_jobs", |c| {
            c.reclaim_expired_training_jobs(3).await?;
            Ok(())
        }),
        path!("api create_eval_run", |c| {
            c.create_eval_run(NewEvalRun::new("base", "mteb", "{}"))
                .await?;
            Ok(())
        }),
        path!("api create_result_table", |c| {
            c.create_result_table(result_table("rt2")).await?;
            Ok(())
        }),
        path!("api set_result_table_status", |c| {
            c.set_result_table_status("rt", ResultTableStatus::Failed, None)
                .await?;
            Ok(())
        }),
        path!("api delete_model", |c| {
            assert!(c.delete_model("m", Some(2), false).await?);
            Ok(())
        }),
        path!("api delete_eval_run", |c| {
            c.delete_eval_run("run").await?;
            Ok(())
        }),
        path!("api delete_result_table", |c| {
            c.delete_result_table("rt").await?;
            Ok(())
        }),
        path!("api delete_training_job", |c| {
            c.delete_training_job("j-queued").await?;
            Ok(())
        }),
        path!("sql register_model()", |c| {
            sql(
                c,
                "SELECT register_model('n', NULL, 'embedding', 'candle', 'ner')",
            )
            .await
        }),
        path!("sql set_model_alias()", |c| {
            sql(c, "SELECT set_model_alias('m', 'prod', 1)").await
        }),
        path!("sql set_model_tag()", |c| {
            sql(c, "SELECT set_model_tag('m', 1, 'k', 'v')").await
        }),
        path!("sql delete_model()", |c| {
            sql(c, "SELECT delete_model('m', 2)").await
        }),
        path!("sql INSERT models", |c| {
            sql(
                c,
                "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task) \
                 VALUES ('n', 1, 'embedding', 'candle', 'ner')",
            )
            .await
        }),
        path!("sql INSERT training_jobs", |c| {
            sql(
                c,
                "INSERT INTO jammi.public.training_jobs (job_id, base_model_id, \
                 output_model_id, training_source, loss_type) \
                 VALUES ('j2', 'base', 'out', 's3://d', 'mse')",
            )
            .await
        }),
        path!("sql INSERT eval_runs", |c| {
            sql(
                c,
                "INSERT INTO jammi.public.eval_runs (run_id, model_id, eval_type, metrics) \
                 VALUES ('r2', 'base', 'mteb', '{}')",
            )
            .await
        }),
        path!("sql INSERT result_tables", |c| {
            sql(
                c,
                "INSERT INTO jammi.public.result_tables (table_name, source_id, model_id, \
                 task, parquet_path) VALUES ('rt2', 'src', 'base', 'ner', '/p')",
            )
            .await
        }),
        path!("sql INSERT model_aliases", |c| {
            sql(
                c,
                "INSERT INTO jammi.public.model_aliases (model_id, alias, version) \
                 VALUES ('m', 'prod', 1)",
            )
            .await
        }),
        path!("sql INSERT model_tags", |c| {
            sql(
                c,
                "INSERT INTO jammi.public.model_tags (model_id, version, key, value) \
                 VALUES ('m', 1, 'k', 'v')",
            )
            .await
        }),
        path!("sql DELETE models", |c| {
            sql(
                c,
                "DELETE FROM jammi.public.models WHERE model_id = 'm' AND version = 2",
            )
            .await
        }),
        path!("sql DELETE training_jobs", |c| {
            sql(
                c,
                "DELETE FROM jammi.public.training_jobs WHERE job_id = 'j-queued'",
            )
            .await
        }),
        path!("sql DELETE eval_runs", |c| {
            sql(c, "DELETE FROM jammi.public.eval_runs WHERE run_id = 'run'").await
        }),
        path!("sql DELETE result_tables", |c| {
            sql(
                c,
                "DELETE FROM jammi.public.result_tables WHERE table_name = 'rt'",
            )
            .await
        }),
        path!("sql DELETE model_aliases", |c| {
            sql(
                c,
                "DELETE FROM jammi.public.model_aliases WHERE alias = 'champion'",
            )
            .await
        }),
        path!("sql DELETE model_tags", |c| {
            sql(c, "DELETE FROM jammi.public.model_tags WHERE key = 'stage'").await
        }),
    ]
}

/// The outcome of every path at every level (`ok`, or `denied`: refused, nothing written).
const EXPECTED: &str = "\
api register_model               | denied | ok     | ok
api set_model_alias              | denied | ok     | ok
api remove_model_alias           | denied | ok     | ok
api set_model_tag                | denied | ok     | ok
api remove_model_tag             | denied | ok     | ok
api create_training_job          | denied | ok     | ok
api claim_next_training_job      | denied | ok     | ok
api heartbeat_training_job       | denied | ok     | ok
api fail_training_job            | denied | ok     | ok
api finalize_training_job        | denied | ok     | ok
api reclaim_expired_training_jobs | denied | ok     | ok
api create_eval_run              | denied | ok     | ok
api create_result_table          | denied | ok     | ok
api set_result_table_status      | denied | ok     | ok
api delete_model                 | denied | denied | ok
api delete_eval_run              | denied | denied | ok
api delete_result_table          | denied | denied | ok
api delete_training_job          | denied | denied | ok
sql register_model()             | denied | ok     | ok
sql set_model_alias()            | denied | ok     | ok
sql set_model_tag()              | denied | ok     | ok
sql delete_model()               | denied | denied | ok
sql INSERT models                | denied | ok     | ok
sql INSERT training_jobs         | denied | ok     | ok
sql INSERT eval_runs             | denied | ok     | ok
sql INSERT result_tables         | denied | ok     | ok
sql INSERT model_aliases         | denied | ok     | ok
sql INSERT model_tags            | denied | ok     | ok
sql DELETE models                | denied | denied | ok
sql DELETE training_jobs         | denied | denied | ok
sql DELETE eval_runs             | denied | denied | ok
sql DELETE result_tables         | denied | denied | ok
sql DELETE model_aliases         | denied | ok     | ok
sql DELETE model_tags            | denied | ok     | ok
";

fn result_table(name: &str) -> NewResultTable {
    NewResultTable {
        table_name: name.into(),
        source_id: "src".into(),
        model_id: "base".into(),
        task: ModelTask::Ner,
        parquet_path: "/p".into(),
        row_count: Some(1),
        status: ResultTableStatus::Ready,
    }
}

/// A tenant's catalog on which every path succeeds at full access: models `m` v1 (aliased
/// `champion`, tagged `stage`) and v2 (unreferenced), `base` and `out`; a running job
/// held by worker `w`, a queued job, an eval run and a result table.
async fn seed(admin: &Catalog) {
    for (name, version) in [("m", 1), ("m", 2), ("base", 1), ("out", 1)] {
        admin
            .register_model(
                RegisterModel::new(name, "embedding", "candle", ModelTask::Ner).version(version),
            )
            .await
            .unwrap();
    }
    admin.set_model_alias("m", "champion", 1).await.unwrap();
    admin.set_model_tag("m", 1, "stage", "dev").await.unwrap();
    let mut running = NewTrainingJob::new("base", "out", "s3://d", "mse", "{}");
    running.job_id = Some("j-running".into());
    admin.create_training_job(running).await.unwrap();
    admin
        .claim_next_training_job("w", HOUR)
        .await
        .unwrap()
        .unwrap();
    let mut queued = NewTrainingJob::new("base", "out", "s3://d", "mse", "{}");
    queued.job_id = Some("j-queued".into());
    admin.create_training_job(queued).await.unwrap();
    let mut run = NewEvalRun::new("base", "mteb", "{}");
    run.run_id = Some("run".into());
    admin.create_eval_run(run).await.unwrap();
    admin.create_result_table(result_table("rt")).await.unwrap();
}

/// Everything the tenant of `admin` can see, every table and the event log, as text.
async fn everything(admin: &Catalog) -> Vec<Vec<String>> {
    let ctx = session(admin);
    let mut all = Vec::new();
    for table in [
        "models",
        "model_aliases",
        "model_tags",
        "training_jobs",
        "eval_runs",
        "result_tables",
        "events",
        "webhooks",
        "webhook_deliveries",
    ] {
        let mut table_rows = rows(&ctx, &format!("SELECT * FROM jammi.public.{table}")).await;
        table_rows.sort();
        all.push(vec![format!("{table}: {} rows", table_rows.len())]);
        all.extend(table_rows);
    }
    all
}

async fn every_write_path_runs_or_is_refused_by_level(db: &TestDb) {
    let mut table = String::new();
    for (name, path) in paths() {
        let mut line = format!("{name:<32} |");
        for (i, level) in Access::ALL.into_iter().enumerate() {
            let admin = db.scoped(TenantId::random());
            seed(&admin).await;
            let before = everything(&admin).await;
            let outcome = path(admin.narrowed(level)).await;
            let shown = match outcome {
                Ok(()) => "ok",
                Err(failure) => match failure.permission_denied() {
                    Some(CatalogError::PermissionDenied {
                        needed, granted, ..
                    }) => {
                        assert_eq!(*granted, level, "{name}");
                        assert!(*needed > level, "{name}: needs {needed}");
                        assert_eq!(
                            everything(&admin).await,
                            before,
                            "{name} at {level}: a refused write changed the catalog"
                        );
                        "denied"
                    }
                    _ => panic!("{name} at {level}: {}", failure.message()),
                },
            };
            let sep = if i + 1 < Access::ALL.len() { " |" } else { "" };
            line.push_str(&format!(" {shown:<6}{sep}"));
        }
        table.push_str(line.trim_end());
        table.push('\n');
    }
    assert_eq!(table, EXPECTED);
}

/// Refusals name what was refused and the level it needs, in the statement's own words.
async fn a_refusal_names_the_statement_and_the_level_it_needs(db: &TestDb) {
    let admin = db.scoped(TenantId::random());
    seed(&admin).await;
    let writer = session(&admin.narrowed(Access::Write));
    for (statement, expected) in [
        (
            "DELETE FROM jammi.public.models WHERE model_id = 'm'",
            "permission denied: DELETE FROM jammi.public.models needs admin access; this \
             credential has write access",
        ),
        (
            "SELECT delete_model(model_id, version) FROM jammi.public.models WHERE model_id = 'm'",
            "permission denied: delete_model(…) needs admin access; this credential has write \
             access",
        ),
        (
            "EXPLAIN ANALYZE DELETE FROM jammi.public.eval_runs WHERE run_id = 'run'",
            "permission denied: DELETE FROM jammi.public.eval_runs needs admin access",
        ),
    ] {
        let err = match writer.sql(statement).await {
            Ok(df) => df.collect().await.unwrap_err(),
            Err(e) => e,
        };
        assert!(err.to_string().contains(expected), "{statement}: {err}");
    }
    // EXPLAIN runs nothing; DataFusion shows the analyzer's refusal as the plan's last step.
    let explained = super::explain(
        &writer,
        "DELETE FROM jammi.public.eval_runs WHERE run_id = 'run'",
    )
    .await;
    assert!(
        explained.contains("permission denied: DELETE FROM jammi.public.eval_runs needs admin"),
        "{explained}"
    );
    assert!(!explained.contains("JammiDeleteExec"), "{explained}");
    assert_eq!(
        rows(
            &session(&admin),
            "SELECT count(*) FROM jammi.public.eval_runs"
        )
        .await,
        vec![vec!["1".to_owned()]]
    );
    let reader = session(&admin.narrowed(Access::Read));
    let err = reader
        .sql(
            "INSERT INTO jammi.public.model_tags (model_id, version, key, value) \
             VALUES ('m', 1, 'a', 'b')",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "permission denied: INSERT INTO jammi.public.model_tags needs write access; this \
             credential has read access"
        ),
        "{err}"
    );
}

/// A read handle still reads everything its scope sees: tables, time travel, metadata.
async fn a_read_handle_reads_everything(db: &TestDb) {
    let admin = db.scoped(TenantId::random());
    seed(&admin).await;
    let reader = session(&admin.narrowed(Access::Read));
    assert_eq!(
        rows(&reader, "SELECT count(*) FROM jammi.public.models").await,
        vec![vec!["4".to_owned()]]
    );
    assert_eq!(
        rows(
            &reader,
            "SELECT version FROM model_aliases_as_of(now()) WHERE alias = 'champion'"
        )
        .await,
        vec![vec!["1".to_owned()]]
    );
    let tables = rows(
        &reader,
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'jammi' \
         AND table_schema = 'public'",
    )
    .await;
    assert_eq!(tables, vec![vec!["9".to_owned()]]);
    assert_eq!(
        admin
            .narrowed(Access::Read)
            .get_model("m")
            .await
            .unwrap()
            .version,
        2
    );
}

/// Levels add no way around the SQL safety rules (SPEC §7): a placement refused for
/// everyone is refused for an admin too.
async fn an_admin_is_held_to_the_placement_rules(db: &TestDb) {
    let admin = db.scoped(TenantId::random());
    seed(&admin).await;
    assert_eq!(admin.access(), Access::Admin);
    let ctx = session(&admin);
    for statement in [
        "SELECT CASE WHEN version > 5 THEN delete_model(model_id, version) END FROM jammi.public.models",
        "SELECT delete_model(model_id, version) FROM jammi.public.models LIMIT 1",
        "DELETE FROM jammi.public.models",
    ] {
        let refused = match ctx.sql(statement).await {
            Ok(df) => df.collect().await.is_err(),
            Err(_) => true,
        };
        assert!(refused, "{statement}");
    }
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM jammi.public.models").await,
        vec![vec!["4".to_owned()]]
    );
}

/// Narrowing never widens: a read handle narrowed to admin, or moved to another scope,
/// stays a read handle.
async fn a_narrowed_handle_cannot_be_widened(db: &TestDb) {
    let reader = db.global().narrowed(Access::Read);
    assert_eq!(reader.narrowed(Access::Admin).access(), Access::Read);
    assert_eq!(
        reader.with_scope(Some(TenantId::random())).access(),
        Access::Read
    );
    assert!(matches!(
        jammi_catalog::Tokens::new(&reader),
        Err(CatalogError::PermissionDenied { .. })
    ));
    // Nor through its store: a handle built on it, or a transaction of it, is no stronger.
    let rebuilt = Catalog::new(reader.store().clone(), None);
    assert_eq!(rebuilt.access(), Access::Read);
    let refused = rebuilt
        .register_model(RegisterModel::new(
            "m",
            "embedding",
            "candle",
            ModelTask::Ner,
        ))
        .await;
    assert!(
        matches!(refused, Err(CatalogError::PermissionDenied { .. })),
        "{refused:?}"
    );
    let store = reader.store();
    let refused = store
        .transaction(
            jammi_catalog::Grant::full(None),
            jammi_catalog::TxOptions::write(),
            |_tx| async { Ok(()) }.boxed(),
        )
        .await;
    assert!(
        matches!(refused, Err(CatalogError::PermissionDenied { .. })),
        "{refused:?}"
    );
}

backend_tests!(
    every_write_path_runs_or_is_refused_by_level,
    a_refusal_names_the_statement_and_the_level_it_needs,
    a_read_handle_reads_everything,
    an_admin_is_held_to_the_placement_rules,
    a_narrowed_handle_cannot_be_widened,
);
