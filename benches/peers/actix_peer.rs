use super::*;
use actix::prelude::*;

pub struct Worker(pub Arc<Probe>);

impl Actor for Worker {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.0.reborn();
        self.0.started.tick();
    }
}

impl actix::Supervised for Worker {}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Die;

/// Answers at once: for the round trip between two arbiters.
pub struct Echo;

impl Actor for Echo {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Ping;

impl Handler<Ping> for Echo {
    type Result = ();
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

/// Pings an `Echo` on another arbiter, one round trip at a time.
pub struct Pinger;

impl Actor for Pinger {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "Vec<Duration>")]
pub struct Rounds(pub Addr<Echo>, pub usize);

impl Handler<Rounds> for Pinger {
    type Result = ResponseFuture<Vec<Duration>>;
    fn handle(&mut self, Rounds(echo, n): Rounds, _: &mut Context<Self>) -> Self::Result {
        Box::pin(async move {
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let _ = echo.send(Ping).await;
                out.push(t.elapsed());
            }
            out
        })
    }
}

impl Handler<Die> for Worker {
    type Result = ();
    fn handle(&mut self, _: Die, ctx: &mut Context<Self>) {
        self.0.die();
        ctx.stop();
    }
}
