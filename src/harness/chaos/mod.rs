//! Seeded fault schedules: `fabricsim chaos` and [`run`].
//!
//! A seed draws a [`Schedule`]: writes from several clients, kills and restarts of nodes
//! (the root too), partitions, isolations, slow links and heals, EMS stops and starts,
//! denials and authorizations on the EMS, and pauses. [`run`] starts the topology's
//! fabric in this process (ephemeral ports, the harness's short Raft timings, an EMS
//! check round every second, no bootstrap), gives each client an fctems entry of its own
//! on the topology's first EMS, plays the schedule, then heals every link, restarts
//! every killed node, lets the clients finish, and checks the invariants:
//!
//! - every node has the root's revision and content hash (the fabric converges);
//! - every acknowledged write is in the final configuration, in order: each client's
//!   entry holds its last acknowledged value, or a value it tried after that (a write
//!   that was not acknowledged may still have committed); and the revision grew by at
//!   least the number of acknowledged writes and at most the number tried;
//! - no node's revision went backwards while it ran (a restarted node starts from what
//!   its disk holds);
//! - nothing panicked;
//! - every node's EMS status matches the EMS: `failed` while it is stopped, otherwise
//!   connected with the device state the EMS holds for that node's serial.
//!
//! The steps are the seed's; their timing against the fabric's own is not, so a failing
//! seed prints its schedule, and running it again replays the same steps.

mod schedule;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use self::schedule::{Schedule, Step};
use super::{Fabric, HarnessError};
use crate::cli::Backend;
use crate::connector::{Connection, DeviceState};
use crate::domain::FctemsKey;
use crate::rpc::client::AdminConnection;
use crate::status::FabricReport;
use crate::topology::Topology;

/// How many clients write: one fctems entry each, and every firmware allows three.
pub const CLIENTS: usize = 3;
/// How long the fabric may take to converge once every fault is healed.
const SETTLE: Duration = Duration::from_secs(60);
/// The longest one write may take, session included, before it counts as not
/// acknowledged (the root bounds its own commit wait well below this).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The field the clients write; every value they write is in its range.
const FIELD: &str = "call-timeout";
/// The table the clients write.
const FCTEMS: &str = "endpoint-control fctems";

/// Panics anywhere in the process since the first run started (see [`count_panics`]).
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts every panic of the process from now on, keeping the panic's usual report.
fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// What a passing run did.
#[derive(Clone, Debug)]
pub struct ChaosReport {
    pub seed: u64,
    pub steps: usize,
    pub acknowledged: usize,
    pub tried: usize,
    pub elapsed: Duration,
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}: {} steps, {} of {} writes acknowledged, invariants hold ({} ms)",
            self.seed,
            self.steps,
            self.acknowledged,
            self.tried,
            self.elapsed.as_millis()
        )
    }
}

/// A run whose invariants did not hold, or that could not run: the schedule to replay and
/// what went wrong.
#[derive(Debug)]
pub struct ChaosFailure {
    pub schedule: Schedule,
    pub problems: Vec<String>,
}

impl fmt::Display for ChaosFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {} failed:", self.schedule.seed)?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        write!(f, "{}", self.schedule)?;
        write!(
            f,
            "replay: fabricsim chaos --seed {} --steps {}",
            self.schedule.seed,
            self.schedule.steps.len()
        )
    }
}

impl std::error::Error for ChaosFailure {}

/// One write a client tried, and whether the root acknowledged it.
#[derive(Clone, Copy, Debug)]
struct Attempt {
    value: u64,
    acknowledged: bool,
}

/// The `i`-th value a client writes: consecutive values differ, all in `FIELD`'s range.
fn value(i: u64) -> u64 {
    i % 180 + 1
}

/// What the clients' entries name as their server: the EMS's address, or for a
/// multitenant EMS the name of its Default site.
fn server_name(ems: &crate::topology::EmsSpec) -> String {
    if ems.sites.is_empty() {
        ems.listen.ip().to_string()
    } else {
        format!("default.{}", ems.hostname)
    }
}

