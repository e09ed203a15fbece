//! `jammi token create|list|revoke`: the server's API tokens (SPEC §11), administered on
//! the catalog database directly, as its operator.

use jammi_catalog::{TenantId, Tokens};

use crate::session::open_catalog;

pub async fn create(db: &str, tenant: Option<TenantId>, label: &str) -> Result<(), String> {
    let created = tokens(db)
        .await?
        .create(label, tenant)
        .await
        .map_err(|e| e.to_string())?;
    // The token goes to stdout alone, so a script can capture it; it is shown only now.
    eprintln!(
        "created token {:?} for {}; it is shown once, store it now:",
        created.info.label,
        scope_name(created.info.tenant)
    );
    println!("{}", created.token);
    Ok(())
}

pub async fn list(db: &str) -> Result<(), String> {
    let listed = tokens(db).await?.list().await.map_err(|e| e.to_string())?;
    println!("{:<24} {:<45} {:<22} status", "label", "scope", "created");
    for info in listed {
        println!(
            "{:<24} {:<45} {:<22} {}",
            info.label,
            scope_name(info.tenant),
            timestamp(info.created_at),
            match info.revoked_at {
                Some(at) => format!("revoked {}", timestamp(at)),
                None => "live".to_owned(),
            }
        );
    }
    Ok(())
}

pub async fn revoke(db: &str, label: &str) -> Result<(), String> {
    if tokens(db)
        .await?
        .revoke(label)
        .await
        .map_err(|e| e.to_string())?
    {
        eprintln!("revoked token {label:?}; calls with it are refused from now on");
        Ok(())
    } else {
        Err(format!("no live token is labelled {label:?}"))
    }
}

async fn tokens(db: &str) -> Result<Tokens, String> {
    Tokens::new(&open_catalog(db).await?).map_err(|e| e.to_string())
}

fn scope_name(tenant: Option<TenantId>) -> String {
    tenant.map_or_else(|| "unscoped".to_owned(), |t| format!("tenant {t}"))
}

/// Microseconds since the epoch as an RFC 3339 UTC time.
fn timestamp(micros: i64) -> String {
    datafusion::arrow::temporal_conversions::timestamp_us_to_datetime(micros).map_or_else(
        || micros.to_string(),
        |t| format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S")),
    )
}
