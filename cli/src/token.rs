//! `jammi token create|list|revoke`: the server's API tokens (SPEC §11, §14), administered
//! on the catalog database directly, as its operator.

use std::time::SystemTime;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use jammi_catalog::{Grant, TenantId, Tokens};

use crate::output::{self, Format};
use crate::session::open_catalog;

pub async fn create(
    db: &str,
    label: &str,
    grant: Grant,
    expires: Option<SystemTime>,
) -> Result<(), String> {
    let expires_at = expires.map(micros_since_epoch).transpose()?;
    let created = tokens(db)
        .await?
        .create(label, grant, expires_at)
        .await
        .map_err(|e| e.to_string())?;
    // The token goes to stdout alone, so a script can capture it; it is shown only now.
    eprintln!(
        "created token {:?} for {} with {} access{}; it is shown once, store it now:",
        created.info.label,
        scope_name(created.info.tenant),
        created.info.access,
        created
            .info
            .expires_at
            .map(|at| format!(", expiring {}", timestamp(at)))
            .unwrap_or_default()
    );
    println!("{}", created.token);
    Ok(())
}

/// Every token as a table: label, scope, access, created, expires, last used, status.
pub async fn list(db: &str) -> Result<(), String> {
    let listed = tokens(db).await?.list().await.map_err(|e| e.to_string())?;
    let now = micros_since_epoch(SystemTime::now())?;
    let column = |f: &dyn Fn(&jammi_catalog::TokenInfo) -> Option<String>| {
        std::sync::Arc::new(listed.iter().map(f).collect::<StringArray>()) as _
    };
    let names = [
        "label",
        "scope",
        "access",
        "created",
        "expires",
        "last_used",
        "status",
    ];
    let schema = std::sync::Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        std::sync::Arc::clone(&schema),
        vec![
            column(&|t| Some(t.label.clone())),
            column(&|t| Some(scope_name(t.tenant))),
            column(&|t| Some(t.access.to_string())),
            column(&|t| Some(timestamp(t.created_at))),
            column(&|t| t.expires_at.map(timestamp)),
            column(&|t| t.last_used_at.map(timestamp)),
            column(&|t| {
                Some(match (t.status(now), t.revoked_at) {
                    (status, Some(at)) => format!("{} {}", status.as_str(), timestamp(at)),
                    (status, None) => status.as_str().to_owned(),
                })
            }),
        ],
    )
    .map_err(|e| e.to_string())?;
    output::print(Format::Table, &schema, &[batch]).map_err(|e| e.to_string())
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

fn micros_since_epoch(time: SystemTime) -> Result<i64, String> {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_micros()).ok())
        .ok_or_else(|| "the time is outside the range of timestamps".to_owned())
}

/// Microseconds since the epoch as an RFC 3339 UTC time.
fn timestamp(micros: i64) -> String {
    datafusion::arrow::temporal_conversions::timestamp_us_to_datetime(micros).map_or_else(
        || micros.to_string(),
        |t| format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S")),
    )
}
