//! Concurrent writers, claimers and cancelled callers (SPEC §10), on both backends.

use std::collections::BTreeSet;
use std::time::Duration;

use jammi_catalog::{
    CatalogError, ModelTask, NewEvalRun, NewResultTable, NewTrainingJob, RegisterModel,
    ResultTableStatus, TenantId,
};

use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;

fn model(name: &str) -> RegisterModel {
    RegisterModel::new(name, "embedding", "candle", ModelTask::TextEmbedding)
}

async fn registers_racing_deletes_never_orphan_a_reference(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    for _ in 0..15 {
        t.register_model(model("contested")).await.unwrap();
    }
    let deleter = {
        let t = t.clone();
        tokio::spawn(async move {
            let mut deleted = 0;
            for _ in 0..15 {
                match t.delete_model("contested", None, true).await {
                    Ok(true) => deleted += 1,
                    Ok(false) | Err(CatalogError::ModelReferenced { .. }) => {}
                    Err(e) => panic!("delete failed: {e}"),
                }
                tokio::task::yield_now().await;
            }
            deleted
        })
    };
    let referrer = {
        let t = t.clone();
        tokio::spawn(async move {
            let mut made = 0;
            for i in 0..5 {
                let table = NewResultTable {
                    table_name: format!("out-{i}"),
                    source_id: "s".into(),
                    model_id: "contested".into(),
                    task: ModelTask::TextEmbedding,
                    parquet_path: "/p".into(),
                    row_count: None,
                    status: ResultTableStatus::Building,
                };
                t.create_result_table(table)
                    .await
                    .expect("no error surfaces");
                match t
                    .create_eval_run(NewEvalRun::new("contested", "r", "{}"))
                    .await
                {
                    Ok(_) => made += 1,
                    Err(CatalogError::ModelNotFound { .. }) => {}
                    Err(e) => panic!("eval run failed: {e}"),
                }
            }
            made
        })
    };
    let registrar = {
        let t = t.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                t.register_model(model("contested"))
                    .await
                    .expect("no error surfaces");
            }
        })
    };
    let (deleted, _runs, ()) = (
        deleter.await.unwrap(),
        referrer.await.unwrap(),
        registrar.await.unwrap(),
    );

    let versions: BTreeSet<i32> = t
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.model_id == "contested")
        .map(|m| m.version)
        .collect();
    // Result tables reference the name: the last version can never have gone.
    assert!(!t.list_result_tables().await.unwrap().is_empty());
    assert!(
        !versions.is_empty(),
        "all versions deleted while referenced (deleted {deleted})"
    );
    // Eval runs reference a key: each one's model row exists.
    for run in t.list_eval_runs().await.unwrap() {
        assert!(
            versions.contains(&run.model_version.unwrap()),
            "orphaned eval run {run:?}"
        );
    }
}

