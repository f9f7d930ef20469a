//! `fabricsim bench --rest`: the REST API's share of the benchmark, on the fabric `bench`
//! started. One client on the root's HTTPS API, with the bench API user's key:
//!
//! - `rest_get_*`: a `GET /api/v2/cmdb/endpoint-control/fctems`, from sending to the whole
//!   reply.
//! - `rest_write_converge_*`: a `PUT` of one fctems entry, from sending until every member
//!   has applied the revision the reply names.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};

use super::Error;
use crate::harness::Fabric;
use crate::rest::client::RestClient;
use crate::topology::{ApiUserSpec, Topology};

/// The API user `bench --rest` adds to its fabric, and its fixed key.
const BENCH_USER: &str = "bench";
const BENCH_KEY: &str = "fabricsimBenchKey000000000000000";
/// How long the members may take to apply one REST write.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// The fctems table the writes go to, and the entry they change.
const FCTEMS: &str = "/api/v2/cmdb/endpoint-control/fctems";
const ENTRY: &str = "ems1";

/// `topology` with the bench API user.
pub(super) fn with_bench_user(mut topology: Topology) -> Topology {
    topology.api_users.push(ApiUserSpec {
        name: BENCH_USER.to_owned(),
        key: Some(BENCH_KEY.to_owned()),
        accprofile: "super_admin".to_owned(),
    });
    topology
}

/// Microseconds of each of `requests` GETs, and of each of `requests` writes until every
/// member applied it.
pub(super) async fn measure(fabric: &Fabric, requests: usize) -> Result<(Vec<u64>, Vec<u64>), Error> {
    let root = &fabric.topology().root().name;
    let mut client = fabric.rest(root).await?;
    let auth = format!("Bearer {BENCH_KEY}");
    let headers = [("authorization", auth.as_str())];
    // The entry the writes change: the Raft phase's `ems1`, or a new one.
    let path = format!("{FCTEMS}/{ENTRY}");
    let found = client
        .request(Method::GET, &path, &headers, b"")
        .await
        .map_err(|e| Error::Bench(format!("REST GET {path}: {e}")))?;
    if found.status == StatusCode::NOT_FOUND {
        let entry = serde_json::json!({"name": ENTRY, "server": "127.0.200.1"}).to_string();
        expect_ok(&mut client, Method::POST, FCTEMS, &headers, entry.as_bytes()).await?;
    }

    let mut gets = Vec::with_capacity(requests);
    for _ in 0..requests {
        let sent = Instant::now();
        expect_ok(&mut client, Method::GET, FCTEMS, &headers, b"").await?;
        gets.push(sent.elapsed().as_micros() as u64);
    }

    let members: Vec<_> = fabric
        .topology()
        .members()
        .map(|spec| fabric.node(&spec.name).map(|node| node.config_watch()))
        .collect::<Result<_, _>>()?;
    let mut writes = Vec::with_capacity(requests);
    for i in 0..requests {
        let body = serde_json::json!({"https-port": 1 + i % 65_000}).to_string();
        let sent = Instant::now();
        let reply = expect_ok(&mut client, Method::PUT, &path, &headers, body.as_bytes()).await?;
        let revision: u64 = reply["revision"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| Error::Bench(format!("a REST write named no revision: {reply}")))?;
        for member in &members {
            let mut watch = member.clone();
            tokio::time::timeout(CONVERGE_TIMEOUT, watch.wait_for(|db| db.revision() >= revision))
                .await
                .map_err(|_| Error::Bench(format!("a member did not apply revision {revision}")))?
                .map_err(|_| Error::Bench("a member stopped".to_owned()))?;
        }
        writes.push(sent.elapsed().as_micros() as u64);
    }
    Ok((gets, writes))
}

async fn expect_ok(
    client: &mut RestClient,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<serde_json::Value, Error> {
    let reply = client
        .request(method.clone(), path, headers, body)
        .await
        .map_err(|e| Error::Bench(format!("REST {method} {path}: {e}")))?;
    if reply.status != StatusCode::OK {
        return Err(Error::Bench(format!(
            "REST {method} {path} answered {}: {}",
            reply.status,
            reply.text()
        )));
    }
    Ok(reply.json())
}
