//! Input validation (SPEC §9), run before anything is written.
//!
//! Each check names the field it rejects, so the message can be acted on.
//!
//! No text the catalog writes may hold NUL (U+0000): SQLite would store it, Postgres
//! refuses it in `text`, so the catalog refuses it on every backend, here (see
//! docs/design.md). Names and ids refuse every control character; free text and JSON
//! refuse only NUL.

use std::time::Duration;

use crate::error::{CatalogError, Result};

/// Longest accepted model name or row id, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// A model name or row id: 1–256 characters, no control characters, no `::` (the
/// separator of the storage key, which must never collide).
pub fn name(field: &'static str, value: &str) -> Result<()> {
    let chars = value.chars().count();
    if chars == 0 {
        return Err(CatalogError::invalid(field, "must not be empty"));
    }
    if chars > MAX_NAME_CHARS {
        return Err(CatalogError::invalid(
            field,
            format!("is {chars} characters long; the limit is {MAX_NAME_CHARS}"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(CatalogError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    if value.contains("::") {
        return Err(CatalogError::invalid(field, "must not contain \"::\""));
    }
    Ok(())
}

/// Longest accepted alias name or tag key, in characters (SPEC §13).
pub const MAX_LABEL_CHARS: usize = 128;

/// An alias name or tag key: 1–128 characters, no control characters.
pub fn label(field: &'static str, value: &str) -> Result<()> {
    let chars = value.chars().count();
    if chars == 0 {
        return Err(CatalogError::invalid(field, "must not be empty"));
    }
    if chars > MAX_LABEL_CHARS {
        return Err(CatalogError::invalid(
            field,
            format!("is {chars} characters long; the limit is {MAX_LABEL_CHARS}"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(CatalogError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Any text the catalog writes or looks a row up by: no NUL character.
pub fn text(field: &'static str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(CatalogError::invalid(
            field,
            "must not contain the NUL character (U+0000)",
        ));
    }
    Ok(())
}

/// A free-text attribute that must be present (`model_type`, `backend`, `eval_type`, …).
pub fn non_empty(field: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(CatalogError::invalid(field, "must not be empty"));
    }
    text(field, value)
}

/// A model version: at least 1.
pub fn version(field: &'static str, value: i32) -> Result<()> {
    if value < 1 {
        return Err(CatalogError::invalid(
            field,
            format!("must be at least 1, got {value}"),
        ));
    }
    Ok(())
}

/// A JSON document (`config_json`, `hyperparams`, `metrics`), when given.
pub fn json(field: &'static str, value: Option<&str>) -> Result<()> {
    if let Some(value) = value {
        text(field, value)?;
        serde_json::from_str::<serde_json::Value>(value)
            .map_err(|e| CatalogError::invalid(field, format!("is not valid JSON: {e}")))?;
    }
    Ok(())
}

/// A lease duration: longer than zero, and small enough to add to a timestamp.
pub fn lease(value: Duration) -> Result<()> {
    if value.is_zero() {
        return Err(CatalogError::invalid("lease", "must be longer than zero"));
    }
    if value > Duration::from_secs(365 * 24 * 3600) {
        return Err(CatalogError::invalid("lease", "must be at most one year"));
    }
    Ok(())
}

/// A worker id: not empty, no control characters.
pub fn worker(value: &str) -> Result<()> {
    non_empty("worker", value)?;
    if value.chars().any(char::is_control) {
        return Err(CatalogError::invalid(
            "worker",
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        assert!(name("model_id", "sentence-transformers/all-MiniLM-L6-v2").is_ok());
        assert!(name("model_id", "o'brien; DROP TABLE models;--").is_ok());
        assert!(name("model_id", &"x".repeat(256)).is_ok());
        for bad in ["", "a::b", "tab\there", "nl\n", &"x".repeat(257)] {
            let err = name("model_id", bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid model_id"), "{err}");
        }
    }

    #[test]
    fn nul_is_refused_in_free_text_and_json_where_other_controls_pass() {
        for (field, check) in [
            (
                "model_type",
                non_empty as fn(&'static str, &str) -> Result<()>,
            ),
            ("error", text),
        ] {
            let err = check(field, "a\0b").unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid {field}")), "{err}");
            assert!(err.contains("NUL"), "{err}");
            assert!(check(field, "tab\there\nnewline\u{7}").is_ok());
        }
        let err = json("metrics", Some("{\"a\": 1}\0"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("NUL"), "{err}");
        assert!(json("metrics", Some("{\n\t\"a\": \"\\u0000\"\n}")).is_ok());
        assert!(name("model_id", "a\0b").is_err());
        assert!(worker("w\0").is_err());
    }

    #[test]
    fn versions_start_at_one() {
        assert!(version("version", 1).is_ok());
        assert!(version("version", 0).is_err());
        assert!(version("version", -3).is_err());
    }

    #[test]
    fn json_is_checked_only_when_given() {
        assert!(json("config_json", None).is_ok());
        assert!(json("config_json", Some(r#"{"dim": 384}"#)).is_ok());
        let err = json("metrics", Some("{nope")).unwrap_err().to_string();
        assert!(err.starts_with("invalid metrics"), "{err}");
    }

    #[test]
    fn lease_and_worker() {
        assert!(lease(Duration::ZERO).is_err());
        assert!(lease(Duration::from_secs(30)).is_ok());
        assert!(worker("").is_err());
        assert!(worker("  ").is_err());
        assert!(worker("gpu-7").is_ok());
    }
}
