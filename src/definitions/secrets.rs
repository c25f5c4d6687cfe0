//! Secret values for `#!cxtower.secret.REF!#` placeholders, and their masking in stored logs.
//!
//! The sandbox substitutes the placeholders a snippet uses (and masks those values in the
//! messages it returns); towerhook hands it every known value. With the YAML source the
//! values come from a secrets file and `TOWERHOOK_SECRET_<reference>` variables, never from
//! the definitions directory, so definitions can live in git without their secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

/// Values of secrets, by reference (`None`: the secret has no value).
pub type SecretValues = BTreeMap<String, Option<String>>;

/// Where placeholders start and end, as the module finds them
/// (`cx.tower.key._extract_key_strings`); code this short is not scanned.
const PLACEHOLDER_START: &str = "#!cxtower";
const PLACEHOLDER_END: &str = "!#";
const MIN_SCANNED_LEN: usize = PLACEHOLDER_START.len() + 3 + PLACEHOLDER_END.len();

/// The references of the secrets `code` uses, each once, in order of appearance: each
/// `#!cxtower` up to the next `!#` that, without spaces and `!#`, splits on `.` into
/// `#!cxtower`, `secret` and a reference (python_sandbox/towerhook_sandbox/secrets.py).
pub fn secret_references(code: &str) -> Vec<String> {
    let mut references: Vec<String> = Vec::new();
    if code.len() <= MIN_SCANNED_LEN {
        return references;
    }
    let mut from = 0;
    while let Some(start) = code[from..].find(PLACEHOLDER_START).map(|at| at + from) {
        let Some(end) = code[start..].find(PLACEHOLDER_END).map(|at| at + start) else {
            from = start + PLACEHOLDER_START.len();
            continue;
        };
        let end = end + PLACEHOLDER_END.len();
        let candidate = code[start..end]
            .replace(' ', "")
            .replace(PLACEHOLDER_END, "");
        let parts: Vec<&str> = candidate.split('.').collect();
        if let [PLACEHOLDER_START, "secret", reference] = parts.as_slice()
            && !reference.is_empty()
            && !references.iter().any(|known| known == reference)
        {
            references.push(reference.to_string());
        }
        from = end;
    }
    references
}

/// What replaces a secret value in stored logs, as the module's spoiler.
pub const SPOILER: &str = "*****";
pub use crate::configuration::SECRET_ENV_PREFIX as ENV_PREFIX;
/// Shorter values are not masked in stored headers and payloads: they would hide
/// unrelated text and reveal little.
const MIN_MASKED_LEN: usize = 4;

/// What is wrong with the secrets file.
#[derive(Debug, thiserror::Error)]
pub enum SecretsFileError {
    #[error(
        "secrets file {} is inside the definitions directory {}: keep secret values out of \
         the definitions (they are meant to be shared, e.g. in git)",
        file.display(),
        dir.display()
    )]
    InsideDefinitions { file: PathBuf, dir: PathBuf },
    #[error("secrets file {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("secrets file {}: expected a mapping `reference: value`: {message}", file.display())]
    NotAMapping { file: PathBuf, message: String },
    #[error("secrets file {}: the value of {reference:?} must be text, not {value}", file.display())]
    NotText {
        file: PathBuf,
        reference: String,
        value: Value,
    },
}

