//! The record-level error of an expression, and its kind.

/// A record-level failure of an expression: a type error, a missing field, a
/// non-boolean predicate. Handled by `errors.policy`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{expr}`: {message}")]
pub struct ExprError {
    /// The expression's source text.
    pub expr: String,
    /// What went wrong.
    pub message: String,
}

/// What kind of failure an [`ExprError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprErrorKind {
    /// A map (a record's payload or a field of it) lacks the key read:
    /// `No such key: <key>`. SQL-like aggregates treat it as null.
    MissingKey,
    /// Anything else: a type error, an overflow, a non-bool predicate.
    Other,
}

/// The message prefix the `cel` crate gives a missing key; the only place
/// that knows the text.
const MISSING_KEY: &str = "No such key: ";

impl ExprError {
    /// An error of `expr` with `message`.
    pub fn new(expr: impl Into<String>, message: impl Into<String>) -> Self {
        ExprError {
            expr: expr.into(),
            message: message.into(),
        }
    }

    /// The error CEL gives when `expr` reads `key` of a map that lacks it.
    pub fn missing_key(expr: impl Into<String>, key: &str) -> Self {
        Self::new(expr, format!("{MISSING_KEY}{key}"))
    }

    /// The kind of this error.
    pub fn kind(&self) -> ExprErrorKind {
        if self.message.starts_with(MISSING_KEY) {
            ExprErrorKind::MissingKey
        } else {
            ExprErrorKind::Other
        }
    }

    /// Whether the expression read a key its map lacks (`No such key: …`).
    pub fn is_missing_key(&self) -> bool {
        self.kind() == ExprErrorKind::MissingKey
    }
}
