//! Hostile and random input to the validators, the statement splitter and the catalog
//! operations: typed errors only, never a panic, never a partial write.

use jammi_catalog::sql::script::split_statements;
use jammi_catalog::{ModelTask, RegisterModel, TenantId, validate};

use jammi_testkit::TestDb;
use jammi_testkit::backend_tests;
use jammi_testkit::rng::Rng;

const ROUNDS: u64 = 2_000;

#[test]
fn splitter_and_validators_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..ROUNDS {
        let text = rng.sql_string(40);
        for statement in split_statements(&text) {
            assert!(
                !statement.is_empty() && statement == statement.trim(),
                "{text:?} -> {statement:?}"
            );
        }
        let _ = validate::name("model_id", &text);
        let _ = validate::json("config_json", Some(&text));
        let _ = validate::worker(&text);
        let _ = text.parse::<ModelTask>();
        let _ = text.parse::<TenantId>();
    }
}

#[test]
fn splitting_keeps_every_statement_of_a_script_built_from_known_ones() {
    let mut rng = Rng(7);
    for _ in 0..500 {
        // Statements whose only semicolons are inside literals, identifiers or comments.
        let statements: Vec<String> = (0..(1 + rng.next_u64() % 4))
            .map(|i| {
                let literal = rng.sql_string(8).replace('\'', "''").replace('\0', "");
                format!("SELECT '{literal};' AS \"c;{i}\" /* ; */")
            })
            .collect();
        let script = statements.join(";\n-- comment; here\n") + ";";
        assert_eq!(
            split_statements(&script).len(),
            statements.len(),
            "{script}"
        );
    }
}

async fn random_names_are_stored_verbatim_or_refused_cleanly(db: &TestDb) {
    let t = db.scoped(TenantId::random());
    let mut rng = Rng(99);
    let mut stored = std::collections::BTreeSet::new();
    for _ in 0..150 {
        let name = rng.sql_string(12);
        let result = t
            .register_model(RegisterModel::new(name.clone(), "e", "c", ModelTask::Ner).version(1))
            .await;
        match result {
            Ok(record) => {
                assert_eq!(record.model_id, name);
                assert_eq!(t.get_model(&name).await.unwrap().model_id, name);
                stored.insert(name);
            }
            Err(jammi_catalog::CatalogError::InvalidInput { field, .. }) => {
                assert_eq!(field, "model_id")
            }
            Err(e) => panic!("{name:?}: {e}"),
        }
    }
    assert!(
        stored.len() > 10,
        "the generator produced too few valid names"
    );
    let listed: std::collections::BTreeSet<String> = t
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.model_id)
        .collect();
    assert_eq!(listed, stored);
}

backend_tests!(random_names_are_stored_verbatim_or_refused_cleanly);
