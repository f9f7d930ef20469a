//! `fabricsim bench`: start an in-process fabric on ephemeral ports, write on the root from
//! several clients at once, and measure.
//!
//! Writes take one of two paths (`--via`):
//!
//! - `grpc` (the default): the public path `fabricsim exec` takes. Each client holds its
//!   own connection to the root's admin service (mutual TLS, the admin token) and one CLI
//!   session in `config endpoint-control fctems`; a write is `edit`, two `set`s and
//!   `next`, sent together as a pasted block is (one round trip, not four), and `next`'s
//!   reply names the revision it committed.
//! - `inproc`: the node's own commit path (`Node::propose`), without gRPC or the CLI.
//!
//! Either way the clients run on threads of their own (see [`client_threads`]), not as
//! tasks of the fabric's runtime.
//!
//! A warm-up of a tenth of the writes (at least 50) comes first and is not measured; then
//! `--runs` runs of `--writes` writes each, and the report is the run with the median
//! throughput. A client writes again as soon as its last write is answered; with `--rate`
//! write `n` of a run waits until `n / rate` seconds after the run started (a write that
//! is late goes at once), so the latencies are those of a load the fabric keeps up with.
//! Its fields (`--json` keeps these names):
//!
//! - `up_ms`: from starting the first node until every member has joined and converged.
//! - `commit_p50_us`, `_p99_us`, `_p999_us`: from submitting a write until the root
//!   answered it (a quorum of voters has it on disk, the root applied it).
//! - `converge_*` (the same percentiles): from the same submission until every member has
//!   applied the revision; a member with no record of applying it fails the bench.
//! - `writes_per_sec`: writes divided by the time from the first submission to the last
//!   answer.
//! - `fsyncs_per_write`: the synced batches of every node's Raft log while the writes
//!   ran, counted by the log store, per write.
//! - `disk_syncs_per_write`: the syncs run for them, per write: one `syncfs` covers the
//!   batches of every log it was run for (`raft::log::writers`).
//! - `cpu_s_per_1000_writes`: the CPU time of the whole process (every node, the
//!   simulators and the clients) per thousand writes.
//! - `idle_rss_per_node_mb`: the process's resident memory once the fabric converged,
//!   before any write, divided by the nodes; `peak_rss_per_node_mb` and `peak_rss_mb`: the
//!   process's peak, divided by the nodes and whole.
//! - with `--rest`, the REST API's latencies (`rest_bench`): `rest_get_*` and
//!   `rest_write_converge_*`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::{Error, rest_bench};
use crate::config::{ConfigCommand, ConfigDb};
use crate::harness::{Fabric, generated_topology};
use crate::node::Node;
use crate::rpc::client::{AdminConnection, CliSession};

/// How long the members may take to apply the last write once the root acknowledged it.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);
/// The warm-up's share of `--writes`, and its least number of writes.
const WARM_UP_DIVISOR: usize = 10;
const WARM_UP_MIN: usize = 50;
/// The most clients and nodes the bench accepts: what 2 cores and one process carry.
const MAX_CLIENTS: usize = 256;
const MAX_NODES: usize = 100;
/// The entries the writes spread over: the fctems table holds three.
const ENTRIES: usize = 3;
/// The clients' threads: as many as a separate process would have here.
const CLIENT_THREADS: usize = 2;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Nodes in the fabric, the root included (at most 100).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=MAX_NODES as i64))]
    nodes: u16,
    /// Configuration writes per run.
    #[arg(long, default_value_t = 1000)]
    writes: usize,
    /// Clients writing concurrently (at most 256).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=MAX_CLIENTS as i64))]
    clients: u16,
    /// The path a write takes: the root's gRPC admin service and CLI, or the node's own
    /// commit path in this process.
    #[arg(long, value_enum, default_value_t = Via::Grpc)]
    via: Via,
    /// Writes per second from all clients together, at most: each write waits for its
    /// turn on an even schedule. Without it the clients write as fast as the root answers.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    rate: Option<u32>,
    /// Measured runs after the warm-up; the report is the run with the median throughput.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also measure the REST API: GET latency and REST write -> converged latency, over
    /// this many requests of each (default 100 with --rest).
    #[arg(long, num_args = 0..=1, default_missing_value = "100")]
    rest: Option<usize>,
}

/// The path a write takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Via {
    Grpc,
    Inproc,
}

