//! The status page: the top levels of the tree, every node that is not
//! HEALTHY with its whole DN, and a count of children for each collapsed
//! node, which a click expands. Bounded however large the tree: the page
//! asks for [`TOP_LEVELS`] levels, at most [`TROUBLED`] troubled nodes, and
//! the children of the nodes the operator opened, never the whole tree.

use actix_web::{web, HttpResponse};

use super::status::{bad_request, check_dn, Status};
use crate::model::read::query::{Query, Selection};
use crate::model::read::render::{glyph, human};
use crate::model::records::{Breaker, NodeInfo};

/// Levels below the root the page shows without a click.
const TOP_LEVELS: u32 = 2;

/// The most troubled (not HEALTHY) nodes the page lists.
const TROUBLED: usize = 1_000;

/// The most rows of the tree the page shows (the top levels and every
/// opened node's children together).
const TREE_ROWS: usize = 5_000;

/// The most nodes one page may have opened.
const MAX_OPEN: usize = 100;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One row, server-rendered (the script renders the same from
/// `page.json`). `path`: show the whole DN rather than the indented name.
fn row(n: &NodeInfo, now: tokio::time::Instant, path: bool, actions: bool) -> String {
    let depth = n.dn.matches('.').count();
    let name = match path {
        true => &n.dn,
        false => n.dn.rsplit('.').next().unwrap_or(&n.dn),
    };
    let mut when = match (n.restart_at, n.uptime) {
        (Some(at), _) => format!("restart in {}", human(at.saturating_duration_since(now))),
        (None, Some(up)) => format!("up {}", human(up)),
        _ => String::new(),
    };
    let breaker = match n.breaker {
        Breaker::Open { trips, .. } => format!("breaker open (trip {trips})"),
        Breaker::HalfOpen { .. } => "breaker half-open".to_string(),
        _ => String::new(),
    };
    if !breaker.is_empty() {
        if !when.is_empty() {
            when.push_str(" · ");
        }
        when.push_str(&breaker);
    }
    if let Some(lease) = lease(n) {
        if !when.is_empty() {
            when.push_str(" · ");
        }
        when.push_str(&lease);
    }
    let stalled = if n.stalled_since.is_some() {
        "STALLED"
    } else {
        ""
    };
    let children = match n.children_total {
        0 => String::new(),
        total => format!("{total} children, {} live", n.children_live),
    };
    let queue = queue(n);
    let dn = escape(&n.dn);
    let buttons = match (actions, n.dynamic_child) {
        (false, _) => String::new(),
        (true, false) => {
            format!("<button data-action=\"restart\" data-dn=\"{dn}\">restart</button>")
        }
        (true, true) => format!(
            "<button data-action=\"restart\" data-dn=\"{dn}\">restart</button> \
             <button data-action=\"terminate\" data-dn=\"{dn}\">terminate</button>"
        ),
    };
    format!(
        "<tr data-dn=\"{dn}\" class=\"{state}\"><td style=\"padding-left:{pad}em\">{glyph} {name}</td><td class=\"state\">{state}</td><td class=\"restarts\">{restarts}</td><td>{when}</td><td class=\"children\">{children}</td><td class=\"queue{hot}\">{queue}</td><td class=\"stalled\">{stalled}</td><td class=\"error\">{error}</td><td class=\"actions\">{buttons}</td></tr>",
        state = n.state,
        pad = if path { 0.3 } else { depth as f32 * 1.2 + 0.3 },
        glyph = glyph(n),
        name = escape(name),
        restarts = n.restarts,
        hot = if n.overloaded { " overloaded" } else { "" },
        when = escape(&when),
        error = escape(n.last_error.as_deref().unwrap_or("").lines().next().unwrap_or("")),
    )
}

/// An actor node's backlog, for its row: what waits and for how long
/// (nothing while its queue is empty and not in alarm).
fn queue(n: &NodeInfo) -> String {
    match n.queued {
        Some(q) if q > 0 || n.overloaded => {
            let oldest = n.oldest_queued.map(human).unwrap_or_default();
            let alarm = if n.overloaded { "OVERLOADED · " } else { "" };
            format!("{alarm}{q} queued, oldest {oldest}")
        }
        _ => String::new(),
    }
}

/// A singleton's lease, for its row: here, or whose, with the token.
fn lease(n: &NodeInfo) -> Option<String> {
    let l = n.lease.as_ref()?;
    Some(match (&l.holder, l.token) {
        (_, Some(token)) if l.held_here => format!("lease here, token {token}"),
        (Some(holder), Some(token)) => format!("lease: {holder}, token {token}"),
        _ => "campaigning".to_string(),
    })
}

/// The fleet section, server-rendered (the script renders the same from
/// `page.json`'s `fleet`).
fn fleet_html(f: &crate::fleet::Fleet) -> String {
    let members: String = f
        .last_members()
        .iter()
        .map(|m| {
            let this = if m.id == f.id() {
                " (this replica)"
            } else {
                ""
            };
            format!(
                "<tr><td>{}{this}</td><td>{}</td><td></td><td></td></tr>",
                escape(&m.id),
                escape(m.address.as_deref().unwrap_or(""))
            )
        })
        .collect();
    let held: Vec<String> = f
        .held()
        .iter()
        .map(|(n, t)| format!("{} (token {t})", escape(n)))
        .collect();
    let held = if held.is_empty() {
        "none".to_string()
    } else {
        held.join(", ")
    };
    let connected = if f.is_connected() {
        ""
    } else {
        " · <b>session not confirmed: rejoining</b>"
    };
    format!(
        "<h2>Fleet</h2><div class=\"note\">replica {} at {}{connected} · holds: {held}</div>\
         <table><thead><tr><th>member</th><th>address</th><th>joined</th><th>renewed</th></tr></thead>\
         <tbody>{members}</tbody></table>",
        escape(f.id()),
        escape(f.store()),
    )
}

/// The fleet as `page.json` and `/fleet.json` show it.
pub(super) fn fleet_json(f: &crate::fleet::Fleet) -> serde_json::Value {
    serde_json::json!({
        "id": f.id(),
        "store": f.store(),
        "connected": f.is_connected(),
        "ttl_ms": f.ttl().as_millis() as u64,
        "held": f.held(),
        "members": f.last_members(),
    })
}

/// What the page shows: the tree's rows (top levels and the opened nodes'
/// children, in DN order), the troubled nodes (overloaded first, then the
/// rest that is not HEALTHY), and the summary.
struct Shown {
    tree: Vec<NodeInfo>,
    tree_truncated: bool,
    troubled: Selection,
}

async fn gather(s: &Status, open: &[String]) -> Shown {
    let sup = &s.sup;
    let top = Query::new().depth(TOP_LEVELS).limit(TREE_ROWS);
    let troubled = Query::new().not_healthy().limit(TROUBLED);
    let mut tree = sup.query(&top).await.unwrap_or_default();
    for dn in open {
        let q = Query::new().dn(dn.as_str()).depth(1).limit(TREE_ROWS);
        if let Ok(mut sel) = sup.query(&q).await {
            tree.truncated |= sel.truncated;
            tree.nodes.append(&mut sel.nodes);
        }
    }
    tree.nodes.sort_by(|a, b| a.dn.cmp(&b.dn));
    tree.nodes.dedup_by(|a, b| a.dn == b.dn);
    let tree_truncated = tree.truncated || tree.nodes.len() > TREE_ROWS;
    tree.nodes.truncate(TREE_ROWS);
    let overloaded = Query::new().overloaded().limit(TROUBLED);
    let mut first = sup.query(&overloaded).await.unwrap_or_default();
    let rest = sup.query(&troubled).await.unwrap_or_default();
    first.truncated |= rest.truncated;
    first
        .nodes
        .extend(rest.nodes.into_iter().filter(|n| !n.overloaded));
    first.nodes.truncate(TROUBLED);
    Shown {
        tree: tree.nodes,
        tree_truncated,
        troubled: first,
    }
}

/// `?open=root.a,root.b`: the nodes whose children to show.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PageQuery {
    open: Option<String>,
}

