//! API tokens (SPEC §11, §14): shown once, stored as a digest, scoped, graded, expiring,
//! revocable.

use std::time::Duration;

use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::{
    Access, Backend, Catalog, CatalogError, Grant, TenantId, TokenStatus, Tokens, register_catalog,
};
use jammi_testkit::{TestDb, backend_tests};
use sqlx::{Connection, Row};

/// A grant of `access` in `scope`.
fn grant(scope: Option<TenantId>, access: Access) -> Grant {
    Grant { scope, access }
}

fn admin(scope: Option<TenantId>) -> Grant {
    grant(scope, Access::Admin)
}

/// Microseconds since the epoch, now.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

async fn a_token_authenticates_to_its_scope_until_revoked(db: &TestDb) {
    let tokens = Tokens::new(&db.global()).unwrap();
    let t = TenantId::random();
    let tenant = tokens
        .create("acme-notebooks", grant(Some(t), Access::Read), None)
        .await
        .unwrap();
    let operator = tokens.create("operator", admin(None), None).await.unwrap();
    assert_eq!(tenant.info.tenant, Some(t));
    assert_ne!(tenant.token, operator.token);

    assert_eq!(
        tokens.authenticate(&tenant.token).await.unwrap(),
        Some(grant(Some(t), Access::Read))
    );
    assert_eq!(
        tokens.authenticate(&operator.token).await.unwrap(),
        Some(admin(None))
    );

    // A changed secret, a changed id, other shapes: all simply not a token.
    let mut wrong_secret = tenant.token.clone();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == '0' { '1' } else { '0' });
    let flipped = if tenant.token.as_bytes()[6] == b'0' {
        "1"
    } else {
        "0"
    };
    let wrong_id = format!("jammi_{flipped}{}", &tenant.token[7..]);
    for bad in [
        wrong_secret.as_str(),
        &wrong_id,
        "",
        "Bearer x",
        &tenant.token[..tenant.token.len() - 1],
    ] {
        assert_eq!(tokens.authenticate(bad).await.unwrap(), None, "{bad:?}");
    }

    assert!(tokens.revoke("acme-notebooks").await.unwrap());
    assert!(
        !tokens.revoke("acme-notebooks").await.unwrap(),
        "already revoked"
    );
    assert!(!tokens.revoke("never-existed").await.unwrap());
    assert_eq!(tokens.authenticate(&tenant.token).await.unwrap(), None);
    assert_eq!(
        tokens.authenticate(&operator.token).await.unwrap(),
        Some(admin(None))
    );

    let listed = tokens.list().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|i| (i.label.as_str(), i.tenant, i.revoked_at.is_some()))
            .collect::<Vec<_>>(),
        vec![("acme-notebooks", Some(t), true), ("operator", None, false)]
    );
}

async fn labels_name_one_live_token(db: &TestDb) {
    let tokens = Tokens::new(&db.global()).unwrap();
    let first = tokens.create("ci", admin(None), None).await.unwrap();
    match tokens
        .create("ci", admin(Some(TenantId::random())), None)
        .await
    {
        Err(CatalogError::AlreadyExists { kind: "token", id }) => assert_eq!(id, "ci"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // The first token is untouched by the refused create.
    assert_eq!(
        tokens.authenticate(&first.token).await.unwrap(),
        Some(admin(None))
    );

    // Once revoked, the label can be given to a new token; the old one stays dead.
    tokens.revoke("ci").await.unwrap();
    let second = tokens.create("ci", admin(None), None).await.unwrap();
    assert_eq!(tokens.authenticate(&first.token).await.unwrap(), None);
    assert_eq!(
        tokens.authenticate(&second.token).await.unwrap(),
        Some(admin(None))
    );
    assert_eq!(tokens.list().await.unwrap().len(), 1);

    for bad in ["", "a\nb", "a::b"] {
        assert!(
            matches!(
                tokens.create(bad, admin(None), None).await,
                Err(CatalogError::InvalidInput { .. })
            ),
            "{bad:?}"
        );
    }
}

async fn only_the_operator_administers_tokens(db: &TestDb) {
    assert!(matches!(
        Tokens::new(&db.scoped(TenantId::random())),
        Err(CatalogError::Unsupported(_))
    ));
}

/// The database holds a digest of the secret, never the token or the secret, and the
/// table is no SQL table of the catalog.
async fn tokens_are_stored_as_digests_and_hidden_from_sql(db: &TestDb) {
    let tokens = Tokens::new(&db.global()).unwrap();
    let created = tokens.create("secretive", admin(None), None).await.unwrap();
    let secret = created.token.rsplit('_').next().unwrap().to_owned();

    let stored: Vec<String> = match db.catalog.store().backend() {
        jammi_catalog::Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            let rows = sqlx::query("SELECT label, token_id, secret_hash, owner FROM api_tokens")
                .fetch_all(&pool)
                .await
                .unwrap();
            rows.iter()
                .flat_map(|r| (0..4).map(move |i| r.get::<String, _>(i)))
                .collect()
        }
        jammi_catalog::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let rows = sqlx::query("SELECT label, token_id, secret_hash, owner FROM api_tokens")
                .fetch_all(&pool)
                .await
                .unwrap();
            rows.iter()
                .flat_map(|r| (0..4).map(move |i| r.get::<String, _>(i)))
                .collect()
        }
    };
    assert_eq!(stored.len(), 4);
    for value in &stored {
        assert!(!value.contains(&secret), "stored {value:?}");
    }

    let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
    register_catalog(&ctx, &db.global());
    let tables = ctx
        .sql("SELECT table_name FROM information_schema.tables WHERE table_catalog = 'jammi'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let names = datafusion::arrow::util::pretty::pretty_format_batches(&tables)
        .unwrap()
        .to_string();
    assert!(names.contains("models"), "{names}");
    assert!(!names.contains("token"), "{names}");
    assert!(
        ctx.sql("SELECT * FROM jammi.public.api_tokens")
            .await
            .is_err(),
        "api_tokens must not be reachable from SQL"
    );
}

/// Each token carries its access level; the level is the token's, whatever the caller.
async fn a_token_carries_its_access_level(db: &TestDb) {
    let tokens = Tokens::new(&db.global()).unwrap();
    let t = Some(TenantId::random());
    for level in Access::ALL {
        let created = tokens
            .create(&format!("t-{level}"), grant(t, level), None)
            .await
            .unwrap();
        assert_eq!(created.info.access, level);
        assert_eq!(
            tokens.authenticate(&created.token).await.unwrap(),
            Some(grant(t, level))
        );
    }
    let listed: Vec<(String, Access)> = tokens
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.label, i.access))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("t-admin".to_owned(), Access::Admin),
            ("t-read".to_owned(), Access::Read),
            ("t-write".to_owned(), Access::Write),
        ]
    );
}

