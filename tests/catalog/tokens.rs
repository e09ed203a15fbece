//! API tokens (SPEC §11): shown once, stored as a digest, scoped, revocable.

use datafusion::prelude::{SessionConfig, SessionContext};
use jammi_catalog::{CatalogError, TenantId, Tokens, register_catalog};
use jammi_testkit::{TestDb, backend_tests};
use sqlx::Row;

async fn a_token_authenticates_to_its_scope_until_revoked(db: &TestDb) {
    let tokens = Tokens::new(&db.global()).unwrap();
    let t = TenantId::random();
    let tenant = tokens.create("acme-notebooks", Some(t)).await.unwrap();
    let operator = tokens.create("operator", None).await.unwrap();
    assert_eq!(tenant.info.tenant, Some(t));
    assert_ne!(tenant.token, operator.token);

    assert_eq!(
        tokens.authenticate(&tenant.token).await.unwrap(),
        Some(Some(t))
    );
    assert_eq!(
        tokens.authenticate(&operator.token).await.unwrap(),
        Some(None)
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
        Some(None)
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
    let first = tokens.create("ci", None).await.unwrap();
    match tokens.create("ci", Some(TenantId::random())).await {
        Err(CatalogError::AlreadyExists { kind: "token", id }) => assert_eq!(id, "ci"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // The first token is untouched by the refused create.
    assert_eq!(tokens.authenticate(&first.token).await.unwrap(), Some(None));

    // Once revoked, the label can be given to a new token; the old one stays dead.
    tokens.revoke("ci").await.unwrap();
    let second = tokens.create("ci", None).await.unwrap();
    assert_eq!(tokens.authenticate(&first.token).await.unwrap(), None);
    assert_eq!(
        tokens.authenticate(&second.token).await.unwrap(),
        Some(None)
    );
    assert_eq!(tokens.list().await.unwrap().len(), 1);

    for bad in ["", "a\nb", "a::b"] {
        assert!(
            matches!(
                tokens.create(bad, None).await,
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
    let created = tokens.create("secretive", None).await.unwrap();
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

backend_tests!(
    a_token_authenticates_to_its_scope_until_revoked,
    labels_name_one_live_token,
    only_the_operator_administers_tokens,
    tokens_are_stored_as_digests_and_hidden_from_sql
);
