//! The PostgreSQL backend (feature `postgres`): sessions and leases are
//! rows with an expiry in the server's clock, fencing tokens come from a
//! sequence.
//!
//! Three objects, named after the store's table prefix (default
//! `actix_supervisor`), made at the first join if missing:
//! - `{prefix}_members (id, session, address, joined_at_ms, renewed_at_ms,
//!   expires_at)`: one row per replica;
//! - `{prefix}_leases (name, holder, session, token, expires_at)`: one row
//!   per singleton, taken with one conditional upsert (`INSERT ... ON
//!   CONFLICT DO UPDATE ... WHERE expires_at < now() OR session = $me`),
//!   which PostgreSQL serialises on the row: at most one session holds it;
//! - `{prefix}_tokens`, a sequence bumped on every acquisition: the
//!   fencing token (and `{prefix}_sessions` numbers the sessions).
//!
//! Expiry is decided by the server's clock alone (`now()`, the statement's
//! start, after the request arrived), so the replicas' clocks never
//! matter to it. No advisory locks: a lock held by a connection outlives
//! a partition in ways the holder cannot see.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use tokio_postgres::{Client, Config, NoTls};

use super::store::{Claim, Holder, LeaseStore, Member, Session, StoreError};
use super::FleetError;
use crate::model::name::is_valid_name;

/// A [`LeaseStore`] on PostgreSQL (12 or later), without TLS.
///
/// ```no_run
/// use actix_supervisor::fleet::PostgresStore;
///
/// let store = PostgresStore::new("postgres://fleet@db.internal:5432/ops")?;
/// # Ok::<(), actix_supervisor::fleet::FleetError>(())
/// ```
pub struct PostgresStore {
    config: Config,
    url: String,
    prefix: String,
    client: Mutex<Option<Arc<Client>>>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Drops the store's connection if the request it guards did not finish
/// (the fleet's timeout dropped it): the next request connects anew
/// rather than wait on a connection a partition may have left dead.
struct InFlight<'a> {
    store: &'a PostgresStore,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.store.reset();
        }
    }
}

impl PostgresStore {
    /// A store at `url` (`postgres://user:password@host:port/database`, or
    /// a `key=value` connection string). Nothing is sent until the fleet
    /// joins.
    pub fn new(url: &str) -> Result<PostgresStore, FleetError> {
        let mut config: Config = url.parse().map_err(|e| FleetError::InvalidUrl {
            url: redact(url),
            why: format!("{e}"),
        })?;
        config
            .connect_timeout(Duration::from_secs(2))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .application_name("actix-supervisor fleet");
        Ok(PostgresStore {
            config,
            url: redact(url),
            prefix: "actix_supervisor".into(),
            client: Mutex::new(None),
        })
    }

    /// The prefix of the tables' and sequences' names (default
    /// `actix_supervisor`): one per fleet sharing a database. Letters `a-z`,
    /// digits and `_`; anything else is refused.
    pub fn table_prefix(mut self, prefix: &str) -> Result<PostgresStore, FleetError> {
        if !is_valid_name(prefix) {
            return Err(FleetError::InvalidUrl {
                url: self.url.clone(),
                why: format!("table prefix {prefix:?}: 1 to 64 of [a-z0-9_]"),
            });
        }
        self.prefix = prefix.to_string();
        Ok(self)
    }

    fn reset(&self) {
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let cached = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(c) = cached.filter(|c| !c.is_closed()) {
            return Ok(c);
        }
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError::Unreachable(describe(&e)))?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the connection breaks.
            let _ = connection.await;
        });
        let client = Arc::new(client);
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = Some(client.clone());
        Ok(client)
    }

    fn table(&self, what: &str) -> String {
        format!("{}_{what}", self.prefix)
    }

    /// Runs `f` on a connection, sorting its errors; a connection that
    /// failed or was abandoned is dropped.
    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(&'c Client) -> BoxFuture<'c, Result<T, tokio_postgres::Error>>,
    {
        let mut guard = InFlight {
            store: self,
            done: false,
        };
        let client = self.client().await?;
        let result = f(&client).await;
        guard.done = true;
        result.map_err(|e| {
            if e.is_closed() || e.as_db_error().is_none() {
                self.reset();
                StoreError::Unreachable(describe(&e))
            } else {
                StoreError::Refused(describe(&e))
            }
        })
    }

    async fn create_schema(&self) -> Result<(), StoreError> {
        let (m, l, t, s) = (
            self.table("members"),
            self.table("leases"),
            self.table("tokens"),
            self.table("sessions"),
        );
        // Under a transaction-scoped advisory lock: replicas starting at
        // once would otherwise race on the catalog.
        let sql = format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock(hashtext('{m}'));
             CREATE TABLE IF NOT EXISTS {m} (
                 id text PRIMARY KEY,
                 session bigint NOT NULL,
                 address text,
                 joined_at_ms bigint NOT NULL,
                 renewed_at_ms bigint,
                 expires_at timestamptz NOT NULL);
             CREATE TABLE IF NOT EXISTS {l} (
                 name text PRIMARY KEY,
                 holder text NOT NULL,
                 session bigint NOT NULL,
                 token bigint NOT NULL,
                 expires_at timestamptz NOT NULL);
             CREATE SEQUENCE IF NOT EXISTS {t};
             CREATE SEQUENCE IF NOT EXISTS {s};
             COMMIT;"
        );
        self.with(move |c| Box::pin(async move { c.batch_execute(&sql).await }))
            .await
    }
}