/// An expired token is refused exactly like a revoked one, and listed as expired.
async fn an_expired_token_is_refused(db: &TestDb) {
    let tokens = Tokens::new(&db.global()).unwrap();
    let soon = now() + 1_000_000;
    let created = tokens
        .create("brief", grant(None, Access::Read), Some(soon))
        .await
        .unwrap();
    assert_eq!(created.info.expires_at, Some(soon));
    assert!(tokens.authenticate(&created.token).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_micros((soon - now()).max(0) as u64 + 50_000)).await;
    assert_eq!(tokens.authenticate(&created.token).await.unwrap(), None);
    let info = &tokens.list().await.unwrap()[0];
    assert_eq!(info.status(now()), TokenStatus::Expired);
    // An expiry in the past is refused at creation.
    assert!(matches!(
        tokens.create("stale", admin(None), Some(now() - 1)).await,
        Err(CatalogError::InvalidInput {
            field: "expires_at",
            ..
        })
    ));
    // An expired token's label is not free until it is revoked.
    assert!(matches!(
        tokens.create("brief", admin(None), None).await,
        Err(CatalogError::AlreadyExists { .. })
    ));
    assert!(tokens.revoke("brief").await.unwrap());
    tokens.create("brief", admin(None), None).await.unwrap();
}

/// An unknown token id, presented again, is refused from memory: the database is not
/// asked (here it cannot be: the pool is closed, and a question would fail).
async fn an_unknown_id_is_refused_without_asking_the_database_again(db: &TestDb) {
    let catalog = Catalog::open(&db.url).await.unwrap();
    let tokens = Tokens::new(&catalog).unwrap();
    let made_up = format!("jammi_{}_{}", "1".repeat(16), "2".repeat(64));
    assert_eq!(tokens.authenticate(&made_up).await.unwrap(), None);
    catalog.store().close().await;
    assert_eq!(tokens.authenticate(&made_up).await.unwrap(), None);
    // Another made-up id still goes to the database (which is now closed).
    let another = format!("jammi_{}_{}", "3".repeat(16), "2".repeat(64));
    assert!(matches!(
        tokens.authenticate(&another).await,
        Err(CatalogError::Unavailable(_))
    ));
}

