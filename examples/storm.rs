//! The fault storm of `tests/fault_storm.rs` at any length and tree size,
//! with a report at the end: faults by kind, restarts, recovery and
//! shutdown times, live heap and threads against their baseline, orphans.
//! Exits 1 if any check fails (the message names the seed to replay).
//!
//! ```text
//! cargo run --release --example storm -- --secs 1800 --nodes 111111 --seed 1795951525223718399
//! ```
//!
//! `--nodes` is 1,111, 11,111 (the default), 111,111 or 1,111,111 (levels
//! of ten under the root); `--secs` defaults to 2; `--seed` to the clock.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::heap::Counting;
use common::storm::{run, Storm};

#[global_allocator]
static ALLOC: Counting = Counting;

fn usage(e: &str) -> ! {
    eprintln!("storm: {e}\nusage: storm [--secs N] [--nodes M] [--seed S]");
    std::process::exit(2);
}

fn main() {
    let (mut seed, mut secs, mut nodes) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--seed" => &mut seed,
            "--secs" => &mut secs,
            "--nodes" => &mut nodes,
            other => usage(&format!("unknown argument {other:?}")),
        };
        *slot = Some(
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value"))),
        );
    }
    let storm = Storm::new(seed.as_deref(), secs.as_deref(), nodes.as_deref())
        .unwrap_or_else(|e| usage(&e));
    println!(
        "storm: seed {} for {} s on {} nodes",
        storm.seed,
        storm.secs,
        storm.nodes()
    );
    let began = Instant::now();
    let result = actix_rt::System::new().block_on(run(storm, |phase| {
        println!("[{:>8.1} s] {phase}", began.elapsed().as_secs_f64());
    }));
    match result {
        Ok(report) => {
            println!("{report}");
            println!("passed in {:.1} s", began.elapsed().as_secs_f64());
        }
        Err(e) => {
            eprintln!("storm: FAILED: {e}");
            std::process::exit(1);
        }
    }
}