#[derive(Debug, Serialize)]
struct Report {
    nodes: usize,
    writes: usize,
    clients: usize,
    via: Via,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<u32>,
    runs: usize,
    up_ms: u64,
    commit_p50_us: u64,
    commit_p99_us: u64,
    commit_p999_us: u64,
    converge_p50_us: u64,
    converge_p99_us: u64,
    converge_p999_us: u64,
    writes_per_sec: f64,
    /// Batches every node's log synced while the writes ran, per write.
    fsyncs_per_write: f64,
    /// The syncs the log writers ran for them, per write (one may cover many logs).
    disk_syncs_per_write: f64,
    cpu_s_per_1000_writes: f64,
    idle_rss_per_node_mb: f64,
    peak_rss_per_node_mb: f64,
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

/// One acknowledged write: when it was submitted, the revision it committed, and how long
/// the root took to answer it.
struct Write {
    submitted: Instant,
    revision: u64,
    commit: Duration,
}

/// What one run measured.
struct Run {
    writes: Vec<Write>,
    writes_per_sec: f64,
    fsyncs_per_write: f64,
    disk_syncs_per_write: f64,
    cpu_s_per_1000_writes: f64,
}

/// A client's own connection to the root's admin service and its CLI session.
struct GrpcClient {
    _connection: AdminConnection,
    session: CliSession,
}

/// One writing client.
enum Client {
    /// Its own connection to the root's admin service and a CLI session in the fctems
    /// table.
    Grpc(Box<GrpcClient>),
    /// The root itself.
    Inproc(Node),
}

pub(super) async fn bench(args: BenchArgs) -> Result<ExitCode, Error> {
    let nodes = usize::from(args.nodes);
    let started = Instant::now();
    let fabric = Fabric::start(rest_bench::with_bench_user(generated_topology("bench", nodes))).await?;
    fabric.wait_converged(CONVERGE_TIMEOUT).await?;
    let up = started.elapsed();
    let idle_rss_mb = rss_mb("VmRSS:");

    let members = member_nodes(&fabric)?;
    let (last_tx, last_rx) = watch::channel(None);
    let recorders: Vec<_> = members
        .iter()
        .map(|(_, node)| tokio::spawn(record_revisions(node.config_watch(), last_rx.clone())))
        .collect();
    let threads = client_threads()?;
    let mut clients = connect_clients(&fabric, threads.handle(), args.via, usize::from(args.clients)).await?;
    let counter = Arc::new(AtomicUsize::new(0));
    let warm_up = (args.writes / WARM_UP_DIVISOR).max(WARM_UP_MIN);
    let every = args.rate.map(|rate| Duration::from_secs(1) / rate);
    let writing = Writing {
        fabric: &fabric,
        members: &members,
        threads: threads.handle(),
        counter: &counter,
        every,
    };
    writing.run(&mut clients, warm_up).await?;
    let mut runs = Vec::new();
    for _ in 0..args.runs {
        runs.push(writing.run(&mut clients, args.writes).await?);
    }
    let last = runs.iter().flat_map(|run| &run.writes).map(|w| w.revision).max();
    last_tx.send_replace(Some(last.unwrap_or(0)));
    let mut timelines = Vec::new();
    for ((member, _), recorder) in members.iter().zip(recorders) {
        let timeline = recorder.await.expect("a revision recorder panicked");
        timelines.push((member.clone(), timeline));
    }
    runs.sort_by(|a, b| a.writes_per_sec.total_cmp(&b.writes_per_sec));
    let median = runs.swap_remove(runs.len() / 2);
    let rest = match args.rest {
        Some(requests) => Some(rest_bench::measure(&fabric, requests.max(1)).await?),
        None => None,
    };
    drop(clients);
    drop(threads);
    fabric.stop().await;
    let report = report(&args, up, idle_rss_mb, &median, &timelines, rest)?;
    print_report(&report, args.json);
    Ok(ExitCode::SUCCESS)
}

/// Every member's name and node.
fn member_nodes(fabric: &Fabric) -> Result<Vec<(String, Node)>, Error> {
    fabric
        .topology()
        .members()
        .map(|spec| Ok((spec.name.clone(), fabric.node(&spec.name)?.clone())))
        .collect()
}

/// The report of the median run.
fn report(
    args: &BenchArgs,
    up: Duration,
    idle_rss_mb: f64,
    median: &Run,
    timelines: &[(String, Timeline)],
    rest: Option<(Vec<u64>, Vec<u64>)>,
) -> Result<Report, Error> {
    let nodes = usize::from(args.nodes);
    let mut commits: Vec<u64> = median
        .writes
        .iter()
        .map(|w| w.commit.as_micros() as u64)
        .collect();
    let mut converges = converge_times(&median.writes, timelines)?;
    let [
        rest_get_p50_us,
        rest_get_p99_us,
        rest_write_converge_p50_us,
        rest_write_converge_p99_us,
    ] = rest_percentiles(rest);
    let peak_rss_mb = rss_mb("VmHWM:");
    Ok(Report {
        nodes,
        writes: median.writes.len(),
        clients: usize::from(args.clients),
        via: args.via,
        rate: args.rate,
        runs: usize::from(args.runs),
        up_ms: up.as_millis() as u64,
        commit_p50_us: percentile(&mut commits, 50.0),
        commit_p99_us: percentile(&mut commits, 99.0),
        commit_p999_us: percentile(&mut commits, 99.9),
        converge_p50_us: percentile(&mut converges, 50.0),
        converge_p99_us: percentile(&mut converges, 99.0),
        converge_p999_us: percentile(&mut converges, 99.9),
        writes_per_sec: median.writes_per_sec,
        fsyncs_per_write: median.fsyncs_per_write,
        disk_syncs_per_write: median.disk_syncs_per_write,
        cpu_s_per_1000_writes: median.cpu_s_per_1000_writes,
        idle_rss_per_node_mb: round_to(idle_rss_mb / nodes as f64, 1),
        peak_rss_per_node_mb: round_to(peak_rss_mb / nodes as f64, 1),
        rest_get_p50_us,
        rest_get_p99_us,
        rest_write_converge_p50_us,
        rest_write_converge_p99_us,
        peak_rss_mb,
    })
}

/// The threads the clients write from. `fabricsim exec` runs in a process of its own, so
/// the kernel wakes it as soon as its answer arrives; a client task on the fabric's own
/// runtime would instead wait in line behind the members' work for that answer (at 50
/// nodes, behind the learners' AppendEntries that the commit has just set off).
fn client_threads() -> Result<ClientThreads, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(CLIENT_THREADS)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .map(|runtime| ClientThreads(Some(runtime)))
        .map_err(|source| Error::Io {
            context: "starting the bench clients' threads".to_owned(),
            source,
        })
}

