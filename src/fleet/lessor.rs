//! The fleet as the tree's [`Lessor`]: what a singleton node campaigns
//! through, and [`Child::singleton`], which makes a child one.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use super::{is_valid_lease_name, Claim, Fleet};
use crate::api::lease::{Attempt, Lessor, Tenure};
use crate::api::runnable::Child;

impl Lessor for Fleet {
    fn member(&self) -> &str {
        &self.shared.member.id
    }

    fn attempt(&self, name: Arc<str>) -> BoxFuture<'static, Attempt> {
        let shared = self.shared.clone();
        Box::pin(async move {
            if !is_valid_lease_name(&name) {
                return Attempt::Failed(format!("invalid lease name {name:?}"));
            }
            let Some(current) = shared.current() else {
                return Attempt::Failed("this replica is rejoining the fleet".into());
            };
            if let Some(why) = current.standing.borrow().doomed(Instant::now()) {
                return Attempt::Failed(format!("this replica's session is falling: {why}"));
            }
            let asked = shared.store.acquire(&current.session, &name);
            match tokio::time::timeout(shared.budget(), asked).await {
                Ok(Ok(Claim::Acquired { token })) => {
                    shared.held().insert(name.to_string(), token);
                    #[cfg(feature = "prometheus")]
                    shared.metrics.acquired(&name);
                    Attempt::Won(Tenure::new(token, current.standing))
                }
                Ok(Ok(Claim::HeldBy(h))) => Attempt::HeldBy {
                    holder: h.member,
                    token: h.token,
                },
                Ok(Err(e)) => Attempt::Failed(format!("the store at {}: {e}", shared.endpoint)),
                Err(_) => Attempt::Failed(format!(
                    "the store at {} did not answer within {:?}",
                    shared.endpoint,
                    shared.budget()
                )),
            }
        })
    }

    fn retry_every(&self) -> Duration {
        (self.shared.ttl / 10).max(Duration::from_millis(50))
    }

    fn wait_turn(&self, name: Arc<str>, token: u64) -> BoxFuture<'static, ()> {
        let (shared, within) = (self.shared.clone(), self.retry_every());
        Box::pin(async move { shared.store.wait_released(&name, token, within).await })
    }

    fn release(&self, name: Arc<str>, token: u64) -> BoxFuture<'static, ()> {
        let shared = self.shared.clone();
        Box::pin(async move {
            let ours = shared.held().get(&*name) == Some(&token);
            if !ours {
                return; // lost with its session already
            }
            shared.held().remove(&*name);
            #[cfg(feature = "prometheus")]
            shared.metrics.released(&name);
            let Some(current) = shared.current() else {
                return;
            };
            let asked = shared.store.release(&current.session, &name, token);
            match tokio::time::timeout(shared.budget(), asked).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::warn!(
                    target: "actix_supervisor::fleet",
                    "{}: releasing {name} (token {token}): {e}; it expires on its own",
                    shared.member.id
                ),
                Err(_) => log::warn!(
                    target: "actix_supervisor::fleet",
                    "{}: releasing {name} (token {token}): no answer; it expires on its own",
                    shared.member.id
                ),
            }
        })
    }
}

impl Child {
    /// Makes this child a singleton across the replicas of `fleet`: every
    /// replica has the node in its tree, but its runnable runs only on the
    /// replica holding the lease named by its DN (`root.billing`);
    /// elsewhere it is STANDBY, campaigning, which does not make the
    /// replica unready.
    ///
    /// Its policy applies within a tenure: restarts, backoff and
    /// intensity. When its restarts exceed its owner's intensity it does
    /// not take the owner down: this replica releases the lease and backs
    /// off (at least the intensity's window) before campaigning again, so
    /// that a replica that cannot run the job hands it over. When the lease
    /// is lost (see the [module docs](crate::fleet)) its incarnation is
    /// cancelled and dropped at the fence, and it comes back at once,
    /// STANDBY, without counting as a restart against anyone. A stopping
    /// supervisor releases its leases once their runnables have stopped.
    pub fn singleton(mut self, fleet: &Fleet) -> Child {
        self.spec.singleton = true;
        self.lease = Some(Arc::new(fleet.clone()));
        self
    }
}
