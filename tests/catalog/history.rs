//! Aliases, tags, the event log and time travel (SPEC §13), on both backends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jammi_catalog::{
    Backend, Catalog, CatalogError, Event, EventKind, ModelTask, NewEvalRun, NewResultTable,
    NewTrainingJob, RegisterModel, ResultTableStatus, TenantId,
};
use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::rng::Rng;
use serde::de::DeserializeOwned;
use sqlx::Connection;

fn model(name: &str) -> RegisterModel {
    RegisterModel::new(name, "embedding", "candle", ModelTask::TextEmbedding)
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn of_kind(events: &[Event], kind: EventKind) -> Vec<&Event> {
    events.iter().filter(|e| e.kind == kind).collect()
}

async fn eight_concurrent_movers_leave_one_alias_and_one_event_per_move(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    for _ in 0..8 {
        t.register_model(model("m")).await.unwrap();
    }
    let movers: Vec<_> = (1..=8)
        .map(|version| {
            let t = t.clone();
            tokio::spawn(async move { t.set_model_alias("m", "champion", version).await })
        })
        .collect();
    for mover in movers {
        assert!(mover.await.unwrap().expect("no error reaches a mover"));
    }
    let events = t.list_events().await.unwrap();
    let moves = of_kind(&events, EventKind::AliasSet);
    assert_eq!(moves.len(), 8, "one event per move");
    let moved_to: BTreeSet<i32> = moves.iter().map(|e| e.version.unwrap()).collect();
    assert_eq!(moved_to, (1..=8).collect(), "each mover's version once");
    // The alias ends on the version of the last move the log records.
    let last = moves.iter().max_by_key(|e| e.event_id).unwrap();
    let aliases = t.list_model_aliases().await.unwrap();
    assert_eq!(aliases.len(), 1);
    assert_eq!(Some(aliases[0].version), last.version);
    assert_eq!(
        t.resolve_model_alias("m", "champion")
            .await
            .unwrap()
            .version,
        aliases[0].version
    );
    // Setting it where it already points changes nothing, and records nothing.
    assert!(
        !t.set_model_alias("m", "champion", aliases[0].version)
            .await
            .unwrap()
    );
    assert_eq!(t.list_events().await.unwrap().len(), events.len());
}

async fn an_aliased_version_cannot_be_deleted_until_the_alias_moves(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    t.register_model(model("m")).await.unwrap();
    t.register_model(model("m")).await.unwrap();
    t.set_model_alias("m", "champion", 1).await.unwrap();
    let refused = t.delete_model("m", Some(1), false).await.unwrap_err();
    match &refused {
        CatalogError::ModelReferenced { edges, version, .. } => {
            assert_eq!(*version, 1);
            assert_eq!(edges, &vec!["model_aliases.model_key"]);
        }
        other => panic!("expected referenced, got {other:?}"),
    }
    assert!(refused.to_string().contains("model_aliases"), "{refused}");
    t.set_model_alias("m", "champion", 2).await.unwrap();
    assert!(t.delete_model("m", Some(1), false).await.unwrap());
    assert!(matches!(
        t.delete_model("m", None, false).await,
        Err(CatalogError::ModelReferenced { .. })
    ));
    assert!(t.remove_model_alias("m", "champion").await.unwrap());
    assert!(t.delete_model("m", None, false).await.unwrap());

    // A tenant's alias on a global version keeps the global version too.
    let global = db.global();
    global.register_model(model("shared")).await.unwrap();
    t.set_model_alias("shared", "pinned", 1).await.unwrap();
    assert!(matches!(
        global.delete_model("shared", Some(1), false).await,
        Err(CatalogError::ModelReferenced { .. })
    ));
    // Setting an alias on a version nobody can see is not found, and writes nothing.
    let before = t.list_events().await.unwrap().len();
    assert!(matches!(
        t.set_model_alias("shared", "pinned", 7).await,
        Err(CatalogError::ModelNotFound { .. })
    ));
    assert_eq!(t.list_events().await.unwrap().len(), before);
}

async fn a_tenants_alias_shadows_a_global_one_and_stays_its_own(db: &TestDb) {
    let (a, b) = (db.scoped(TenantId::random()), db.scoped(TenantId::random()));
    let global = db.global();
    global.register_model(model("m")).await.unwrap();
    global.register_model(model("m")).await.unwrap();
    global.set_model_alias("m", "champion", 1).await.unwrap();
    a.set_model_alias("m", "champion", 2).await.unwrap();

    assert_eq!(
        a.resolve_model_alias("m", "champion")
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        b.resolve_model_alias("m", "champion")
            .await
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        global
            .resolve_model_alias("m", "champion")
            .await
            .unwrap()
            .version,
        1
    );

    // B neither sees nor moves nor removes A's alias.
    assert!(
        b.list_model_aliases()
            .await
            .unwrap()
            .iter()
            .all(|x| x.tenant_id.is_none())
    );
    assert!(!b.remove_model_alias("m", "champion").await.unwrap());
    assert!(b.set_model_alias("m", "champion", 1).await.unwrap()); // B's own, new alias
    assert_eq!(
        a.resolve_model_alias("m", "champion")
            .await
            .unwrap()
            .version,
        2
    );
    assert!(
        b.list_events()
            .await
            .unwrap()
            .iter()
            .all(|e| e.tenant_id != a.scope())
    );
    // A tenant removes its own alias, and then sees the global one, which it cannot remove;
    // nor can it tag a global version.
    assert!(a.remove_model_alias("m", "champion").await.unwrap());
    assert_eq!(
        a.resolve_model_alias("m", "champion")
            .await
            .unwrap()
            .version,
        1
    );
    assert!(!a.remove_model_alias("m", "champion").await.unwrap());
    assert_eq!(
        global
            .resolve_model_alias("m", "champion")
            .await
            .unwrap()
            .version,
        1
    );
    assert!(matches!(
        a.set_model_tag("m", 1, "stage", "prod").await,
        Err(CatalogError::ModelNotFound { .. })
    ));
    assert!(matches!(
        a.resolve_model_alias("m", "nothing").await,
        Err(CatalogError::NotFound { .. })
    ));
}

async fn bad_alias_and_tag_input_is_refused_by_field(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    t.register_model(model("m")).await.unwrap();
    let long = "x".repeat(129);
    let cases: Vec<(&str, CatalogError)> = vec![
        ("alias", t.set_model_alias("m", "", 1).await.unwrap_err()),
        ("alias", t.set_model_alias("m", &long, 1).await.unwrap_err()),
        (
            "alias",
            t.set_model_alias("m", "a\nb", 1).await.unwrap_err(),
        ),
        // `:x` of `m` and `x` of `m:` would share one row key in the log.
        ("alias", t.set_model_alias("m", ":x", 1).await.unwrap_err()),
        ("version", t.set_model_alias("m", "a", 0).await.unwrap_err()),
        (
            "model_id",
            t.set_model_alias("a::b", "a", 1).await.unwrap_err(),
        ),
        ("key", t.set_model_tag("m", 1, "", "v").await.unwrap_err()),
        (
            "key",
            t.set_model_tag("m", 1, &long, "v").await.unwrap_err(),
        ),
        (
            "value",
            t.set_model_tag("m", 1, "k", "a\0b").await.unwrap_err(),
        ),
    ];
    for (field, err) in cases {
        assert!(
            matches!(&err, CatalogError::InvalidInput { field: f, .. } if *f == field),
            "{field}: {err:?}"
        );
    }
    assert_eq!(t.list_model_aliases().await.unwrap(), vec![]);
    assert_eq!(t.list_model_tags().await.unwrap(), vec![]);
    assert_eq!(t.list_events().await.unwrap().len(), 1, "only the register");
}

async fn tags_upsert_and_go_with_their_version(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    t.register_model(model("m")).await.unwrap();
    assert!(t.set_model_tag("m", 1, "stage", "staging").await.unwrap());
    assert!(!t.set_model_tag("m", 1, "stage", "staging").await.unwrap());
    assert!(t.set_model_tag("m", 1, "stage", "prod").await.unwrap());
    assert!(t.set_model_tag("m", 1, "owner", "ml-team").await.unwrap());
    let tags: Vec<(String, String)> = t
        .list_model_tags()
        .await
        .unwrap()
        .into_iter()
        .map(|x| (x.key, x.value))
        .collect();
    assert_eq!(
        tags,
        vec![
            ("stage".to_owned(), "prod".to_owned()),
            ("owner".to_owned(), "ml-team".to_owned())
        ]
    );
    assert!(t.remove_model_tag("m", 1, "owner").await.unwrap());
    assert!(!t.remove_model_tag("m", 1, "owner").await.unwrap());
    assert!(t.delete_model("m", Some(1), false).await.unwrap());
    assert_eq!(t.list_model_tags().await.unwrap(), vec![]);
    let kinds: Vec<EventKind> = t
        .list_events()
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    use EventKind::*;
    assert_eq!(
        kinds,
        vec![
            ModelRegistered,
            TagSet,
            TagSet,
            TagSet,
            TagRemoved,
            TagRemoved,
            ModelDeleted
        ]
    );
}

/// A tag set racing the delete of its version: either the tag lands first (and goes with
/// the version) or the version is gone (*model not found*); never a database error.
async fn a_tag_set_racing_a_delete_gets_a_typed_outcome(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    for round in 1..=15 {
        let version = t.register_model(model("raced")).await.unwrap().version;
        let tagger = {
            let t = t.clone();
            tokio::spawn(async move { t.set_model_tag("raced", version, "k", "v").await })
        };
        let deleter = {
            let t = t.clone();
            tokio::spawn(async move { t.delete_model("raced", Some(version), false).await })
        };
        assert!(deleter.await.unwrap().expect("the delete succeeds"));
        match tagger.await.unwrap() {
            Ok(true) | Err(CatalogError::ModelNotFound { .. }) => {}
            other => panic!("round {round}: {other:?}"),
        }
    }
    assert_eq!(t.list_model_tags().await.unwrap(), vec![]);
    assert_log_replays_to_live_tables(&t).await;
}

/// Makes the database itself refuse every event about the model `poison`, as a fault in
/// the middle of a write would, and on Postgres fail the first two events about `flaky`
/// with a serialization failure (which the store retries).
async fn inject_faults(db: &TestDb) {
    match db.catalog.store().backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.model_id = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            )
            .execute(&mut conn)
            .await
            .unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(
                "CREATE SEQUENCE flaky_budget; \
                 CREATE FUNCTION inject() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                   IF NEW.model_id = 'poison' \
                      OR (NEW.model_id = 'flaky' AND nextval('flaky_budget') <= 2) THEN \
                     RAISE EXCEPTION 'injected conflict' USING ERRCODE = 'serialization_failure'; \
                   END IF; \
                   RETURN NEW; \
                 END $$; \
                 CREATE TRIGGER inject BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION inject()",
            )
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
}

