//! [`NodeFormat`]: a `tracing-subscriber` event format whose lines name
//! their node once, by its DN, instead of printing the whole span ancestry.

use std::fmt;

use ::tracing::{Event, Subscriber};
use ::tracing_subscriber::fmt::format::Writer;
use ::tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use ::tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use ::tracing_subscriber::registry::LookupSpan;

/// The target of the crate's spans.
const TARGET: &str = "actix_supervisor";

/// An event format for `tracing_subscriber::fmt::layer().event_format(..)`:
/// `time LEVEL dn: message fields`, the `dn` being the innermost node's
/// (the span ancestry above it is the tree, which the DN already spells).
/// Spans inside the node's (a request's, say) are shown as the default
/// format shows them; spans around the tree are left out. An event outside
/// every node shows its target instead.
///
/// ```text
/// 2026-12-03T21:07:44.412031Z  INFO root.jobs.beta: connected pool=4
/// 2026-12-03T21:07:44.413112Z  INFO root.http: request{method=GET}: served
/// ```
#[derive(Clone, Debug, Default)]
pub struct NodeFormat {
    without_time: bool,
}

impl NodeFormat {
    /// With a timestamp (UTC, RFC 3339).
    pub fn new() -> NodeFormat {
        NodeFormat::default()
    }

    /// Without the timestamp (journald and most collectors add their own).
    pub fn without_time(mut self) -> NodeFormat {
        self.without_time = true;
        self
    }
}

/// The DN in a node span's formatted fields (`dn="root.x" incarnation=1
/// ...`), ANSI styling (the fmt layer's italic names) skipped.
fn dn_in(fields: &str) -> Option<String> {
    let plain = strip_ansi(fields);
    let at = plain
        .match_indices("dn=")
        .map(|(at, _)| at)
        .find(|at| *at == 0 || plain[..*at].ends_with(' '))?;
    let rest = &plain[at + 3..];
    let dn = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next(),
        None => rest.split(' ').next(),
    };
    dn.map(str::to_string)
}

/// `text` without its ANSI escape sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\x1b') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // Up to and including the sequence's final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl<S, N> FormatEvent<S, N> for NodeFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !self.without_time {
            SystemTime.format_time(&mut writer)?;
            writer.write_char(' ')?;
        }
        write!(writer, "{:>5} ", event.metadata().level())?;
        // Root first: remember the innermost node, and the spans after it.
        let mut dn: Option<String> = None;
        let mut inside: Vec<String> = Vec::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                let fields = ext
                    .get::<FormattedFields<N>>()
                    .map(|f| f.fields.as_str())
                    .unwrap_or_default();
                let meta = span.metadata();
                if meta.target() == TARGET && meta.name() == "node" {
                    if let Some(d) = dn_in(fields) {
                        dn = Some(d);
                        inside.clear();
                        continue;
                    }
                }
                inside.push(match fields.is_empty() {
                    true => format!("{}:", meta.name()),
                    false => format!("{}{{{fields}}}:", meta.name()),
                });
            }
        }
        match &dn {
            Some(dn) => {
                write!(writer, "{dn}: ")?;
                for span in &inside {
                    write!(writer, "{span} ")?;
                }
            }
            None => {
                for span in &inside {
                    writer.write_str(span)?;
                }
                write!(writer, "{}: ", event.metadata().target())?;
            }
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_names_its_node_once() {
        let out = Buffer::default();
        let writer = out.clone();
        let layer = tracing_subscriber::fmt::layer()
            .event_format(NodeFormat::new().without_time())
            .with_writer(move || writer.clone())
            .with_ansi(false);
        let subscriber = tracing_subscriber::registry().with(layer);
        ::tracing::subscriber::with_default(subscriber, || {
            let service = ::tracing::info_span!("service", name = "shop");
            let _s = service.enter();
            let node = |dn: &str| ::tracing::info_span!(target: "actix_supervisor", "node", dn = dn, incarnation = 1u64, kind = "runnable", supervisor = 1u64);
            let root = node("root");
            let _r = root.enter();
            let jobs = node("root.jobs");
            let _j = jobs.enter();
            ::tracing::info!(pool = 4, "connected");
            let request = ::tracing::info_span!("request", method = "GET");
            let _q = request.enter();
            ::tracing::warn!("slow");
        });
        ::tracing::subscriber::with_default(
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .event_format(NodeFormat::new().without_time())
                    .with_writer({
                        let writer = out.clone();
                        move || writer.clone()
                    })
                    .with_ansi(false),
            ),
            || ::tracing::info!(target: "app", "outside"),
        );
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                " INFO root.jobs: connected pool=4",
                " WARN root.jobs: request{method=\"GET\"}: slow",
                " INFO app: outside",
            ],
            "{text}"
        );
    }

    #[test]
    fn the_dn_is_read_from_the_fields() {
        let dn = |f: &str| dn_in(f);
        assert_eq!(
            dn(r#"dn="root.a" incarnation=2"#).as_deref(),
            Some("root.a")
        );
        assert_eq!(dn("dn=root.a incarnation=2").as_deref(), Some("root.a"));
        assert_eq!(dn(r#"odn="x" dn="root""#).as_deref(), Some("root"));
        assert_eq!(dn(r#"odn="x""#), None);
        assert_eq!(dn("incarnation=2"), None);
        // As the fmt layer styles them for a terminal.
        let styled =
            "\x1b[3mdn\x1b[0m\x1b[2m=\x1b[0m\"root.db\" \x1b[3mincarnation\x1b[0m\x1b[2m=\x1b[0m1";
        assert_eq!(dn(styled).as_deref(), Some("root.db"));
    }
}
