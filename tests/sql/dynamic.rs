//! Joins of catalog tables at the database's pace (SPEC §15): a join of catalog tables is
//! sent to the database as one statement (`jammi.join_pushdown`), and otherwise a hash
//! join's build keys are pushed into the probe side's catalog scan when it starts. The
//! answers must be those of the same join in DataFusion alone (both off); the rows fetched,
//! those the join needs.

use std::sync::Arc;

use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::collect;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::{Catalog, register_catalog};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::fixture::{tenant_a, tenant_b};
use jammi_testkit::rng::Rng;

use crate::{explain, rows, rows_fetched};

/// Models per tenant; every fifth is `champion`, every third has a run without a model.
const MODELS: usize = 40;

/// Each tenant gets models `m00`..`m39` (the same names: a leak would show as rows), with
/// 1–3 versions, two eval runs per version, a `champion` alias on every fifth model and a
/// `stage` tag on every other version; tenant B's rows say `secret-b` wherever they can.
/// Global models `g0`..`g4` with one eval run each, and some eval runs with no model.
async fn fill(db: &TestDb) {
    for (scope, marker) in [(Some(tenant_a()), "a"), (Some(tenant_b()), "secret-b")] {
        let ctx = catalog_session(&db.scoped(scope.unwrap()), 1);
        let mut models = Vec::new();
        let mut runs = Vec::new();
        let mut aliases = Vec::new();
        let mut tags = Vec::new();
        for m in 0..MODELS {
            let versions = 1 + m % 3;
            for v in 1..=versions {
                models.push(format!(
                    "('m{m:02}', {v}, 'embedding', '{task}', 'candle', '/w/{marker}')",
                    task = if m % 2 == 0 { "ner" } else { "text_embedding" }
                ));
                for r in 0..2 {
                    runs.push(format!(
                        "('r{m:02}-{v}-{r}', 'm{m:02}', {v}, '{marker}', '{{}}')"
                    ));
                }
                if v % 2 == 1 {
                    tags.push(format!("('m{m:02}', {v}, 'stage', '{marker}')"));
                }
            }
            if m % 5 == 0 {
                aliases.push(format!("('m{m:02}', 'champion', {versions})"));
            }
            if m % 3 == 0 {
                runs.push(format!("('orphan-{m:02}', NULL, NULL, '{marker}', '{{}}')"));
            }
        }
        for (table, columns, values) in [
            (
                "models",
                "(model_id, version, model_type, task, backend, artifact_path)",
                &models,
            ),
            (
                "eval_runs",
                "(run_id, model_id, model_version, eval_type, metrics)",
                &runs,
            ),
            ("model_aliases", "(model_id, alias, version)", &aliases),
            ("model_tags", "(model_id, version, key, value)", &tags),
        ] {
            rows(
                &ctx,
                &format!(
                    "INSERT INTO jammi.public.{table} {columns} VALUES {}",
                    values.join(", ")
                ),
            )
            .await;
        }
    }
    let global = catalog_session(&db.global(), 1);
    rows(
        &global,
        "INSERT INTO jammi.public.models (model_id, version, model_type, task, backend) \
         SELECT concat('g', CAST(value AS VARCHAR)), 1, 'embedding', 'ner', 'candle' \
         FROM generate_series(0, 4)",
    )
    .await;
    rows(
        &global,
        "INSERT INTO jammi.public.eval_runs (run_id, model_id, model_version, eval_type, metrics) \
         SELECT concat('gr', CAST(value AS VARCHAR)), concat('g', CAST(value AS VARCHAR)), 1, \
           'global', '{}' FROM generate_series(0, 4)",
    )
    .await;
}

/// A session of `catalog`'s scope with `partitions` target partitions.
fn catalog_session(catalog: &Catalog, partitions: usize) -> SessionContext {
    let ctx =
        SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions));
    register_catalog(&ctx, catalog);
    ctx
}

/// As [`catalog_session`], with joins of catalog tables left to DataFusion (so that they
/// take the dynamic filters).
async fn joining_in_datafusion(catalog: &Catalog, partitions: usize) -> SessionContext {
    let ctx = catalog_session(catalog, partitions);
    rows(&ctx, "SET jammi.join_pushdown = false").await;
    ctx
}