async fn a_failed_or_retried_write_leaves_exactly_the_events_of_its_last_attempt(db: &TestDb) {
    inject_faults(db).await;
    let t = db.scoped(TenantId::random());
    t.register_model(model("kept")).await.unwrap();
    let before = t.list_events().await.unwrap();

    // The event append fails after the row was written: the row goes too.
    assert!(t.register_model(model("poison")).await.is_err());
    assert!(t.get_model("poison").await.is_err());
    t.register_model(model("poison-free")).await.unwrap();
    t.set_model_tag("kept", 1, "k", "v").await.unwrap();
    assert!(t.set_model_alias("kept", "poison", 1).await.unwrap());
    let after = t.list_events().await.unwrap();
    assert_eq!(after.len(), before.len() + 3);
    assert!(
        after
            .iter()
            .all(|e| e.model_id.as_deref() != Some("poison"))
    );

    if db.catalog.store().backend() == Backend::Postgres {
        let retries = db.catalog.store().stats().retries();
        t.register_model(model("flaky")).await.unwrap();
        assert!(db.catalog.store().stats().retries() >= retries + 2);
        let flaky: Vec<_> = t
            .list_events()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.model_id.as_deref() == Some("flaky"))
            .collect();
        assert_eq!(flaky.len(), 1, "only the last attempt's event: {flaky:?}");
        assert_eq!(t.get_model("flaky").await.unwrap().version, 1);
    }
}

