//! The processor's walks over the tree: snapshots and queries, `/readyz`'s
//! question, the live list and the safety sweep. Each turn takes at most
//! [`SLICE`] steps of one walk (see `model/read/walk.rs`), then yields to the runtime,
//! so that the reports, timers and requests queued meanwhile are served
//! before the next slice: looking at a large tree never stalls supervising
//! it. Walks in progress take turns, one slice each.

use std::collections::VecDeque;
use std::time::Duration;

use actix::fut::{wrap_future, ActorFutureExt};
use actix::AsyncContext;
use futures::channel::oneshot;
use log::Level;
use tokio::time::Instant;

use super::Processor;
use crate::api::wire::protocol::Chunks;
use crate::model::error::RunError;
use crate::model::read::query::{Keep, Query};
use crate::model::read::walk::{Walk, SLICE};
use crate::model::records::{NodeInfo, NodeKind};
use crate::model::sweep::sweep;
use crate::model::tree::NodeKey;
use crate::model::voice::Said;

/// The walks in progress, each with what it is for.
#[derive(Default)]
pub(super) struct Walks {
    queue: VecDeque<(Walk, Purpose)>,
    /// A continuation is spawned: the next slice comes after a yield.
    continuing: bool,
    /// A safety sweep is among the jobs.
    sweeping: bool,
}

/// What a walk collects.
enum Purpose {
    /// A [`Query`]'s records.
    Query {
        keep: Keep,
        /// Only actor nodes with at least this many messages waiting.
        queued: Option<usize>,
        /// Dynamic nodes' records carry their finished children.
        finished: bool,
        limit: usize,
        chunks: Vec<Vec<NodeInfo>>,
        kept: usize,
        truncated: bool,
        reply: oneshot::Sender<Result<Chunks, RunError>>,
    },
    /// The DNs of the running nodes.
    Live {
        dns: Vec<String>,
        reply: oneshot::Sender<Vec<String>>,
    },
    /// The safety sweep: every group is looked at once, as the incremental
    /// sweep would after a change.
    SafetySweep {
        missed: usize,
        /// Processor time spent so far, for the next sweep's due time.
        spent: Duration,
    },
}

impl Processor {
    /// Starts a query; answered once its walk is over.
    pub(super) fn query(
        &mut self,
        query: Query,
        reply: oneshot::Sender<Result<Chunks, RunError>>,
        ctx: &mut actix::Context<Self>,
    ) {
        let key = match &query.dn {
            None => Some(self.tree.root()),
            Some(dn) => self.view().find(dn),
        };
        let Some(key) = key else {
            let dn = query.dn.unwrap_or_default();
            let _ = reply.send(Err(RunError::NotFound { dn }));
            return;
        };
        // The usual answer, without a walk: nothing holds readiness up, or
        // nothing is overloaded.
        let none = match query.keep {
            Keep::Unready { .. } => {
                self.tree.tally().unready() == 0 && self.beside.overload_unready == 0
            }
            Keep::Overloaded => self.beside.overloaded.is_empty(),
            _ => false,
        };
        if none {
            let _ = reply.send(Ok(Chunks::default()));
            return;
        }
        let purpose = Purpose::Query {
            keep: query.keep,
            queued: query.queued,
            finished: query.finished,
            limit: query.limit.unwrap_or(usize::MAX),
            chunks: Vec::new(),
            kept: 0,
            truncated: false,
            reply,
        };
        self.begin_walk(key, query.depth, purpose, ctx);
    }

    /// Starts collecting the DNs of the running nodes.
    pub(super) fn list_live(
        &mut self,
        reply: oneshot::Sender<Vec<String>>,
        ctx: &mut actix::Context<Self>,
    ) {
        let purpose = Purpose::Live {
            dns: Vec::new(),
            reply,
        };
        self.begin_walk(self.tree.root(), None, purpose, ctx);
    }

    /// Starts the safety sweep, unless one is under way.
    pub(super) fn begin_sweep(&mut self, ctx: &mut actix::Context<Self>) {
        if self.walks.sweeping {
            return;
        }
        self.walks.sweeping = true;
        let purpose = Purpose::SafetySweep {
            missed: 0,
            spent: Duration::ZERO,
        };
        self.begin_walk(self.tree.root(), None, purpose, ctx);
    }