/// A token's last use is written after it is used, at most once a minute.
async fn a_tokens_last_use_is_recorded_at_most_once_a_minute(db: &TestDb) {
    let tokens = Tokens::new(&db.global()).unwrap();
    let created = tokens
        .create("dash", grant(None, Access::Read), None)
        .await
        .unwrap();
    assert_eq!(tokens.list().await.unwrap()[0].last_used_at, None);
    let before = now();
    tokens.authenticate(&created.token).await.unwrap().unwrap();
    let mut recorded = None;
    for _ in 0..100 {
        recorded = tokens.list().await.unwrap()[0].last_used_at;
        if recorded.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recorded = recorded.expect("the last use is recorded");
    assert!(recorded >= before, "{recorded} < {before}");
    // Used again at once: nothing more is written.
    for _ in 0..5 {
        tokens.authenticate(&created.token).await.unwrap().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tokens.list().await.unwrap()[0].last_used_at, Some(recorded));
}

/// A verified token is served from memory, without a database round trip, for at most
/// `VERIFIED_TTL`: a revocation made elsewhere (another process: here another `Tokens` on
/// its own pool) holds within that bound; one made through the same `Tokens` holds at
/// once; and a wrong secret for a remembered id is still refused.
async fn a_verified_token_is_remembered_for_at_most_the_stated_bound(db: &TestDb) {
    let catalog = Catalog::open(&db.url).await.unwrap();
    let tokens = Tokens::new(&catalog).unwrap();
    let elsewhere = Tokens::new(&db.global()).unwrap();
    let t = Some(TenantId::random());
    let created = elsewhere
        .create("remembered", grant(t, Access::Write), None)
        .await
        .unwrap();
    assert_eq!(
        tokens.authenticate(&created.token).await.unwrap(),
        Some(grant(t, Access::Write))
    );

    // Remembered: the database is not asked (this pool is closed; a question would fail).
    catalog.store().close().await;
    assert_eq!(
        tokens.authenticate(&created.token).await.unwrap(),
        Some(grant(t, Access::Write))
    );
    let mut wrong_secret = created.token.clone();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == '0' { '1' } else { '0' });
    assert_eq!(tokens.authenticate(&wrong_secret).await.unwrap(), None);

    // Revoked elsewhere: within the bound the remembered row may still answer; once the
    // bound has passed, the row is read again.
    let tokens = Tokens::new(&db.global()).unwrap();
    let live = elsewhere
        .create("live", grant(t, Access::Read), None)
        .await
        .unwrap();
    assert!(tokens.authenticate(&live.token).await.unwrap().is_some());
    assert!(elsewhere.revoke("live").await.unwrap());
    tokio::time::sleep(jammi_catalog::tokens::VERIFIED_TTL).await;
    assert_eq!(tokens.authenticate(&live.token).await.unwrap(), None);

    // Revoked through the same `Tokens`: refused from the next call.
    let own = tokens
        .create("own", grant(t, Access::Read), None)
        .await
        .unwrap();
    assert!(tokens.authenticate(&own.token).await.unwrap().is_some());
    assert!(tokens.revoke("own").await.unwrap());
    assert_eq!(tokens.authenticate(&own.token).await.unwrap(), None);
}

/// A remembered token's expiry holds exactly: it is checked on every call, not only when
/// the row is read.
async fn a_remembered_token_expires_on_time(db: &TestDb) {
    let tokens = Tokens::new(&db.global()).unwrap();
    let soon = now() + 300_000;
    let created = tokens
        .create("brief", grant(None, Access::Read), Some(soon))
        .await
        .unwrap();
    assert!(tokens.authenticate(&created.token).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_micros((soon - now()).max(0) as u64 + 1_000)).await;
    assert_eq!(tokens.authenticate(&created.token).await.unwrap(), None);
}

/// Tokens made before access levels existed (schema 3) keep what they could do: admin.
async fn tokens_made_before_access_levels_keep_full_access(db: &TestDb) {
    let tokens = Tokens::new(&db.global()).unwrap();
    let t = Some(TenantId::random());
    let created = tokens.create("old", admin(t), None).await.unwrap();
    // Back to schema 3: the token table as it was, with the token's row.
    let downgrade = [
        "CREATE TABLE api_tokens_v3 AS SELECT label, token_id, secret_hash, owner, created_at, \
         revoked_at FROM api_tokens",
        "DROP TABLE api_tokens",
        "ALTER TABLE api_tokens_v3 RENAME TO api_tokens",
        "DELETE FROM jammi_migrations WHERE version = 4",
    ];
    match db.catalog.store().backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            for statement in downgrade {
                sqlx::raw_sql(statement).execute(&mut conn).await.unwrap();
            }
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            for statement in downgrade {
                sqlx::raw_sql(statement).execute(&mut conn).await.unwrap();
            }
        }
    }
    let reopened = Catalog::open(&db.url).await.expect("migrates to schema 4");
    let tokens = Tokens::new(&reopened).unwrap();
    assert_eq!(
        tokens.authenticate(&created.token).await.unwrap(),
        Some(admin(t))
    );
    let info = &tokens.list().await.unwrap()[0];
    assert_eq!((info.access, info.expires_at), (Access::Admin, None));
    reopened.store().close().await;
}

backend_tests!(
    a_verified_token_is_remembered_for_at_most_the_stated_bound,
    a_remembered_token_expires_on_time,
    a_token_carries_its_access_level,
    an_expired_token_is_refused,
    an_unknown_id_is_refused_without_asking_the_database_again,
    a_tokens_last_use_is_recorded_at_most_once_a_minute,
    tokens_made_before_access_levels_keep_full_access,
    a_token_authenticates_to_its_scope_until_revoked,
    labels_name_one_live_token,
    only_the_operator_administers_tokens,
    tokens_are_stored_as_digests_and_hidden_from_sql
);
