//! The log files of `fabricsim up` and `fabricsim node`: what each node logs goes to
//! `<state>/<node>/fabricsim.log`, everything else (start-up, the simulators, stopping) to
//! `<state>/fabricsim.log`, so a running fabric's log can be read without its terminal.
//!
//! [`layer`] is installed by `main` beside the terminal's log; it writes nothing until a
//! command calls [`write_under`] with its state directory. An event belongs to a node when
//! it happens inside that node's span ([`crate::node::SPAN`], which the launcher wraps
//! around each node's start, and which the node's tasks and openraft's inherit), or else
//! when it carries a `node` field naming it.
//!
//! Files are appended to, one line per event: time (UTC, milliseconds), level, target,
//! message and fields. `FABRICSIM_LOG_FILE` (a `tracing` filter, like `FABRICSIM_LOG`)
//! sets what the files receive; by default fabricsim's own `info` and above.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::state_dir::StateDir;

/// What the log files receive when `FABRICSIM_LOG_FILE` is not set (or does not parse).
/// openraft is left out as on the terminal: it reports every unreachable peer twice a
/// second, which is routine while nodes stop and start.
const DEFAULT_FILTER: &str = "info,openraft=off";

/// Where the files go once a command has said, and the files opened so far (`None`: the
/// process's own file). A std Mutex: nothing awaits while it is held.
#[derive(Default)]
struct Router {
    state: Option<StateDir>,
    files: BTreeMap<Option<String>, File>,
}

fn router() -> &'static Arc<Mutex<Router>> {
    static ROUTER: OnceLock<Arc<Mutex<Router>>> = OnceLock::new();
    ROUTER.get_or_init(Arc::default)
}

/// Starts writing the logs under `state`; returns the two kinds of file, for the user.
pub fn write_under(state: &StateDir) -> String {
    router().lock().expect("log router lock").state = Some(state.clone());
    format!(
        "{} and {}",
        state.log_file(Some("<node>")).display(),
        state.log_file(None).display()
    )
}

/// The file-writing layer, filtered by `FABRICSIM_LOG_FILE`.
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let filter = std::env::var("FABRICSIM_LOG_FILE")
        .ok()
        .and_then(|text| text.parse::<Targets>().ok())
        .unwrap_or_else(|| DEFAULT_FILTER.parse().expect("DEFAULT_FILTER is a valid filter"));
    FileLayer.with_filter(filter)
}

struct FileLayer;

/// The node a span belongs to, kept in the span's extensions.
struct NodeName(String);

impl<S> Layer<S> for FileLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != crate::node::SPAN {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(name), Some(span)) = (fields.node_name, ctx.span(id)) {
            span.extensions_mut().insert(NodeName(name));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut router = router().lock().expect("log router lock");
        let Some(state) = router.state.clone() else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let from_span = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<NodeName>().map(|n| n.0.clone()))
        });
        let node = from_span.or(fields.node_field.clone());
        let meta = event.metadata();
        let line = format!(
            "{} {:>5} {}: {}{}\n",
            crate::calendar::rfc3339_millis(crate::calendar::unix_now_millis()),
            meta.level(),
            meta.target(),
            fields.message,
            fields.rest
        );
        let file = match router.files.entry(node.clone()) {
            std::collections::btree_map::Entry::Occupied(file) => file.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                let path = state.log_file(node.as_deref());
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                match OpenOptions::new().create(true).append(true).open(&path) {
                    Ok(file) => slot.insert(file),
                    Err(_) => return,
                }
            }
        };
        let _ = file.write_all(line.as_bytes());
    }
}

/// An event's or a span's fields: the message, a `node` field, the rest as `key=value`.
#[derive(Default)]
struct Fields {
    message: String,
    /// A node span's `name`.
    node_name: Option<String>,
    /// An event's `node` field.
    node_field: Option<String>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "name" => self.node_name = Some(value.to_owned()),
            "node" => self.node_field = Some(value.to_owned()),
            "message" => self.message = value.to_owned(),
            other => {
                let _ = write!(self.rest, " {other}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "name" | "node" => self.record_str(field, &format!("{value:?}")),
            other => {
                let _ = write!(self.rest, " {other}={value:?}");
            }
        }
    }
}
