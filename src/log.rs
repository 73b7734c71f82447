//! Log lines for the journal. Under systemd, with stderr connected to the
//! journal, each line starts with its sd-daemon(3) priority `<N>` and has no
//! timestamp (journald adds its own), so `journalctl -p err` finds errors;
//! every event is one line, so one journal entry with its priority.

use std::fmt;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The sd-daemon(3) prefix of a level: error `<3>`, warning `<4>`, info
/// `<6>`, debug and trace `<7>`.
pub fn priority(level: Level) -> &'static str {
    if level == Level::ERROR {
        "<3>"
    } else if level == Level::WARN {
        "<4>"
    } else if level == Level::INFO {
        "<6>"
    } else {
        "<7>"
    }
}

/// Whether stderr is the journal: systemd sets `JOURNAL_STREAM` to the
/// `DEVICE:INODE` of the stream it connects (systemd.exec(5)); a redirect
/// in a child keeps the variable but not the stream. Without a way to look
/// at stderr (`None`), the variable alone decides.
pub fn is_journal_stream(var: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let Some((dev, ino)) = var.and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    stderr.is_none_or(|s| s == (dev, ino))
}

/// [`is_journal_stream`] for this process.
pub fn stderr_is_journal() -> bool {
    let var = std::env::var("JOURNAL_STREAM").ok();
    let stderr = std::fs::metadata("/proc/self/fd/2").ok().map(|m| (m.dev(), m.ino()));
    is_journal_stream(var.as_deref(), stderr)
}

/// `text` as one line: line breaks inside become `; `.
pub fn one_line(text: &str) -> String {
    let text = text.trim_end_matches(['\n', '\r']);
    text.split(['\n', '\r'])
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// An event format for the journal: the priority prefix, then the line of
/// `inner` (give it `without_time()`), with line breaks inside joined.
pub struct Journald<F> {
    inner: F,
}

impl<F> Journald<F> {
    pub fn new(inner: F) -> Journald<F> {
        Journald { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for Journald<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(priority(*event.metadata().level()))?;
        writer.write_str(&one_line(&line))?;
        writer.write_char('\n')
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[test]
    fn priorities_are_sd_daemon_levels() {
        let got: Vec<&str> = [Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG, Level::TRACE]
            .into_iter()
            .map(priority)
            .collect();
        assert_eq!(got, ["<3>", "<4>", "<6>", "<7>", "<7>"]);
    }

    #[test]
    fn the_journal_is_the_stream_journal_stream_names() {
        assert!(is_journal_stream(Some("8:12345"), Some((8, 12345))));
        assert!(
            is_journal_stream(Some("8:12345"), None),
            "no /proc: the variable decides"
        );
        assert!(!is_journal_stream(Some("8:12345"), Some((8, 999))), "stderr redirected");
        assert!(!is_journal_stream(None, Some((8, 12345))));
        assert!(!is_journal_stream(Some("garbage"), None));
    }

    #[test]
    fn one_line_joins_line_breaks() {
        assert_eq!(one_line("a\nb\r\nc\n"), "a; b; c");
        assert_eq!(one_line("plain\n"), "plain");
    }

    /// A writer into a shared buffer, for a subscriber under test.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn journald_lines_carry_the_priority_and_no_timestamp() {
        let buf = Buffer::default();
        let format = tracing_subscriber::fmt::format()
            .without_time()
            .with_target(false)
            .with_ansi(false);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_writer(buf.clone())
            .event_format(Journald::new(format))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("reload failed:\nfirst\nsecond");
            tracing::warn!(peer = "h2", "malformed");
            tracing::info!("running");
            tracing::debug!("detail");
        });
        let text = String::from_utf8(buf.0.lock().expect("buffer").clone()).expect("utf-8");
        assert_eq!(
            text,
            "<3>ERROR reload failed:; first; second\n<4> WARN malformed peer=\"h2\"\n<6> INFO running\n<7>DEBUG detail\n"
        );
    }
}
