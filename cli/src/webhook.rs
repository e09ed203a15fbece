//! `jammi webhook create|list|delete|pause|resume` (SPEC §16): a scope's webhooks,
//! administered on the catalog database directly, as its operator, in the scope of
//! `--tenant`. `jammi serve` delivers them.

use jammi_catalog::{Access, Catalog, EventKind, NewWebhook, TenantId};

use crate::output::Format;
use crate::session::{Session, open_catalog};

/// What `list` shows: every column of `jammi.public.webhooks` a person reads first.
const LIST: &str = "SELECT webhook_id, url, event_kinds, model_pattern, state, paused_reason, \
     last_event_id, failures, claimed_by, tenant_id, created_at \
     FROM jammi.public.webhooks ORDER BY created_at, webhook_id";

pub async fn create(db: &str, tenant: Option<TenantId>, webhook: NewWebhook) -> Result<(), String> {
    let created = catalog(db, tenant)
        .await?
        .create_webhook(webhook)
        .await
        .map_err(|e| e.to_string())?;
    let w = &created.webhook;
    // The secret goes to stdout alone, so a script can capture it; it is shown only now.
    eprintln!(
        "created webhook {} for {} posting {} to {}, from event {} on; its signing secret \
         is shown once, store it now:",
        w.webhook_id,
        scope_name(w.tenant_id),
        describe_filters(&w.event_kinds, w.model_pattern.as_deref()),
        w.url,
        w.last_event_id + 1,
    );
    println!("{}", created.secret);
    Ok(())
}

pub async fn list(db: &str, tenant: Option<TenantId>) -> Result<(), String> {
    Session::open(db, tenant, Access::Read, Format::Table)
        .await?
        .run_statement(LIST)
        .await
}

pub async fn delete(db: &str, tenant: Option<TenantId>, id: &str) -> Result<(), String> {
    catalog(db, tenant)
        .await?
        .delete_webhook(id)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("deleted webhook {id} and the record of its deliveries");
    Ok(())
}

pub async fn pause(
    db: &str,
    tenant: Option<TenantId>,
    id: &str,
    reason: &str,
) -> Result<(), String> {
    let w = catalog(db, tenant)
        .await?
        .pause_webhook(id, reason)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "paused webhook {}: events after {} wait until it is resumed",
        w.webhook_id, w.last_event_id
    );
    Ok(())
}

pub async fn resume(db: &str, tenant: Option<TenantId>, id: &str) -> Result<(), String> {
    let w = catalog(db, tenant)
        .await?
        .resume_webhook(id)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "resumed webhook {}: delivered again from the event after {}",
        w.webhook_id, w.last_event_id
    );
    Ok(())
}

async fn catalog(db: &str, tenant: Option<TenantId>) -> Result<Catalog, String> {
    Ok(open_catalog(db).await?.with_scope(tenant))
}

fn scope_name(tenant: Option<TenantId>) -> String {
    tenant.map_or_else(|| "global events".to_owned(), |t| format!("tenant {t}"))
}

fn describe_filters(kinds: &[EventKind], pattern: Option<&str>) -> String {
    let kinds = if kinds.is_empty() {
        "every event".to_owned()
    } else {
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        format!("{} events", names.join(", "))
    };
    match pattern {
        Some(p) => format!("{kinds} of models matching {p:?}"),
        None => kinds,
    }
}