/// Replays `events` into the rows of `entity`, keyed by owner and row key, as a reader of
/// the log would: each row's last state, unless its last event removed it.
fn replay<T: DeserializeOwned>(events: &[Event], entity: &str) -> Vec<T> {
    let mut rows: BTreeMap<(Option<TenantId>, &str), Option<&str>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.entity == entity) {
        rows.insert((e.tenant_id, &e.row_key), e.state.as_deref());
    }
    rows.into_values()
        .flatten()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect()
}

fn sorted<T: std::fmt::Debug>(mut rows: Vec<T>) -> Vec<String> {
    let mut out: Vec<String> = rows.drain(..).map(|r| format!("{r:?}")).collect();
    out.sort();
    out
}

/// The log, replayed, gives every live table of the scope.
async fn assert_log_replays_to_live_tables(c: &Catalog) {
    let events = c.list_events().await.unwrap();
    let scope = c.scope();
    let ids: Vec<i64> = events.iter().map(|e| e.event_id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "{scope:?}: ids increase"
    );
    assert_replays(&events, "models", c.list_models().await.unwrap(), scope);
    let aliases = c.list_model_aliases().await.unwrap();
    assert_replays(&events, "model_aliases", aliases, scope);
    assert_replays(
        &events,
        "model_tags",
        c.list_model_tags().await.unwrap(),
        scope,
    );
    let jobs = c.list_training_jobs().await.unwrap();
    assert_replays(&events, "training_jobs", jobs, scope);
    assert_replays(
        &events,
        "eval_runs",
        c.list_eval_runs().await.unwrap(),
        scope,
    );
    let tables = c.list_result_tables().await.unwrap();
    assert_replays(&events, "result_tables", tables, scope);
}

