use jammi_catalog::{Catalog, ModelTask, RegisterModel, TenantId};

use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;

async fn migrations_are_idempotent_across_reopen(db: &TestDb) {
    let t = TenantId::random();
    db.scoped(t)
        .register_model(RegisterModel::new(
            "m",
            "embedding",
            "candle",
            ModelTask::TextEmbedding,
        ))
        .await
        .unwrap();
    for _ in 0..2 {
        let reopened = Catalog::open(&db.url)
            .await
            .expect("reopen migrates nothing twice");
        let models = reopened.with_scope(Some(t)).list_models().await.unwrap();
        assert_eq!(models.len(), 1);
        reopened.store().close().await;
    }
}

async fn concurrent_opens_of_a_new_database_all_succeed(db: &TestDb) {
    // Opening runs the migrations again; several at once must agree on the ledger.
    let opens = (0..4).map(|_| Catalog::open(&db.url));
    for catalog in futures::future::join_all(opens).await {
        let catalog = catalog.expect("open");
        assert!(catalog.list_models().await.unwrap().is_empty());
        catalog.store().close().await;
    }
}

backend_tests!(
    migrations_are_idempotent_across_reopen,
    concurrent_opens_of_a_new_database_all_succeed
);
