//! [`LogTreeLayer`]: files the tracing events made inside a node's span
//! into that node's ring of the supervisor's log tree.

use std::fmt::{self, Write as _};

use ::tracing::field::{Field, Visit};
use ::tracing::{span, Event, Level, Subscriber};
use ::tracing_subscriber::layer::{Context, Layer};
use ::tracing_subscriber::registry::LookupSpan;

use crate::api::logger::{filing_itself, Logger};
use crate::model::logtree::LogTree;

/// The target of the crate's spans and events.
const TARGET: &str = "actix_supervisor";

/// A `tracing_subscriber` layer filing the events made inside a node's
/// span into that node's ring of the log tree: see the module docs. One
/// layer serves every supervisor in the process.
#[derive(Clone, Debug, Default)]
pub struct LogTreeLayer {
    _private: (),
}

impl LogTreeLayer {
    /// The layer.
    pub fn new() -> LogTreeLayer {
        LogTreeLayer::default()
    }
}

/// The logger of the node whose incarnation the span is.
struct Filer(Logger);

/// The fields of an incarnation's span the layer needs.
#[derive(Default)]
struct Ids {
    dn: Option<String>,
    supervisor: Option<u64>,
}

impl Visit for Ids {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "dn" {
            self.dn = Some(value.to_string());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "supervisor" {
            self.supervisor = Some(value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
}

impl<S> Layer<S> for LogTreeLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    /// An incarnation's span learns its node's logger once, here: nothing
    /// is done on enter or exit, which happen on every poll.
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let m = attrs.metadata();
        if m.target() != TARGET || m.name() != "node" {
            return;
        }
        let mut ids = Ids::default();
        attrs.record(&mut ids);
        let (Some(dn), Some(tree)) = (ids.dn, ids.supervisor.and_then(LogTree::by_id)) else {
            return;
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut()
                .insert(Filer(Logger::new(dn.into(), tree)));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let m = event.metadata();
        // The supervisor's own events are in the log tree already, and so
        // is a line a node logger or the CaptureLogger is filing itself.
        if m.target() == TARGET || filing_itself() {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            let ext = span.extensions();
            if let Some(Filer(logger)) = ext.get::<Filer>() {
                let mut text = Text::default();
                event.record(&mut text);
                let location = match (m.file(), m.line()) {
                    (Some(f), Some(l)) => Some(format!("{f}:{l}")),
                    _ => None,
                };
                logger.store(Some(level_of(*m.level())), text.finish(), location);
                return;
            }
        }
    }
}

fn level_of(l: Level) -> log::Level {
    match l {
        Level::ERROR => log::Level::Error,
        Level::WARN => log::Level::Warn,
        Level::INFO => log::Level::Info,
        Level::DEBUG => log::Level::Debug,
        Level::TRACE => log::Level::Trace,
    }
}

/// An event as one line: its message, then `key=value` for each field.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(mut self) -> String {
        if self.message.is_empty() {
            return self.fields.trim_start().to_string();
        }
        self.message.push_str(&self.fields);
        self.message
    }
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            // The `log` bridge's own metadata fields.
            name if name.starts_with("log.") => {}
            name => {
                let _ = write!(self.fields, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name if name.starts_with("log.") => {}
            name => {
                let _ = write!(self.fields, " {name}={value:?}");
            }
        }
    }
}
