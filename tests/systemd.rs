//! The systemd notifier against a fake notify socket: a Unix datagram
//! socket the test binds and points `NOTIFY_SOCKET` at. The environment is
//! process-wide: one test, its own binary.
#![cfg(all(unix, feature = "systemd"))]

mod common;

use std::time::Duration;

use actix_supervisor::systemd::SystemdNotifier;
use actix_supervisor::Context;
use common::*;
use tokio::net::UnixDatagram;

/// Receives datagrams until one contains `want`; returns it (10 s guard).
async fn until(sock: &UnixDatagram, want: &str) -> String {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {want:?} from the notifier within 10 s"))
            .unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
        if msg.contains(want) {
            return msg;
        }
    }
}

#[actix_rt::test]
async fn the_unit_hears_ready_status_watchdog_and_stopping() {
    init_log();
    let dir = std::env::temp_dir().join(format!("actix-supervisor-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    std::env::set_var("NOTIFY_SOCKET", &path);
    std::env::set_var("WATCHDOG_USEC", "3000000");
    std::env::set_var("WATCHDOG_PID", std::process::id().to_string());

    let sup = builder()
        .metrics(SystemdNotifier::new())
        .start(|ctx: Context| async move {
            ctx.run("worker", server()).await?;
            serve(&ctx).await
        });
    assert_eq!(until(&sock, "READY=1").await, "READY=1");
    let status = until(&sock, "STATUS=").await;
    assert_eq!(
        status,
        "STATUS=2 nodes: 2 healthy; 0 restarts in the last minute"
    );
    until(&sock, "WATCHDOG=1").await;
    sup.shutdown().await;
    until(&sock, "STOPPING=1").await;
    let _ = std::fs::remove_dir_all(&dir);
}
