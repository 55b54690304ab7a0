//! The requests of the [`Supervisor`](crate::Supervisor) handle: each drains
//! the inbox first, so that its answer reflects every report made before it.

use actix::Handler;
use log::Level;

use super::{Life, Processor};
use crate::api::wire::protocol::Request;
use crate::model::error::RunError;
use crate::model::health::Liveness;
use crate::model::records::Ended;
use crate::model::tree::NodeKey;
use crate::model::voice::Said;

impl Handler<Request> for Processor {
    type Result = ();
    fn handle(&mut self, request: Request, ctx: &mut Self::Context) {
        self.take_reports(ctx);
        match request {
            Request::WaitSettled(reply) => {
                self.settle.wait(reply);
                self.poll_settled(ctx);
            }
            Request::Query { query, reply } => self.query(query, reply, ctx),
            Request::Running(reply) => {
                let alive = match (self.life == Life::Running, self.beside.hung.is_empty()) {
                    (false, _) => Liveness::ShuttingDown,
                    (true, true) => Liveness::Alive,
                    (true, false) => Liveness::Hung,
                };
                let _ = reply.send(alive);
            }
            Request::Counts(reply) => {
                let _ = reply.send(self.counts());
            }
            Request::LiveRunnables(reply) => self.list_live(reply, ctx),
            Request::Drain { start, reply } => {
                if start && !self.draining && self.life == Life::Running {
                    self.draining = true;
                    let message = "draining: not ready any more, shutting down soon";
                    self.voice
                        .say(Said::new(Level::Info, "draining", message.into()));
                }
                let _ = reply.send(self.draining || self.life != Life::Running);
            }
            Request::Stop(reply) => {
                self.read_clock();
                self.begin_shutdown(Ended::ShutDown);
                self.check_drained(ctx);
                self.when_finished(reply);
            }
            Request::BeginStop(reply) => {
                self.read_clock();
                self.begin_shutdown(Ended::ShutDown);
                self.check_drained(ctx);
                let _ = reply.send(());
            }
            Request::Join(reply) => self.when_finished(reply),
            Request::WhenReady(reply) => self.when_ready(reply),
            Request::WhenListening { dn, reply } => self.when_listening(dn, reply),
            Request::Say(said) => self.voice.say(said),
            Request::Restart { dn, reply } => {
                self.read_clock();
                let _ = reply.send(self.restart_on_request(&dn));
                self.after_change(ctx);
            }
        }
    }
}

impl Processor {
    /// `k` (at `dn`), if its runnable runs, is not being stopped, and the
    /// supervisor is not shutting down; else [`RunError::NotRunning`].
    pub(super) fn running(&self, k: NodeKey, dn: &str) -> Result<NodeKey, RunError> {
        let running = self
            .tree
            .node(k)
            .is_some_and(|n| n.is_running() && !n.token.is_cancelled());
        if self.life != Life::Running || !running {
            return Err(RunError::NotRunning { dn: dn.to_string() });
        }
        Ok(k)
    }

    /// Stops `dn` (and what its group's strategy takes down with it) to be
    /// started again at once: see [`Supervisor::restart`](crate::Supervisor::restart).
    pub(super) fn restart_on_request(&mut self, dn: &str) -> Result<(), RunError> {
        let k = self
            .view()
            .find(dn)
            .ok_or_else(|| RunError::NotFound { dn: dn.to_string() })?;
        let k = self.running(k, dn)?;
        if let Some(n) = self.tree.node_mut(k) {
            n.requested = true;
        }
        if let Some(n) = self.tree.node(k) {
            let message = format!("restarting {dn} on request");
            let said = Said::new(Level::Info, "restart_requested", message);
            self.voice.say(said.dn(&n.dn).incarnation(n.restarts + 1));
        }
        self.tree.take_down(k);
        Ok(())
    }
}
