//! Plans with catalog tables, scans, INSERT and functions, planned in a session that ships
//! its plans, encoded to bytes by the codecs and decoded in a session that has no catalog
//! of its own: they run to the same rows, act for the scope and access level they were
//! planned with, and nothing that cannot travel is encoded.

use std::sync::Arc;

use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use jammi_ballista::{JammiLogicalCodec, JammiPhysicalCodec, ProcessStores};
use jammi_catalog::sql::wire::Stores;
use jammi_catalog::{Access, Catalog};
use jammi_testkit::fixture::{populate, tenant_a, tenant_b};
use jammi_testkit::{TestDb, backend_tests, cells};

use super::{local_session, permission_denied, rows, shipping_session};

const MODELS: &str = "SELECT model_id, version, base_model_id FROM jammi.public.models \
                      WHERE model_type = 'embedding' ORDER BY model_id, version";

/// `sql` planned in a shipping session of `catalog`, its optimized logical plan carried as
/// bytes and run in a session with no catalog.
async fn run_logical(catalog: &Catalog, sql: &str) -> datafusion::error::Result<Vec<Vec<String>>> {
    ship_logical(&shipping_session(catalog), sql).await
}

/// `sql` planned in `ctx`, its optimized logical plan carried as bytes and run in a session
/// with no catalog.
async fn ship_logical(
    ctx: &SessionContext,
    sql: &str,
) -> datafusion::error::Result<Vec<Vec<String>>> {
    let planned = ctx.sql(sql).await?.into_optimized_plan()?;
    let bytes =
        logical_plan_to_bytes_with_extension_codec(&planned, &JammiLogicalCodec::default())?;
    let elsewhere = SessionContext::new();
    let decoded = logical_plan_from_bytes_with_extension_codec(
        &bytes,
        &elsewhere.task_ctx(),
        &JammiLogicalCodec::default(),
    )?;
    let batches = elsewhere
        .execute_logical_plan(decoded)
        .await?
        .collect()
        .await?;
    Ok(cells(&batches))
}

/// `sql` planned physically in a shipping session of `catalog`, carried as bytes and run in
/// a session with no catalog.
async fn run_physical(catalog: &Catalog, sql: &str) -> datafusion::error::Result<Vec<Vec<String>>> {
    let planned = shipping_session(catalog)
        .sql(sql)
        .await?
        .create_physical_plan()
        .await?;
    let bytes =
        physical_plan_to_bytes_with_extension_codec(planned, &JammiPhysicalCodec::default())?;
    let elsewhere = SessionContext::new();
    let decoded = physical_plan_from_bytes_with_extension_codec(
        &bytes,
        &elsewhere.task_ctx(),
        &JammiPhysicalCodec::default(),
    )?;
    Ok(cells(&collect(decoded, elsewhere.task_ctx()).await?))
}

async fn scans_travel_with_their_scope(db: &TestDb) {
    populate(&db.catalog).await;
    for tenant in [tenant_a(), tenant_b()] {
        let catalog = db.scoped(tenant);
        let here = rows(&local_session(&catalog), MODELS).await;
        assert!(!here.is_empty());
        assert_eq!(run_logical(&catalog, MODELS).await.unwrap(), here);
        assert_eq!(run_physical(&catalog, MODELS).await.unwrap(), here);
    }
    // The other tenant's rows never appear, whatever session decodes the plan.
    let a = run_physical(&db.scoped(tenant_a()), MODELS).await.unwrap();
    assert!(a.iter().all(|r| !r[0].starts_with("b-")), "{a:?}");
    assert!(a.iter().any(|r| r[0].starts_with("a-")), "{a:?}");
    // A filter and an aggregate over the scan.
    let sql =
        "SELECT eval_type, count(*) FROM jammi.public.eval_runs GROUP BY eval_type ORDER BY 1";
    let a = db.scoped(tenant_a());
    assert_eq!(
        run_physical(&a, sql).await.unwrap(),
        rows(&local_session(&a), sql).await
    );
}

