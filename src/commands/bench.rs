//! `fabricsim bench`: start an in-process fabric on ephemeral ports, write through the
//! root's Raft log from several clients at once, and measure.
//!
//! - `up_ms`: from starting the first node until every member has joined and converged.
//! - `commit_p50_us`, `_p99_us`, `_p999_us`: from proposing a configuration command on
//!   the root until the root has applied it and answered (a quorum of voters has it on
//!   disk).
//! - `converge_*` (the same percentiles): from the same submission until every member has
//!   applied it; a member with no record of applying a write fails the bench.
//! - `writes_per_sec`: writes divided by the time from the first submission to the last
//!   acknowledgement.
//! - `fsyncs_per_write`: the syncs of every node's Raft log while the writes ran, counted
//!   by the log writer, per write.
//! - with `--rest`, the REST API's latencies (`rest_bench`): `rest_get_*` and
//!   `rest_write_converge_*`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::{Error, rest_bench};
use crate::config::ConfigCommand;
use crate::harness::{Fabric, generated_topology};
use crate::raft::Raft;
use tokio_util::sync::CancellationToken;

/// How long the members may take to apply the last write once the root acknowledged it.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Nodes in the fabric, the root included.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Configuration writes in all.
    #[arg(long, default_value_t = 1000)]
    writes: usize,
    /// Clients writing concurrently.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also measure the REST API: GET latency and REST write -> converged latency, over
    /// this many requests of each (default 100 with --rest).
    #[arg(long, num_args = 0..=1, default_missing_value = "100")]
    rest: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Report {
    nodes: usize,
    writes: usize,
    clients: usize,
    up_ms: u64,
    commit_p50_us: u64,
    commit_p99_us: u64,
    commit_p999_us: u64,
    converge_p50_us: u64,
    converge_p99_us: u64,
    converge_p999_us: u64,
    writes_per_sec: f64,
    /// Log syncs of every node while the writes ran, per write.
    fsyncs_per_write: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rest_get_p50_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rest_get_p99_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rest_write_converge_p50_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rest_write_converge_p99_us: Option<u64>,
    peak_rss_mb: f64,
}

/// One acknowledged write: when it was submitted, at which log index it landed, and how
/// long the root took to acknowledge it.
struct Write {
    submitted: Instant,
    index: u64,
    commit: Duration,
}

pub(super) async fn bench(args: BenchArgs) -> Result<ExitCode, Error> {
    let nodes = args.nodes.max(1);
    let clients = args.clients.max(1);
    let started = Instant::now();
    let fabric = Fabric::start(rest_bench::with_bench_user(generated_topology("bench", nodes))).await?;
    fabric.wait_converged(CONVERGE_TIMEOUT).await?;
    let up = started.elapsed();

    // Every member's applied index over time, recorded as it advances.
    let members: Vec<(String, Raft)> = fabric
        .topology()
        .members()
        .map(|spec| Ok((spec.name.clone(), fabric.node(&spec.name)?.raft().clone())))
        .collect::<Result<_, Error>>()?;
    let stop_recording = CancellationToken::new();
    let recorders: Vec<_> = members
        .iter()
        .map(|(_, raft)| tokio::spawn(record_applied(raft.clone(), stop_recording.clone())))
        .collect();

    let syncs_before = log_syncs(&fabric)?;
    let writing = Instant::now();
    let writes = write_from_clients(&fabric, clients, args.writes).await?;
    let write_time = writing.elapsed();
    let syncs = log_syncs(&fabric)? - syncs_before;

    let last = writes.iter().map(|w| w.index).max().unwrap_or(0);
    for (member, raft) in &members {
        raft.wait(Some(CONVERGE_TIMEOUT))
            .applied_index_at_least(Some(last), "bench: member applies the last write")
            .await
            .map_err(|e| Error::Bench(format!("{member} did not apply the last write: {e}")))?;
    }
    stop_recording.cancel();
    let mut timelines = Vec::new();
    for ((member, _), recorder) in members.iter().zip(recorders) {
        timelines.push((
            member.clone(),
            recorder.await.expect("applied-index recorder panicked"),
        ));
    }

    let mut commits: Vec<u64> = writes.iter().map(|w| w.commit.as_micros() as u64).collect();
    let mut converges = converge_times(&writes, &timelines)?;
    let rest = match args.rest {
        Some(requests) => Some(rest_bench::measure(&fabric, requests.max(1)).await?),
        None => None,
    };
    fabric.stop().await;
    let [
        rest_get_p50_us,
        rest_get_p99_us,
        rest_write_converge_p50_us,
        rest_write_converge_p99_us,
    ] = rest_percentiles(rest);

    let report = Report {
        nodes,
        writes: writes.len(),
        clients,
        up_ms: up.as_millis() as u64,
        commit_p50_us: percentile(&mut commits, 50.0),
        commit_p99_us: percentile(&mut commits, 99.0),
        commit_p999_us: percentile(&mut commits, 99.9),
        converge_p50_us: percentile(&mut converges, 50.0),
        converge_p99_us: percentile(&mut converges, 99.0),
        converge_p999_us: percentile(&mut converges, 99.9),
        writes_per_sec: (writes.len() as f64 / write_time.as_secs_f64() * 10.0).round() / 10.0,
        fsyncs_per_write: (syncs as f64 / writes.len().max(1) as f64 * 100.0).round() / 100.0,
        rest_get_p50_us,
        rest_get_p99_us,
        rest_write_converge_p50_us,
        rest_write_converge_p99_us,
        peak_rss_mb: peak_rss_mb(),
    };
    print_report(&report, args.json);
    Ok(ExitCode::SUCCESS)
}

