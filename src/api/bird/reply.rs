//! Reply framing of BIRD's CLI protocol: `CODE-text`, ` text`, `CODE text`, `0000 `.

use std::fmt::Write as _;

/// One reply: continuation lines, then an optional final line (`0000 ` if none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    lines: Vec<(u16, String)>,
    last: Option<(u16, String)>,
}

impl Reply {
    pub fn new() -> Reply {
        Reply::default()
    }

    /// A reply that is a single final line, e.g. `9001 syntax error, ...`.
    pub fn single(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            lines: Vec::new(),
            last: Some((code, text.into())),
        }
    }

    /// Adds a line that more lines follow.
    pub fn line(&mut self, code: u16, text: impl Into<String>) {
        self.lines.push((code, text.into()));
    }

    /// Sets the final line (instead of `0000 `).
    pub fn finish(&mut self, code: u16, text: impl Into<String>) {
        self.last = Some((code, text.into()));
    }

    /// The bytes BIRD would send: a line repeating the previous line's code
    /// starts with a space instead of `CODE-` (BIRD `nest/cli.c`, `cli_printf`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let mut prev: Option<u16> = None;
        for (c, text) in &self.lines {
            if prev == Some(*c) {
                let _ = writeln!(out, " {text}");
            } else {
                let _ = writeln!(out, "{c:04}-{text}");
            }
            prev = Some(*c);
        }
        match &self.last {
            Some((c, text)) => {
                let _ = writeln!(out, "{c:04} {text}");
            }
            None => out.push_str("0000 \n"),
        }
        out
    }
}
