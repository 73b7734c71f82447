//! tern configuration: a TOML file turned into a validated [`Config`].
//!
//! Loading has three stages, each reporting `FILE:LINE:COLUMN: KEY: MESSAGE` errors:
//! TOML syntax, shape (unknown keys, missing keys, wrong types), and validation
//! (ranges, RFC limits, uniqueness, references). Validation reports every problem,
//! not only the first. The schema is documented in `examples/reference.toml`.

#![forbid(unsafe_code)]

mod error;
mod model;
mod peers;
mod raw;
mod types;
mod validate;

use std::path::Path;

use serde::Deserialize;
use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

pub use error::{ConfigError, ConfigErrors, ErrorKind};
pub use ipnetwork::IpNetwork;
pub use model::*;
pub use types::{
    AddPath, Community, ExtCommunity, ExtKind, Family, IpipMode, LargeCommunity, NextHop, PolicyDefault, RuleAction,
    ValueError,
};

use error::{path_at, Locator};
use raw::RawConfig;

/// Top-level keys that hold arrays of tables; each element is checked on its own
/// so one bad `[[peer]]` does not hide errors in the next.
const TABLE_ARRAYS: &[&str] = &["originate", "dynamic_peers", "peer", "policy"];

/// Reads, parses and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file,
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read: {e}"),
            kind: ErrorKind::Io,
        }])),
    }
}

/// Parses and validates `text`; `file_name` is only used in error messages.
pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    let loc = Locator::new(text, file_name);
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            // Name the key from whatever the parser could recover.
            let (partial, _) = DeTable::parse_recoverable(text);
            let key = e
                .span()
                .map(|s| path_at(partial.get_ref(), s.start))
                .unwrap_or_default();
            return Err(ConfigErrors(vec![loc.error(
                ErrorKind::Syntax,
                e.span(),
                key,
                e.message().trim(),
            )]));
        }
    };

    let mut raw = RawConfig::default();
    let mut errors = Vec::new();
    let mut deserialize_part = |key: &Spanned<std::borrow::Cow<'_, str>>, value: Spanned<DeValue<'_>>| {
        let mut table = DeTable::new();
        table.insert(key.clone(), value);
        let de = toml::Deserializer::from(Spanned::new(doc.span(), table));
        match RawConfig::deserialize(de) {
            Ok(part) => raw.merge(part),
            Err(e) => errors.push(type_error(&loc, doc.get_ref(), &e)),
        }
    };
    for (key, value) in doc.get_ref().iter() {
        match value.get_ref() {
            DeValue::Array(items) if TABLE_ARRAYS.contains(&key.get_ref().as_ref()) => {
                for item in items.iter() {
                    let mut one = DeArray::new();
                    one.push(item.clone());
                    deserialize_part(key, Spanned::new(value.span(), DeValue::Array(one)));
                }
            }
            _ => deserialize_part(key, value.clone()),
        }
    }
    if !errors.is_empty() {
        return Err(sorted(errors));
    }
    validate::validate(&raw, &loc).map_err(sorted)
}

/// A serde error (unknown/missing key, wrong type) with its key path recovered from the span.
fn type_error(loc: &Locator<'_>, doc: &DeTable<'_>, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim().to_string();
    let mut key = e.span().map(|s| path_at(doc, s.start)).unwrap_or_default();
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    {
        if !key.is_empty() {
            key.push('.');
        }
        key.push_str(field);
    }
    loc.error(ErrorKind::Type, e.span(), key, message)
}

fn sorted(mut errors: Vec<ConfigError>) -> ConfigErrors {
    errors.sort_by_key(|e| (e.line, e.column));
    ConfigErrors(errors)
}

#[cfg(test)]
mod tests;
