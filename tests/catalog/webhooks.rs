//! Webhooks as catalog rows (SPEC §16), and the leases and cursor of the servers that
//! deliver them, on both backends. The HTTP side is tested through `jammi serve`
//! (cli/tests/cli/webhooks.rs).

use std::time::Duration;

use datafusion::prelude::SessionConfig;
use jammi_catalog::sql::session::SessionTemplate;
use jammi_catalog::{
    Access, AfterFailure, Attempt, CatalogError, EventKind, ModelTask, NewWebhook, RegisterModel,
    TenantId, WebhookDispatch, WebhookState,
};
use jammi_testkit::{TestDb, backend_tests, cells};

fn model(name: &str) -> RegisterModel {
    RegisterModel::new(name, "embedding", "candle", ModelTask::TextEmbedding)
}

fn attempt(event_id: i64, status: u16) -> Attempt {
    Attempt {
        delivery_id: uuid::Uuid::new_v4().to_string(),
        event_id,
        status_code: Some(status),
        error: (status >= 300).then(|| format!("HTTP {status}")),
        duration: Duration::from_millis(3),
    }
}

async fn sql(
    db: &TestDb,
    tenant: Option<TenantId>,
    statement: &str,
) -> Result<Vec<Vec<String>>, String> {
    let ctx = SessionTemplate::new(SessionConfig::new()).context(&db.catalog.with_scope(tenant));
    let df = ctx.sql(statement).await.map_err(|e| e.to_string())?;
    Ok(cells(&df.collect().await.map_err(|e| e.to_string())?))
}

async fn webhooks_are_rows_of_their_scope(db: &TestDb) {
    let (a, b) = (TenantId::random(), TenantId::random());
    db.scoped(a).register_model(model("before")).await.unwrap();
    let newest = db.scoped(a).list_events().await.unwrap()[0].event_id;
    let created = db
        .scoped(a)
        .create_webhook(NewWebhook {
            event_kinds: vec![EventKind::AliasSet, EventKind::ModelRegistered],
            model_pattern: Some("fraud-*".into()),
            ..NewWebhook::new("https://ci.example.com/hooks/jammi")
        })
        .await
        .unwrap();
    let w = &created.webhook;
    assert!(created.secret.starts_with("whsec_") && created.secret.len() == 6 + 64);
    assert!(
        !format!("{created:?}").contains(&created.secret),
        "Debug hides it"
    );
    assert_eq!(w.state, WebhookState::Active);
    assert_eq!(w.tenant_id, Some(a));
    assert_eq!(w.last_event_id, newest, "from now on by default");
    let id = w.webhook_id.clone();

    // Another tenant neither sees nor changes it.
    assert!(db.scoped(b).list_webhooks().await.unwrap().is_empty());
    for result in [
        db.scoped(b).get_webhook(&id).await.map(|_| ()),
        db.scoped(b).delete_webhook(&id).await,
        db.scoped(b).pause_webhook(&id, "no").await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(CatalogError::NotFound { .. })),
            "{result:?}"
        );
    }
    // Administering webhooks is an admin's.
    let writer = db.scoped(a).narrowed(Access::Write);
    let refused = writer
        .create_webhook(NewWebhook::new("https://x.example/"))
        .await;
    assert!(
        matches!(refused, Err(CatalogError::PermissionDenied { .. })),
        "{refused:?}"
    );
    let refused = writer.delete_webhook(&id).await;
    assert!(
        matches!(refused, Err(CatalogError::PermissionDenied { .. })),
        "{refused:?}"
    );
    // Bad input names the field and writes nothing.
    for (url, why) in [
        ("file:///etc/passwd", "scheme"),
        ("not a url", "not a URL"),
        ("https://u:p@example.com/", "password"),
    ] {
        let err = db
            .scoped(a)
            .create_webhook(NewWebhook::new(url))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("url") && err.contains(why), "{url}: {err}");
    }
    for since in [-1, newest + 1] {
        let err = db
            .scoped(a)
            .create_webhook(NewWebhook {
                since: Some(since),
                ..NewWebhook::new("https://x.example/")
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("since"), "{err}");
    }
    assert_eq!(db.scoped(a).list_webhooks().await.unwrap().len(), 1);

    // Pause and resume.
    let paused = db
        .scoped(a)
        .pause_webhook(&id, "deploy freeze")
        .await
        .unwrap();
    assert_eq!(paused.state, WebhookState::Paused);
    assert_eq!(paused.paused_reason.as_deref(), Some("deploy freeze"));
    let resumed = db.scoped(a).resume_webhook(&id).await.unwrap();
    assert_eq!(
        (resumed.state, resumed.paused_reason),
        (WebhookState::Active, None)
    );

    // SQL: tenant-filtered, without the secret, read-only.
    let rows = sql(
        db,
        Some(a),
        "SELECT webhook_id, url, event_kinds, model_pattern, state \
         FROM jammi.public.webhooks",
    )
    .await
    .unwrap();
    assert_eq!(
        rows,
        [[
            id.clone(),
            "https://ci.example.com/hooks/jammi".into(),
            "alias_set,model_registered".into(),
            "fraud-*".into(),
            "active".into()
        ]]
    );
    assert!(
        sql(db, Some(b), "SELECT * FROM jammi.public.webhooks")
            .await
            .unwrap()
            .is_empty()
    );
    let all = sql(db, Some(a), "SELECT * FROM jammi.public.webhooks")
        .await
        .unwrap();
    assert!(
        !all.concat()
            .iter()
            .any(|cell| cell.contains(&created.secret))
    );
    let err = sql(db, Some(a), "SELECT secret FROM jammi.public.webhooks")
        .await
        .unwrap_err();
    assert!(err.contains("secret"), "{err}");
    for statement in [
        "INSERT INTO jammi.public.webhooks (url) VALUES ('https://x.example/')",
        "DELETE FROM jammi.public.webhooks",
        "DELETE FROM jammi.public.webhook_deliveries",
    ] {
        let err = sql(db, Some(a), statement).await.unwrap_err();
        assert!(err.contains("read-only in SQL"), "{statement}: {err}");
    }
    assert_eq!(db.scoped(a).list_webhooks().await.unwrap().len(), 1);

    db.scoped(a).delete_webhook(&id).await.unwrap();
    assert!(db.scoped(a).list_webhooks().await.unwrap().is_empty());
}