/// Whether `sql`'s plan reads a join of catalog tables as one statement.
async fn sends_a_join(ctx: &SessionContext, sql: &str) -> bool {
    explain(ctx, sql)
        .await
        .lines()
        .any(|l| l.contains("JammiScanExec: table=") && l.contains('+'))
}

/// The user's own table `picks(model_id, version)`: names of both tenants, a global one, a
/// NULL key and a name nobody has.
fn register_picks(ctx: &SessionContext) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("model_id", DataType::Utf8, true),
        Field::new("version", DataType::Int32, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec![
                Some("m03"),
                Some("m07"),
                Some("m10"),
                None,
                Some("g2"),
                Some("nobody"),
            ])),
            Arc::new(Int32Array::from(vec![
                Some(1),
                Some(2),
                None,
                Some(1),
                Some(1),
                Some(1),
            ])),
        ],
    )
    .unwrap();
    let table = MemTable::try_new(schema, vec![vec![batch]]).unwrap();
    ctx.register_table("picks", Arc::new(table)).unwrap();
}

/// A random join of 2–3 catalog tables, or of one with the user's table, of a random
/// kind, with random filters on either side.
fn random_join(rng: &mut Rng) -> String {
    const LEFT: &[(&str, &str)] = &[
        ("jammi.public.model_aliases", "a.alias = 'champion'"),
        ("jammi.public.models", "a.task = 'ner'"),
        ("jammi.public.model_tags", "a.key = 'stage'"),
        ("picks", "a.model_id IS NOT NULL"),
        (
            "jammi.public.models",
            "a.model_id IN ('m01', 'm02', 'g3', 'nobody')",
        ),
        ("jammi.public.model_aliases", "a.alias = 'no such alias'"),
    ];
    const RIGHT: &[(&str, &str, &str)] = &[
        ("jammi.public.eval_runs", "model_id", "model_version"),
        ("jammi.public.models", "model_id", "version"),
        ("jammi.public.model_tags", "model_id", "version"),
    ];
    let (left, left_filter) = *rng.pick(LEFT);
    let (right, right_name, right_version) = *rng.pick(RIGHT);
    let on_version = rng.next_u64().is_multiple_of(2);
    let on = if on_version {
        format!("b.{right_name} = a.model_id AND b.{right_version} = a.version")
    } else {
        format!("b.{right_name} = a.model_id")
    };
    let left_where = if rng.next_u64().is_multiple_of(3) {
        "TRUE"
    } else {
        left_filter
    };
    let right_where = match rng.next_u64() % 3 {
        0 => format!("b.{right_version} >= 2"),
        1 => format!("b.{right_name} <> 'm05'"),
        _ => "TRUE".into(),
    };
    // Every joined row is written out whole, so a row of another tenant would show.
    let third = if rng.next_u64().is_multiple_of(4) {
        " JOIN jammi.public.models c ON c.model_id = b.model_id"
    } else {
        ""
    };
    match rng.next_u64() % 6 {
        0 => format!(
            "SELECT a.*, b.*{c} FROM {left} a JOIN {right} b ON {on}{third} \
             WHERE {left_where} AND {right_where}",
            c = if third.is_empty() {
                ""
            } else {
                ", c.artifact_path"
            }
        ),
        1 => format!(
            "SELECT a.*, b.* FROM {left} a LEFT JOIN {right} b ON {on} AND {right_where} \
             WHERE {left_where}"
        ),
        2 => format!(
            "SELECT b.* FROM {right} b WHERE {right_where} AND EXISTS \
             (SELECT 1 FROM {left} a WHERE {on} AND {left_where})"
        ),
        3 => format!(
            "SELECT b.* FROM {right} b WHERE {right_where} AND NOT EXISTS \
             (SELECT 1 FROM {left} a WHERE {on} AND {left_where})"
        ),
        4 => format!(
            "SELECT a.*, b.* FROM {left} a RIGHT JOIN {right} b ON {on} AND {left_where} \
             WHERE {right_where}"
        ),
        _ => format!("SELECT a.*, b.* FROM {left} a FULL JOIN {right} b ON {on}"),
    }
}

