use std::time::Duration;

use jammi_catalog::{
    Catalog, CatalogError, JobStatus, ModelTask, NewTrainingJob, RegisterModel, TenantId,
};

use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;

const LEASE: Duration = Duration::from_secs(60);

async fn with_base(catalog: &Catalog) {
    catalog
        .register_model(RegisterModel::new(
            "base",
            "embedding",
            "candle",
            ModelTask::TextEmbedding,
        ))
        .await
        .unwrap();
}

fn job(id: &str) -> NewTrainingJob {
    NewTrainingJob {
        job_id: Some(id.into()),
        ..NewTrainingJob::new(
            "base",
            "tuned",
            "s3://data",
            "contrastive",
            r#"{"lr":0.001}"#,
        )
    }
}

async fn create_resolves_the_base_model_by_the_get_rule(db: &TestDb) {
    let t = TenantId::random();
    db.global()
        .register_model(
            RegisterModel::new("base", "embedding", "candle", ModelTask::TextEmbedding).version(4),
        )
        .await
        .unwrap();
    let created = db.scoped(t).create_training_job(job("j1")).await.unwrap();
    assert_eq!(
        (created.base_model_id.as_str(), created.base_model_version),
        ("base", 4)
    );
    assert_eq!(created.status, JobStatus::Queued);
    assert_eq!(created.tenant_id, Some(t));
    assert_eq!(created.attempts, 0);

    let err = db
        .scoped(t)
        .create_training_job(NewTrainingJob {
            base_model_id: "missing".into(),
            ..job("j2")
        })
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::ModelNotFound { .. }), "{err}");
    let err = db
        .scoped(t)
        .create_training_job(job("j1"))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::AlreadyExists { .. }), "{err}");
    // Another tenant can use the same id: ids are per owner.
    db.scoped(TenantId::random())
        .create_training_job(job("j1"))
        .await
        .unwrap();
    assert_eq!(db.scoped(t).list_training_jobs().await.unwrap().len(), 1);
}

async fn generated_job_ids_are_unique(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    with_base(&t).await;
    let spec = NewTrainingJob::new("base", "tuned", "s3://data", "mse", "{}");
    let a = t.create_training_job(spec.clone()).await.unwrap();
    let b = t.create_training_job(spec).await.unwrap();
    assert_ne!(a.job_id, b.job_id);
    assert_eq!(t.get_training_job(&a.job_id).await.unwrap(), a);
}

async fn claims_take_the_oldest_queued_job_of_the_own_scope(db: &TestDb) {
    let (a, b) = (db.scoped(TenantId::random()), db.scoped(TenantId::random()));
    with_base(&a).await;
    with_base(&b).await;
    a.create_training_job(job("first")).await.unwrap();
    a.create_training_job(job("second")).await.unwrap();
    b.create_training_job(job("other-tenant")).await.unwrap();

    let claimed = a
        .claim_next_training_job("w1", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.job_id, "first");
    assert_eq!(claimed.status, JobStatus::Running);
    assert_eq!(claimed.claimed_by.as_deref(), Some("w1"));
    assert_eq!(claimed.attempts, 1);
    assert!(claimed.lease_expires_at.unwrap() > claimed.updated_at);
    assert_eq!(
        a.claim_next_training_job("w1", LEASE)
            .await
            .unwrap()
            .unwrap()
            .job_id,
        "second"
    );
    assert!(
        a.claim_next_training_job("w1", LEASE)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db.global()
            .claim_next_training_job("w1", LEASE)
            .await
            .unwrap(),
        None
    );
}

async fn two_concurrent_claims_have_exactly_one_winner(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    with_base(&t).await;
    for round in 0..10 {
        t.create_training_job(job(&format!("job-{round}")))
            .await
            .unwrap();
        let (x, y) = tokio::join!(
            t.claim_next_training_job("worker-x", LEASE),
            t.claim_next_training_job("worker-y", LEASE)
        );
        let winners = [x.unwrap(), y.unwrap()].into_iter().flatten().count();
        assert_eq!(winners, 1, "round {round}");
    }
}

async fn heartbeat_and_fail_need_the_lease(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    with_base(&t).await;
    t.create_training_job(job("j")).await.unwrap();
    let claimed = t
        .claim_next_training_job("w1", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert!(
        t.heartbeat_training_job("j", "w1", LEASE * 2)
            .await
            .unwrap()
    );
    assert!(t.get_training_job("j").await.unwrap().lease_expires_at > claimed.lease_expires_at);
    assert!(
        !t.heartbeat_training_job("j", "intruder", LEASE)
            .await
            .unwrap()
    );
    assert!(!t.fail_training_job("j", "intruder", "boom").await.unwrap());
    assert!(
        t.fail_training_job("j", "w1", "out of memory")
            .await
            .unwrap()
    );
    let failed = t.get_training_job("j").await.unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("out of memory"));
    assert!(!t.heartbeat_training_job("j", "w1", LEASE).await.unwrap());
}