/// The topology as a run uses it: see the module docs.
pub fn chaos_topology(topology: &Topology) -> Topology {
    let mut topology = topology.clone();
    topology.raft.heartbeat_ms = 100;
    topology.raft.election_timeout_min_ms = 400;
    topology.raft.election_timeout_max_ms = 800;
    topology.checks.interval_secs = 1;
    topology.bootstrap.clear();
    for ems in &mut topology.ems {
        ems.listen.set_port(0);
        // A multitenant EMS serves its Default site under `default.<hostname>`.
        let name = server_name(ems);
        if name.parse::<std::net::IpAddr>().is_err() {
            topology.dns.insert(name, ems.listen.ip());
        }
    }
    if let Some(cloud) = &mut topology.forticloud {
        cloud.listen.set_port(0);
        cloud.ems_listen.set_port(0);
    }
    topology
}

/// Draws the schedule of `seed` for `topology`, plays it and checks the invariants.
pub async fn run(topology: &Topology, seed: u64, steps: usize) -> Result<ChaosReport, ChaosFailure> {
    count_panics();
    let topology = chaos_topology(topology);
    let schedule = Schedule::draw(seed, steps, CLIENTS, &topology);
    let panics = PANICS.load(Ordering::SeqCst);
    let started = Instant::now();
    let outcome = play(&topology, &schedule).await;
    let mut problems = match &outcome {
        Ok(_) => Vec::new(),
        Err(problems) => problems.clone(),
    };
    let panicked = PANICS.load(Ordering::SeqCst) - panics;
    if panicked > 0 {
        problems.push(format!("{panicked} panics in the process during the run"));
    }
    match outcome {
        Ok((acknowledged, tried)) if problems.is_empty() => Ok(ChaosReport {
            seed,
            steps,
            acknowledged,
            tried,
            elapsed: started.elapsed(),
        }),
        _ => Err(ChaosFailure { schedule, problems }),
    }
}

/// Plays `schedule` on a new fabric of `topology`; answers the acknowledged and tried
/// writes, or every invariant that failed.
async fn play(topology: &Topology, schedule: &Schedule) -> Result<(usize, usize), Vec<String>> {
    let fail = |e: HarnessError| vec![e.to_string()];
    let mut fabric = Fabric::start(topology.clone()).await.map_err(fail)?;
    let result = play_on(&mut fabric, schedule).await;
    fabric.stop().await;
    result
}

async fn play_on(fabric: &mut Fabric, schedule: &Schedule) -> Result<(usize, usize), Vec<String>> {
    let fail = |e: HarnessError| vec![e.to_string()];
    fabric.wait_converged(SETTLE).await.map_err(fail)?;
    let entries = create_entries(fabric).await?;
    let base = fabric.status().await.revision.unwrap_or(0);

    let mut queues = Vec::new();
    let mut clients = Vec::new();
    for entry in &entries {
        let (tx, rx) = mpsc::unbounded_channel();
        let connection = fabric
            .connect(&fabric.topology().root().name)
            .await
            .map_err(fail)?;
        clients.push(tokio::spawn(client(connection, entry.clone(), rx)));
        queues.push(tx);
    }
    let watcher = Watcher::start(fabric);

    let mut next_value = vec![1_u64; entries.len()];
    let mut problems = Vec::new();
    for step in &schedule.steps {
        if let Err(e) = take(fabric, step, &queues, &mut next_value, &watcher).await {
            problems.push(format!("step {step}: {e}"));
        }
    }
    heal_everything(fabric, schedule, &watcher)
        .await
        .unwrap_or_else(|e| problems.push(e));
    drop(queues);
    let mut attempts = Vec::new();
    for client in clients {
        attempts.push(client.await.unwrap_or_default());
    }
    match fabric.wait_converged(SETTLE).await {
        Ok(status) => problems.extend(check_writes(fabric, &status, &entries, &attempts, base)),
        Err(e) => problems.push(e.to_string()),
    }
    problems.extend(watcher.stop().await);
    problems.extend(check_ems(fabric).await);
    let acknowledged = attempts.iter().flatten().filter(|a| a.acknowledged).count();
    let tried = attempts.iter().map(Vec::len).sum();
    if problems.is_empty() {
        Ok((acknowledged, tried))
    } else {
        Err(problems)
    }
}

/// One client's fctems entry: the key its `edit` takes.
#[derive(Clone, Debug)]
struct Entry {
    key: String,
}

