//! The seeded fault storm (`tests/common/storm.rs`) on 11,111 nodes for 2 s:
//! every node healthy again, restart records that agree with the faults,
//! a bounded shutdown, no process left, threads and heap back at baseline.
//!
//! `STORM_SEED=n` replays a run (the seed is printed first, and in every
//! failure message); `STORM_SECS=n` makes it longer and `STORM_NODES=n`
//! larger. `cargo run --release --example storm` runs the same storm with
//! a report (see `docs/reliability.md`).

mod common;

use common::heap::Counting;
use common::storm::{run, Storm};

#[global_allocator]
static ALLOC: Counting = Counting;

#[actix_rt::test]
async fn a_fault_storm_leaves_every_node_healthy_and_nothing_behind() {
    // No logger: thousands of death reports would drown the output.
    let storm = Storm::from_env().unwrap_or_else(|e| panic!("STORM_* variables: {e}"));
    eprintln!(
        "fault storm: seed {} for {} s on {} nodes (replay: STORM_SEED={})",
        storm.seed,
        storm.secs,
        storm.nodes(),
        storm.seed
    );
    let report = run(storm, |_| {}).await.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("fault storm:\n{report}");
    assert!(report.orphans.is_empty());
    assert!(
        report.restarts > 0,
        "faults were injected, so nodes restarted"
    );
}
