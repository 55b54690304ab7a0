use super::*;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_supervisor::*;

pub struct Member {
    pub probe: Arc<Probe>,
    pub up: Option<mpsc::UnboundedSender<ActorRef<()>>>,
}

#[ractor::async_trait]
impl Actor for Member {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, myself: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        match &self.up {
            Some(up) => {
                let _ = up.send(myself);
            }
            None => self.probe.reborn(),
        }
        Ok(())
    }
    async fn handle(&self, _: ActorRef<()>, _: (), _: &mut ()) -> Result<(), ActorProcessingErr> {
        self.probe.die();
        Err("killed".into())
    }
}

pub struct Leaf(pub Arc<Probe>);

#[ractor::async_trait]
impl Actor for Leaf {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        self.0.started.tick();
        Ok(())
    }
}

pub fn options() -> SupervisorOptions {
    SupervisorOptions {
        strategy: SupervisorStrategy::OneForAll,
        max_restarts: usize::MAX,
        max_window: Duration::from_secs(1),
        reset_after: None,
    }
}

fn spec(id: String, spawn_fn: SpawnFn) -> ChildSpec {
    ChildSpec {
        id,
        restart: Restart::Permanent,
        spawn_fn,
        backoff_fn: None,
        reset_after: None,
    }
}

pub fn pair(probe: Arc<Probe>, up: mpsc::UnboundedSender<ActorRef<()>>) -> SupervisorArguments {
    let victim = {
        let (probe, up) = (probe.clone(), up.clone());
        SpawnFn::new(move |cell, id| {
            let member = Member {
                probe: probe.clone(),
                up: Some(up.clone()),
            };
            async move {
                Ok(Supervisor::spawn_linked(id, member, (), cell)
                    .await?
                    .0
                    .get_cell())
            }
        })
    };
    let peer = SpawnFn::new(move |cell, id| {
        let member = Member {
            probe: probe.clone(),
            up: None,
        };
        async move {
            Ok(Supervisor::spawn_linked(id, member, (), cell)
                .await?
                .0
                .get_cell())
        }
    });
    SupervisorArguments {
        child_specs: vec![spec("victim".into(), victim), spec("peer".into(), peer)],
        options: options(),
    }
}

/// A supervisor of ten children, each a supervisor again until the leaves.
pub fn tree(prefix: String, depth: u32, probe: Arc<Probe>) -> SupervisorArguments {
    let child_specs = (0..10)
        .map(|i| {
            let id = format!("{prefix}.n{i}");
            let probe = probe.clone();
            let f = SpawnFn::new(move |cell, id: String| {
                let probe = probe.clone();
                async move {
                    let cell = if depth == 1 {
                        Supervisor::spawn_linked(id, Leaf(probe), (), cell)
                            .await?
                            .0
                            .get_cell()
                    } else {
                        let args = tree(id.clone(), depth - 1, probe);
                        Supervisor::spawn_linked(id, Supervisor, args, cell)
                            .await?
                            .0
                            .get_cell()
                    };
                    Ok(cell)
                }
            });
            spec(id, f)
        })
        .collect();
    SupervisorArguments {
        child_specs,
        options: options(),
    }
}
