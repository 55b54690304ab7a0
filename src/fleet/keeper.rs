//! The session keeper: one task per joined replica that renews its session
//! every `ttl / 3`, publishes the session's [`Standing`] to every tenure of
//! it, and when the session falls (a renewal refused, or none confirmed by
//! the cancel point) marks it lost and opens a new one, with backoff.
//!
//! The keeper is not what keeps the work safe: each tenure times its own
//! cancel point and fence from the last standing published (see
//! `api/lease.rs`), so a keeper that cannot run (its thread stalled, the
//! process paused) stops no renewal from being needed, and extends nothing.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Current, Shared, StoreError};
use crate::model::lease::{Loss, Standing};

/// Renews `shared`'s session until `stop`, then leaves it.
pub(super) async fn keep(
    shared: Arc<Shared>,
    mut tx: watch::Sender<Standing>,
    stop: CancellationToken,
) {
    let every = shared.ttl / 3;
    let retry = (shared.ttl / 10).max(Duration::from_millis(50));
    let mut next = Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        let Some(current) = shared.current() else {
            break; // left
        };
        let standing = *tx.borrow();
        let sent = Instant::now();
        // A confirmation that would come after the cancel point helps
        // nobody: wait for one no longer than that.
        let budget = standing
            .cancel_at
            .saturating_duration_since(sent)
            .clamp(Duration::from_millis(10), every);
        let renewed = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            r = tokio::time::timeout(budget, shared.store.renew(&current.session)) => r,
        };
        match renewed {
            Ok(Ok(())) => {
                tx.send_replace(Standing::confirmed(sent, shared.ttl, shared.margin));
                #[cfg(feature = "prometheus")]
                shared.metrics.renewed(sent.elapsed());
                next = sent + every;
                refresh_members(&shared, every).await;
            }
            Ok(Err(StoreError::Expired)) => {
                tx = rejoin(&shared, tx, current, Loss::RenewalFailed, &stop).await;
                next = Instant::now() + every;
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {budget:?}"),
                };
                log::debug!(
                    target: "actix_supervisor::fleet",
                    "{}: renewing the session at {}: {why}",
                    shared.member.id,
                    shared.endpoint
                );
                if Instant::now() >= standing.cancel_at {
                    log::warn!(
                        target: "actix_supervisor::fleet",
                        "{}: the store at {} did not confirm the session in time: {why}",
                        shared.member.id,
                        shared.endpoint
                    );
                    tx = rejoin(&shared, tx, current, Loss::StoreUnreachable, &stop).await;
                    next = Instant::now() + every;
                } else {
                    next = Instant::now() + retry;
                }
            }
        }
    }
    // Stopped (every handle dropped): end the session, which frees what it
    // still holds, within a bound.
    if let Some(current) = shared.current() {
        shared.set_current(None);
        let _ = tokio::time::timeout(every, shared.store.leave(&current.session)).await;
    }
}

/// The session fell for `why`: its tenures are told, its leases counted
/// lost, and a new session is opened (with backoff, until `stop`). Returns
/// the new session's sender.
async fn rejoin(
    shared: &Shared,
    tx: watch::Sender<Standing>,
    lost: Current,
    why: Loss,
    stop: &CancellationToken,
) -> watch::Sender<Standing> {
    tx.send_modify(|s| *s = s.lose(why));
    shared.set_current(None);
    shared.lost_all(why);
    let mut wait = (shared.ttl / 10).max(Duration::from_millis(50));
    loop {
        let sent = Instant::now();
        let member = shared.member.clone().renewed(SystemTime::now());
        let joined = tokio::select! {
            biased;
            _ = stop.cancelled() => return tx,
            r = tokio::time::timeout(
                shared.ttl / 3,
                shared.store.join(&member, shared.ttl, Some(&lost.session)),
            ) => r,
        };
        match joined {
            Ok(Ok(session)) => {
                log::info!(
                    target: "actix_supervisor::fleet",
                    "{}: rejoined the fleet at {}",
                    shared.member.id,
                    shared.endpoint
                );
                let (tx, rx) = watch::channel(Standing::confirmed(sent, shared.ttl, shared.margin));
                shared.set_current(Some(Current {
                    session: Arc::new(session),
                    standing: rx,
                }));
                return tx;
            }
            Ok(Err(e)) => log::warn!(
                target: "actix_supervisor::fleet",
                "{}: rejoining the fleet at {}: {e}; again in {wait:?}",
                shared.member.id,
                shared.endpoint
            ),
            Err(_) => log::warn!(
                target: "actix_supervisor::fleet",
                "{}: rejoining the fleet at {}: no answer; again in {wait:?}",
                shared.member.id,
                shared.endpoint
            ),
        }
        tokio::select! {
            biased;
            _ = stop.cancelled() => return tx,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(shared.ttl / 2);
    }
}

/// Reads the member list for [`Fleet::last_members`](super::Fleet::last_members)
/// and the members gauge; a failure keeps the last list.
async fn refresh_members(shared: &Shared, budget: Duration) {
    if let Ok(Ok(members)) = tokio::time::timeout(budget, shared.store.members()).await {
        #[cfg(feature = "prometheus")]
        shared.metrics.members(members.len());
        *shared
            .members
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = members;
    }
}
