//! The two expression languages of pipeline files: CEL for expressions and
//! JSONPath (RFC 9535) for paths. Both are compiled once, at load.

pub mod cel;
pub mod convert;
pub mod error;
pub mod native;
pub mod path;

pub use self::cel::{CelEnv, CelExpr, ExprError, ExprErrorKind};
pub use self::path::JsonPath;