/// The rows of `entity` replayed from `events` are exactly `live`, in any order.
fn assert_replays<T: DeserializeOwned + std::fmt::Debug>(
    events: &[Event],
    entity: &str,
    live: Vec<T>,
    scope: Option<TenantId>,
) {
    assert_eq!(
        sorted(replay::<T>(events, entity)),
        sorted(live),
        "{scope:?}: {entity}"
    );
}

/// One random write of any kind by `c`; `Err` when the catalog refused it.
async fn random_write(c: &Catalog, rng: &mut Rng, step: usize) -> Result<(), CatalogError> {
    const NAMES: [&str; 3] = ["m0", "m1", "m2"];
    const ALIASES: [&str; 2] = ["champion", "challenger"];
    let name = *rng.pick(&NAMES);
    let version = (rng.next_u64() % 2) as i32 + 1;
    let job = format!("job{}", rng.next_u64() % 4);
    let alias = *rng.pick(&ALIASES);
    let tag = *rng.pick(&["stage", "team"]);
    let worker = "w";
    match rng.next_u64() % 22 {
        0..=3 => c.register_model(model(name)).await.map(drop),
        4 => c
            .register_model(
                model(name)
                    .version(version)
                    .config_json(format!("{{\"step\":{step}}}")),
            )
            .await
            .map(drop),
        5 => c.delete_model(name, None, false).await.map(drop),
        6 | 7 => c.set_model_alias(name, alias, version).await.map(drop),
        8 => c.remove_model_alias(name, alias).await.map(drop),
        9 => c
            .set_model_tag(name, version, tag, &format!("v{step}"))
            .await
            .map(drop),
        10 => c.remove_model_tag(name, version, tag).await.map(drop),
        11 => {
            let mut j = NewTrainingJob::new(name, name, "s3://data", "contrastive", "{}");
            j.job_id = Some(job);
            c.create_training_job(j).await.map(drop)
        }
        12 => {
            // Half the leases run out at once, for the reclaims.
            let lease = match rng.next_u64() % 2 {
                0 => Duration::from_millis(1),
                _ => Duration::from_secs(60),
            };
            c.claim_next_training_job(worker, lease).await.map(drop)
        }
        13 => {
            let jobs = c.list_training_jobs().await?;
            let running = |j: &&jammi_catalog::TrainingJob| {
                j.tenant_id == c.scope() && j.status == jammi_catalog::JobStatus::Running
            };
            let Some(j) = jobs.iter().find(running) else {
                return Ok(());
            };
            match rng.next_u64() % 3 {
                0 => c
                    .heartbeat_training_job(&j.job_id, worker, Duration::from_secs(60))
                    .await
                    .map(drop),
                1 => c
                    .fail_training_job(&j.job_id, worker, "oom")
                    .await
                    .map(drop),
                _ => c
                    .finalize_training_job(&j.job_id, worker, name, version, "/w", Some("{}"))
                    .await
                    .map(drop),
            }
        }
        14 => c.reclaim_expired_training_jobs(2).await.map(drop),
        15 => c.delete_training_job(&job).await,
        16 => match rng.next_u64() % 3 {
            0 => {
                let runs = c.list_eval_runs().await?;
                match runs.iter().find(|r| r.tenant_id == c.scope()) {
                    Some(run) => c.delete_eval_run(&run.run_id).await,
                    None => Ok(()),
                }
            }
            _ => c
                .create_eval_run(NewEvalRun::new(name, "mteb", format!("{{\"s\":{step}}}")))
                .await
                .map(drop),
        },
        17 => {
            let table = NewResultTable {
                table_name: format!("t{}", rng.next_u64() % 3),
                source_id: "src".into(),
                model_id: name.into(),
                task: ModelTask::TextEmbedding,
                parquet_path: "/p".into(),
                row_count: None,
                status: ResultTableStatus::Building,
            };
            c.create_result_table(table).await.map(drop)
        }
        18 | 19 => {
            let name = format!("t{}", rng.next_u64() % 3);
            match rng.next_u64() % 3 {
                0 => c.delete_result_table(&name).await,
                _ => {
                    c.set_result_table_status(&name, ResultTableStatus::Ready, Some(10))
                        .await
                }
            }
        }
        // Writes the catalog or the database refuses.
        _ => match rng.next_u64() % 3 {
            0 => c.set_model_alias(name, "", 1).await.map(drop),
            1 => c.register_model(model("poison")).await.map(drop),
            _ => c.delete_eval_run(&format!("run-{}", rng.next_u64())).await,
        },
    }
}

