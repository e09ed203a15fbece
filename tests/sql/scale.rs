//! Large catalogs: a selective query stays selective (SPEC §6, §10), and scans of many
//! rows stop when their consumer does.

use jammi_testkit::generate::{generate_models, model_name, tenant};

use crate::{rows, rows_fetched, session};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;

async fn point_query_on_a_million_rows_fetches_only_the_matches(db: &TestDb) {
    generate_models(&db.catalog, 1_000_000, 1_000).await;
    let name = model_name(417);
    let ctx = session(&db.scoped(tenant(42)));
    let sql = format!(
        "SELECT model_id, version, tenant_id FROM jammi.public.models WHERE model_id = '{name}'"
    );
    assert_eq!(rows_fetched(&ctx, &sql).await, 1);
    assert_eq!(
        rows(&ctx, &sql).await,
        vec![vec![name, "1".into(), tenant(42).to_string()]]
    );
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM jammi.public.models").await,
        vec![vec!["1000"]]
    );
}

/// A scan dropped after its first batch (its producer blocked on a full channel) must stop
/// and give its pooled connection back: more dropped scans than the pool has connections,
/// then a full query still gets one (a leak would end in a pool timeout).
async fn dropped_scans_give_their_connection_back(db: &TestDb) {
    use futures::StreamExt;
    generate_models(&db.catalog, 30_000, 1).await;
    let ctx = session(&db.scoped(tenant(0)));
    for _ in 0..20 {
        let mut stream = ctx
            .sql("SELECT * FROM jammi.public.models")
            .await
            .unwrap()
            .execute_stream()
            .await
            .unwrap();
        let first = stream.next().await.unwrap().unwrap();
        assert!(first.num_rows() > 0);
    }
    assert_eq!(
        rows(&ctx, "SELECT count(*) FROM jammi.public.models").await,
        vec![vec!["30000"]]
    );
}

backend_tests!(
    point_query_on_a_million_rows_fetches_only_the_matches,
    dropped_scans_give_their_connection_back
);