    /// Queues a walk and, if none was under way, takes its first slice now:
    /// a small tree is answered within the request's own turn, exactly.
    fn begin_walk(
        &mut self,
        top: NodeKey,
        depth: Option<u32>,
        purpose: Purpose,
        ctx: &mut actix::Context<Self>,
    ) {
        let walk = Walk::new(&self.tree, top, depth);
        self.walks.queue.push_back((walk, purpose));
        if !self.walks.continuing {
            self.walk_slice(ctx);
        }
    }

    /// One slice of the walk whose turn it is; then, if walks remain, the
    /// next slice after a yield to the runtime.
    fn walk_slice(&mut self, ctx: &mut actix::Context<Self>) {
        if let Some((mut walk, mut purpose)) = self.walks.queue.pop_front() {
            match self.step(&mut walk, &mut purpose, ctx) {
                true => self.finish(purpose),
                false => self.walks.queue.push_back((walk, purpose)),
            }
        }
        if !self.walks.queue.is_empty() && !self.walks.continuing {
            self.walks.continuing = true;
            let yielded = wrap_future::<_, Self>(tokio::task::yield_now());
            ctx.spawn(yielded.map(|(), act, ctx| {
                act.walks.continuing = false;
                act.take_reports(ctx);
                act.walk_slice(ctx);
            }));
        }
    }

    /// Takes one slice of `walk`; `true` when it is over.
    fn step(
        &mut self,
        walk: &mut Walk,
        purpose: &mut Purpose,
        ctx: &mut actix::Context<Self>,
    ) -> bool {
        let took = std::time::Instant::now();
        let (now, wall) = (Instant::now(), std::time::SystemTime::now());
        let now_ms = self.tree.ms(now);
        match purpose {
            Purpose::Query {
                keep,
                queued,
                finished,
                limit,
                chunks,
                kept,
                truncated,
                ..
            } => {
                let (view, removed) = (self.view(), &self.removed);
                let mut chunk = Vec::new();
                let done = walk.step(&self.tree, SLICE, |v| {
                    if *truncated || !view.keeps(*keep, v.key, v.node, now_ms) {
                        return;
                    }
                    let short = |at_least| view.queued(v.key).is_none_or(|(d, _)| d < at_least);
                    if queued.is_some_and(short) {
                        return;
                    }
                    if *kept == *limit {
                        *truncated = true;
                        return;
                    }
                    *kept += 1;
                    let mut info = view.info(v.key, v.node, v.group, now, wall);
                    if *finished && v.node.kind == NodeKind::Dynamic {
                        info.finished = removed.finished_under(&v.node.dn);
                    }
                    chunk.push(info);
                });
                if !chunk.is_empty() {
                    chunks.push(chunk);
                }
                // Once the limit is passed, nothing more will be kept.
                done || *truncated
            }
            Purpose::Live { dns, .. } => walk.step(&self.tree, SLICE, |v| {
                if v.node.is_running() {
                    dns.push(v.node.dn.to_string());
                }
            }),
            Purpose::SafetySweep { missed, spent } => {
                let mut visited = Vec::with_capacity(SLICE);
                let done = walk.step(&self.tree, SLICE, |v| visited.push(v.key));
                let units = sweep(&self.tree, visited);
                if !units.is_empty() {
                    *missed += units.len();
                    self.read_clock();
                    for unit in units {
                        self.repair(unit);
                    }
                    self.after_change(ctx);
                }
                *spent += took.elapsed();
                done
            }
        }
    }

    /// Answers a finished walk.
    fn finish(&mut self, purpose: Purpose) {
        match purpose {
            Purpose::Query {
                chunks,
                truncated,
                reply,
                ..
            } => {
                let _ = reply.send(Ok(Chunks { chunks, truncated }));
            }
            Purpose::Live { mut dns, reply } => {
                dns.sort_unstable();
                let _ = reply.send(dns);
            }
            Purpose::SafetySweep { missed, spent } => {
                self.walks.sweeping = false;
                self.safety_sweep_due = Instant::now() + spent * super::SAFETY_SWEEP_SHARE;
                if missed > 0 {
                    let msg = format!(
                        "the safety sweep found {missed} restartable groups the incremental sweep missed"
                    );
                    self.voice.say(Said::note(Level::Error, msg));
                }
            }
        }
    }
}
