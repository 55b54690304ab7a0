//! The supervisor's life: shutting down (everything cancelled, nothing
//! restarted), draining until nothing is live, ending (hosts dropped,
//! workers stopped, timers cancelled, waiters answered with why), and the
//! settle waiters' look at the tree.

use actix::AsyncContext;
use futures::channel::oneshot;
use log::Level;

use super::{Life, Processor};
use crate::model::records::Ended;
use crate::model::voice::Said;

impl Processor {
    pub(super) fn begin_shutdown(&mut self, why: Ended) {
        self.ending.get_or_insert(why);
        if self.life == Life::Running {
            let message = "shutting down: cancelling the tree".to_string();
            self.voice
                .say(Said::new(Level::Info, "shutting_down", message));
            self.life = Life::Stopping;
            self.sinks.tell(format_args!("stopping"), |m| m.stopping());
            self.tree.top().cancel();
        }
    }

    pub(super) fn check_drained(&mut self, ctx: &mut actix::Context<Self>) {
        if self.life != Life::Stopping || !self.tree.all_exited() {
            return;
        }
        let message = "shut down: nothing is live".to_string();
        self.voice.say(Said::new(Level::Info, "shut_down", message));
        self.life = Life::Finished;
        self.outbox.clear();
        // Nothing runs any more: whoever waits for a termination is done;
        // whoever waits for readiness or a listener will not get it (their
        // replies dropped answer so).
        self.beside.finish();
        self.waiters = Default::default();
        self.me = None;
        self.workers.stop_workers();
        self.inbox.close();
        let spawned = [
            self.safety_timer.take(),
            self.watch_timer.take(),
            self.doorbell.take(),
        ];
        for timer in spawned.into_iter().flatten() {
            ctx.cancel_future(timer);
        }
        if !self.stragglers.is_empty() && self.ending == Some(Ended::ShutDown) {
            self.ending = Some(Ended::Stragglers {
                dns: std::mem::take(&mut self.stragglers),
            });
        }
        let ended = self.ending.clone().unwrap_or(Ended::ShutDown);
        for w in self.finish_waiters.drain(..) {
            let _ = w.send(ended.clone());
        }
    }

    /// Answers `reply` with why, once the life is Finished.
    pub(super) fn when_finished(&mut self, reply: oneshot::Sender<Ended>) {
        if self.life == Life::Finished {
            let _ = reply.send(self.ending.clone().unwrap_or(Ended::ShutDown));
        } else {
            self.finish_waiters.push(reply);
        }
    }

    /// Answers the settle waiters if the tree is settled, else looks again
    /// when it may be.
    pub(super) fn poll_settled(&mut self, ctx: &mut actix::Context<Self>) {
        // Guards first, then the reports made under them (see `api/wire/settle.rs`).
        let unguarded = self.settle.unguarded();
        self.take_reports(ctx);
        if let Some(wait) = self.settle.poll(unguarded) {
            ctx.run_later(wait, |act, ctx| {
                act.settle.timer_fired();
                act.poll_settled(ctx);
            });
        }
    }
}
