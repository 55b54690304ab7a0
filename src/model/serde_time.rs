//! How the snapshot's times look in JSON: wall-clock times as Unix
//! milliseconds, durations as seconds. (tokio `Instant`s are skipped: they
//! mean nothing outside the process.)

use std::time::{Duration, SystemTime};

use serde::Serializer;

pub(crate) fn unix_ms<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    s.serialize_u64(ms)
}

pub(crate) fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// An optional tokio `Instant` as whether it is set: the instant itself
/// means nothing outside the process.
pub(crate) fn is_some<S: Serializer>(
    t: &Option<tokio::time::Instant>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_bool(t.is_some())
}

pub(crate) fn opt_unix_ms<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => unix_ms(t, s),
        None => s.serialize_none(),
    }
}
