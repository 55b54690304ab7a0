//! A recording `tracing` layer for the `tracing` feature's tests: every span
//! (name, fields, parent, open or closed) and every event (target, level,
//! fields), kept for assertions. Each test
//! starts its supervisor inside a span `case` with its own `case` field, so
//! that tests running at once in one process (one global subscriber) tell
//! their spans apart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio::sync::Notify;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

#[derive(Clone, Debug, Default)]
pub struct SpanRec {
    pub name: String,
    pub fields: HashMap<String, String>,
    pub parent: Option<u64>,
    pub open: bool,
}

#[derive(Clone, Debug, Default)]
pub struct EventRec {
    pub target: String,
    pub level: String,
    pub fields: HashMap<String, String>,
}

#[derive(Default)]
pub struct Seen {
    pub spans: HashMap<u64, SpanRec>,
    pub events: Vec<EventRec>,
}

pub fn seen() -> &'static Mutex<Seen> {
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    SEEN.get_or_init(Default::default)
}

/// Rings on every span close.
pub fn closed() -> &'static Notify {
    static CLOSED: OnceLock<Notify> = OnceLock::new();
    CLOSED.get_or_init(Notify::new)
}

/// A span's record number, in its extensions.
struct Seq(u64);

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().to_string(), v.to_string());
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.insert(f.name().to_string(), v.to_string());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.0.insert(f.name().to_string(), format!("{v:?}"));
    }
}

pub struct Recorder;

impl<S> Layer<S> for Recorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let seq = NEXT.fetch_add(1, Ordering::Relaxed);
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Seq>().map(|s| s.0));
        span.extensions_mut().insert(Seq(seq));
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let rec = SpanRec {
            name: attrs.metadata().name().to_string(),
            fields: fields.0,
            parent,
            open: true,
        };
        seen().lock().unwrap().spans.insert(seq, rec);
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let rec = EventRec {
            target: event.metadata().target().to_string(),
            level: event.metadata().level().to_string(),
            fields: fields.0,
        };
        seen().lock().unwrap().events.push(rec);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(seq) = ctx
            .span(&id)
            .and_then(|s| s.extensions().get::<Seq>().map(|s| s.0))
        else {
            return;
        };
        if let Some(rec) = seen().lock().unwrap().spans.get_mut(&seq) {
            rec.open = false;
        }
        closed().notify_waiters();
    }
}

/// The `case` a span belongs to: the `case` field of its nearest ancestor
/// named `case`.
pub fn case_of(s: &Seen, mut seq: u64) -> Option<String> {
    loop {
        let rec = s.spans.get(&seq)?;
        if rec.name == "case" {
            return rec.fields.get("case").cloned();
        }
        seq = rec.parent?;
    }
}

/// The node spans of `case`: (record number, record).
pub fn node_spans(case: &str) -> Vec<(u64, SpanRec)> {
    let s = seen().lock().unwrap();
    let mut out: Vec<(u64, SpanRec)> = s
        .spans
        .iter()
        .filter(|(seq, r)| r.name == "node" && case_of(&s, **seq).as_deref() == Some(case))
        .map(|(seq, r)| (*seq, r.clone()))
        .collect();
    out.sort_by_key(|(seq, _)| *seq);
    out
}

/// Waits (at most 10 s, then fails) until no node span of `case` is open.
pub async fn all_closed(case: &str) {
    let wait = async {
        loop {
            let notified = closed().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let open: Vec<String> = node_spans(case)
                .into_iter()
                .filter(|(_, r)| r.open)
                .map(|(_, r)| r.fields["dn"].clone())
                .collect();
            if open.is_empty() {
                return;
            }
            notified.await;
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .is_err()
    {
        let open: Vec<String> = node_spans(case)
            .into_iter()
            .filter(|(_, r)| r.open)
            .map(|(_, r)| format!("{} #{}", r.fields["dn"], r.fields["incarnation"]))
            .collect();
        panic!("node spans of {case} still open: {open:?}");
    }
}