/// The clients' runtime, stopped without waiting for its threads when the bench ends,
/// however it ends: a runtime dropped inside another would wait for them, which tokio
/// refuses with a panic.
struct ClientThreads(Option<tokio::runtime::Runtime>);

impl ClientThreads {
    fn handle(&self) -> &Handle {
        self.0
            .as_ref()
            .expect("the clients' runtime runs until dropped")
            .handle()
    }
}

impl Drop for ClientThreads {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The clients, each connected before any write, from the clients' threads.
async fn connect_clients(
    fabric: &Fabric,
    threads: &Handle,
    via: Via,
    clients: usize,
) -> Result<Vec<Client>, Error> {
    let root = &fabric.topology().root().name;
    let mut connected = Vec::with_capacity(clients);
    for _ in 0..clients {
        connected.push(match via {
            Via::Inproc => Client::Inproc(fabric.node(root)?.clone()),
            Via::Grpc => {
                let connect = fabric.connector(root)?;
                let client = threads.spawn(async move {
                    let mut connection = connect.await?;
                    let mut session = connection.session().await?;
                    let entered = session.run("config endpoint-control fctems").await?;
                    if entered.failed {
                        return Err(Error::Bench(format!(
                            "the root's CLI refused the table: {}",
                            entered.output
                        )));
                    }
                    Ok(GrpcClient {
                        _connection: connection,
                        session,
                    })
                });
                Client::Grpc(Box::new(client.await.expect("a bench client panicked")?))
            }
        });
    }
    Ok(connected)
}

/// What the runs of one bench share.
struct Writing<'a> {
    fabric: &'a Fabric,
    members: &'a [(String, Node)],
    /// The clients' threads.
    threads: &'a Handle,
    /// The number of the next write, across runs.
    counter: &'a Arc<AtomicUsize>,
    /// One write per this much time at most, from all clients together.
    every: Option<Duration>,
}