/// Every row of `sql`, sorted, as text.
async fn sorted_rows(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    let mut got = rows(ctx, sql).await;
    got.sort();
    got
}

async fn random_joins_answer_as_in_datafusion_alone(db: &TestDb) {
    fill(db).await;
    let catalog = db.scoped(tenant_a());
    // Joins sent to the database whole; left to DataFusion with dynamic filters (with one
    // partition, with a hash-partitioned join, and with a key list limit of 3, beyond which
    // larger build sides are offered as a hash-table lookup, which no database can read);
    // and with both off: the reference.
    let sent = catalog_session(&catalog, 2);
    let on = joining_in_datafusion(&catalog, 1).await;
    let partitioned = joining_in_datafusion(&catalog, 4).await;
    rows(
        &partitioned,
        "SET datafusion.optimizer.hash_join_single_partition_threshold = 0",
    )
    .await;
    rows(
        &partitioned,
        "SET datafusion.optimizer.hash_join_single_partition_threshold_rows = 0",
    )
    .await;
    let short_lists = joining_in_datafusion(&catalog, 2).await;
    rows(
        &short_lists,
        "SET datafusion.optimizer.hash_join_inlist_pushdown_max_distinct_values = 3",
    )
    .await;
    let off = joining_in_datafusion(&catalog, 2).await;
    rows(
        &off,
        "SET datafusion.optimizer.enable_dynamic_filter_pushdown = false",
    )
    .await;
    for ctx in [&sent, &on, &partitioned, &short_lists, &off] {
        register_picks(ctx);
    }
    let mut rng = Rng(25);
    let mut nonempty = 0;
    let mut joins_sent = 0;
    for _ in 0..72 {
        let sql = random_join(&mut rng);
        let expected = sorted_rows(&off, &sql).await;
        nonempty += usize::from(!expected.is_empty());
        joins_sent += usize::from(sends_a_join(&sent, &sql).await);
        for (name, ctx) in [
            ("sent whole", &sent),
            ("on", &on),
            ("partitioned", &partitioned),
            ("short lists", &short_lists),
        ] {
            let got = sorted_rows(ctx, &sql).await;
            assert_eq!(got, expected, "{name}: {sql}");
            assert!(
                !got.iter().flatten().any(|cell| cell.contains("secret-b")),
                "{name}: a row of tenant B in {sql}: {got:?}"
            );
        }
    }
    // The statements must test something: rows, and joins of catalog tables sent whole.
    assert!(nonempty >= 45, "only {nonempty} of 72 joins had rows");
    assert!(
        joins_sent >= 30,
        "only {joins_sent} of 72 joins were sent whole"
    );
}

/// The champions' eval runs: the join fetches the champions' runs, not every run.
async fn a_selective_join_fetches_the_rows_it_needs(db: &TestDb) {
    fill(db).await;
    let catalog = db.scoped(tenant_a());
    let on = joining_in_datafusion(&catalog, 2).await;
    let off = joining_in_datafusion(&catalog, 2).await;
    rows(
        &off,
        "SET datafusion.optimizer.enable_dynamic_filter_pushdown = false",
    )
    .await;
    // Written with the large table first: the statistics make the aliases the build side.
    for sql in [
        "SELECT e.run_id FROM jammi.public.model_aliases a JOIN jammi.public.eval_runs e \
         ON e.model_id = a.model_id AND e.model_version = a.version WHERE a.alias = 'champion'",
        "SELECT e.run_id FROM jammi.public.eval_runs e JOIN jammi.public.model_aliases a \
         ON e.model_id = a.model_id AND e.model_version = a.version WHERE a.alias = 'champion'",
    ] {
        let answer = rows(&on, sql).await;
        // 8 champions (every fifth of 40), each on its latest version, 2 runs each.
        assert_eq!(answer.len(), 16, "{sql}: {answer:?}");
        let fetched = rows_fetched(&on, sql).await;
        assert_eq!(
            fetched,
            8 + 16,
            "{sql}\n{}",
            explain(&on, &format!("ANALYZE {sql}")).await
        );
        // Without dynamic filters the scan reads all of tenant A's runs and the global ones.
        let all_runs = rows_fetched(&off, sql).await;
        assert!(all_runs > 100, "{all_runs}");
    }
    // EXPLAIN ANALYZE shows the keys the scan sent with its statement.
    let analyzed = explain(
        &on,
        "ANALYZE SELECT e.run_id FROM jammi.public.model_aliases a JOIN jammi.public.eval_runs e \
         ON e.model_id = a.model_id WHERE a.alias = 'champion'",
    )
    .await;
    let list = match db.catalog.store().backend() {
        jammi_catalog::Backend::Sqlite => "model_id IN (SELECT value FROM json_each($",
        jammi_catalog::Backend::Postgres => "model_id = ANY($",
    };
    assert!(analyzed.contains(list), "{analyzed}");
    assert!(analyzed.contains("<8 texts>"), "{analyzed}");
}

