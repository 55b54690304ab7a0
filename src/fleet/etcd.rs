//! The etcd backend (feature `etcd`): sessions are etcd leases, members and
//! singleton leases are keys attached to them, fencing tokens are the
//! keys' create revisions.
//!
//! Keys, under the store's prefix (default `/actix-supervisor`):
//! - `{prefix}/members/{id}`: the member record (JSON), attached to the
//!   replica's etcd lease, so it goes when the session does;
//! - `{prefix}/leases/{name}`: the holder's member id, attached to the
//!   holder's etcd lease. Put only if absent (`version == 0`, one
//!   transaction), so at most one session holds it; its `create_revision`
//!   is cluster-wide and only grows: the fencing token.
//!
//! etcd times a lease on its leader, from the keep-alive's arrival; a new
//! leader re-arms every lease's timer, so a lease may outlive its TTL
//! across an election, never expire early. TTLs are whole seconds: the TTL
//! asked for is rounded up.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use futures::future::BoxFuture;
use tokio::sync::OnceCell;

use super::store::{Claim, Holder, LeaseStore, Member, Session, StoreError};
use super::FleetError;

/// A [`LeaseStore`] on etcd v3 (3.4 or later).
///
/// ```no_run
/// use actix_supervisor::fleet::EtcdStore;
///
/// let store = EtcdStore::new("http://127.0.0.1:2379")?.prefix("/billing-service");
/// # Ok::<(), actix_supervisor::fleet::FleetError>(())
/// ```
pub struct EtcdStore {
    endpoints: Vec<String>,
    prefix: String,
    client: OnceCell<Client>,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// A store at `endpoint` (`http://host:2379`; `etcd://host:2379` is
    /// read as `http://`), or several, comma-separated. Nothing is sent
    /// until the fleet joins.
    pub fn new(endpoint: &str) -> Result<EtcdStore, FleetError> {
        let endpoints: Vec<String> = endpoint
            .split(',')
            .map(|e| {
                let e = e.trim();
                match e.strip_prefix("etcd://") {
                    Some(rest) => format!("http://{rest}"),
                    None => e.to_string(),
                }
            })
            .collect();
        for e in &endpoints {
            let ok = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"))
                .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
            if !ok {
                return Err(FleetError::InvalidUrl {
                    url: endpoint.to_string(),
                    why: format!("{e:?} is not http://host:port"),
                });
            }
        }
        Ok(EtcdStore {
            endpoints,
            prefix: "/actix-supervisor".into(),
            client: OnceCell::new(),
        })
    }

    /// The key prefix the fleet's keys live under (default
    /// `/actix-supervisor`): one per fleet sharing a cluster.
    pub fn prefix(mut self, prefix: &str) -> EtcdStore {
        self.prefix = prefix.trim_end_matches('/').to_string();
        self
    }

    async fn client(&self) -> Result<Client, StoreError> {
        let client = self
            .client
            .get_or_try_init(|| async {
                // HTTP/2 keep-alives: a connection whose peer vanished
                // (a partition drops packets, nothing resets) is replaced
                // within seconds instead of hanging every request.
                let options = ConnectOptions::new()
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_keep_alive(Duration::from_secs(1), Duration::from_secs(1))
                    .with_keep_alive_while_idle(true);
                Client::connect(&self.endpoints, Some(options)).await
            })
            .await
            .map_err(unreachable)?;
        Ok(client.clone())
    }

    fn member_key(&self, id: &str) -> String {
        format!("{}/members/{id}", self.prefix)
    }

    fn lease_key(&self, name: &str) -> String {
        format!("{}/leases/{name}", self.prefix)
    }

    fn record(member: &Member) -> String {
        let ms = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        serde_json::json!({
            "id": member.id,
            "address": member.address,
            "joined_at_ms": ms(member.joined_at),
            "renewed_at_ms": member.renewed_at.map(ms),
        })
        .to_string()
    }

