//! **send**: one request and its answer to an actor on another thread,
//! one at a time: the cost a supervised address adds to a send (the
//! baseline for counting queue depth on it, #29). Ours:
//! `SupervisedAddr::send` to an actor node on a worker arbiter; actix:
//! `Addr::send` to the same actor on an arbiter of its own; kameo: `ask`;
//! ractor: `call`. kameo and ractor on the two-worker tokio runtime.

use super::*;

/// Answers a number with the next one.
pub struct Echo;

impl actix::Actor for Echo {
    type Context = actix::Context<Self>;
}

#[derive(actix::Message)]
#[rtype(result = "u64")]
pub struct Ping(pub u64);

impl actix::Handler<Ping> for Echo {
    type Result = u64;
    fn handle(&mut self, p: Ping, _: &mut Self::Context) -> u64 {
        p.0 + 1
    }
}

pub mod kameo_echo {
    use kameo::actor::Actor;
    use kameo::error::Infallible;
    use kameo::message::{Context, Message};

    pub struct Echo;

    impl Actor for Echo {
        type Args = ();
        type Error = Infallible;
        async fn on_start(_: (), _: kameo::actor::ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(Echo)
        }
    }

    pub struct Ping(pub u64);

    impl Message<Ping> for Echo {
        type Reply = u64;
        async fn handle(&mut self, p: Ping, _: &mut Context<Self, Self::Reply>) -> u64 {
            p.0 + 1
        }
    }
}

pub mod ractor_echo {
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

    pub struct Echo;

    pub enum Msg {
        Ping(u64, RpcReplyPort<u64>),
    }

    #[ractor::async_trait]
    impl Actor for Echo {
        type Msg = Msg;
        type State = ();
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
        async fn handle(
            &self,
            _: ActorRef<Msg>,
            msg: Msg,
            _: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            let Msg::Ping(n, reply) = msg;
            let _ = reply.send(n + 1);
            Ok(())
        }
    }
}

/// Times `iters` round trips of `one`.
async fn rounds<F, Fut>(iters: u64, mut one: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let t = Instant::now();
    for i in 0..iters {
        let answer = one(i).await;
        assert_eq!(answer, i + 1);
    }
    t.elapsed()
}

/// A supervisor from `builder` whose root runs an `Echo` actor node,
/// `root.echo`, up; with its address.
async fn supervised_echo(
    builder: actix_supervisor::SupervisorBuilder,
) -> (
    actix_supervisor::Supervisor,
    actix_supervisor::SupervisedAddr<Echo>,
) {
    let (runnable, addr) = actix_supervisor::actor(|| Echo);
    let runnable = std::sync::Mutex::new(Some(runnable));
    let sup = builder.start(move |ctx: actix_supervisor::Context| {
        let child = runnable
            .lock()
            .unwrap()
            .take()
            .map(|r| actix_supervisor::Child::new("echo", r));
        async move {
            if let Some(child) = child {
                ctx.run_child(child).await?;
            }
            ctx.signal(actix_supervisor::Signal::Healthy)?;
            ctx.cancelled().await;
            Ok(())
        }
    });
    sup.wait_settled().await;
    (sup, addr)
}

pub fn send(c: &mut Criterion) {
    let mut g = quick(c, "peers_send");

    // Ours: an actor node on a worker arbiter, through its SupervisedAddr.
    {
        let sys = actix_rt::System::new();
        let (sup, addr) = sys.block_on(supervised_echo(no_backoff()));
        g.bench_function("actix_supervisor", |b| {
            b.iter_custom(|iters| {
                sys.block_on(rounds(iters, |i| {
                    let addr = addr.clone();
                    async move { addr.send(Ping(i)).await.expect("answered") }
                }))
            })
        });
        sys.block_on(sup.shutdown());
    }

    // actix: the same actor on an arbiter of its own, through its Addr.
    {
        let sys = actix_rt::System::new();
        let addr = sys.block_on(async {
            let arbiter = actix::Arbiter::new();
            actix::Actor::start_in_arbiter(&arbiter.handle(), |_| Echo)
        });
        g.bench_function("actix_Addr", |b| {
            b.iter_custom(|iters| {
                sys.block_on(rounds(iters, |i| {
                    let addr = addr.clone();
                    async move { addr.send(Ping(i)).await.expect("answered") }
                }))
            })
        });
    }

    // kameo: ask.
    {
        use kameo::actor::Spawn;
        let rt = tokio_rt();
        let echo = rt.block_on(async { kameo_echo::Echo::spawn(()) });
        g.bench_function("kameo_ask", |b| {
            b.iter_custom(|iters| {
                rt.block_on(rounds(iters, |i| {
                    let echo = echo.clone();
                    async move { echo.ask(kameo_echo::Ping(i)).await.expect("answered") }
                }))
            })
        });
    }

    // ractor: call.
    {
        let rt = tokio_rt();
        let (echo, _) = rt
            .block_on(ractor::Actor::spawn(None, ractor_echo::Echo, ()))
            .expect("spawn");
        g.bench_function("ractor_call", |b| {
            b.iter_custom(|iters| {
                rt.block_on(rounds(iters, |i| {
                    let echo = echo.clone();
                    async move {
                        match echo
                            .call(|reply| ractor_echo::Msg::Ping(i, reply), None)
                            .await
                        {
                            Ok(ractor::rpc::CallResult::Success(n)) => n,
                            other => panic!("no answer: {:?}", other.is_ok()),
                        }
                    }
                }))
            })
        });
        echo.stop(None);
    }
}

/// **send_local**: the same round trip with the actor on the sender's own
/// arbiter, so that no thread wakes another: what is left is the cost of
/// the send itself, and what a supervised address adds to it (the backlog
/// counting of #29 included) stands out rather than drowning in the
/// wake-ups of `peers_send`. Also a burst of 100 `do_send`s closed by one
/// `send`, ours (each `do_send` counted until handled) against actix's.
pub fn send_local(c: &mut Criterion) {
    let mut g = c.benchmark_group("peers_send_local");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let sys = actix_rt::System::new();
    let (sup, ours, theirs) = sys.block_on(async {
        let (sup, ours) = supervised_echo(no_backoff().current_arbiter()).await;
        (sup, ours, actix::Actor::start(Echo))
    });
    g.bench_function("actix_supervisor", |b| {
        b.iter_custom(|iters| {
            sys.block_on(rounds(iters, |i| {
                let addr = ours.clone();
                async move { addr.send(Ping(i)).await.expect("answered") }
            }))
        })
    });
    g.bench_function("actix_Addr", |b| {
        b.iter_custom(|iters| {
            sys.block_on(rounds(iters, |i| {
                let addr = theirs.clone();
                async move { addr.send(Ping(i)).await.expect("answered") }
            }))
        })
    });
    g.bench_function("actix_supervisor_do_send_x100", |b| {
        b.iter_custom(|iters| {
            sys.block_on(rounds(iters, |i| {
                let addr = ours.clone();
                async move {
                    for n in 0..100 {
                        let _ = addr.do_send(Ping(n));
                    }
                    addr.send(Ping(i)).await.expect("answered")
                }
            }))
        })
    });
    g.bench_function("actix_Addr_do_send_x100", |b| {
        b.iter_custom(|iters| {
            sys.block_on(rounds(iters, |i| {
                let addr = theirs.clone();
                async move {
                    for n in 0..100 {
                        addr.do_send(Ping(n));
                    }
                    addr.send(Ping(i)).await.expect("answered")
                }
            }))
        })
    });
    g.finish();
    sys.block_on(sup.shutdown());
}