/// The URL without its password, for errors and the status page.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The error with its causes: tokio-postgres says only "db error" on top.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ttl_ms(ttl: Duration) -> i64 {
    ttl.as_millis().min(i64::MAX as u128) as i64
}

impl LeaseStore for PostgresStore {
    fn endpoint(&self) -> String {
        format!("postgres {}", self.url)
    }

    fn join<'a>(
        &'a self,
        member: &'a Member,
        ttl: Duration,
        previous: Option<&'a Session>,
    ) -> BoxFuture<'a, Result<Session, StoreError>> {
        Box::pin(async move {
            self.create_schema().await?;
            let (m, l, s) = (
                self.table("members"),
                self.table("leases"),
                self.table("sessions"),
            );
            if let Some(previous) = previous {
                let (id, prev) = (member.id.clone(), previous.id as i64);
                let sql = format!(
                    "WITH gone AS (DELETE FROM {l} WHERE session = $2)
                     DELETE FROM {m} WHERE id = $1 AND session = $2"
                );
                self.with(move |c| Box::pin(async move { c.execute(&sql, &[&id, &prev]).await }))
                    .await?;
            }
            // A live row of the same id is another replica: refused. An
            // expired one is taken over.
            let sql = format!(
                "INSERT INTO {m} (id, session, address, joined_at_ms, renewed_at_ms, expires_at)
                 VALUES ($1, nextval('{s}'), $2, $3, NULL, now() + $4::bigint * interval '1 millisecond')
                 ON CONFLICT (id) DO UPDATE SET
                     session = EXCLUDED.session, address = EXCLUDED.address,
                     joined_at_ms = EXCLUDED.joined_at_ms, renewed_at_ms = NULL,
                     expires_at = EXCLUDED.expires_at
                 WHERE {m}.expires_at < now()
                 RETURNING session"
            );
            let (id, address, joined, ttl_ms) = (
                member.id.clone(),
                member.address.clone(),
                ms(member.joined_at),
                ttl_ms(ttl),
            );
            let row = self
                .with(move |c| {
                    Box::pin(
                        async move { c.query_opt(&sql, &[&id, &address, &joined, &ttl_ms]).await },
                    )
                })
                .await?;
            let Some(row) = row else {
                return Err(StoreError::Duplicate {
                    id: member.id.clone(),
                });
            };
            let session: i64 = row.get(0);
            Ok(Session {
                member: member.id.clone(),
                id: session as u64,
                ttl,
            })
        })
    }

    fn renew<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let (m, l) = (self.table("members"), self.table("leases"));
            // One statement: the member and its leases, only while alive.
            let sql = format!(
                "WITH alive AS (
                     UPDATE {m} SET expires_at = now() + $3::bigint * interval '1 millisecond',
                                    renewed_at_ms = $4
                     WHERE id = $1 AND session = $2 AND expires_at > now()
                     RETURNING id),
                 leases AS (
                     UPDATE {l} SET expires_at = now() + $3::bigint * interval '1 millisecond'
                     WHERE session = $2 AND EXISTS (SELECT 1 FROM alive)
                     RETURNING name)
                 SELECT (SELECT count(*) FROM alive), (SELECT count(*) FROM leases)"
            );
            let (id, sid, ttl, now) = (
                session.member.clone(),
                session.id as i64,
                ttl_ms(session.ttl),
                ms(SystemTime::now()),
            );
            let row = self
                .with(move |c| {
                    Box::pin(async move { c.query_one(&sql, &[&id, &sid, &ttl, &now]).await })
                })
                .await?;
            let alive: i64 = row.get(0);
            if alive == 0 {
                return Err(StoreError::Expired);
            }
            Ok(())
        })
    }

    fn acquire<'a>(
        &'a self,
        session: &'a Session,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(async move {
            let (m, l, t) = (
                self.table("members"),
                self.table("leases"),
                self.table("tokens"),
            );
            // Free, expired, or this session's own (taken anew, with a new
            // token): the row is ours; it lives as long as the session.
            let sql = format!(
                "INSERT INTO {l} (name, holder, session, token, expires_at)
                 SELECT $3, $1, $2, nextval('{t}'), me.expires_at
                 FROM {m} me WHERE me.id = $1 AND me.session = $2 AND me.expires_at > now()
                 ON CONFLICT (name) DO UPDATE SET
                     holder = EXCLUDED.holder, session = EXCLUDED.session,
                     token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
                 WHERE {l}.expires_at < now() OR {l}.session = EXCLUDED.session
                 RETURNING token"
            );
            let (id, sid, lease) = (session.member.clone(), session.id as i64, name.to_string());
            let won = self
                .with(move |c| {
                    Box::pin(async move { c.query_opt(&sql, &[&id, &sid, &lease]).await })
                })
                .await?;
            if let Some(row) = won {
                let token: i64 = row.get(0);
                return Ok(Claim::Acquired {
                    token: token as u64,
                });
            }
            let sql = format!(
                "SELECT (SELECT count(*) FROM {m}
                         WHERE id = $1 AND session = $2 AND expires_at > now()),
                        l.holder, l.token
                 FROM (SELECT 1) one LEFT JOIN {l} l ON l.name = $3"
            );
            let (id, sid, lease) = (session.member.clone(), session.id as i64, name.to_string());
            let row = self
                .with(move |c| {
                    Box::pin(async move { c.query_one(&sql, &[&id, &sid, &lease]).await })
                })
                .await?;
            let alive: i64 = row.get(0);
            if alive == 0 {
                return Err(StoreError::Expired);
            }
            let holder: Option<String> = row.get(1);
            let token: Option<i64> = row.get(2);
            match (holder, token) {
                (Some(member), Some(token)) => Ok(Claim::HeldBy(Holder {
                    member,
                    token: token as u64,
                })),
                _ => Err(StoreError::Refused(format!(
                    "{name} was neither free nor held (a concurrent change): try again"
                ))),
            }
        })
    }

    fn release<'a>(
        &'a self,
        session: &'a Session,
        name: &'a str,
        token: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "DELETE FROM {} WHERE name = $1 AND token = $2 AND session = $3",
                self.table("leases")
            );
            let (lease, token, sid) = (name.to_string(), token as i64, session.id as i64);
            self.with(move |c| {
                Box::pin(async move { c.execute(&sql, &[&lease, &token, &sid]).await })
            })
            .await?;
            Ok(())
        })
    }

    fn leave<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let (m, l) = (self.table("members"), self.table("leases"));
            let sql = format!(
                "WITH gone AS (DELETE FROM {l} WHERE session = $2)
                 DELETE FROM {m} WHERE id = $1 AND session = $2"
            );
            let (id, sid) = (session.member.clone(), session.id as i64);
            self.with(move |c| Box::pin(async move { c.execute(&sql, &[&id, &sid]).await }))
                .await?;
            Ok(())
        })
    }

    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT id, address, joined_at_ms, renewed_at_ms FROM {}
                 WHERE expires_at > now() ORDER BY id",
                self.table("members")
            );
            let rows = self
                .with(move |c| Box::pin(async move { c.query(&sql, &[]).await }))
                .await?;
            let at = |ms: i64| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
            Ok(rows
                .iter()
                .map(|r| Member {
                    id: r.get(0),
                    address: r.get(1),
                    joined_at: at(r.get(2)),
                    renewed_at: r.get::<_, Option<i64>>(3).map(at),
                })
                .collect())
        })
    }

    fn holder<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Holder>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT holder, token FROM {} WHERE name = $1 AND expires_at > now()",
                self.table("leases")
            );
            let lease = name.to_string();
            let row = self
                .with(move |c| Box::pin(async move { c.query_opt(&sql, &[&lease]).await }))
                .await?;
            Ok(row.map(|r| Holder {
                member: r.get(0),
                token: r.get::<_, i64>(1) as u64,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_errors() {
        assert_eq!(
            redact("postgres://fleet:s3cret@db:5432/ops"),
            "postgres://fleet:***@db:5432/ops"
        );
        assert_eq!(redact("postgres://fleet@db/ops"), "postgres://fleet@db/ops");
        let err = PostgresStore::new("postgres://a:b@[::1").unwrap_err();
        assert!(!err.to_string().contains(":b@"), "{err}");
    }
}
