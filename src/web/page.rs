//! The status page: the top levels of the tree, every node that is not
//! HEALTHY with its whole DN, and a count of children for each collapsed
//! node, which a click expands. Bounded however large the tree: the page
//! asks for [`TOP_LEVELS`] levels, at most [`TROUBLED`] troubled nodes, and
//! the children of the nodes the operator opened, never the whole tree.

use actix_web::{web, HttpResponse};

use super::status::{bad_request, check_dn, Status};
use crate::model::read::query::{Query, Selection};
use crate::model::read::render::{glyph, human};
use crate::model::records::NodeInfo;

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
fn row(n: &NodeInfo, now: tokio::time::Instant, path: bool) -> String {
    let depth = n.dn.matches('.').count();
    let name = match path {
        true => &n.dn,
        false => n.dn.rsplit('.').next().unwrap_or(&n.dn),
    };
    let when = match (n.restart_at, n.uptime) {
        (Some(at), _) => format!("restart in {}", human(at.saturating_duration_since(now))),
        (None, Some(up)) => format!("up {}", human(up)),
        _ => String::new(),
    };
    let stalled = if n.stalled_since.is_some() {
        "STALLED"
    } else {
        ""
    };
    let children = match n.children_total {
        0 => String::new(),
        total => format!("{total} children, {} live", n.children_live),
    };
    format!(
        "<tr data-dn=\"{dn}\" class=\"{state}\"><td style=\"padding-left:{pad}em\">{glyph} {name}</td><td class=\"state\">{state}</td><td class=\"restarts\">{restarts}</td><td>{when}</td><td class=\"children\">{children}</td><td class=\"stalled\">{stalled}</td><td class=\"error\">{error}</td></tr>",
        dn = escape(&n.dn),
        state = n.state,
        pad = if path { 0.3 } else { depth as f32 * 1.2 + 0.3 },
        glyph = glyph(n),
        name = escape(name),
        restarts = n.restarts,
        error = escape(n.last_error.as_deref().unwrap_or("").lines().next().unwrap_or("")),
    )
}

/// What the page shows: the tree's rows (top levels and the opened nodes'
/// children, in DN order), the troubled nodes, and the summary.
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
    Shown {
        tree: tree.nodes,
        tree_truncated,
        troubled: sup.query(&troubled).await.unwrap_or_default(),
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
    }))
}

pub(super) async fn page(s: web::Data<Status>) -> HttpResponse {
    let shown = gather(&s, &[]).await;
    let c = s.sup.counts().await;
    let now = tokio::time::Instant::now();
    let rows: String = shown.tree.iter().map(|n| row(n, now, false)).collect();
    let troubled: String = shown
        .troubled
        .nodes
        .iter()
        .map(|n| row(n, now, true))
        .collect();
    let summary = format!(
        "{} nodes, {} healthy, {} new, {} dead ({} waiting to restart), {} done, {} cancelled",
        c.nodes, c.healthy, c.new, c.dead, c.waiting, c.done, c.cancelled
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(
            PAGE.replace("{{summary}}", &summary)
                .replace("{{troubled}}", &troubled)
                .replace("{{rows}}", &rows),
        )
}

/// The page: server-rendered, enhanced by a small script that polls
/// `page.json` every 2 s, expands a node on a click on its arrow, and
/// follows a clicked node's log lines. No external resources.
const PAGE: &str = include_str!("page.html");
