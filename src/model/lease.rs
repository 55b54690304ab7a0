//! A singleton's lease as this replica sees it, and the arithmetic of its
//! fence: pure data, no store and no timer (those are the fleet's, in
//! `src/fleet/`, and the host's).
//!
//! A lease is confirmed by a renewal the store answered. The store counts
//! its TTL from when it *received* that renewal, which is after this replica
//! *sent* it: counting from the send, on this replica's monotonic clock, can
//! only end early. Two instants follow from the last confirmed send:
//! - **cancel at** `sent + ttl − margin`: not renewed by then, the work is
//!   cancelled (it may still stop gracefully);
//! - **the fence** `sent + ttl − margin / 2`: the work is dropped, whatever
//!   its stop mode. Half the margin is left between the fence and the
//!   earliest moment the store could grant the lease to another replica, for
//!   the two clocks' rates to differ and for the drop itself.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// Why a tenure ended without being released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Loss {
    /// The store answered a renewal: the session had expired (its leases
    /// may belong to another replica already).
    RenewalFailed,
    /// The store did not confirm a renewal before the cancel point.
    StoreUnreachable,
    /// The fence had passed when this replica looked (it was paused, or its
    /// thread stalled, for longer than the lease).
    Fence,
}

impl Loss {
    /// The words events and exit reasons use.
    pub fn as_str(self) -> &'static str {
        match self {
            Loss::RenewalFailed => "renewal failed",
            Loss::StoreUnreachable => "store unreachable",
            Loss::Fence => "fence passed",
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A session's standing, as its keeper last published it: every tenure of
/// the session shares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Standing {
    /// Not confirmed again by then: cancel the work.
    pub cancel_at: Instant,
    /// Not confirmed again by then: the work must not run any more.
    pub fence: Instant,
    /// Lost for good: no renewal can bring this session back.
    pub lost: Option<Loss>,
}

impl Standing {
    /// The standing a renewal sent at `sent` and confirmed gives.
    pub fn confirmed(sent: Instant, ttl: Duration, margin: Duration) -> Standing {
        Standing {
            cancel_at: sent + ttl.saturating_sub(margin),
            fence: sent + ttl.saturating_sub(margin / 2),
            lost: None,
        }
    }

    /// This standing, lost for `why` (a loss already recorded stays).
    pub fn lose(self, why: Loss) -> Standing {
        Standing {
            lost: Some(self.lost.unwrap_or(why)),
            ..self
        }
    }

    /// Whether the work may still run at `now`: `Some` once it must not be
    /// polled again (lost, or past the fence).
    pub fn gone(&self, now: Instant) -> Option<Loss> {
        match self.lost {
            Some(why) if now >= self.fence => Some(why),
            _ if now >= self.fence => Some(Loss::Fence),
            _ => None,
        }
    }

    /// Whether the work must be cancelled at `now`: lost, or not confirmed
    /// since `cancel_at`.
    pub fn doomed(&self, now: Instant) -> Option<Loss> {
        match self.lost {
            Some(why) => Some(why),
            None if now >= self.fence => Some(Loss::Fence),
            None if now >= self.cancel_at => Some(Loss::StoreUnreachable),
            None => None,
        }
    }
}

/// The checks a fleet's options get before anything is sent.
pub(crate) fn check_ttl(ttl: Duration, margin: Duration) -> Result<(), String> {
    if ttl < Duration::from_secs(1) {
        return Err(format!("the TTL is {ttl:?}; it must be at least 1s"));
    }
    if margin.is_zero() || margin >= ttl / 2 {
        return Err(format!(
            "the safety margin is {margin:?}; it must be more than zero and less than half the TTL ({ttl:?})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(2);
    const MARGIN: Duration = Duration::from_millis(500);

    #[test]
    fn the_fence_comes_after_the_cancel_and_before_the_store_can_grant() {
        let sent = Instant::now();
        let s = Standing::confirmed(sent, TTL, MARGIN);
        assert_eq!(s.cancel_at, sent + Duration::from_millis(1500));
        assert_eq!(s.fence, sent + Duration::from_millis(1750));
        assert!(s.cancel_at < s.fence && s.fence < sent + TTL);
    }

    #[test]
    fn unconfirmed_past_the_cancel_point_is_unreachable_then_fenced() {
        let sent = Instant::now();
        let s = Standing::confirmed(sent, TTL, MARGIN);
        assert_eq!(s.doomed(sent + Duration::from_millis(1499)), None);
        assert_eq!(s.gone(sent + Duration::from_millis(1499)), None);
        let late = sent + Duration::from_millis(1600);
        assert_eq!(s.doomed(late), Some(Loss::StoreUnreachable));
        assert_eq!(s.gone(late), None, "it may still stop gracefully");
        let fenced = sent + Duration::from_millis(1750);
        assert_eq!(s.doomed(fenced), Some(Loss::Fence));
        assert_eq!(s.gone(fenced), Some(Loss::Fence));
    }

    #[test]
    fn a_loss_dooms_at_once_and_keeps_its_first_reason() {
        let sent = Instant::now();
        let s = Standing::confirmed(sent, TTL, MARGIN).lose(Loss::RenewalFailed);
        assert_eq!(s.doomed(sent), Some(Loss::RenewalFailed));
        assert_eq!(s.gone(sent), None, "dropped only at the fence");
        assert_eq!(s.gone(s.fence), Some(Loss::RenewalFailed));
        assert_eq!(s.lose(Loss::Fence).lost, Some(Loss::RenewalFailed));
    }

    #[test]
    fn ttl_and_margin_are_checked() {
        assert!(
            check_ttl(Duration::from_millis(999), Duration::from_millis(200))
                .unwrap_err()
                .contains("at least 1s")
        );
        assert!(check_ttl(TTL, Duration::ZERO).is_err());
        assert!(check_ttl(TTL, Duration::from_secs(1)).is_err());
        assert!(check_ttl(TTL, MARGIN).is_ok());
    }
}
