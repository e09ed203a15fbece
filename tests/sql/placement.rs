//! Every placement of a catalog function DataFusion accepts, run on a fresh catalog on
//! both backends: the statement either changes exactly what its SQL says, or is refused
//! before anything is written (SPEC §7, docs/design.md "Where the catalog's functions run").

use std::collections::BTreeSet;

use datafusion::prelude::SessionContext;
use jammi_catalog::{Catalog, ModelTask, RegisterModel};

use crate::session;
use jammi_testkit::TestDb;
use jammi_testkit::fixture::tenant_a;

/// What a statement must do to tenant A's catalog of `m1`…`m5`, `tmp` and global `g1`.
#[derive(Debug)]
enum Expect {
    /// Refused while planning; nothing changes.
    Refused,
    /// Runs; exactly these (name, version) rows of the tenant are deleted.
    Deletes(&'static [(&'static str, i32)]),
    /// Runs; exactly these (name, version) rows are added for the tenant.
    Registers(&'static [(&'static str, i32)]),
    /// Runs; nothing changes.
    Unchanged,
}
use Expect::*;

const REG: &str = "register_model(n, NULL, 'embedding', 'candle', 'text_embedding')";

/// (statement, expectation). `REG` is a register_model call over the column `n` of a
/// staging table `names` of two rows, `r1` and `r2`.
fn placements() -> Vec<(String, Expect)> {
    // A table, not a VALUES list: DataFusion 55 types a VALUES list nested in an INSERT's
    // SELECT by the target table's columns, and refuses it.
    let names = "names";
    let cases: Vec<(&str, Expect)> = vec![
        // The three statements.
        (
            "SELECT model_id, CASE WHEN model_id = 'tmp' THEN delete_model(model_id, version, true) END AS d FROM jammi.public.models",
            Refused,
        ),
        (
            "SELECT COALESCE(model_id, CAST(delete_model(model_id, version, true) AS VARCHAR)) FROM jammi.public.models",
            Refused,
        ),
        (
            "SELECT model_id FROM jammi.public.models WHERE model_id > 'tmp-' AND delete_model(model_id, version, true)",
            Refused,
        ),
        // The accepted form: a whole SELECT item, rows chosen by WHERE.
        (
            "SELECT delete_model(model_id, version) FROM jammi.public.models WHERE model_id = 'tmp'",
            Deletes(&[("tmp", 1)]),
        ),
        (
            "SELECT model_id, delete_model(model_id, version) AS d FROM jammi.public.models WHERE model_id = 'tmp' AND version >= 1",
            Deletes(&[("tmp", 1)]),
        ),
        // A condition DataFusion evaluates itself (text ordering is not pushed down).
        (
            "SELECT delete_model(model_id, version) FROM jammi.public.models WHERE model_id >= 'tmp'",
            Deletes(&[("tmp", 1)]),
        ),
        (
            "SELECT delete_model(model_id, version, true) FROM jammi.public.models WHERE model_id > 'tmp-'",
            Unchanged,
        ),
        (
            "SELECT delete_model(model_id, version) FROM jammi.public.models WHERE model_id >= 'tmp' AND version = 1",
            Deletes(&[("tmp", 1)]),
        ),
        (
            "SELECT CAST(delete_model(model_id, version) AS VARCHAR) AS d FROM jammi.public.models WHERE model_id = 'tmp'",
            Deletes(&[("tmp", 1)]),
        ),
        ("SELECT delete_model('tmp')", Deletes(&[("tmp", 1)])),
        (
            "SELECT delete_model(m.model_id, m.version) FROM jammi.public.models m JOIN (VALUES ('tmp'), ('m2')) AS t(n) ON m.model_id = t.n",
            Deletes(&[("tmp", 1), ("m2", 1)]),
        ),
        (
            "SELECT delete_model(model_id, version) FROM jammi.public.models WHERE model_id IN (SELECT n FROM (VALUES ('m3')) AS t(n))",
            Deletes(&[("m3", 1)]),
        ),
        (
            "SELECT delete_model(model_id, version) FROM (SELECT * FROM jammi.public.models WHERE tenant_id IS NOT NULL ORDER BY model_id LIMIT 2) AS s",
            Deletes(&[("m1", 1), ("m2", 1)]),
        ),
        (
            "SELECT model_id, delete_model(model_id, version) AS d FROM jammi.public.models WHERE model_id = 'tmp' ORDER BY model_id",
            Deletes(&[("tmp", 1)]),
        ),
        (
            "WITH d AS (SELECT delete_model(model_id, version) AS gone FROM jammi.public.models WHERE model_id = 'tmp') SELECT * FROM d",
            Deletes(&[("tmp", 1)]),
        ),
        (
            "EXPLAIN SELECT delete_model(model_id, version) FROM jammi.public.models",
            Unchanged,
        ),
        (
            "EXPLAIN ANALYZE SELECT delete_model(model_id, version) FROM jammi.public.models WHERE model_id = 'm4'",
            Deletes(&[("m4", 1)]),
        ),
        // Inside another expression: evaluated for every row first.
        (
            "SELECT NULLIF(delete_model(model_id, version), true) FROM jammi.public.models WHERE model_id = 'tmp'",
            Refused,
        ),
        (
            "SELECT model_id = 'tmp' AND delete_model(model_id, version, true) FROM jammi.public.models",
            Refused,
        ),
        (
            "SELECT model_id <> 'tmp' OR delete_model(model_id, version, true) FROM jammi.public.models",
            Refused,
        ),
        (
            "SELECT true IN (delete_model(model_id, version, true), false) FROM jammi.public.models WHERE model_id = 'tmp'",
            Refused,
        ),
        (
            "SELECT NOT delete_model(model_id, version) FROM jammi.public.models WHERE model_id = 'tmp'",
            Refused,
        ),
        (
            "SELECT upper(CAST(delete_model(model_id, version) AS VARCHAR)) FROM jammi.public.models WHERE model_id = 'tmp'",
            Refused,
        ),
        (
            "SELECT delete_model(CAST(register_model('x', NULL, 'e', 'c', 'ner') AS VARCHAR))",
            Refused,
        ),
        // WHERE, HAVING, JOIN, ORDER BY, GROUP BY, aggregates, windows.
        (
            "SELECT model_id FROM jammi.public.models WHERE delete_model(model_id, version, true)",
            Refused,
        ),
        (
            "SELECT model_id FROM jammi.public.models WHERE model_id = 'tmp' AND delete_model(model_id, version, true)",
            Refused,
        ),
        (
            "SELECT model_id FROM jammi.public.models GROUP BY model_id HAVING delete_model(model_id, 1, true)",
            Refused,
        ),
        (
            "SELECT a.model_id FROM jammi.public.models a JOIN jammi.public.models b ON a.model_id = b.model_id AND delete_model(a.model_id, a.version, true)",
            Refused,
        ),
        (
            "SELECT model_id FROM jammi.public.models ORDER BY delete_model(model_id, version, true)",
            Refused,
        ),
        (
            "SELECT count(*) FROM jammi.public.models GROUP BY delete_model(model_id, version, true)",
            Refused,
        ),
        (
            "SELECT count(delete_model(model_id, version)) FROM jammi.public.models WHERE model_id = 'tmp'",
            Refused,
        ),
        (
            "SELECT row_number() OVER (ORDER BY delete_model(model_id, version, true)) FROM jammi.public.models",
            Refused,
        ),
        // Above the SELECT list: something that drops, limits or prunes its rows.
        (
            "SELECT delete_model(model_id, version) FROM jammi.public.models LIMIT 1",
            Refused,
        ),
        (
            "SELECT delete_model(model_id, version) FROM jammi.public.models OFFSET 5",
            Refused,
        ),
        (
            "SELECT delete_model(model_id, version) AS d FROM jammi.public.models ORDER BY model_id LIMIT 1",
            Refused,
        ),
        (
            "SELECT DISTINCT delete_model(model_id, version) FROM jammi.public.models WHERE model_id = 'tmp'",
            Refused,
        ),
        (
            "SELECT delete_model('tmp') UNION ALL SELECT delete_model('m1')",
            Refused,
        ),
        (
            "SELECT delete_model('tmp') UNION SELECT delete_model('m1')",
            Refused,
        ),
        (
            "SELECT model_id FROM (SELECT model_id, delete_model(model_id, version) AS d FROM jammi.public.models) AS s",
            Refused,
        ),
        (
            "SELECT * FROM (SELECT model_id, delete_model(model_id, version) AS d FROM jammi.public.models) AS s WHERE model_id = 'tmp'",
            Refused,
        ),
        (
            "SELECT count(*) FROM (SELECT delete_model(model_id, version) AS d FROM jammi.public.models) AS s",
            Refused,
        ),
        (
            "WITH d AS (SELECT model_id, delete_model(model_id, version) AS gone FROM jammi.public.models) SELECT model_id FROM d WHERE model_id = 'tmp'",
            Refused,
        ),
        ("SELECT (SELECT delete_model('tmp'))", Refused),
        (
            "SELECT model_id FROM jammi.public.models WHERE model_id IN (SELECT 'tmp' WHERE delete_model('tmp'))",
            Refused,
        ),
        (
            "DELETE FROM jammi.public.models WHERE delete_model(model_id, version, true)",
            Refused,
        ),
        // The whole SELECT is read into the new table.
        (
            "CREATE TABLE copied AS SELECT delete_model(model_id, version) FROM jammi.public.models WHERE model_id = 'tmp'",
            Deletes(&[("tmp", 1)]),
        ),
    ];
    let mut out: Vec<(String, Expect)> =
        cases.into_iter().map(|(s, e)| (s.to_owned(), e)).collect();
    // register_model over a staging relation of two names.
    out.extend([
        (
            format!("SELECT n, {REG} AS v FROM {names}"),
            Registers(&[("r1", 1), ("r2", 1)]),
        ),
        (
            format!("SELECT {REG} AS v FROM {names} WHERE n = 'r2'"),
            Registers(&[("r2", 1)]),
        ),
        (
            format!("SELECT CASE WHEN n = 'r1' THEN {REG} END FROM {names}"),
            Refused,
        ),
        (
            format!("SELECT COALESCE({REG}, 0) FROM {names}"),
            Refused,
        ),
        (format!("SELECT n FROM {names} WHERE n = 'r1' AND {REG} > 0"), Refused),
        (format!("SELECT {REG} FROM {names} LIMIT 1"), Refused),
        (
            format!(
                "INSERT INTO jammi.public.eval_runs (run_id, model_id, model_version, eval_type, metrics) \
                 SELECT 'run-' || n, n, {REG}, 'retrieval', '{{}}' FROM {names}"
            ),
            Registers(&[("r1", 1), ("r2", 1)]),
        ),
        (
            format!(
                "INSERT INTO jammi.public.eval_runs (run_id, model_id, model_version, eval_type, metrics) \
                 SELECT 'run-' || n, n, CASE WHEN n = 'r1' THEN {REG} END, 'retrieval', '{{}}' FROM {names}"
            ),
            Refused,
        ),
    ]);
    out
}