/// Creates one entry per client on the first EMS, each with its first value.
async fn create_entries(fabric: &Fabric) -> Result<Vec<Entry>, Vec<String>> {
    let (server, port) = fabric
        .lab()
        .servers()
        .next()
        .map(|server| (server_name(server.spec()), server.addr().port()))
        .ok_or_else(|| vec!["the topology has no [[ems]]: chaos needs one to check".to_owned()])?;
    let by_id = matches!(
        fabric.topology().fabric.firmware.fctems_key(),
        FctemsKey::EmsId { .. }
    );
    let mut entries = Vec::new();
    for client in 0..CLIENTS {
        let name = format!("chaos{client}");
        let key = if by_id {
            (client + 1).to_string()
        } else {
            name.clone()
        };
        let mut lines = vec![format!("config {FCTEMS}"), format!("edit {key}")];
        if by_id {
            lines.extend([format!("set name {name}"), "set status enable".to_owned()]);
        }
        lines.extend([
            format!("set server {server}"),
            format!("set https-port {port}"),
            format!("set {FIELD} {}", value(0)),
            "end".to_owned(),
        ]);
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let root = fabric.topology().root().name.clone();
        let out = fabric
            .exec(&root, &lines)
            .await
            .map_err(|e| vec![e.to_string()])?;
        if out.failed {
            return Err(vec![format!("creating entry {key} failed:\n{}", out.output)]);
        }
        entries.push(Entry { key });
    }
    Ok(entries)
}

/// A client: writes each value it is given to its entry on the root, one at a time.
async fn client(
    mut connection: AdminConnection,
    entry: Entry,
    mut values: mpsc::UnboundedReceiver<u64>,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    while let Some(value) = values.recv().await {
        let lines = [
            format!("config {FCTEMS}"),
            format!("edit {}", entry.key),
            format!("set {FIELD} {value}"),
            "end".to_owned(),
        ];
        let write = async {
            let mut session = connection.session().await?;
            session.script(&lines, "y").await
        };
        let acknowledged = matches!(
            tokio::time::timeout(WRITE_TIMEOUT, write).await,
            Ok(Ok(reply)) if !reply.failed
        );
        attempts.push(Attempt { value, acknowledged });
    }
    attempts
}