impl Writing<'_> {
    /// One run of `total` writes from every client at once, until each member applied the
    /// last one.
    async fn run(&self, clients: &mut Vec<Client>, total: usize) -> Result<Run, Error> {
        let Writing {
            fabric,
            members,
            threads,
            counter,
            every,
        } = *self;
        let first = counter.load(Ordering::Relaxed);
        let end = first + total;
        let syncs_before = log_syncs(fabric)?;
        let disk_syncs_before = crate::raft::log::writers::syncs_ran();
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let schedule = every.map(|every| Schedule {
            start: started,
            first,
            every,
        });
        let tasks: Vec<_> = clients
            .drain(..)
            .map(|client| {
                let counter = Arc::clone(counter);
                threads.spawn(async move { client.write_until(counter, end, schedule).await })
            })
            .collect();
        let mut writes = Vec::with_capacity(total);
        let mut failure = None;
        for task in tasks {
            let (client, written) = task.await.expect("a bench client panicked");
            clients.push(client);
            match written {
                Ok(done) => writes.extend(done),
                Err(e) => failure = Some(e),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let write_time = started.elapsed();
        let cpu = cpu_seconds() - cpu_before;
        let syncs = log_syncs(fabric)? - syncs_before;
        let disk_syncs = crate::raft::log::writers::syncs_ran() - disk_syncs_before;
        let last = writes.iter().map(|w| w.revision).max().unwrap_or(0);
        for (member, node) in members {
            wait_for_revision(node.config_watch(), last)
                .await
                .map_err(|seen| {
                    Error::Bench(format!(
                        "{member} did not apply revision {last} (it is at {seen})"
                    ))
                })?;
        }
        let count = writes.len().max(1) as f64;
        Ok(Run {
            writes_per_sec: round_to(writes.len() as f64 / write_time.as_secs_f64(), 1),
            fsyncs_per_write: round_to(syncs as f64 / count, 2),
            disk_syncs_per_write: round_to(disk_syncs as f64 / count, 2),
            cpu_s_per_1000_writes: round_to(cpu / count * 1000.0, 3),
            writes,
        })
    }
}

/// When each write of a run with `--rate` is due: write `first + n` at `start + n * every`.
#[derive(Clone, Copy)]
struct Schedule {
    start: Instant,
    first: usize,
    every: Duration,
}

impl Schedule {
    fn due(&self, i: usize) -> Instant {
        let n = u32::try_from(i - self.first).unwrap_or(u32::MAX);
        self.start + self.every.saturating_mul(n)
    }
}

impl Client {
    /// Writes until `counter` reaches `end`, each write once `schedule` has it due;
    /// hands itself back with what it wrote.
    async fn write_until(
        mut self,
        counter: Arc<AtomicUsize>,
        end: usize,
        schedule: Option<Schedule>,
    ) -> (Client, Result<Vec<Write>, Error>) {
        let mut done = Vec::new();
        loop {
            let i = counter.fetch_add(1, Ordering::Relaxed);
            if i >= end {
                return (self, Ok(done));
            }
            if let Some(schedule) = schedule {
                tokio::time::sleep_until(schedule.due(i).into()).await;
            }
            match self.write(i).await {
                Ok(write) => done.push(write),
                Err(e) => return (self, Err(e)),
            }
        }
    }

    /// Write number `i`: entry `ems<i mod 3 + 1>` gets a server and port no write before
    /// it gave that entry.
    async fn write(&mut self, i: usize) -> Result<Write, Error> {
        let key = format!("ems{}", i % ENTRIES + 1);
        let server = format!("127.{}.{}.{}", 101 + i % ENTRIES, (i / 250) % 250, i % 250 + 1);
        let port = (1 + i % 65_000).to_string();
        let submitted = Instant::now();
        let revision = match self {
            Client::Grpc(client) => {
                let lines = [
                    format!("edit {key}"),
                    format!("set server {server}"),
                    format!("set https-port {port}"),
                    "next".to_owned(),
                ];
                let mut revision = None;
                for (line, reply) in lines.iter().zip(client.session.run_pasted(&lines).await?) {
                    if reply.failed {
                        return Err(Error::Bench(format!(
                            "the root refused `{line}`: {}",
                            reply.output.trim()
                        )));
                    }
                    revision = reply.revision.or(revision);
                }
                revision.ok_or_else(|| Error::Bench(format!("write {i} committed nothing")))?
            }
            Client::Inproc(root) => {
                let command = ConfigCommand::SetEntry {
                    table: "endpoint-control fctems".to_owned(),
                    key,
                    values: BTreeMap::from([("server".to_owned(), server), ("https-port".to_owned(), port)]),
                };
                let applied = root
                    .propose(command)
                    .await
                    .map_err(|e| Error::Bench(format!("the root refused a write: {e}")))?;
                applied.revision
            }
        };
        Ok(Write {
            submitted,
            revision,
            commit: submitted.elapsed(),
        })
    }
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
                let applied = first_at_least(timeline, w.revision).ok_or_else(|| {
                    Error::Bench(format!(
                        "{member} has no record of applying revision {}",
                        w.revision
                    ))
                })?;
                applied_everywhere = applied_everywhere.max(applied);
            }
            Ok(applied_everywhere
                .saturating_duration_since(w.submitted)
                .as_micros() as u64)
        })
        .collect()
}