/// Writes `total` configuration commands on the root from `clients` concurrent clients.
async fn write_from_clients(fabric: &Fabric, clients: usize, total: usize) -> Result<Vec<Write>, Error> {
    let root = fabric.node(&fabric.topology().root().name)?.raft().clone();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(write_until_done(root.clone(), next.clone(), total)))
        .collect();
    let mut writes = Vec::with_capacity(total);
    for task in tasks {
        writes.extend(task.await.expect("bench client panicked")?);
    }
    Ok(writes)
}

/// How many times the Raft logs of all nodes have synced to disk.
fn log_syncs(fabric: &Fabric) -> Result<u64, Error> {
    fabric
        .topology()
        .nodes
        .iter()
        .map(|spec| Ok(fabric.node(&spec.name)?.log_syncs()))
        .sum()
}

/// The report as one JSON object, or as a table.
fn print_report(report: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("the report serializes")
        );
    } else {
        println!("{report:#?}");
    }
}

/// The REST GET and write -> converged p50 and p99, when `--rest` measured them.
fn rest_percentiles(rest: Option<(Vec<u64>, Vec<u64>)>) -> [Option<u64>; 4] {
    match rest {
        Some((mut gets, mut writes)) => [
            Some(percentile(&mut gets, 50.0)),
            Some(percentile(&mut gets, 99.0)),
            Some(percentile(&mut writes, 50.0)),
            Some(percentile(&mut writes, 99.0)),
        ],
        None => [None; 4],
    }
}

/// How long each write took, from submission, to be applied on every member, in
/// microseconds. A member whose timeline lacks a write is an error: the bench waited for
/// every member to apply the last write, so a gap means the recording is wrong.
fn converge_times(writes: &[Write], timelines: &[(String, Timeline)]) -> Result<Vec<u64>, Error> {
    writes
        .iter()
        .map(|w| {
            let mut applied_everywhere = w.submitted + w.commit;
            for (member, timeline) in timelines {
                let applied = first_at_least(timeline, w.index).ok_or_else(|| {
                    Error::Bench(format!("{member} has no record of applying index {}", w.index))
                })?;
                applied_everywhere = applied_everywhere.max(applied);
            }
            Ok(applied_everywhere
                .saturating_duration_since(w.submitted)
                .as_micros() as u64)
        })
        .collect()
}

async fn write_until_done(
    root: Raft,
    next: Arc<std::sync::atomic::AtomicUsize>,
    total: usize,
) -> Result<Vec<Write>, Error> {
    let mut done = Vec::new();
    loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if i >= total {
            return Ok(done);
        }
        let command = ConfigCommand::SetEntry {
            table: "endpoint-control fctems".to_owned(),
            key: format!("ems{}", i % 3 + 1),
            values: BTreeMap::from([
                (
                    "server".to_owned(),
                    format!("127.{}.{}.{}", 101 + i % 3, (i / 250) % 250, i % 250 + 1),
                ),
                ("https-port".to_owned(), (1 + i % 65_000).to_string()),
            ]),
        };
        let submitted = Instant::now();
        let response = root
            .client_write(command)
            .await
            .map_err(|e| Error::Bench(format!("the root refused a write: {e}")))?;
        done.push(Write {
            submitted,
            index: response.log_id.index,
            commit: submitted.elapsed(),
        });
    }
}

/// A member's applied index over time: `(index, when first seen)`, in order.
type Timeline = Vec<(u64, Instant)>;

/// Records a member's applied index each time it advances, until `stop` is cancelled.
async fn record_applied(raft: Raft, stop: CancellationToken) -> Timeline {
    let mut metrics = raft.metrics();
    let mut timeline = Timeline::new();
    loop {
        let applied = metrics.borrow_and_update().last_applied.map_or(0, |id| id.index);
        timeline.push((applied, Instant::now()));
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return timeline },
            () = stop.cancelled() => return timeline,
        }
    }
}

/// When the member had first applied `index`, if it has.
fn first_at_least(timeline: &Timeline, index: u64) -> Option<Instant> {
    timeline
        .iter()
        .find(|(applied, _)| *applied >= index)
        .map(|(_, at)| *at)
}

fn percentile(values: &mut [u64], p: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// The process's peak resident set (VmHWM), in MiB; 0 where /proc is not available.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    (kib / 1024.0 * 10.0).round() / 10.0
}