/// Reads the secrets file (a YAML mapping `reference: value`) and the environment.
/// Variables win over the file.
pub fn load_local(
    file: Option<&Path>,
    definitions_dir: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<SecretValues, SecretsFileError> {
    let mut secrets = BTreeMap::new();
    if let Some(file) = file {
        if is_inside(file, definitions_dir) {
            return Err(SecretsFileError::InsideDefinitions {
                file: file.to_path_buf(),
                dir: definitions_dir.to_path_buf(),
            });
        }
        let text = std::fs::read_to_string(file).map_err(|source| SecretsFileError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        let parsed: BTreeMap<String, Value> = if text.trim().is_empty() {
            BTreeMap::new()
        } else {
            serde_saphyr::from_str(&text).map_err(|e| SecretsFileError::NotAMapping {
                file: file.to_path_buf(),
                message: e.to_string(),
            })?
        };
        for (reference, value) in parsed {
            let value = match value {
                Value::String(text) => text,
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => if flag { "True" } else { "False" }.to_string(),
                Value::Null => continue,
                value => {
                    return Err(SecretsFileError::NotText {
                        file: file.to_path_buf(),
                        reference,
                        value,
                    });
                }
            };
            secrets.insert(reference, Some(value));
        }
    }
    for (name, value) in env {
        if let Some(reference) = name.strip_prefix(ENV_PREFIX)
            && !reference.is_empty()
        {
            secrets.insert(reference.to_string(), Some(value));
        }
    }
    Ok(secrets)
}

fn is_inside(file: &Path, dir: &Path) -> bool {
    match (file.canonicalize(), dir.canonicalize()) {
        (Ok(file), Ok(dir)) => file.starts_with(dir),
        _ => file.starts_with(dir),
    }
}

/// Masks secret values found in a stored header or payload.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    values: Arc<Vec<String>>,
}

impl Masker {
    pub fn new(secrets: &SecretValues) -> Self {
        let mut values: Vec<String> = secrets
            .values()
            .flatten()
            .filter(|value| value.chars().count() >= MIN_MASKED_LEN)
            .cloned()
            .collect();
        // Longest first, so a value containing another is masked whole.
        values.sort_by_key(|value| std::cmp::Reverse(value.len()));
        values.dedup();
        Self {
            values: Arc::new(values),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn mask_text(&self, text: &str) -> Option<String> {
        if !self
            .values
            .iter()
            .any(|value| text.contains(value.as_str()))
        {
            return None;
        }
        let mut masked = text.to_string();
        for value in self.values.iter() {
            masked = masked.replace(value.as_str(), SPOILER);
        }
        Some(masked)
    }

    /// Masks in every string of a JSON value (keys included).
    pub fn mask_json(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(text) => {
                if let Some(masked) = self.mask_text(text) {
                    *text = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask_json(item)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut item) in entries {
                    self.mask_json(&mut item);
                    let key = self.mask_text(&key).unwrap_or(key);
                    map.insert(key, item);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_and_environment_with_variables_winning() {
        let dir = tempfile::tempdir().unwrap();
        let definitions = dir.path().join("definitions");
        std::fs::create_dir(&definitions).unwrap();
        let file = dir.path().join("secrets.yaml");
        std::fs::write(&file, "github_token: from-file\nport: 8443\nother: kept\n").unwrap();
        let secrets = load_local(
            Some(&file),
            &definitions,
            [
                (
                    "TOWERHOOK_SECRET_github_token".to_string(),
                    "from-env".to_string(),
                ),
                ("TOWERHOOK_LISTEN".to_string(), "ignored".to_string()),
            ],
        )
        .unwrap();
        assert_eq!(secrets["github_token"].as_deref(), Some("from-env"));
        assert_eq!(secrets["port"].as_deref(), Some("8443"));
        assert_eq!(secrets["other"].as_deref(), Some("kept"));
        assert_eq!(secrets.len(), 3);
    }

    #[test]
    fn a_secrets_file_inside_the_definitions_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.yaml");
        std::fs::write(&file, "a: b\n").unwrap();
        let error = load_local(Some(&file), dir.path(), []).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("inside the definitions directory"),
            "{error}"
        );
    }

    #[test]
    fn masking_reaches_nested_strings_and_keys() {
        let secrets: SecretValues = [
            ("t".to_string(), Some("s3cr3t-value".to_string())),
            ("short".to_string(), Some("abc".to_string())),
            ("unknown".to_string(), None),
        ]
        .into();
        let masker = Masker::new(&secrets);
        let mut payload = json!({"token": "s3cr3t-value", "list": ["x s3cr3t-value y"], "s3cr3t-value": 1, "abc": "abc"});
        masker.mask_json(&mut payload);
        assert_eq!(
            payload,
            json!({"token": "*****", "list": ["x ***** y"], "*****": 1, "abc": "abc"})
        );
    }
}