/// A member's configuration revision over time: `(revision, when first seen)`, in order.
type Timeline = Vec<(u64, Instant)>;

/// Records a member's configuration revision each time it advances, until it has
/// recorded the revision `last` names once that is known (every member reached it before
/// `last` is sent, so a recorder that stopped earlier would lose the end of its timeline).
async fn record_revisions(
    mut config: watch::Receiver<Arc<ConfigDb>>,
    mut last: watch::Receiver<Option<u64>>,
) -> Timeline {
    let mut timeline = Timeline::new();
    loop {
        let revision = config.borrow_and_update().revision();
        if timeline.last().is_none_or(|(seen, _)| *seen != revision) {
            timeline.push((revision, Instant::now()));
        }
        if last.borrow_and_update().is_some_and(|last| revision >= last) {
            return timeline;
        }
        tokio::select! {
            changed = config.changed() => if changed.is_err() { return timeline },
            changed = last.changed() => if changed.is_err() { return timeline },
        }
    }
}

/// Waits until `config` reaches `revision`; the revision it stayed at when it does not in
/// [`CONVERGE_TIMEOUT`].
async fn wait_for_revision(mut config: watch::Receiver<Arc<ConfigDb>>, revision: u64) -> Result<(), u64> {
    let reached = tokio::time::timeout(CONVERGE_TIMEOUT, config.wait_for(|db| db.revision() >= revision))
        .await
        .is_ok_and(|changed| changed.is_ok());
    if reached {
        Ok(())
    } else {
        Err(config.borrow().revision())
    }
}

/// When the member had first applied `revision`, if it has.
fn first_at_least(timeline: &Timeline, revision: u64) -> Option<Instant> {
    timeline
        .iter()
        .find(|(applied, _)| *applied >= revision)
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

/// `value` rounded to `digits` decimal places.
fn round_to(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// A line of `/proc/self/status` in kB (`VmRSS:`, `VmHWM:`), in MiB; 0 where /proc is
/// not available.
fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    round_to(kib / 1024.0, 1)
}

/// The CPU time the process has used, user and system, in seconds (`/proc/self/stat`,
/// in Linux's fixed 100 ticks a second); 0 where /proc is not available.
fn cpu_seconds() -> f64 {
    /// Clock ticks a second in `/proc` (Linux's `USER_HZ`).
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces; the fields after its closing parenthesis are
    // state (3), ... utime (14) and stime (15).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / TICKS_PER_SECOND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_spaces_a_runs_writes_evenly_from_its_start() {
        let start = Instant::now();
        let schedule = Schedule {
            start,
            first: 200,
            every: Duration::from_secs(1) / 400,
        };
        assert_eq!(schedule.due(200), start);
        assert_eq!(schedule.due(203), start + Duration::from_micros(7_500));
        assert_eq!(schedule.due(600), start + Duration::from_secs(1));
    }

    #[tokio::test]
    async fn the_clients_threads_stop_when_a_bench_ends_early() {
        // A bench that fails returns its error from inside the fabric's runtime, and drops
        // the clients' runtime there.
        let threads = client_threads().unwrap();
        let answered = threads.handle().spawn(async { 7 }).await.unwrap();
        drop(threads);
        assert_eq!(answered, 7);
    }
}