/// A join of catalog tables is one statement: it fetches the answer's rows only, each table
/// with its own tenant predicate, and gives the rows of the same join in DataFusion.
async fn a_join_of_catalog_tables_is_sent_whole(db: &TestDb) {
    fill(db).await;
    let catalog = db.scoped(tenant_a());
    let sent = catalog_session(&catalog, 2);
    let kept = joining_in_datafusion(&catalog, 2).await;
    let champions = "SELECT a.model_id, e.run_id, e.created_at, e.tenant_id \
         FROM jammi.public.model_aliases a JOIN jammi.public.eval_runs e \
         ON e.model_id = a.model_id AND e.model_version = a.version WHERE a.alias = 'champion'";
    let answer = sorted_rows(&sent, champions).await;
    assert_eq!(answer.len(), 16, "{answer:?}");
    assert_eq!(answer, sorted_rows(&kept, champions).await);
    assert_eq!(rows_fetched(&sent, champions).await, 16);
    let plan = explain(&sent, champions).await;
    let scans: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains("JammiScanExec"))
        .collect();
    assert_eq!(scans.len(), 1, "{plan}");
    assert!(scans[0].contains("table=model_aliases+eval_runs"), "{plan}");
    assert_eq!(scans[0].matches("WHERE owner IN ($").count(), 2, "{plan}");
    // Three tables, and a semi join under them.
    let three = "SELECT m.model_id, m.version, t.value, e.run_id \
         FROM jammi.public.models m \
         JOIN jammi.public.model_tags t ON t.model_id = m.model_id AND t.version = m.version \
         LEFT JOIN jammi.public.eval_runs e ON e.model_id = m.model_id \
         WHERE EXISTS (SELECT 1 FROM jammi.public.model_aliases a WHERE a.model_id = m.model_id)";
    assert!(sends_a_join(&sent, three).await);
    let answer = sorted_rows(&sent, three).await;
    assert!(!answer.is_empty());
    assert_eq!(answer, sorted_rows(&kept, three).await);
    // A top N goes with the join: integer, timestamp and text keys, descending, NULLs first
    // (runs without a model), each order total so that the answers compare row by row.
    for (sql, limit) in [
        (
            format!("{champions} ORDER BY e.created_at DESC, e.run_id LIMIT 5"),
            5,
        ),
        (
            "SELECT e.run_id, m.task, m.version FROM jammi.public.eval_runs e \
             LEFT JOIN jammi.public.models m \
             ON m.model_id = e.model_id AND m.version = e.model_version \
             ORDER BY m.task NULLS FIRST, m.version DESC, e.run_id DESC LIMIT 20"
                .to_owned(),
            20,
        ),
    ] {
        let plan = explain(&sent, &sql).await;
        assert!(plan.contains(" ORDER BY c"), "{plan}");
        let answer = rows(&sent, &sql).await;
        assert_eq!(answer.len(), limit);
        assert_eq!(answer, rows(&kept, &sql).await, "{sql}");
        assert_eq!(rows_fetched(&sent, &sql).await, limit as u64, "{sql}");
    }
    let nulls_first = rows(
        &sent,
        "SELECT m.task FROM jammi.public.eval_runs e LEFT JOIN jammi.public.models m \
         ON m.model_id = e.model_id ORDER BY m.task NULLS FIRST, e.run_id LIMIT 1",
    )
    .await;
    assert_eq!(nulls_first, [["NULL"]]);
    // What is not the same in the database stays in DataFusion: text ordering, a condition
    // other than equal keys, a null-aware NOT IN.
    for sql in [
        "SELECT a.model_id FROM jammi.public.model_aliases a JOIN jammi.public.eval_runs e \
         ON e.model_id = a.model_id WHERE e.run_id > 'r10'",
        "SELECT a.model_id FROM jammi.public.model_aliases a JOIN jammi.public.eval_runs e \
         ON e.model_id = a.model_id AND e.model_version < a.version",
        "SELECT e.run_id FROM jammi.public.eval_runs e WHERE e.model_id NOT IN \
         (SELECT a.model_id FROM jammi.public.model_aliases a)",
    ] {
        assert!(!sends_a_join(&sent, sql).await, "{sql}");
        assert_eq!(sorted_rows(&sent, sql).await, sorted_rows(&kept, sql).await);
    }
    // The session's switch, and what it accepts.
    assert!(!sends_a_join(&kept, champions).await);
    let err = sent
        .sql("SET jammi.join_pushdown = maybe")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("true or false"), "{err}");
    // Tenant B's session, over the same statement, sees B's rows only.
    let b = catalog_session(&db.scoped(tenant_b()), 2);
    let answer_b = sorted_rows(&b, champions).await;
    assert_eq!(answer_b.len(), 16);
    assert!(
        answer_b.iter().all(|r| r[3] != answer[0][3]),
        "{answer_b:?}"
    );
}

