//! Errors in pipeline files and the daemon config, each with its location.
//!
//! Every user mistake is reported as `file:line:col: field.path: what is wrong
//! (expected …)`, and the CLI exits with code 2 (DESIGN.md §2).

use std::fmt;
use std::path::PathBuf;

/// One mistake in a configuration file, located to line and column (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file the mistake is in.
    pub file: PathBuf,
    /// 1-based line; 0 when the file could not be read at all.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub col: usize,
    /// Dotted field path such as `stages[2].window.tumbling`; empty for the whole document.
    pub path: String,
    /// What is wrong, ending with `(expected …)` where an expectation exists.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

/// All the mistakes found in one or more files; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

impl From<SpecError> for SpecErrors {
    fn from(e: SpecError) -> Self {
        SpecErrors(vec![e])
    }
}
