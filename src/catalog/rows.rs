//! Small helpers shared by the row conversions of the operation modules.

use std::str::FromStr;

use crate::error::{CatalogError, Result};
use crate::store::DbRow;
use crate::tenant::{Scope, scope_of_owner};

/// The scope that owns a row, read from its `owner` column.
pub(super) fn owner(row: &DbRow) -> Result<Scope> {
    scope_of_owner(&row.text("owner")?)
}

/// A column holding one of the catalog's enumerations (task, status, …).
pub(super) fn parsed<T>(row: &DbRow, column: &str) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text = row.text(column)?;
    text.parse()
        .map_err(|e: T::Err| CatalogError::TypeConversion {
            column: column.to_owned(),
            detail: e.to_string(),
        })
}

/// Declares a status enumeration whose database spelling is its only spelling.
macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The database spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::CatalogError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::error::CatalogError::invalid(
                        "status",
                        format!("{other:?} is not one of {}", [$($text),+].join(", ")),
                    )),
                }
            }
        }
    };
}
pub(super) use status_enum;