async fn reclaim_requeues_expired_leases_then_fails_when_attempts_run_out(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    with_base(&t).await;
    t.create_training_job(job("j")).await.unwrap();
    let short = Duration::from_millis(1);

    t.claim_next_training_job("w1", short)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(t.reclaim_expired_training_jobs(2).await.unwrap(), 1);
    let requeued = t.get_training_job("j").await.unwrap();
    assert_eq!(
        (requeued.status, requeued.claimed_by),
        (JobStatus::Queued, None)
    );

    t.claim_next_training_job("w2", short)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(t.reclaim_expired_training_jobs(2).await.unwrap(), 1);
    let failed = t.get_training_job("j").await.unwrap();
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 2));

    // A live lease is left alone.
    t.create_training_job(job("live")).await.unwrap();
    t.claim_next_training_job("w3", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.reclaim_expired_training_jobs(5).await.unwrap(), 0);
}

async fn finalize_writes_the_path_to_the_owners_output_row(db: &TestDb) {
    let (owner, other) = (TenantId::random(), TenantId::random());
    let t = db.scoped(owner);
    with_base(&t).await;
    let output = |c: &Catalog| {
        let c = c.clone();
        async move {
            c.register_model(
                RegisterModel::new("tuned", "embedding", "candle", ModelTask::TextEmbedding)
                    .version(1),
            )
            .await
            .unwrap()
        }
    };
    output(&t).await;
    output(&db.scoped(other)).await;
    output(&db.global()).await;
    t.create_training_job(job("j")).await.unwrap();
    t.claim_next_training_job("w1", LEASE)
        .await
        .unwrap()
        .unwrap();

    assert!(
        t.finalize_training_job(
            "j",
            "w1",
            "tuned",
            1,
            "/weights/tuned-1",
            Some(r#"{"loss":0.1}"#)
        )
        .await
        .unwrap()
    );
    let done = t.get_training_job("j").await.unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.metrics.as_deref(), Some(r#"{"loss":0.1}"#));
    assert_eq!(done.output_version, Some(1));
    assert_eq!(
        t.get_model("tuned").await.unwrap().artifact_path.as_deref(),
        Some("/weights/tuned-1")
    );
    assert_eq!(
        db.scoped(other)
            .get_model("tuned")
            .await
            .unwrap()
            .artifact_path,
        None
    );
    assert_eq!(
        db.global().get_model("tuned").await.unwrap().artifact_path,
        None
    );
    // Completed: a second finalize is a lost compare-and-set.
    assert!(
        !t.finalize_training_job("j", "w1", "tuned", 1, "/again", None)
            .await
            .unwrap()
    );
}

async fn finalize_after_losing_the_lease_writes_nothing(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    with_base(&t).await;
    t.register_model(
        RegisterModel::new("tuned", "embedding", "candle", ModelTask::TextEmbedding).version(1),
    )
    .await
    .unwrap();
    t.create_training_job(job("j")).await.unwrap();
    t.claim_next_training_job("slow", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(t.reclaim_expired_training_jobs(3).await.unwrap(), 1);
    t.claim_next_training_job("fast", LEASE)
        .await
        .unwrap()
        .unwrap();

    assert!(
        !t.finalize_training_job("j", "slow", "tuned", 1, "/stale", None)
            .await
            .unwrap()
    );
    let job = t.get_training_job("j").await.unwrap();
    assert_eq!(
        (job.status, job.claimed_by.as_deref()),
        (JobStatus::Running, Some("fast"))
    );
    assert_eq!(t.get_model("tuned").await.unwrap().artifact_path, None);

    assert!(
        t.finalize_training_job("j", "fast", "tuned", 1, "/fresh", None)
            .await
            .unwrap()
    );
    assert_eq!(
        t.get_model("tuned").await.unwrap().artifact_path.as_deref(),
        Some("/fresh")
    );
}

async fn finalize_without_the_output_row_changes_nothing(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    with_base(&t).await;
    t.create_training_job(job("j")).await.unwrap();
    t.claim_next_training_job("w", LEASE)
        .await
        .unwrap()
        .unwrap();
    let err = t
        .finalize_training_job("j", "w", "never-registered", 1, "/p", None)
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::ModelNotFound { .. }), "{err}");
    assert_eq!(
        t.get_training_job("j").await.unwrap().status,
        JobStatus::Running
    );
}

async fn jobs_are_deleted_only_by_their_owner(db: &TestDb) {
    let (a, b) = (db.scoped(TenantId::random()), db.scoped(TenantId::random()));
    with_base(&db.global()).await;
    a.create_training_job(job("j")).await.unwrap();
    let err = b.delete_training_job("j").await.unwrap_err();
    assert!(matches!(err, CatalogError::NotFound { .. }), "{err}");
    assert!(db.global().delete_training_job("j").await.is_err());
    a.delete_training_job("j").await.unwrap();
    assert!(a.get_training_job("j").await.is_err());
}

backend_tests!(
    create_resolves_the_base_model_by_the_get_rule,
    generated_job_ids_are_unique,
    claims_take_the_oldest_queued_job_of_the_own_scope,
    two_concurrent_claims_have_exactly_one_winner,
    heartbeat_and_fail_need_the_lease,
    reclaim_requeues_expired_leases_then_fails_when_attempts_run_out,
    finalize_writes_the_path_to_the_owners_output_row,
    finalize_after_losing_the_lease_writes_nothing,
    finalize_without_the_output_row_changes_nothing,
    jobs_are_deleted_only_by_their_owner,
);