    fn parse(value: &[u8]) -> Option<Member> {
        let v: serde_json::Value = serde_json::from_slice(value).ok()?;
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        Some(Member {
            id: v.get("id")?.as_str()?.to_string(),
            address: v
                .get("address")
                .and_then(|a| a.as_str())
                .map(str::to_string),
            joined_at: at(v.get("joined_at_ms")?.as_u64()?),
            renewed_at: v.get("renewed_at_ms").and_then(|r| r.as_u64()).map(at),
        })
    }
}

/// A transport failure, or an error status that means the store could not
/// serve the request.
fn unreachable(e: etcd_client::Error) -> StoreError {
    StoreError::Unreachable(e.to_string())
}

/// An etcd error, sorted: a missing lease is an expired session.
fn sorted(e: etcd_client::Error) -> StoreError {
    match &e {
        etcd_client::Error::GRpcStatus(status) => {
            if status.message().contains("lease not found") {
                return StoreError::Expired;
            }
            // gRPC's codes CANCELLED (1), UNKNOWN (2), DEADLINE_EXCEEDED
            // (4) and UNAVAILABLE (14): the request did not get through.
            match status.code() as i32 {
                1 | 2 | 4 | 14 => unreachable(e),
                _ => StoreError::Refused(e.to_string()),
            }
        }
        etcd_client::Error::LeaseKeepAliveError(why) if why.contains("lease not found") => {
            StoreError::Expired
        }
        etcd_client::Error::TransportError(_)
        | etcd_client::Error::IoError(_)
        | etcd_client::Error::LeaseKeepAliveError(_) => unreachable(e),
        _ => StoreError::Refused(e.to_string()),
    }
}

impl LeaseStore for EtcdStore {
    fn endpoint(&self) -> String {
        format!("etcd {}", self.endpoints.join(","))
    }

