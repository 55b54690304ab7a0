use super::*;
use kameo::actor::{Actor, ActorRef, Spawn};
use kameo::error::Infallible;
use kameo::message::{Context, Message};
use kameo::supervision::{RestartPolicy, SupervisionStrategy};

#[derive(Clone)]
pub struct Member {
    pub probe: Arc<Probe>,
    pub victim: bool,
    pub up: mpsc::UnboundedSender<ActorRef<Member>>,
}

impl Actor for Member {
    type Args = Self;
    type Error = Infallible;
    async fn on_start(me: Self, actor_ref: ActorRef<Self>) -> Result<Self, Infallible> {
        if me.victim {
            let _ = me.up.send(actor_ref);
        } else {
            me.probe.reborn();
        }
        Ok(me)
    }
}

pub struct Die;

impl Message<Die> for Member {
    type Reply = Result<(), std::io::Error>;
    async fn handle(&mut self, _: Die, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.probe.die();
        Err(std::io::Error::other("killed"))
    }
}

pub struct Group;

impl Actor for Group {
    type Args = Member;
    type Error = Infallible;
    fn supervision_strategy() -> SupervisionStrategy {
        SupervisionStrategy::OneForAll
    }
    async fn on_start(m: Member, actor_ref: ActorRef<Self>) -> Result<Self, Infallible> {
        for victim in [true, false] {
            Member::supervise(
                &actor_ref,
                Member {
                    victim,
                    ..m.clone()
                },
            )
            .restart_policy(RestartPolicy::Permanent)
            .restart_limit(u32::MAX, Duration::from_secs(1))
            .spawn()
            .await;
        }
        Ok(Group)
    }
}

/// A tree node: supervises ten children until the leaves.
#[derive(Clone)]
pub struct Node {
    pub depth: u32,
    pub probe: Arc<Probe>,
}

impl Actor for Node {
    type Args = Self;
    type Error = Infallible;
    async fn on_start(me: Self, actor_ref: ActorRef<Self>) -> Result<Self, Infallible> {
        if me.depth == 0 {
            me.probe.started.tick();
        } else {
            for _ in 0..10 {
                Node::supervise(
                    &actor_ref,
                    Node {
                        depth: me.depth - 1,
                        probe: me.probe.clone(),
                    },
                )
                .spawn()
                .await;
            }
        }
        Ok(me)
    }
}