async fn writes_travel_with_their_grant(db: &TestDb) {
    populate(&db.catalog).await;
    let a = db.scoped(tenant_a());
    let inserted = run_logical(
        &a,
        "INSERT INTO jammi.public.eval_runs (run_id, model_id, eval_type, metrics) \
         VALUES ('wired-1', 'a-embed', 'retrieval', '{\"ndcg\": 0.5}')",
    )
    .await
    .unwrap();
    assert_eq!(inserted, vec![vec!["1"]]);
    let inserted = run_physical(
        &a,
        "INSERT INTO jammi.public.eval_runs (run_id, model_id, eval_type, metrics) \
         VALUES ('wired-2', 'a-embed', 'retrieval', '{}')",
    )
    .await
    .unwrap();
    assert_eq!(inserted, vec![vec!["1"]]);
    let registered = run_physical(
        &a,
        "SELECT register_model('wired', NULL, 'embedding', 'candle', 'text_embedding')",
    )
    .await
    .unwrap();
    assert_eq!(registered, vec![vec!["1"]]);
    let registered = run_logical(
        &a,
        "SELECT register_model('wired', NULL, 'embedding', 'candle', 'text_embedding')",
    )
    .await
    .unwrap();
    assert_eq!(registered, vec![vec!["2"]]);
    // Written in tenant A's scope, and only there.
    let runs = "SELECT run_id, model_version FROM jammi.public.eval_runs WHERE run_id LIKE 'wired%' ORDER BY 1";
    assert_eq!(
        rows(&local_session(&a), runs).await,
        vec![vec!["wired-1", "2"], vec!["wired-2", "2"]]
    );
    assert!(
        rows(&local_session(&db.scoped(tenant_b())), runs)
            .await
            .is_empty()
    );
    let wired = "SELECT version FROM jammi.public.models WHERE model_id = 'wired' ORDER BY 1";
    assert_eq!(
        rows(&local_session(&a), wired).await,
        vec![vec!["1"], vec!["2"]]
    );
    assert!(rows(&local_session(&db.global()), wired).await.is_empty());
}