    fn join<'a>(
        &'a self,
        member: &'a Member,
        ttl: Duration,
        previous: Option<&'a Session>,
    ) -> BoxFuture<'a, Result<Session, StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            if let Some(previous) = previous {
                // Its keys go with it: its leases are free at once.
                match client
                    .lease_revoke(previous.id as i64)
                    .await
                    .map_err(sorted)
                {
                    Ok(_) | Err(StoreError::Expired) => {}
                    Err(e) => return Err(e),
                }
            }
            let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
            let grant = client
                .lease_grant(secs as i64, None)
                .await
                .map_err(sorted)?;
            let key = self.member_key(&member.id);
            let put = PutOptions::new().with_lease(grant.id());
            let txn = Txn::new()
                .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.clone(), Self::record(member), Some(put))]);
            let done = client.txn(txn).await.map_err(sorted)?;
            if !done.succeeded() {
                let _ = client.lease_revoke(grant.id()).await;
                return Err(StoreError::Duplicate {
                    id: member.id.clone(),
                });
            }
            Ok(Session {
                member: member.id.clone(),
                id: grant.id() as u64,
                ttl: Duration::from_secs(grant.ttl().max(0) as u64),
            })
        })
    }

    fn renew<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            // One keep-alive: the client sends it and reads its answer
            // (an expired lease is an error, "lease not found").
            client
                .lease_keep_alive(session.id as i64)
                .await
                .map_err(sorted)?;
            // The member record says when: a put with the lease, which
            // fails if the lease is gone.
            let key = self.member_key(&session.member);
            let got = client.get(key.clone(), None).await.map_err(sorted)?;
            let Some(mut member) = got.kvs().first().and_then(|kv| Self::parse(kv.value())) else {
                return Err(StoreError::Expired);
            };
            member.renewed_at = Some(SystemTime::now());
            let put = PutOptions::new().with_lease(session.id as i64);
            let txn = Txn::new()
                .when([Compare::lease(
                    key.clone(),
                    CompareOp::Equal,
                    session.id as i64,
                )])
                .and_then([TxnOp::put(key, Self::record(&member), Some(put))]);
            match client.txn(txn).await.map_err(sorted)?.succeeded() {
                true => Ok(()),
                false => Err(StoreError::Expired),
            }
        })
    }

    fn acquire<'a>(
        &'a self,
        session: &'a Session,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let key = self.lease_key(name);
            // Twice at most: a key this very session holds already (a
            // release that did not arrive) is deleted, then taken anew
            // with a new revision, so that tokens grow from tenure to
            // tenure.
            for _ in 0..2 {
                let put = PutOptions::new().with_lease(session.id as i64);
                let txn = Txn::new()
                    .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key.clone(), session.member.clone(), Some(put))])
                    .or_else([TxnOp::get(key.clone(), None)]);
                let done = client.txn(txn).await.map_err(sorted)?;
                if done.succeeded() {
                    let revision = done.header().map_or(0, |h| h.revision());
                    return Ok(Claim::Acquired {
                        token: revision as u64,
                    });
                }
                let held = done.op_responses().into_iter().find_map(|r| match r {
                    TxnOpResponse::Get(got) => got.kvs().first().cloned(),
                    _ => None,
                });
                let Some(kv) = held else {
                    continue; // deleted meanwhile: try again
                };
                if kv.lease() == session.id as i64 {
                    let stale = Txn::new()
                        .when([Compare::create_revision(
                            key.clone(),
                            CompareOp::Equal,
                            kv.create_revision(),
                        )])
                        .and_then([TxnOp::delete(key.clone(), None)]);
                    client.txn(stale).await.map_err(sorted)?;
                    continue;
                }
                return Ok(Claim::HeldBy(Holder {
                    member: String::from_utf8_lossy(kv.value()).into_owned(),
                    token: kv.create_revision() as u64,
                }));
            }
            Err(StoreError::Refused(format!(
                "{key} changed under two attempts in a row"
            )))
        })
    }

    fn release<'a>(
        &'a self,
        _session: &'a Session,
        name: &'a str,
        token: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let key = self.lease_key(name);
            let txn = Txn::new()
                .when([Compare::create_revision(
                    key.clone(),
                    CompareOp::Equal,
                    token as i64,
                )])
                .and_then([TxnOp::delete(key, None)]);
            client.txn(txn).await.map_err(sorted)?;
            Ok(())
        })
    }

    fn leave<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            match client.lease_revoke(session.id as i64).await.map_err(sorted) {
                Ok(_) | Err(StoreError::Expired) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let prefix = self.member_key("");
            let got = client
                .get(prefix, Some(GetOptions::new().with_prefix()))
                .await
                .map_err(sorted)?;
            let mut members: Vec<Member> = got
                .kvs()
                .iter()
                .filter_map(|kv| Self::parse(kv.value()))
                .collect();
            members.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(members)
        })
    }

    fn wait_released<'a>(
        &'a self,
        name: &'a str,
        token: u64,
        within: Duration,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let watched = async {
                let Ok(mut client) = self.client().await else {
                    return;
                };
                // From the holder's creation on: a delete that came before
                // the watch started is replayed, and ends the wait at once.
                let options = WatchOptions::new().with_start_revision(token as i64);
                let Ok(mut events) = client.watch(self.lease_key(name), Some(options)).await else {
                    return;
                };
                while let Ok(Some(answer)) = events.message().await {
                    if answer.canceled()
                        || answer
                            .events()
                            .iter()
                            .any(|e| e.event_type() == EventType::Delete)
                    {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(within, watched).await;
        })
    }

    fn holder<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Holder>, StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let got = client
                .get(self.lease_key(name), None)
                .await
                .map_err(sorted)?;
            Ok(got.kvs().first().map(|kv| Holder {
                member: String::from_utf8_lossy(kv.value()).into_owned(),
                token: kv.create_revision() as u64,
            }))
        })
    }
}
