//! A fresh database per test, on SQLite always and on Postgres when `JAMMI_TEST_PG_URL` is
//! set, so one test body runs on both backends.

use jammi_catalog::{Catalog, TenantId};
use sqlx::Connection;

/// A fresh catalog database that lives as long as the value.
pub struct TestDb {
    pub url: String,
    pub catalog: Catalog,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl TestDb {
    /// A new SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
        let catalog = Catalog::open(&url).await.expect("open sqlite catalog");
        TestDb {
            url,
            catalog,
            _dir: Some(dir),
            pg_schema: None,
        }
    }

    /// A new schema on the Postgres server of `JAMMI_TEST_PG_URL`, or `None` (with a note)
    /// when the variable is not set.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(base) = std::env::var("JAMMI_TEST_PG_URL") else {
            eprintln!("note: JAMMI_TEST_PG_URL is not set; skipping the Postgres lane");
            return None;
        };
        let schema = format!("jammi_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&base)
            .await
            .expect("connect to JAMMI_TEST_PG_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .expect("create test schema");
        admin.close().await.ok();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let catalog = Catalog::open(&url).await.expect("open postgres catalog");
        Some(TestDb {
            url,
            catalog,
            _dir: None,
            pg_schema: Some((base, schema)),
        })
    }

    /// The catalog bound to `scope`, sharing this database's pool.
    pub fn scoped(&self, tenant: TenantId) -> Catalog {
        self.catalog.with_scope(Some(tenant))
    }

    /// The unscoped catalog (global rows only).
    pub fn global(&self) -> Catalog {
        self.catalog.with_scope(None)
    }

    /// Drops the Postgres schema (SQLite files go with their temp dir).
    pub async fn cleanup(self) {
        self.catalog.store().close().await;
        if let Some((base, schema)) = self.pg_schema
            && let Ok(mut admin) = sqlx::PgConnection::connect(&base).await
        {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut admin)
                .await
                .ok();
        }
    }
}

/// Runs each listed `async fn(&TestDb)` as two tests, `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = $crate::TestDb::sqlite().await;
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = $crate::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}
