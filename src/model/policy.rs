//! Restart policy in OTP's vocabulary: how a child is stopped.
//!
//! Each knob is explained by its consequence, as OTP's `supervisor` docs do.

use std::time::Duration;

/// How a node's runnable is stopped once its context is cancelled (OTP's
/// `shutdown` of a child spec).
///
/// ```
/// use std::time::Duration;
/// use actix_supervisor::Shutdown;
///
/// assert_eq!(Shutdown::default(), Shutdown::Timeout(Duration::from_secs(5)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// Asked to stop (its context is cancelled), waited for up to this long,
    /// then its future is dropped. The default, with the supervisor's
    /// `shutdown_timeout` (5 s).
    Timeout(Duration),
    /// Its future is dropped at once, without waiting: no cleanup runs. For
    /// a process node, SIGKILL at once.
    Brutal,
    /// Waited for as long as it takes. Meant for nodes that supervise
    /// children of their own, so that a subtree stops completely; a runnable
    /// that never returns then holds its restart (and shutdown) forever.
    Infinity,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::Timeout(Duration::from_secs(5))
    }
}

/// When a child is restarted (OTP's `restart` of a child spec).
///
/// | type | it returns `Ok(())` | it dies (error, panic, misuse) | a sibling's death cancels it |
/// | --- | --- | --- | --- |
/// | `Permanent` | DEAD ("without Done"): restarted | restarted | restarted |
/// | `Transient` | DONE, siblings undisturbed | restarted | restarted |
/// | `Temporary` | DONE, siblings undisturbed | stays DEAD, siblings undisturbed | stays CANCELLED |
///
/// A temporary child's deaths do not count against its parent's
/// [restart intensity](Intensity).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Restart {
    /// Restarted whenever it exits, unless it signalled Done and returned
    /// `Ok(())`. The default, and the reference's behaviour.
    #[default]
    Permanent,
    /// Restarted only after a death: returning `Ok(())` ends it for good, as
    /// DONE, as if it had signalled Done.
    Transient,
    /// Never restarted: whatever it returns, it stays exited, and its death
    /// does not cancel its group siblings.
    Temporary,
}

/// Which siblings go down and come back with a dead group member.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// Every member is cancelled, and they all restart together once every
    /// one of them (and their subtrees) has exited. The default.
    #[default]
    OneForAll,
    /// Only the dead member restarts; its siblings are not disturbed. A group
    /// started this way is like members started with separate `run` calls.
    OneForOne,
    /// The dead member and every member added after it are cancelled and
    /// restart together, in order; members before it are not disturbed.
    RestForOne,
}

/// When a group's parent ends by itself because its *significant* children
/// ended (OTP's `auto_shutdown`, EEP 56). A child is significant when it is
/// marked so ([`Child::significant`](crate::Child::significant)); only
/// transient and temporary children may be.
///
/// "Ended" means by itself: a transient child that returned `Ok(())` or
/// signalled Done (DONE), a temporary child that exited in any way. A child
/// stopped by the supervisor (its sibling's death took it down, a restart
/// on request, a shutdown) has not ended, nor has one that died and is
/// restarted.
///
/// | value | the parent ends when |
/// | --- | --- |
/// | `Never` (default) | never: significance has no effect |
/// | `AnySignificant` | any significant member of the group has ended |
/// | `AllSignificant` | every significant member of the group has ended |
///
/// The parent *ends*: its other children are stopped by their stop modes
/// and it exits DONE, as if it had signalled Done and returned `Ok(())`;
/// not a death, so nothing restarts it until a related failure restarts
/// its unit, as any DONE node.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AutoShutdown {
    /// Significant children have no effect. The default.
    #[default]
    Never,
    /// The parent ends once any significant child has ended.
    AnySignificant,
    /// The parent ends once all its significant children have ended.
    AllSignificant,
}

/// What a parent does when a restart would exceed its restart intensity
/// ([`Child::on_intensity_exceeded`](crate::Child::on_intensity_exceeded)).
///
/// | value | consequence |
/// | --- | --- |
/// | `Escalate` (default, OTP's) | the parent gives up: it dies, its children with it, and its own parent's policy applies |
/// | `Park(park)` | a breaker: the unit that exceeded it is not restarted for a cool-down (growing with each trip, capped), then started once (half-open); HEALTHY for the intensity's window closes the breaker, a death while half-open opens it again. The parent and the other units are untouched |
///
/// A parked child is DEAD, waiting, and so unready unless it does not
/// affect readiness ([`Child::affects_readiness(false)`](crate::Child::affects_readiness)):
/// a dependency that is down should take the pod out of the load balancer
/// only if the service cannot serve without it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Exceeded {
    /// Give up and escalate, as OTP does. The default.
    #[default]
    Escalate,
    /// Park the unit behind a breaker instead.
    Park(Park),
}

