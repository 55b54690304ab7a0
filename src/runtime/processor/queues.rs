//! Actor nodes' backlogs as the processor keeps them: where to read each
//! one's depth (for snapshots), which are in alarm (said, told to the
//! sinks, and for readiness), and every second the spread of depths and the
//! depths of the nodes in alarm for the sinks.

use log::Level;

use super::Processor;
use crate::api::wire::inbox::{QueueMsg, QueueNews};
use crate::model::voice::Said;

/// The nodes in alarm whose depth the sinks are told each second, at most:
/// a bound on the processor's turn whatever the number in alarm.
const TOLD_PER_SECOND: usize = 1_000;

impl Processor {
    pub(super) fn on_queue(&mut self, m: QueueMsg) {
        let Some(n) = self.tree.node(m.node) else {
            return;
        };
        let (depth, on) = match m.news {
            QueueNews::Probe(probe) => {
                self.beside.queues.insert(m.node, probe);
                return;
            }
            QueueNews::Alarm { depth, on } => (depth, on),
        };
        let unready = self.tree.overload_affects_readiness(m.node);
        if !self.beside.set_overloaded(m.node, on.then_some(unready)) {
            return;
        }
        let dn = n.dn.clone();
        let said = match on {
            true => {
                let thresholds = self
                    .tree
                    .queue_alarm_of(m.node)
                    .map(|a| format!(" (queue alarm at {}; it clears below {})", a.high, a.low));
                let message = format!(
                    "{dn}: {depth} messages waiting{}",
                    thresholds.unwrap_or_default()
                );
                Said::new(Level::Warn, "overloaded", message)
            }
            false => Said::new(
                Level::Info,
                "overload_cleared",
                format!("{dn}: {depth} messages waiting; the queue alarm clears"),
            ),
        };
        self.voice.say(said.dn(&dn));
        self.sinks
            .tell(format_args!("queue_alarm({dn}, {depth}, {on})"), |s| {
                s.queue_alarm(&dn, depth, on)
            });
    }

    /// Every second: the spread of actor nodes' depths, and the current
    /// depth of (at most [`TOLD_PER_SECOND`]) nodes in alarm.
    pub(super) fn tell_depths(&self) {
        if self.sinks.is_empty() {
            return;
        }
        let depths = self.config.extras.depths.read();
        let overloaded: Vec<(&str, usize)> = self
            .beside
            .overloaded
            .keys()
            .take(TOLD_PER_SECOND)
            .filter_map(|k| {
                let dn = &*self.tree.node(k)?.dn;
                let depth = self.beside.queues.get(k).map_or(0, |probe| probe().0);
                Some((dn, depth))
            })
            .collect();
        self.sinks.tell(format_args!("queue_depths"), |s| {
            s.queue_depths(&depths, &overloaded)
        });
    }
}
