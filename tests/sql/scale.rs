//! A selective query stays selective on a large catalog (SPEC §6, §10).

use jammi_catalog::fixtures::{generate_models, model_name, tenant};

use crate::backend_tests;
use crate::common::TestDb;
use crate::{rows, rows_fetched, session};

async fn point_query_on_a_million_rows_fetches_only_the_matches(db: &TestDb) {
    generate_models(&db.catalog, 1_000_000, 1_000)
        .await
        .unwrap();
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

backend_tests!(point_query_on_a_million_rows_fetches_only_the_matches);
