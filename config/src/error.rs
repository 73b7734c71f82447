//! Configuration errors with `FILE:LINE:COLUMN: KEY: MESSAGE` positions.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// What stage of loading rejected the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// The text is not valid TOML.
    Syntax,
    /// Valid TOML, but a key is unknown, missing, or has the wrong type.
    Type,
    /// Well-typed, but a value breaks a rule (range, uniqueness, RFC limit).
    Invalid,
}

/// One problem in a configuration file, located at the offending value.
///
/// `line` and `column` are 1-based; `column` counts characters, not bytes.
/// Both are 0 when there is no position (an I/O error).
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub struct ConfigError {
    /// The file name as given to [`crate::parse`] / [`crate::load`].
    pub file: String,
    /// 1-based line of the offending value (0: no position).
    pub line: usize,
    /// 1-based character column of the offending value (0: no position).
    pub column: usize,
    /// Dotted path of the key, e.g. `peer[2].hold_time` (array indices are 0-based).
    pub key: String,
    /// Human-readable explanation.
    pub message: String,
    /// Which stage raised it.
    pub kind: ErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, " {}:", self.key)?;
        }
        write!(f, " {}", self.message)
    }
}

/// Every problem found in a configuration file (validation does not stop at the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual errors, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl fmt::Display for ConfigErrors {
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

/// Maps byte offsets of one document to 1-based line/column.
pub(crate) struct Locator<'a> {
    text: &'a str,
    file: &'a str,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(text: &'a str, file: &'a str) -> Self {
        Self { text, file }
    }

    /// 1-based (line, character column) of byte offset `pos` (clamped to the text).
    pub(crate) fn line_col(&self, pos: usize) -> (usize, usize) {
        let mut pos = pos.min(self.text.len());
        while !self.text.is_char_boundary(pos) {
            pos -= 1;
        }
        let before = &self.text[..pos];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    pub(crate) fn error(
        &self,
        kind: ErrorKind,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = match span {
            Some(s) => self.line_col(s.start),
            None => (0, 0),
        };
        ConfigError {
            file: self.file.to_string(),
            line,
            column,
            key: key.into(),
            message: message.into(),
            kind,
        }
    }
}

/// Dotted key path (`peer[2].hold_time`) of the innermost key or value whose span holds `pos`.
///
/// Used to name the key of TOML/serde errors, which carry only a byte span.
pub(crate) fn path_at(root: &DeTable<'_>, pos: usize) -> String {
    let mut out = String::new();
    if let Some(segs) = find_in_table(root, pos) {
        for s in segs {
            match s {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(&k);
                }
                Seg::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
    }
    out
}

enum Seg {
    Key(String),
    Index(usize),
}

fn contains(span: &Range<usize>, pos: usize) -> bool {
    span.start <= pos && (pos < span.end || span.start == span.end && pos == span.start)
}

fn find_in_table(table: &DeTable<'_>, pos: usize) -> Option<Vec<Seg>> {
    for (k, v) in table.iter() {
        if contains(&k.span(), pos) {
            return Some(vec![Seg::Key(k.get_ref().to_string())]);
        }
        if let Some(mut sub) = find_in_value(v, pos) {
            sub.insert(0, Seg::Key(k.get_ref().to_string()));
            return Some(sub);
        }
    }
    None
}

fn find_in_value(v: &Spanned<DeValue<'_>>, pos: usize) -> Option<Vec<Seg>> {
    let inner = match v.get_ref() {
        DeValue::Table(t) => find_in_table(t, pos),
        DeValue::Array(a) => a.iter().enumerate().find_map(|(i, item)| {
            find_in_value(item, pos).map(|mut sub| {
                sub.insert(0, Seg::Index(i));
                sub
            })
        }),
        _ => None,
    };
    inner.or_else(|| contains(&v.span(), pos).then(Vec::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let text = "a = 1\nbé = 2\n";
        let l = Locator::new(text, "f");
        assert_eq!(l.line_col(0), (1, 1));
        assert_eq!(l.line_col(6), (2, 1));
        // 'é' is two bytes; the '=' after "bé " is at character column 4.
        assert_eq!(l.line_col(text.find('=').unwrap()), (1, 3));
        assert_eq!(l.line_col(text.rfind('=').unwrap()), (2, 4));
        assert_eq!(l.line_col(10_000), (3, 1));
    }

    #[test]
    fn display_formats() {
        let e = ConfigError {
            file: "t.toml".into(),
            line: 3,
            column: 7,
            key: "bgp.asn".into(),
            message: "bad".into(),
            kind: ErrorKind::Invalid,
        };
        assert_eq!(e.to_string(), "t.toml:3:7: bgp.asn: bad");
        let io = ConfigError {
            line: 0,
            column: 0,
            key: String::new(),
            kind: ErrorKind::Io,
            ..e.clone()
        };
        assert_eq!(io.to_string(), "t.toml: bad");
        let all = ConfigErrors(vec![e.clone(), e]);
        assert_eq!(all.to_string(), "t.toml:3:7: bgp.asn: bad\nt.toml:3:7: bgp.asn: bad");
    }
}
