//! What is wrong in definitions, located by file, record and field.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong (or worth a warning) in the definitions, located as precisely as the
/// source allows: file, record, field.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    /// e.g. `record 2 (webhook "ci_build_done")`.
    pub record: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(record) = &self.record {
            write!(f, ": {record}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Definitions that could not be loaded, with every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the definitions:\n{}", .0.len(), render(.0))]
pub struct LoadError(pub Vec<Problem>);

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