async fn the_log_replays_to_the_live_tables_and_to_any_past_instant(db: &TestDb) {
    inject_faults(db).await;
    let mut rng = Rng(0x5EED_1315);
    let scopes: Vec<Catalog> = vec![
        db.scoped(TenantId::random()),
        db.scoped(TenantId::random()),
        db.scoped(TenantId::random()),
        db.global(),
    ];
    let snapshot_at: BTreeSet<usize> = (0..10).map(|i| 15 + i * 29).collect();
    let mut snapshots = Vec::new();
    let mut refused = 0;
    for step in 0..300 {
        let c = rng.pick(&scopes).clone();
        let before = c.list_events().await.unwrap().len();
        if random_write(&c, &mut rng, step).await.is_err() {
            refused += 1;
            assert_eq!(
                c.list_events().await.unwrap().len(),
                before,
                "step {step}: a refused write left an event"
            );
        }
        if step == 150 {
            // What a random sequence reaches only by luck: an expired lease requeued, a
            // failure, a heartbeat and a completion by the lease holder, a tag removed.
            let t = &scopes[0];
            t.register_model(model("lifecycle")).await.unwrap();
            let mut job = NewTrainingJob::new("lifecycle", "lifecycle", "s3://d", "ce", "{}");
            job.job_id = Some("lifecycle".into());
            t.create_training_job(job).await.unwrap();
            while t
                .claim_next_training_job("w", Duration::from_millis(1))
                .await
                .unwrap()
                .is_some()
            {}
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(t.reclaim_expired_training_jobs(5).await.unwrap() >= 1);
            let claimed = t
                .claim_next_training_job("w", Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap();
            assert!(
                t.fail_training_job(&claimed.job_id, "w", "oom")
                    .await
                    .unwrap()
            );
            let mut job = NewTrainingJob::new("lifecycle", "lifecycle", "s3://d", "ce", "{}");
            job.job_id = Some("lifecycle-2".into());
            t.create_training_job(job).await.unwrap();
            let claimed = loop {
                let j = t
                    .claim_next_training_job("w", Duration::from_secs(60))
                    .await
                    .unwrap()
                    .unwrap();
                if j.job_id == "lifecycle-2" {
                    break j;
                }
            };
            assert!(
                t.heartbeat_training_job(&claimed.job_id, "w", Duration::from_secs(60))
                    .await
                    .unwrap()
            );
            let out = t.register_model(model("lifecycle")).await.unwrap();
            assert!(
                t.finalize_training_job(&claimed.job_id, "w", "lifecycle", out.version, "/w", None)
                    .await
                    .unwrap()
            );
            assert!(t.set_model_tag("lifecycle", 1, "stage", "x").await.unwrap());
            assert!(t.remove_model_tag("lifecycle", 1, "stage").await.unwrap());
        }
        if snapshot_at.contains(&step) {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let at = now_micros();
            let mut taken = Vec::new();
            for c in &scopes {
                taken.push((
                    c.list_models().await.unwrap(),
                    c.list_model_aliases().await.unwrap(),
                ));
            }
            snapshots.push((at, taken));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    assert!(
        refused > 10,
        "the sequence exercises refused writes ({refused})"
    );
    let mut kinds = std::collections::HashSet::new();
    for c in &scopes {
        kinds.extend(c.list_events().await.unwrap().iter().map(|e| e.kind));
    }
    use EventKind::*;
    for kind in [
        ModelRegistered,
        ModelUpdated,
        ModelDeleted,
        AliasSet,
        AliasRemoved,
        TagSet,
        TagRemoved,
        TrainingJobCreated,
        TrainingJobClaimed,
        TrainingJobRequeued,
        TrainingJobHeartbeat,
        TrainingJobCompleted,
        TrainingJobFailed,
        TrainingJobDeleted,
        EvalRunCreated,
        EvalRunDeleted,
        ResultTableCreated,
        ResultTableStatusSet,
        ResultTableDeleted,
    ] {
        assert!(
            kinds.contains(&kind),
            "the sequence never recorded {kind}: {kinds:?}"
        );
    }

    for c in &scopes {
        assert_log_replays_to_live_tables(c).await;
        let now = now_micros() + 1;
        assert_eq!(
            c.models_as_of(now).await.unwrap(),
            c.list_models().await.unwrap()
        );
        assert_eq!(
            sorted(c.model_aliases_as_of(now).await.unwrap()),
            sorted(c.list_model_aliases().await.unwrap())
        );
    }
    for (at, taken) in &snapshots {
        for (c, (models, aliases)) in scopes.iter().zip(taken) {
            assert_eq!(
                sorted(c.models_as_of(*at).await.unwrap()),
                sorted(models.clone()),
                "{:?} models at {at}",
                c.scope()
            );
            assert_eq!(
                sorted(c.model_aliases_as_of(*at).await.unwrap()),
                sorted(aliases.clone()),
                "{:?} aliases at {at}",
                c.scope()
            );
        }
    }
}

backend_tests!(
    eight_concurrent_movers_leave_one_alias_and_one_event_per_move,
    an_aliased_version_cannot_be_deleted_until_the_alias_moves,
    a_tenants_alias_shadows_a_global_one_and_stays_its_own,
    bad_alias_and_tag_input_is_refused_by_field,
    tags_upsert_and_go_with_their_version,
    a_tag_set_racing_a_delete_gets_a_typed_outcome,
    a_failed_or_retried_write_leaves_exactly_the_events_of_its_last_attempt,
    the_log_replays_to_the_live_tables_and_to_any_past_instant,
);
