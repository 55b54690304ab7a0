//! The opt-in panic hook: a supervised panic is reported once, in the death
//! report, with its backtrace; other panics reach the previous hook. The
//! hook is process-wide: one test, its own binary.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use actix_supervisor::{Context, NodeState, Signal};
use common::*;

static PREVIOUS: AtomicUsize = AtomicUsize::new(0);

#[actix_rt::test]
async fn supervised_panics_go_to_the_death_report_only() {
    init_log();
    std::env::set_var("RUST_BACKTRACE", "1");
    std::panic::set_hook(Box::new(|_| {
        PREVIOUS.fetch_add(1, Ordering::SeqCst);
    }));
    actix_supervisor::install_panic_hook();
    actix_supervisor::install_panic_hook(); // again: harmless

    let (sink, mut feed) = transitions();
    let sup = builder()
        .backoff(backoff_ms(3_600_000))
        .metrics(sink)
        .start(|ctx: Context| async move {
            ctx.run("boom", |ctx: Context| async move {
                ctx.signal(Signal::Healthy)?;
                tokio::task::yield_now().await;
                panic!("kaput");
            })
            .await?;
            serve(&ctx).await
        });
    await_state(&mut feed, "root.boom", NodeState::Dead, 1).await;
    let reason = info(&sup, "root.boom").await.last_error.unwrap();
    assert!(
        reason.starts_with("panicked: kaput\nstack backtrace:\n"),
        "{reason}"
    );
    assert_eq!(
        PREVIOUS.load(Ordering::SeqCst),
        0,
        "not printed by the default hook"
    );

    // A panic outside the tree still reaches the hook installed before.
    let outside = std::panic::catch_unwind(|| panic!("outside the tree"));
    assert!(outside.is_err());
    assert_eq!(PREVIOUS.load(Ordering::SeqCst), 1);
    sup.shutdown().await;
}