/// A breaker's cool-downs (see [`Exceeded::Park`]): `cooldown` after the
/// first trip, doubled after each further trip without closing, at most
/// `max` (default 16 × `cooldown`).
///
/// ```
/// use std::time::Duration;
/// use actix_supervisor::{Child, Context, Exceeded, Park, RunResult};
///
/// async fn client(ctx: Context) -> RunResult { Ok(()) }
///
/// // Its dependency is down: try again in 30 s, 60 s, ... at most every 10 min.
/// let park = Park::new(Duration::from_secs(30)).max(Duration::from_secs(600));
/// let parent = Child::new("clients", client)
///     .max_restarts(3, Duration::from_secs(10))
///     .on_intensity_exceeded(Exceeded::Park(park));
/// # let _ = parent;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Park {
    cooldown: Duration,
    max: Duration,
}

impl Park {
    /// A breaker whose first cool-down is `cooldown`.
    pub fn new(cooldown: Duration) -> Park {
        Park {
            cooldown,
            max: cooldown.saturating_mul(16),
        }
    }

    /// The longest cool-down.
    pub fn max(mut self, max: Duration) -> Park {
        self.max = max.max(self.cooldown);
        self
    }

    /// The cool-down after `trips` earlier trips without closing.
    pub(crate) fn cooldown(&self, trips: u16) -> Duration {
        let factor = 1u32
            .checked_shl(u32::from(trips.min(20)))
            .unwrap_or(u32::MAX);
        self.cooldown.saturating_mul(factor).min(self.max)
    }
}

/// A parent's restart intensity (OTP's `intensity` and `period`): if the
/// restarts it performs for its children exceed `max_restarts` within
/// `within`, it gives up. A group restart counts once; deaths of
/// [temporary](Restart::Temporary) children never count.
///
/// Giving up means: the parent's children are stopped and the parent dies
/// with a reason naming the count and the last failure, so that its own
/// parent's policy takes over. When the supervisor itself gives up on the
/// root, it shuts down and [`Supervisor::join`](crate::Supervisor::join)
/// returns the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Intensity {
    /// How many restarts are allowed within the window.
    pub max_restarts: u32,
    /// The sliding window, on tokio's clock.
    pub within: Duration,
}

impl Intensity {
    /// At most `max_restarts` restarts within `within`.
    pub const fn new(max_restarts: u32, within: Duration) -> Intensity {
        Intensity {
            max_restarts,
            within,
        }
    }
}

/// The exponential backoff a DEAD node waits out before it is restarted.
/// Only deaths wait: a node cancelled because of a sibling or an ancestor
/// restarts at once.
///
/// The defaults are the reference's (`cenkalti/backoff`'s): 500 ms, ×1.5,
/// jitter ±50%, at most 60 s, reset when the node signals Healthy or Done.
///
/// ```
/// use std::time::Duration;
/// use actix_supervisor::{Backoff, Supervisor};
///
/// // 100 ms, 150 ms, 225 ms, ... exactly (no jitter), reset only after
/// // 30 s of health.
/// let b = Backoff::default()
///     .initial(Duration::from_millis(100))
///     .jitter(0.0)
///     .reset_after(Duration::from_secs(30));
/// let builder = Supervisor::builder().backoff(b);
/// # drop(builder);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    initial: Duration,
    multiplier: f64,
    max: Duration,
    jitter: f64,
    reset_after: Option<Duration>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            multiplier: 1.5,
            max: Duration::from_secs(60),
            jitter: 0.5,
            reset_after: None,
        }
    }
}

impl Backoff {
    /// The first delay. Default 500 ms.
    pub fn initial(mut self, d: Duration) -> Self {
        self.initial = d;
        self
    }

    /// Each delay is the previous one times this (at least 1). Default 1.5.
    pub fn multiplier(mut self, m: f64) -> Self {
        self.multiplier = if m.is_finite() { m.max(1.0) } else { 1.0 };
        self
    }

    /// No delay grows beyond this (before jitter). Default 60 s.
    pub fn max(mut self, d: Duration) -> Self {
        self.max = d;
        self
    }