/// Two servers: one holds a webhook at a time, a lease that ran out lets the other take
/// it, and the first one's writes are refused from then on.
async fn one_server_holds_a_webhook_at_a_time(db: &TestDb) {
    let a = TenantId::random();
    let tenant = db.scoped(a);
    let id = tenant
        .create_webhook(NewWebhook {
            since: Some(0),
            ..NewWebhook::new("http://127.0.0.1:9/")
        })
        .await
        .unwrap()
        .webhook
        .webhook_id;
    tenant.register_model(model("m1")).await.unwrap();
    tenant.register_model(model("m2")).await.unwrap();
    let events = tenant.list_events().await.unwrap();
    let (e1, e2) = (events[0].event_id, events[1].event_id);

    assert!(matches!(
        WebhookDispatch::new(&tenant, "w"),
        Err(CatalogError::Unsupported(_))
    ));
    let one = WebhookDispatch::new(&db.catalog, "server-1").unwrap();
    let two = WebhookDispatch::new(&db.catalog, "server-2").unwrap();
    let lease = Duration::from_secs(60);
    let mut held = one.claim(lease).await.unwrap().held;
    assert_eq!(held.len(), 1);
    assert!(
        two.claim(lease).await.unwrap().held.is_empty(),
        "held by the first"
    );
    let mut first = held.remove(0);
    assert_eq!(first.webhook.webhook_id, id);
    assert!(!format!("{first:?}").contains(first.secret()));
    // Not due for renewal: the next round leaves it alone, and loses nothing.
    let again = one.claim(lease).await.unwrap();
    assert!(again.held.is_empty() && again.lost.is_empty(), "{again:?}");

    // The feed reads the webhook's scope from its cursor.
    let mut feed = one.feed(&first);
    let read: Vec<i64> = feed
        .next_events()
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(read, [e1, e2]);
    assert!(one.delivered(&mut first, &attempt(e1, 200)).await.unwrap());
    assert_eq!(tenant.get_webhook(&id).await.unwrap().last_event_id, e1);

    // The lease runs out (renewed for a millisecond); the second server takes the webhook
    // at the stored cursor.
    assert!(one.renew(&first, Duration::from_millis(1)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut taken = two.claim(lease).await.unwrap().held;
    assert_eq!(taken.len(), 1);
    let mut second = taken.remove(0);
    assert_eq!(second.webhook.last_event_id, e1);
    // The first server's next round does not take it back.
    assert!(one.claim(lease).await.unwrap().held.is_empty());
    // The first server's acknowledgement and renewal are refused; the attempt is recorded.
    assert!(!one.delivered(&mut first, &attempt(e2, 200)).await.unwrap());
    assert!(!one.renew(&first, lease).await.unwrap());
    assert_eq!(
        one.failed(&mut first, &attempt(e2, 500), 3).await.unwrap(),
        AfterFailure::Lost
    );
    assert_eq!(tenant.get_webhook(&id).await.unwrap().last_event_id, e1);
    // So is a holder's write from a stale cursor.
    let mut stale = second.clone();
    assert!(two.delivered(&mut second, &attempt(e2, 200)).await.unwrap());
    assert!(!two.skipped_to(&mut stale, e2 + 5).await.unwrap());
    assert_eq!(tenant.get_webhook(&id).await.unwrap().last_event_id, e2);

    // Failures in a row pause it, with the reason, and release it.
    tenant.register_model(model("m3")).await.unwrap();
    let e3 = tenant.list_events().await.unwrap()[2].event_id;
    let outcomes = [
        two.failed(&mut second, &attempt(e3, 500), 3).await.unwrap(),
        two.failed(&mut second, &attempt(e3, 503), 3).await.unwrap(),
        two.failed(&mut second, &attempt(e3, 502), 3).await.unwrap(),
    ];
    assert_eq!(
        outcomes,
        [
            AfterFailure::Retry { failures: 1 },
            AfterFailure::Retry { failures: 2 },
            AfterFailure::Paused
        ]
    );
    let paused = tenant.get_webhook(&id).await.unwrap();
    assert_eq!(paused.state, WebhookState::Paused);
    assert_eq!(paused.claimed_by, None);
    let reason = paused.paused_reason.unwrap();
    assert!(
        reason.contains(&format!("3 failed deliveries in a row of event {e3}")),
        "{reason}"
    );
    assert!(reason.contains("HTTP 502"), "{reason}");
    assert!(
        two.claim(lease).await.unwrap().held.is_empty(),
        "a paused webhook is not delivered"
    );

    // Every attempt is a row of the webhook's scope: attempts number from 1 per event.
    let rows = sql(
        db,
        Some(a),
        "SELECT event_id, attempt, status_code FROM jammi.public.webhook_deliveries \
         ORDER BY attempted_at, attempt",
    )
    .await
    .unwrap();
    let expect = |e: i64, n: i64, s: u16| vec![e.to_string(), n.to_string(), s.to_string()];
    assert_eq!(
        rows,
        [
            expect(e1, 1, 200),
            expect(e2, 1, 200),
            expect(e2, 1, 500),
            expect(e2, 1, 200),
            expect(e3, 1, 500),
            expect(e3, 2, 503),
            expect(e3, 3, 502),
        ]
    );
    assert!(
        sql(db, None, "SELECT * FROM jammi.public.webhook_deliveries")
            .await
            .unwrap()
            .is_empty()
    );

    // Resumed: delivered again from the event that failed, counting afresh.
    tenant.resume_webhook(&id).await.unwrap();
    let mut again = two.claim(lease).await.unwrap().held;
    assert_eq!(again[0].webhook.last_event_id, e2);
    assert_eq!(again[0].webhook.failures, 0);
    // Pruning removes what is older than the bound, and deleting the webhook the rest.
    assert_eq!(two.prune(&again[0], 0).await.unwrap(), 0);
    assert_eq!(two.prune(&again[0], i64::MAX).await.unwrap(), 7);
    // Paused by the operator: the holder's acknowledgement is refused until it resumes.
    tenant.pause_webhook(&id, "freeze").await.unwrap();
    assert!(
        !two.delivered(&mut again[0], &attempt(e3, 200))
            .await
            .unwrap()
    );
    tenant.resume_webhook(&id).await.unwrap();
    assert!(
        two.delivered(&mut again[0], &attempt(e3, 200))
            .await
            .unwrap()
    );
    assert_eq!(tenant.get_webhook(&id).await.unwrap().last_event_id, e3);
    tenant.delete_webhook(&id).await.unwrap();
    // An attempt of a deleted webhook leaves no record.
    assert!(
        !two.delivered(&mut again[0], &attempt(e3 + 1, 200))
            .await
            .unwrap()
    );
    assert!(
        sql(db, Some(a), "SELECT * FROM jammi.public.webhook_deliveries")
            .await
            .unwrap()
            .is_empty()
    );
}

backend_tests!(
    webhooks_are_rows_of_their_scope,
    one_server_holds_a_webhook_at_a_time
);