/// The tenant's catalog: `m1`…`m5` and `tmp` (v1 each), and the global `g1`.
async fn populate(catalog: &Catalog) {
    let a = catalog.with_scope(Some(tenant_a()));
    for name in ["m1", "m2", "m3", "m4", "m5", "tmp"] {
        a.register_model(RegisterModel::new(
            name,
            "embedding",
            "candle",
            ModelTask::TextEmbedding,
        ))
        .await
        .unwrap();
    }
    catalog
        .with_scope(None)
        .register_model(RegisterModel::new(
            "g1",
            "embedding",
            "candle",
            ModelTask::TextEmbedding,
        ))
        .await
        .unwrap();
}

/// Every model row tenant A can see, as (owner, name, version).
async fn snapshot(catalog: &Catalog) -> BTreeSet<(String, String, i32)> {
    catalog
        .with_scope(Some(tenant_a()))
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            let owner = m.tenant_id.map_or("global".to_owned(), |t| t.to_string());
            (owner, m.model_id, m.version)
        })
        .collect()
}

async fn run(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<()> {
    ctx.sql(sql).await?.collect().await.map(|_| ())
}

/// Runs every placement on a fresh catalog made by `fresh`, and checks its outcome.
async fn check_every_placement<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<TestDb>>,
{
    let tenant = tenant_a().to_string();
    let mut problems = Vec::new();
    for (sql, expect) in placements() {
        let Some(db) = fresh().await else { return };
        populate(&db.catalog).await;
        let before = snapshot(&db.catalog).await;
        let ctx = session(&db.scoped(tenant_a()));
        run(
            &ctx,
            "CREATE TABLE names AS SELECT * FROM (VALUES ('r1'), ('r2')) AS t(n)",
        )
        .await
        .unwrap();
        let outcome = run(&ctx, &sql).await;
        let after = snapshot(&db.catalog).await;
        let row = |(n, v): &(&str, i32)| (tenant.clone(), n.to_string(), *v);
        let problem = match (&expect, outcome) {
            (Refused, Ok(())) => Some("ran, should be refused".to_owned()),
            (Refused, Err(e)) => {
                let msg = e.to_string();
                if !(msg.contains("cannot be called")
                    && msg.contains("(…) FROM jammi.public.models WHERE <condition>"))
                {
                    Some(format!("refused without the safe form: {msg}"))
                } else if after != before {
                    Some("refused, but changed the catalog".to_owned())
                } else {
                    None
                }
            }
            (_, Err(e)) => Some(format!("failed: {e}")),
            (Deletes(gone), Ok(())) => {
                let expected: BTreeSet<_> = before
                    .iter()
                    .filter(|r| !gone.iter().map(row).any(|g| &g == *r))
                    .cloned()
                    .collect();
                (after != expected).then(|| format!("left {after:?}, expected {expected:?}"))
            }
            (Registers(added), Ok(())) => {
                let mut expected = before.clone();
                expected.extend(added.iter().map(row));
                (after != expected).then(|| format!("left {after:?}, expected {expected:?}"))
            }
            (Unchanged, Ok(())) => (after != before).then(|| format!("changed to {after:?}")),
        };
        if let Some(problem) = problem {
            problems.push(format!("{sql}\n    expected {expect:?}: {problem}"));
        }
        db.cleanup().await;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_every_placement_is_exact_or_refused() {
    check_every_placement(|| async { Some(TestDb::sqlite().await) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_every_placement_is_exact_or_refused() {
    check_every_placement(TestDb::postgres).await;
}
