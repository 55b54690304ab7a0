//! The integration tests, one binary: a module per topic. (A test that
//! needs the process to itself, for a global logger, panic hook, signal,
//! allocator or tracing subscriber, is a binary of its own beside this one.)

#[path = "../common/mod.rs"]
mod common;

mod acknowledged;
#[cfg(feature = "web")]
mod actions;
mod actors;
mod bad_input;
mod breaker;
#[cfg(feature = "web")]
mod browser;
mod dynamic;
#[cfg(feature = "web")]
mod fuzz;
mod harness;
mod heartbeat;
mod layers;
mod lifecycle;
mod logging;
mod metrics;
mod on_request;
mod operator;
mod overload;
mod policy;
#[cfg(feature = "web")]
mod probes;
#[cfg(unix)]
mod process;
#[cfg(feature = "prometheus")]
mod prometheus;
mod restarts;
mod shutdown;
mod significant;
mod stall;
mod tasks;
#[cfg(feature = "web")]
mod web;