async fn decoding_never_widens_the_grant(db: &TestDb) {
    populate(&db.catalog).await;
    let reader = db.scoped(tenant_a()).narrowed(Access::Read);
    let register =
        "SELECT register_model('not-written', NULL, 'embedding', 'candle', 'text_embedding')";
    for outcome in [
        run_physical(&reader, register).await,
        run_logical(&reader, register).await,
    ] {
        let err = outcome.unwrap_err().to_string();
        assert!(permission_denied(&err), "{err}");
    }
    let err = run_physical(
        &reader,
        "INSERT INTO jammi.public.eval_runs (run_id, model_id, eval_type, metrics) \
         VALUES ('not-written', 'a-embed', 'retrieval', '{}')",
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(permission_denied(&err), "{err}");
    let a = db.scoped(tenant_a());
    assert!(
        rows(
            &local_session(&a),
            "SELECT model_id FROM jammi.public.models WHERE model_id = 'not-written' \
             UNION ALL SELECT run_id FROM jammi.public.eval_runs WHERE run_id = 'not-written'"
        )
        .await
        .is_empty()
    );
    // A plan of tenant A's, decoded in a session bound to tenant B, still reads A's rows.
    let planned = shipping_session(&a)
        .sql(MODELS)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let bytes =
        physical_plan_to_bytes_with_extension_codec(planned, &JammiPhysicalCodec::default())
            .unwrap();
    let b_session = shipping_session(&db.scoped(tenant_b()));
    let decoded = physical_plan_from_bytes_with_extension_codec(
        &bytes,
        &b_session.task_ctx(),
        &JammiPhysicalCodec::default(),
    )
    .unwrap();
    let read = cells(&collect(decoded, b_session.task_ctx()).await.unwrap());
    assert_eq!(read, rows(&local_session(&a), MODELS).await);
}

async fn what_cannot_travel_is_refused(db: &TestDb) {
    populate(&db.catalog).await;
    let a = db.scoped(tenant_a());
    // DELETE: refused while a shipping session plans it, and its plan never encoded.
    let delete = "DELETE FROM jammi.public.eval_runs WHERE run_id = 'a-run'";
    let err = shipping_session(&a)
        .sql(delete)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot run on a distributed engine"), "{err}");
    let planned = local_session(&a)
        .sql(delete)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let err = physical_plan_to_bytes_with_extension_codec(planned, &JammiPhysicalCodec::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("DELETE FROM a jammi table cannot run"),
        "{err}"
    );
    // A join sent whole to the database (a session that did not turn the pushdown off).
    let joined = "SELECT m.model_id, e.run_id FROM jammi.public.models m \
                  JOIN jammi.public.eval_runs e ON e.model_id = m.model_id";
    let planned = local_session(&a)
        .sql(joined)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let err = physical_plan_to_bytes_with_extension_codec(planned, &JammiPhysicalCodec::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("jammi.join_pushdown = false"), "{err}");
    // A session that does not bind its plans: its tables act for it, and do not travel.
    let planned = local_session(&a)
        .sql(MODELS)
        .await
        .unwrap()
        .into_optimized_plan()
        .unwrap();
    let err = logical_plan_to_bytes_with_extension_codec(&planned, &JammiLogicalCodec::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("must bind its plans first"), "{err}");
    // Nothing was deleted.
    let left = "SELECT count(*) FROM jammi.public.eval_runs WHERE run_id = 'a-run'";
    assert_eq!(rows(&local_session(&a), left).await, vec![vec!["1"]]);
}

async fn a_decoded_insert_is_checked_where_it_runs(db: &TestDb) {
    populate(&db.catalog).await;
    let a = db.scoped(tenant_a());
    let insert = "INSERT INTO jammi.public.eval_runs (run_id, model_id, eval_type, metrics) \
                  VALUES ('tampered', 'a-embed', 'retrieval', '{}')";
    let planned = shipping_session(&a)
        .sql(insert)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let bytes =
        physical_plan_to_bytes_with_extension_codec(planned, &JammiPhysicalCodec::default())
            .unwrap()
            .to_vec();
    // The sink's grant lowered to read in the bytes (same length, so the frame still
    // parses): the sink's decoding checks INSERT's level again and refuses it.
    let (from, to) = (br#""access":"admin""#, br#""access":"read" "#);
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the sink's grant in the bytes");
    let mut tampered = bytes.clone();
    tampered[at..at + from.len()].copy_from_slice(to);
    let elsewhere = SessionContext::new();
    let err = physical_plan_from_bytes_with_extension_codec(
        &tampered,
        &elsewhere.task_ctx(),
        &JammiPhysicalCodec::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(permission_denied(&err), "{err}");
    let written = "SELECT run_id FROM jammi.public.eval_runs WHERE run_id = 'tampered'";
    assert!(rows(&local_session(&a), written).await.is_empty());
}

async fn a_rebound_session_ships_its_new_grant(db: &TestDb) {
    populate(&db.catalog).await;
    let ctx = shipping_session(&db.scoped(tenant_a()));
    jammi_ballista::register(&ctx, &db.scoped(tenant_b()).narrowed(Access::Read)).unwrap();
    let b = rows(&local_session(&db.scoped(tenant_b())), MODELS).await;
    assert_eq!(ship_logical(&ctx, MODELS).await.unwrap(), b);
    let err = ship_logical(
        &ctx,
        "SELECT register_model('rebound', NULL, 'embedding', 'candle', 'text_embedding')",
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(permission_denied(&err), "{err}");
}

backend_tests!(
    scans_travel_with_their_scope,
    writes_travel_with_their_grant,
    decoding_never_widens_the_grant,
    a_rebound_session_ships_its_new_grant,
    a_decoded_insert_is_checked_where_it_runs,
    what_cannot_travel_is_refused,
);

#[tokio::test]
async fn an_in_memory_catalog_does_not_travel() {
    let catalog = Catalog::open("sqlite::memory:").await.unwrap();
    let planned = shipping_session(&catalog)
        .sql(MODELS)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let err = physical_plan_to_bytes_with_extension_codec(planned, &JammiPhysicalCodec::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("in-memory catalog"), "{err}");
}

#[tokio::test]
async fn a_database_password_is_never_shown() {
    // Served, its plans name it without the password; a failed connect does not show it.
    let url = "postgres://jammi:s3cret-pw@127.0.0.1:1/catalog";
    ProcessStores::serve(url).unwrap();
    let named = jammi_catalog::store::redacted_url(url);
    assert_eq!(named, "postgres://jammi:***@127.0.0.1:1/catalog");
    let err = ProcessStores.store(&named).unwrap_err().to_string();
    assert!(!err.contains("s3cret-pw"), "{err}");
    // A database no one served is refused, by its redacted name.
    let err = ProcessStores
        .store("postgres://jammi:***@elsewhere/catalog")
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not serve"), "{err}");
    // Nor does a URL the catalog cannot open (an unknown scheme) show it.
    for url in [
        "POSTGRES-X://jammi:s3cret-pw@db/catalog",
        "mysql://jammi:s3cret-pw@db/catalog",
    ] {
        let err = Catalog::open(url).await.unwrap_err().to_string();
        assert!(!err.contains("s3cret-pw") && err.contains("***"), "{err}");
    }
    // Nor in a decoded plan's text or debug form: they show its SQL, not its database.
    let db = TestDb::sqlite().await;
    let a = db.scoped(tenant_a());
    let planned = shipping_session(&a)
        .sql(MODELS)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let bytes =
        physical_plan_to_bytes_with_extension_codec(planned, &JammiPhysicalCodec::default())
            .unwrap();
    let elsewhere = SessionContext::new();
    let decoded: Arc<dyn datafusion::physical_plan::ExecutionPlan> =
        physical_plan_from_bytes_with_extension_codec(
            &bytes,
            &elsewhere.task_ctx(),
            &JammiPhysicalCodec::default(),
        )
        .unwrap();
    let path = db.url.trim_start_matches("sqlite://");
    let shown = datafusion::physical_plan::displayable(decoded.as_ref())
        .indent(true)
        .to_string();
    assert!(shown.contains("JammiScanExec"), "{shown}");
    assert!(!shown.contains(path), "{shown}");
    assert!(!format!("{decoded:?}").contains(path));
    db.cleanup().await;
}
