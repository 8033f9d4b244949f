//! Pipeline and daemon config files: serde types, `${VAR}` interpolation,
//! and errors located to file, line, column and field path.

pub mod daemon;
pub mod duration;
pub mod error;
pub mod interpolate;
pub mod location;
pub mod pipeline;
pub mod tables;

pub use daemon::DaemonConfig;
pub use duration::DurationMs;
pub use error::{SpecError, SpecErrors};
pub use location::LocationIndex;
pub use pipeline::*;
pub use tables::*;

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A parsed file with what is needed to locate later errors in it.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The parsed document.
    pub doc: T,
    /// The file it came from.
    pub file: PathBuf,
    /// Path → position index of the (interpolated) text.
    pub index: LocationIndex,
}

impl<T> Loaded<T> {
    /// An error located at field `path` of this file.
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> SpecError {
        let (line, col) = self.index.position(path);
        SpecError {
            file: self.file.clone(),
            line,
            col,
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// Reads, interpolates and parses a YAML file into `T`.
///
/// # Errors
/// [`SpecError`] for an unreadable file, an unset variable, a YAML syntax
/// error or a field of the wrong shape; located where possible.
pub fn load_file<T: DeserializeOwned>(file: &Path) -> Result<Loaded<T>, SpecError> {
    let text = std::fs::read_to_string(file).map_err(|e| SpecError {
        file: file.to_owned(),
        line: 0,
        col: 0,
        path: String::new(),
        message: format!("cannot read file: {e} (expected a readable YAML file)"),
    })?;
    parse_text(file, &text)
}

/// Interpolates and parses `text` as if read from `file`.
///
/// # Errors
/// As [`load_file`].
pub fn parse_text<T: DeserializeOwned>(file: &Path, text: &str) -> Result<Loaded<T>, SpecError> {
    let text =
        interpolate::interpolate(text, |n| std::env::var(n).ok()).map_err(|e| SpecError {
            file: file.to_owned(),
            line: e.line,
            col: e.col,
            path: String::new(),
            message: e.to_string(),
        })?;
    let doc = serde_yaml::from_str::<T>(&text).map_err(|e| yaml_error(file, &e))?;
    Ok(Loaded {
        doc,
        file: file.to_owned(),
        index: LocationIndex::build(&text),
    })
}

/// Turns a serde_yaml error into `file:line:col: path: message`.
fn yaml_error(file: &Path, e: &serde_yaml::Error) -> SpecError {
    let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    let mut text = e.to_string();
    if let Some(i) = text.rfind(" at line ") {
        text.truncate(i);
    }
    // serde_yaml prefixes the field path as `a.b[0].c: `.
    let (path, message) = match text.split_once(": ") {
        Some((p, m)) if !p.contains(' ') && !p.is_empty() => (p.to_owned(), m.to_owned()),
        _ => (String::new(), text),
    };
    let message = message
        .replace(", expected one of ", " (expected one of ")
        .replace(", expected ", " (expected ");
    let message = if message.contains(" (expected ") {
        if message.ends_with(')') {
            message
        } else {
            format!("{message})")
        }
    } else if path.is_empty() {
        format!("{message} (expected valid YAML; quote values that contain `: ` or start with a special character)")
    } else {
        message
    };
    SpecError {
        file: file.to_owned(),
        line,
        col,
        path,
        message,
    }
}

/// Expands files and directories into the `.yaml`/`.yml` files they hold,
/// sorted by name.
///
/// # Errors
/// A message naming a path that does not exist.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SpecError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| SpecError {
                    file: p.clone(),
                    line: 0,
                    col: 0,
                    path: String::new(),
                    message: format!("cannot read directory: {e}"),
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && matches!(f.extension().and_then(|x| x.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            files.sort();
            out.extend(files);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(SpecError {
                file: p.clone(),
                line: 0,
                col: 0,
                path: String::new(),
                message:
                    "no such file or directory (expected a pipeline file or a directory of them)"
                        .into(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Loaded<PipelineSpec>, SpecError> {
        parse_text(Path::new("p.yaml"), text)
    }

    #[test]
    fn unknown_field_is_located() {
        let e = parse("name: x\nsource: {topics: [a]}\nstages:\n  - window:\n      tumblng: 1h\n      aggregate: {n: count()}\nsinks: [{topic: b}]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.yaml:5:7: stages[0].window: unknown field `tumblng` (expected one of `tumbling`, `hopping`, `session`, `allowed_lateness`, `emit`, `late`, `aggregate`)"
        );
    }

    #[test]
    fn bad_duration_is_located() {
        let e = parse("name: x\nsource:\n  topics: [a]\n  watermark: {max_out_of_orderness: 5x}\nsinks: [{topic: b}]\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert_eq!(e.path, "source.watermark");
        assert_eq!(
            e.message,
            "`5x` is not a duration (expected a number with a unit, like 500ms, 5s, 1m, 1h)"
        );
    }
}