async fn concurrent_claimers_each_job_has_exactly_one_owner(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    t.register_model(model("base")).await.unwrap();
    for i in 0..40 {
        t.create_training_job(NewTrainingJob {
            job_id: Some(format!("job-{i:02}")),
            ..NewTrainingJob::new("base", "out", "s", "l", "{}")
        })
        .await
        .unwrap();
    }
    let mut workers = Vec::new();
    for w in 0..8 {
        let t = t.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = t
                .claim_next_training_job(&format!("worker-{w}"), Duration::from_secs(60))
                .await
                .expect("no error surfaces")
            {
                mine.push(job.job_id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.await.unwrap());
    }
    claimed.sort();
    let expected: Vec<String> = (0..40).map(|i| format!("job-{i:02}")).collect();
    assert_eq!(claimed, expected, "a job was claimed twice or not at all");
    for job in t.list_training_jobs().await.unwrap() {
        assert_eq!(job.attempts, 1, "{}", job.job_id);
    }
}

async fn claims_racing_reclaims_complete_each_job_exactly_once(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    t.register_model(model("base")).await.unwrap();
    t.register_model(model("out").version(1)).await.unwrap();
    for i in 0..12 {
        t.create_training_job(NewTrainingJob {
            job_id: Some(format!("job-{i:02}")),
            ..NewTrainingJob::new("base", "out", "s", "l", "{}")
        })
        .await
        .unwrap();
    }
    let reclaimer = {
        let t = t.clone();
        tokio::spawn(async move {
            let mut reclaimed = 0;
            for _ in 0..400 {
                reclaimed += t
                    .reclaim_expired_training_jobs(1_000)
                    .await
                    .expect("no error surfaces");
                if t.list_training_jobs()
                    .await
                    .unwrap()
                    .iter()
                    .all(|j| j.status == jammi_catalog::JobStatus::Completed)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            reclaimed
        })
    };
    let mut workers = Vec::new();
    for w in 0..6u64 {
        let t = t.clone();
        workers.push(tokio::spawn(async move {
            let mut finished = Vec::new();
            for round in 0..400u64 {
                // Leases from 1 to 8 ms, work from 0 to 5 ms: many leases expire mid-work.
                let lease = Duration::from_millis(1 + (w + round) % 8);
                let Some(job) = t
                    .claim_next_training_job(&format!("w{w}"), lease)
                    .await
                    .expect("claim")
                else {
                    if t.list_training_jobs()
                        .await
                        .unwrap()
                        .iter()
                        .all(|j| j.status == jammi_catalog::JobStatus::Completed)
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                };
                tokio::time::sleep(Duration::from_millis((w * 3 + round) % 6)).await;
                if t.finalize_training_job(&job.job_id, &format!("w{w}"), "out", 1, "/w", None)
                    .await
                    .expect("finalize")
                {
                    finished.push(job.job_id);
                }
            }
            finished
        }));
    }
    let mut finished = Vec::new();
    for worker in workers {
        finished.extend(worker.await.unwrap());
    }
    let reclaimed = reclaimer.await.unwrap();
    eprintln!("reclaimed {reclaimed} expired leases");
    finished.sort();
    let expected: Vec<String> = (0..12).map(|i| format!("job-{i:02}")).collect();
    assert_eq!(
        finished, expected,
        "a job was finalized twice or never (reclaimed {reclaimed})"
    );
}

/// Eight deleters of the latest version of one model conflict on Postgres (serializable
/// transactions reading and deleting the same rows); every conflict is retried, none
/// reaches a caller, and every version is deleted exactly once.
async fn conflicting_deletes_are_retried_invisibly_and_counted(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    for _ in 0..80 {
        t.register_model(model("hot")).await.unwrap();
    }
    let retries_before = t.store().stats().retries();
    let mut deleters = Vec::new();
    for _ in 0..8 {
        let t = t.clone();
        deleters.push(tokio::spawn(async move {
            for _ in 0..10 {
                assert!(
                    t.delete_model("hot", None, false)
                        .await
                        .expect("no conflict surfaces")
                );
            }
        }));
    }
    for d in deleters {
        d.await.unwrap();
    }
    assert!(t.list_models().await.unwrap().is_empty());
    let retries = t.store().stats().retries() - retries_before;
    eprintln!(
        "{:?}: 80 conflicting deletes, {retries} retries",
        t.store().backend()
    );
}

async fn cancelled_callers_do_not_poison_the_pool(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    let mut finished = 0;
    for i in 0..60u64 {
        // Cancel registrations at every point of their transaction.
        let budget = Duration::from_micros(50 * (i % 20));
        if tokio::time::timeout(budget, t.register_model(model("cancelled")))
            .await
            .is_ok()
        {
            finished += 1;
        }
    }
    // Every later call works, and what was cancelled left nothing half-written.
    let next = t
        .register_model(model("cancelled"))
        .await
        .expect("pool still usable");
    let versions: Vec<i32> = t
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(
        versions.len() as i32,
        next.version,
        "versions {versions:?} after {finished} finished"
    );
    assert_eq!(versions, (1..=next.version).collect::<Vec<_>>());
}

backend_tests!(
    registers_racing_deletes_never_orphan_a_reference,
    concurrent_claimers_each_job_has_exactly_one_owner,
    claims_racing_reclaims_complete_each_job_exactly_once,
    conflicting_deletes_are_retried_invisibly_and_counted,
    cancelled_callers_do_not_poison_the_pool,
);
