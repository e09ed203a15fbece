//! Following the event log from a cursor (SPEC §16): order, scope, resuming, and on
//! Postgres the event whose transaction commits after a later id's.

use std::time::{Duration, Instant};

use jammi_catalog::{Backend, Catalog, Event, EventFeed, ModelTask, RegisterModel, TenantId};
use sqlx::Connection;

use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;

fn model(name: &str) -> RegisterModel {
    RegisterModel::new(name, "embedding", "candle", ModelTask::TextEmbedding)
}

fn names(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| e.model_id.as_deref())
        .collect()
}

/// Polls `feed` until it returns something or `within` passes.
async fn next_within(feed: &mut EventFeed, within: Duration) -> Vec<Event> {
    let start = Instant::now();
    loop {
        let events = feed.next_events().await.unwrap();
        if !events.is_empty() || start.elapsed() > within {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_feed_returns_its_scopes_events_in_order_from_its_cursor(db: &TestDb) {
    let (a, b) = (TenantId::random(), TenantId::random());
    db.scoped(a).register_model(model("a1")).await.unwrap();
    db.scoped(b).register_model(model("b1")).await.unwrap();
    db.global().register_model(model("g1")).await.unwrap();
    let mut feed = db.scoped(a).follow_events(0);
    let first = next_within(&mut feed, Duration::from_secs(10)).await;
    assert_eq!(names(&first), ["a1", "g1"], "own and global, never b's");
    assert!(first.windows(2).all(|w| w[0].event_id < w[1].event_id));
    assert!(feed.next_events().await.unwrap().is_empty());
    let resume_from = feed.cursor();
    db.scoped(b).register_model(model("b2")).await.unwrap();
    db.scoped(a).register_model(model("a2")).await.unwrap();
    assert_eq!(
        names(&next_within(&mut feed, Duration::from_secs(10)).await),
        ["a2"]
    );
    // Resuming from a cursor gives what came after it, again.
    let mut resumed = db.scoped(a).follow_events(resume_from);
    assert_eq!(
        names(&next_within(&mut resumed, Duration::from_secs(10)).await),
        ["a2"]
    );
    // From an id: only later events.
    let mut later = db.scoped(a).follow_events(first[0].event_id);
    assert_eq!(
        names(&next_within(&mut later, Duration::from_secs(10)).await),
        ["g1", "a2"]
    );
}

/// A transaction holding an event id appends like the catalog does: its transaction id
/// first (the catalog writes the changed row before its event), then the event.
async fn hold_an_event(conn: &mut sqlx::PgConnection, owner: &str, name: &str) {
    sqlx::raw_sql("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::raw_sql("SELECT pg_current_xact_id()")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (owner, event_time, kind, entity, row_key, model_id, version, state) \
         VALUES ($1, 0, 'model_registered', 'models', $2, $3, 1, NULL)",
    )
    .bind(owner)
    .bind(format!("{name}::1"))
    .bind(name)
    .execute(&mut *conn)
    .await
    .unwrap();
}

/// Postgres: an event whose transaction commits after a later id was committed is still
/// returned, before the later one; one that rolls back holds the feed only until its
/// transaction has ended.
async fn an_event_that_commits_late_is_not_skipped(db: &TestDb) {
    if db.catalog.store().backend() != Backend::Postgres {
        return; // SQLite takes ids under the write lock: they commit in order.
    }
    let t = TenantId::random();
    let tenant: Catalog = db.scoped(t);
    let mut feed = tenant.follow_events(0);
    assert!(feed.next_events().await.unwrap().is_empty());
    let mut held = sqlx::PgConnection::connect(&db.url).await.unwrap();
    for ending in ["COMMIT", "ROLLBACK"] {
        hold_an_event(&mut held, &t.to_string(), &format!("late-{ending}")).await;
        let after = format!("after-{ending}");
        tenant.register_model(model(&after)).await.unwrap();
        // The later id is committed, the earlier one is not: nothing past the gap.
        for _ in 0..3 {
            assert!(feed.next_events().await.unwrap().is_empty(), "{ending}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sqlx::raw_sql(ending).execute(&mut held).await.unwrap();
        let events = next_within(&mut feed, Duration::from_secs(30)).await;
        let expected: Vec<String> = match ending {
            "COMMIT" => vec![format!("late-{ending}"), after],
            _ => vec![after],
        };
        assert_eq!(names(&events), expected, "{ending}");
    }
}

/// More than a page of other tenants' events before the scope's own: one call reads past
/// them (on Postgres the feed reads every owner's ids to find the gaps).
async fn a_feed_reads_past_pages_of_other_tenants_events(db: &TestDb) {
    let (a, b) = (TenantId::random(), TenantId::random());
    let theirs = db.scoped(b);
    for i in 0..1_100 {
        theirs
            .register_model(model(&format!("b{i}")))
            .await
            .unwrap();
    }
    db.scoped(a).register_model(model("a1")).await.unwrap();
    let mut feed = db.scoped(a).follow_events(0);
    assert_eq!(names(&feed.next_events().await.unwrap()), ["a1"]);
}

backend_tests!(
    a_feed_returns_its_scopes_events_in_order_from_its_cursor,
    a_feed_reads_past_pages_of_other_tenants_events,
    an_event_that_commits_late_is_not_skipped
);