    /// Each delay is spread uniformly over ±`factor` of its value, so that
    /// nodes failing together do not restart in lockstep. Clamped to 0..=1.
    /// Default 0.5.
    pub fn jitter(mut self, factor: f64) -> Self {
        self.jitter = if factor.is_finite() {
            factor.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// Resets the backoff only once the node has stayed healthy this long,
    /// instead of as soon as it signals Healthy: a node that flaps shortly
    /// after becoming healthy keeps backing off.
    pub fn reset_after(mut self, d: Duration) -> Self {
        self.reset_after = Some(d);
        self
    }

    /// How long a node must stay healthy for its backoff to reset; `None`:
    /// Healthy (or Done) resets it at once.
    pub(crate) fn reset_after_of(&self) -> Option<Duration> {
        self.reset_after
    }

    /// The delay to wait now and the interval to keep for the next death,
    /// from the interval kept after the previous one (`None` after a reset).
    /// `random` in `0.0..1.0` places the delay within the jitter.
    pub(crate) fn delay(&self, current: Option<Duration>, random: f64) -> (Duration, Duration) {
        let current = current
            .unwrap_or(self.initial)
            .min(self.max.max(self.initial));
        let spread = current.as_secs_f64() * self.jitter;
        let secs = current.as_secs_f64() - spread + random.clamp(0.0, 1.0) * 2.0 * spread;
        let delay = Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(self.max);
        let next = Duration::try_from_secs_f64(current.as_secs_f64() * self.multiplier)
            .unwrap_or(self.max)
            .min(self.max);
        (delay, next)
    }
}

/// Keeps the initial interval, multiplier, maximum interval and
/// randomisation factor. `max_elapsed_time` is not carried over: a restart
/// budget is [`Intensity`] (`SupervisorBuilder::max_restarts`,
/// `Child::max_restarts`).
impl From<backoff::ExponentialBackoff> for Backoff {
    fn from(b: backoff::ExponentialBackoff) -> Self {
        Backoff::default()
            .initial(b.initial_interval)
            .multiplier(b.multiplier)
            .max(b.max_interval)
            .jitter(b.randomization_factor)
    }
}

/// A child's policy as asked for; `None`: the supervisor's default.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Spec {
    pub restart: Option<Restart>,
    pub shutdown: Option<Shutdown>,
    pub intensity: Option<Intensity>,
    /// For a dynamic node: how many children it may have at once.
    pub max_children: Option<usize>,
    /// How long it may stay NEW once its runnable runs.
    pub start_timeout: Option<Duration>,
    /// Whether it keeps the service from being ready while it is not
    /// (`None`: if and only if it is permanent).
    pub affects_readiness: Option<bool>,
    /// A singleton across replicas (see the `fleet` module): when its
    /// restarts exceed its owner's intensity, it hands its lease over
    /// instead of taking its owner down.
    pub singleton: bool,
    /// Its end by itself may end its parent (see [`AutoShutdown`]).
    pub significant: bool,
    /// For a dynamic node: when it ends with its significant children.
    pub auto_shutdown: AutoShutdown,
    /// How often it must beat once HEALTHY (`Context::beat`).
    pub heartbeat: Option<Duration>,
    /// Whether a missed heartbeat fails the process's liveness.
    pub heartbeat_affects_liveness: bool,
    /// As a parent: what it does when its intensity is exceeded.
    pub exceeded: Exceeded,
    /// For an actor node: its queue alarm as asked for, `(high, low)`
    /// (checked when it is started).
    pub queue_alarm: Option<(usize, usize)>,
    /// Whether its queue alarm keeps the service from being ready.
    pub overload_affects_readiness: bool,
}

/// How a group behaves as a whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupOptions {
    pub strategy: Strategy,
    pub ordered_start: bool,
    pub ordered_stop: bool,
    pub auto_shutdown: AutoShutdown,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delays_grow_by_the_multiplier_up_to_the_max_and_spread_by_the_jitter() {
        let b = Backoff::default()
            .initial(100 * MS)
            .max(200 * MS)
            .jitter(0.0);
        assert_eq!(b.delay(None, 0.5), (100 * MS, 150 * MS));
        assert_eq!(b.delay(Some(150 * MS), 0.5), (150 * MS, 200 * MS));
        assert_eq!(b.delay(Some(200 * MS), 0.5), (200 * MS, 200 * MS));
        let spread = b.jitter(0.5);
        assert_eq!(spread.delay(None, 0.0).0, 50 * MS);
        assert_eq!(spread.delay(None, 1.0).0, 150 * MS);
    }

    #[test]
    fn a_backoff_crate_value_converts_without_its_elapsed_time() {
        let theirs = backoff::ExponentialBackoff {
            initial_interval: 10 * MS,
            multiplier: 3.0,
            max_interval: 90 * MS,
            randomization_factor: 0.0,
            max_elapsed_time: Some(Duration::from_secs(1)),
            ..backoff::ExponentialBackoff::default()
        };
        let ours = Backoff::from(theirs);
        assert_eq!(
            ours,
            Backoff::default()
                .initial(10 * MS)
                .multiplier(3.0)
                .max(90 * MS)
                .jitter(0.0)
        );
    }
}