/// Takes one step.
async fn take(
    fabric: &mut Fabric,
    step: &Step,
    queues: &[mpsc::UnboundedSender<u64>],
    next_value: &mut [u64],
    watcher: &Watcher,
) -> Result<(), String> {
    let ems = || {
        fabric
            .lab()
            .servers()
            .next()
            .ok_or("no EMS")
            .map_err(str::to_owned)
    };
    match step {
        Step::Write(client) => {
            let client = *client % queues.len();
            let _ = queues[client].send(value(next_value[client]));
            next_value[client] += 1;
        }
        Step::Pause(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        Step::Kill(node) => fabric.kill(node).await.map_err(|e| e.to_string())?,
        Step::Restart(node) => {
            watcher.restarted(node);
            let restarted = fabric.restart(node).await.map_err(|e| e.to_string());
            watcher.restarted(node);
            restarted?;
        }
        Step::Partition(a, b) => fabric.partition(a, b).map_err(|e| e.to_string())?,
        Step::Isolate(node) => fabric.isolate(node).map_err(|e| e.to_string())?,
        Step::Delay(a, b, ms) => fabric
            .delay(a, b, Duration::from_millis(*ms))
            .map_err(|e| e.to_string())?,
        Step::Heal => fabric.heal().map_err(|e| e.to_string())?,
        Step::EmsStop => ems()?.stop().await,
        Step::EmsStart => ems()?.start_again().await.map_err(|e| e.to_string())?,
        Step::Deny(serial) => ems()?.deny(serial),
        Step::Authorize(serial) => ems()?.authorize(serial),
    }
    Ok(())
}

/// Heals every link and restarts every node the schedule left down.
async fn heal_everything(fabric: &mut Fabric, schedule: &Schedule, watcher: &Watcher) -> Result<(), String> {
    fabric.heal().map_err(|e| e.to_string())?;
    let mut down = BTreeSet::new();
    for step in &schedule.steps {
        match step {
            Step::Kill(node) => down.insert(node.clone()),
            Step::Restart(node) => down.remove(node),
            _ => false,
        };
    }
    for node in down {
        watcher.restarted(&node);
        let restarted = fabric.restart(&node).await;
        watcher.restarted(&node);
        restarted.map_err(|e| format!("restarting {node} at the end: {e}"))?;
    }
    Ok(())
}

/// The write invariants (see the module docs), on the converged configuration.
fn check_writes(
    fabric: &Fabric,
    status: &FabricReport,
    entries: &[Entry],
    attempts: &[Vec<Attempt>],
    base: u64,
) -> Vec<String> {
    let mut problems = Vec::new();
    let root = &fabric.topology().root().name;
    let Ok(node) = fabric.node(root) else {
        return vec![format!("{root} is not running at the end")];
    };
    let db = Backend::config(node);
    for (entry, attempts) in entries.iter().zip(attempts) {
        let found: u64 = db.value(FCTEMS, &entry.key, FIELD).parse().unwrap_or(0);
        let last_ack = attempts.iter().rposition(|a| a.acknowledged);
        let mut allowed: Vec<u64> = match last_ack {
            Some(i) => attempts[i..].iter().map(|a| a.value).collect(),
            None => std::iter::once(value(0))
                .chain(attempts.iter().map(|a| a.value))
                .collect(),
        };
        allowed.dedup();
        if !allowed.contains(&found) {
            problems.push(format!(
                "entry {}: {FIELD} is {found}, but the last acknowledged write (or a later one) set one of {allowed:?}",
                entry.key
            ));
        }
    }
    let acknowledged = attempts.iter().flatten().filter(|a| a.acknowledged).count() as u64;
    let tried = attempts.iter().map(Vec::len).sum::<usize>() as u64;
    let grew = status.revision.unwrap_or(0).saturating_sub(base);
    if grew < acknowledged || grew > tried {
        problems.push(format!(
            "the revision grew by {grew}, but {acknowledged} writes were acknowledged and {tried} tried"
        ));
    }
    problems
}

/// Waits until every node's EMS status matches the EMS (see the module docs).
async fn check_ems(fabric: &Fabric) -> Vec<String> {
    let Some(ems) = fabric.lab().servers().next() else {
        return Vec::new();
    };
    let matches = |status: &FabricReport| {
        let running = ems.is_running();
        let devices: BTreeMap<String, DeviceState> = ems
            .devices()
            .into_iter()
            .map(|d| (d.serial, device_state(d.state)))
            .collect();
        status.nodes.iter().all(|node| {
            node.ems.iter().filter(|e| e.name.starts_with("chaos")).all(|e| {
                if !running {
                    return e.connection == Connection::Failed;
                }
                e.connection == Connection::Connected
                    && Some(&e.device) == devices.get(&node.serial).or(Some(&DeviceState::Pending))
            })
        })
    };
    match fabric
        .wait_for("every EMS status matches the EMS", SETTLE, matches)
        .await
    {
        Ok(_) => Vec::new(),
        Err(e) => vec![e.to_string()],
    }
}

/// The EMS's record as the FortiGate reports it.
fn device_state(state: crate::wire::ems::DeviceState) -> DeviceState {
    match state {
        crate::wire::ems::DeviceState::Authorized => DeviceState::Authorized,
        crate::wire::ems::DeviceState::Pending => DeviceState::Pending,
        crate::wire::ems::DeviceState::Denied => DeviceState::Denied,
    }
}

/// Watches every node's revision while the schedule plays.
struct Watcher {
    stop: Arc<AtomicBool>,
    restarted: Arc<Mutex<BTreeSet<String>>>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Watcher {
    fn start(fabric: &Fabric) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let restarted = Arc::new(Mutex::new(BTreeSet::new()));
        let topology = fabric.topology().clone();
        let addrs = fabric.addrs();
        let operator = fabric.fabric.operator().clone();
        let task = tokio::spawn({
            let (stop, restarted) = (stop.clone(), restarted.clone());
            async move {
                let mut seen: BTreeMap<String, u64> = BTreeMap::new();
                let mut problems = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    for name in std::mem::take(&mut *restarted.lock().expect("restarted lock")) {
                        seen.remove(&name);
                    }
                    let status = crate::status::collect(&topology, &addrs, &operator).await;
                    for node in status.nodes {
                        let Some(revision) = node.revision else { continue };
                        let last = seen.entry(node.name.clone()).or_insert(revision);
                        if revision < *last {
                            problems.push(format!("{}: revision {revision} after {last}", node.name));
                        }
                        *last = revision.max(*last);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                problems
            }
        });
        Watcher {
            stop,
            restarted,
            task,
        }
    }

    /// Forgets what `node` showed before: a restarted node starts from its disk.
    fn restarted(&self, node: &str) {
        self.restarted
            .lock()
            .expect("restarted lock")
            .insert(node.to_owned());
    }

    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.task
            .await
            .unwrap_or_else(|e| vec![format!("the revision watcher failed: {e}")])
    }
}