impl PageQuery {
    fn dns(&self) -> Result<Vec<String>, String> {
        let Some(open) = self.open.as_deref().filter(|o| !o.is_empty()) else {
            return Ok(Vec::new());
        };
        let dns: Vec<String> = open.split(',').map(str::to_string).collect();
        if dns.len() > MAX_OPEN {
            return Err(format!(
                "open lists {} nodes: at most {MAX_OPEN}",
                dns.len()
            ));
        }
        for dn in &dns {
            check_dn(dn)?;
        }
        Ok(dns)
    }
}

/// The page's data, for its script: `{counts, tree, tree_truncated,
/// troubled, troubled_truncated}`.
pub(super) async fn page_json(s: web::Data<Status>, q: web::Query<PageQuery>) -> HttpResponse {
    let open = match q.dns() {
        Ok(open) => open,
        Err(why) => return bad_request(why),
    };
    let shown = gather(&s, &open).await;
    let counts = s.sup.counts().await;
    HttpResponse::Ok().json(serde_json::json!({
        "counts": counts,
        "tree": shown.tree,
        "tree_truncated": shown.tree_truncated,
        "troubled": shown.troubled.nodes,
        "troubled_truncated": shown.troubled.truncated,
        "actions": s.actions,
        "fleet": s.fleet.as_ref().map(fleet_json),
    }))
}

pub(super) async fn page(s: web::Data<Status>) -> HttpResponse {
    let shown = gather(&s, &[]).await;
    let c = s.sup.counts().await;
    let now = tokio::time::Instant::now();
    let rows: String = shown
        .tree
        .iter()
        .map(|n| row(n, now, false, s.actions))
        .collect();
    let troubled: String = shown
        .troubled
        .nodes
        .iter()
        .map(|n| row(n, now, true, s.actions))
        .collect();
    let mut summary = format!(
        "{} nodes, {} healthy, {} new, {} dead ({} waiting to restart), {} done, {} cancelled",
        c.nodes, c.healthy, c.new, c.dead, c.waiting, c.done, c.cancelled
    );
    if c.standby > 0 {
        summary.push_str(&format!(", {} standby", c.standby));
    }
    if c.overloaded > 0 {
        summary.push_str(&format!(", {} overloaded", c.overloaded));
    }
    let fleet = s.fleet.as_ref().map(fleet_html).unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(
            PAGE.replace("{{body_class}}", if s.actions { "actions" } else { "" })
                .replace("{{summary}}", &summary)
                .replace("{{troubled}}", &troubled)
                .replace("{{rows}}", &rows)
                .replace("{{fleet}}", &fleet),
        )
}

/// The page: server-rendered, enhanced by a small script that polls
/// `page.json` every 2 s, expands a node on a click on its arrow, and
/// follows a clicked node's log lines. No external resources.
const PAGE: &str = include_str!("page.html");
