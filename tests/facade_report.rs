//! A death printed through the `log` facade does not repeat the lead-up
//! lines the facade has printed already; the log tree's report keeps them.
//! Its own test binary: it installs the process's one `log` logger.

use std::sync::Mutex;

use actix_supervisor::{node_debug, node_info, Context, LogQuery, Supervisor};
use log::{Level, LevelFilter, Metadata, Record};

/// Prints nothing; keeps what it is given at Info and above.
struct Facade(Mutex<Vec<String>>);

impl log::Log for Facade {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= Level::Info
    }
    fn log(&self, r: &Record) {
        if self.enabled(r.metadata()) {
            let line = format!("{} {}: {}", r.level(), r.target(), r.args());
            self.0.lock().unwrap().push(line);
        }
    }
    fn flush(&self) {}
}

static FACADE: Facade = Facade(Mutex::new(Vec::new()));

#[actix_rt::test]
async fn the_facade_report_does_not_repeat_what_the_facade_printed() {
    log::set_logger(&FACADE).unwrap();
    log::set_max_level(LevelFilter::Debug);
    let sup = Supervisor::builder()
        .backoff(actix_supervisor::Backoff::default().initial(std::time::Duration::from_secs(3600)))
        .start(|ctx: Context| async move {
            ctx.run("flaky", |ctx: Context| async move {
                node_info!(ctx, "connecting");
                node_debug!(ctx, "socket 7 opened");
                node_info!(ctx, "handshake failed");
                Err("no upstream".into())
            })
            .await?;
            ctx.signal(actix_supervisor::Signal::Healthy)?;
            ctx.cancelled().await;
            Ok(())
        });
    sup.wait_settled().await;
    let printed = FACADE.0.lock().unwrap().clone();
    let report = printed
        .iter()
        .find(|l| l.contains("root.flaky died"))
        .unwrap_or_else(|| panic!("no report: {printed:#?}"));
    // The two Info lines were printed on their own: counted, not repeated;
    // the Debug line the facade did not print is in the report.
    assert!(printed
        .iter()
        .any(|l| l.ends_with("root.flaky: connecting")));
    assert!(
        report.contains("its last 3 log lines, 2 of them above"),
        "{report}"
    );
    assert!(report.contains("socket 7 opened"), "{report}");
    assert!(
        !report.contains("connecting") && !report.contains("handshake"),
        "{report}"
    );
    // The log tree keeps the whole lead-up.
    let tree = sup.logs().backlog(&LogQuery::dn("supervisor"));
    let whole = tree
        .iter()
        .find(|e| e.message.contains("root.flaky died"))
        .expect("the report in the log tree");
    for line in ["connecting", "socket 7 opened", "handshake failed"] {
        assert!(whole.message.contains(line), "{}", whole.message);
    }
    sup.shutdown().await;
}
