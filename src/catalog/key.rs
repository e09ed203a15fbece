//! The storage key of a model row (SPEC §3): the only place it is built.

use crate::tenant::Scope;

/// `{tenant}::{name}::{version}` for a tenant's row, `{name}::{version}` for a global one.
///
/// Names never contain `::` and tenant ids are UUIDs (validated before any write), so two
/// different (owner, name, version) triples never give the same key.
pub(crate) fn model_key(owner: Scope, name: &str, version: i32) -> String {
    match owner {
        Some(tenant) => format!("{tenant}::{name}::{version}"),
        None => format!("{name}::{version}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::TenantId;

    #[test]
    fn keys_are_tenant_qualified() {
        let t: TenantId = "6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10".parse().unwrap();
        assert_eq!(model_key(None, "bge", 2), "bge::2");
        assert_eq!(
            model_key(Some(t), "org/bge", 1),
            "6f1c2a0e-3b9d-4c1e-9a7f-0d2b4e6f8a10::org/bge::1"
        );
    }
}
