//! Bad input on the HTTP surface, by a seeded mutation fuzzer: every
//! endpoint of the status gets queries built from a corpus of malformed and
//! well-formed values (those of the malformed-query test), mutated (bytes
//! inserted, flipped, repeated to 64 KiB, percent-encodings broken,
//! parameters repeated or unknown). No query may make it panic or answer
//! 5xx, and no answer may be large (a request cannot make it allocate
//! without bound). `FUZZ_QUERIES=n` sends more than the default, and
//! `FUZZ_SEED=s` another sequence; a failure names its seed and query.

use crate::common;

use actix_supervisor::web::Status;
use actix_supervisor::{Child, Context, DynamicGroup};
use actix_web::{test, web, App};
use common::*;

/// What `cargo test` sends.
const QUERIES: u64 = 3_000;

/// No answer of this tree's status comes near it.
const MAX_BODY: usize = 256 * 1024;

const PATHS: [&str; 11] = [
    "/status/actions/restart",
    "/status/actions/terminate",
    "/status/tree.json",
    "/status/tree",
    "/status/logs",
    "/status/page.json",
    "/status/",
    "/status/healthz",
    "/status/readyz",
    "/status/metrics",
    "/status/nope",
];

const KEYS: [&str; 11] = [
    "dn", "depth", "state", "limit", "after", "open", "finished", "queued", "", "DN", "dn[]",
];

const VALUES: [&str; 41] = [
    "",
    "x",
    "-1",
    "0",
    "1",
    "2",
    "10000",
    "100001",
    "1e9",
    "99999999999999999999999",
    "18446744073709551616",
    "4294967296",
    "%00",
    "%ff%fe",
    "%",
    "%4",
    "%zz",
    "root",
    "root.a",
    "root.jobs",
    "root.jobs.j1",
    "supervisor",
    "root..a",
    ".root",
    "root.",
    "ROOT",
    "root.A",
    "root.a%20b",
    "root.%2e",
    "%F0%9F%A6%80",
    "not_healthy",
    "unhealthy",
    "overloaded",
    "DEAD,NEW",
    "dead,new,,",
    "HEALTHY,CANCELLED,DONE",
    "NaN",
    "true",
    "[]",
    "0x10",
    "+1",
];

/// Bytes a mutation inserts: some break percent-encoding or the query's
/// structure, the others are plain.
const BYTES: &[u8] = b"%&=;+,.-_~!$'()*azAZ09\x00\x7f";

fn mutate(rng: &mut fastrand::Rng, v: &str) -> String {
    let mut out: Vec<u8> = v.as_bytes().to_vec();
    for _ in 0..rng.usize(0..4) {
        match rng.u8(0..6) {
            0 => {
                let b = BYTES[rng.usize(0..BYTES.len())];
                let at = rng.usize(0..=out.len());
                out.insert(at, b);
            }
            1 if !out.is_empty() => {
                let at = rng.usize(0..out.len());
                out[at] ^= 1 << rng.u8(0..7);
            }
            2 if !out.is_empty() => {
                out.truncate(rng.usize(0..out.len()));
            }
            3 => {
                // Long: up to 64 KiB (encoded, the URI is cut at 60,000).
                let times = [2, 100, 4096][rng.usize(0..3)];
                let unit = if out.is_empty() {
                    b"9".to_vec()
                } else {
                    out.clone()
                };
                out = unit.repeat(times).into_iter().take(64 * 1024).collect();
            }
            4 => out.extend_from_slice(b"%"),
            _ => out.make_ascii_uppercase(),
        }
    }
    // What a URI may carry: the rest percent-encoded (a `%` stays as it
    // is, so broken encodings get through).
    out.iter()
        .map(|&b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            b'%' | b'&' | b'=' | b';' | b'+' | b',' | b'.' | b'-' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query(rng: &mut fastrand::Rng) -> String {
    let path = PATHS[rng.usize(0..PATHS.len())];
    let mut q = String::new();
    for i in 0..rng.usize(0..5) {
        if i > 0 {
            q.push('&');
        }
        q.push_str(KEYS[rng.usize(0..KEYS.len())]);
        if rng.u8(0..8) > 0 {
            q.push('=');
            let value = VALUES[rng.usize(0..VALUES.len())];
            q.push_str(&mutate(rng, value));
        }
    }
    let mut uri = match q.is_empty() && rng.bool() {
        true => path.to_string(),
        false => format!("{path}?{q}"),
    };
    // Within what a URI may be (`http` refuses 64 KiB and more).
    uri.truncate(60_000);
    uri
}

#[actix_rt::test]
async fn no_query_makes_the_status_panic_answer_5xx_or_answer_much() {
    let sup = builder().start(|ctx: Context| async move {
        let jobs = ctx.run_dynamic("jobs", DynamicGroup::new()).await?;
        jobs.start_child(Child::new("j1", server())).await?;
        serve(&ctx).await
    });
    sup.wait_settled().await;
    let app = test::init_service(App::new().service(
        web::scope("/status").configure(Status::new(sup.clone()).allow_actions(true).config()),
    ))
    .await;
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261203);
    let queries = std::env::var("FUZZ_QUERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(QUERIES);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut by_code = std::collections::BTreeMap::<u16, u64>::new();
    for i in 0..queries {
        let uri = query(&mut rng);
        // The operator's actions are POSTs (and restart what they name);
        // the rest are read with GETs.
        let action = uri.starts_with("/status/actions/");
        let req = match action {
            true => test::TestRequest::post(),
            false => test::TestRequest::get(),
        };
        let res = test::call_service(&app, req.uri(&uri).to_request()).await;
        let code = res.status().as_u16();
        let body = test::read_body(res).await;
        let shown = || uri.chars().take(300).collect::<String>();
        // An action on a node being restarted is answered 503 "not
        // running", with that message: an honest answer, not a failure.
        let not_running = action && code == 503 && !body.is_empty();
        assert!(
            code < 500 || not_running,
            "seed {seed}, query {i}: {} answered {code}",
            shown()
        );
        assert!(
            body.len() <= MAX_BODY,
            "seed {seed}, query {i}: {} answered {} bytes",
            shown(),
            body.len()
        );
        if code == 400 {
            assert!(
                !body.is_empty(),
                "seed {seed}, query {i}: {}: 400 without a message",
                shown()
            );
        }
        *by_code.entry(code).or_default() += 1;
    }
    // The fuzzer reached both the handlers and their refusals.
    assert!(
        by_code.get(&200).is_some_and(|n| *n > queries / 20),
        "{by_code:?}"
    );
    assert!(
        by_code.get(&400).is_some_and(|n| *n > queries / 20),
        "{by_code:?}"
    );
    println!("fuzz: {queries} queries from seed {seed}: {by_code:?}");
    sup.shutdown().await;
}