/// A join whose build side is the user's own table pushes its keys into the catalog scan,
/// with NULL keys and names of no one's models left out of the answer as the join says.
async fn a_users_table_pushes_its_keys_into_the_scan(db: &TestDb) {
    fill(db).await;
    let ctx = catalog_session(&db.scoped(tenant_a()), 2);
    register_picks(&ctx);
    for sql in [
        "SELECT e.run_id FROM picks p JOIN jammi.public.eval_runs e ON e.model_id = p.model_id",
        "SELECT e.run_id FROM jammi.public.eval_runs e JOIN picks p ON e.model_id = p.model_id",
    ] {
        let mut answer: Vec<String> = rows(&ctx, sql)
            .await
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        answer.sort();
        // m03 has 1 version, m07 2, m10 2: 2 runs per version; g2 is global with 1.
        assert_eq!(answer.len(), 2 + 4 + 4 + 1, "{sql}: {answer:?}");
        assert!(answer.contains(&"gr2".to_owned()), "{answer:?}");
        let fetched = rows_fetched(&ctx, sql).await;
        assert_eq!(
            fetched,
            11,
            "{sql}\n{}",
            explain(&ctx, &format!("ANALYZE {sql}")).await
        );
    }
}

/// A plan reset to run again (`reset_plan_states`) must not send the keys of its last run.
async fn a_plan_run_again_after_a_reset_reads_todays_keys(db: &TestDb) {
    fill(db).await;
    let ctx = joining_in_datafusion(&db.scoped(tenant_a()), 1).await;
    let sql = "SELECT e.run_id FROM jammi.public.model_aliases a JOIN jammi.public.eval_runs e \
               ON e.model_id = a.model_id WHERE a.alias = 'champion'";
    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let runs = |batches: &[RecordBatch]| batches.iter().map(RecordBatch::num_rows).sum::<usize>();
    let first = collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
    // m01 (2 versions, 4 runs) becomes a champion too.
    rows(
        &ctx,
        "INSERT INTO jammi.public.model_aliases (model_id, alias, version) VALUES ('m01', 'champion', 1)",
    )
    .await;
    let again = reset_plan_states(plan).unwrap();
    let second = collect(again, ctx.task_ctx()).await.unwrap();
    assert_eq!(runs(&second), runs(&first) + 4);
}

backend_tests!(
    a_join_of_catalog_tables_is_sent_whole,
    a_plan_run_again_after_a_reset_reads_todays_keys,
    random_joins_answer_as_in_datafusion_alone,
    a_selective_join_fetches_the_rows_it_needs,
    a_users_table_pushes_its_keys_into_the_scan,
);
