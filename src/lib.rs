//! fabricsim: a simulator of the FortiGate Security Fabric.
//!
//! One root FortiGate and any number of members, each a node with its own gRPC endpoint,
//! its own Raft log and a FortiOS CLI. The root owns the FortiClient EMS connector
//! settings (`config endpoint-control fctems`) and replicates them to every member through
//! the Raft log; members serve what they applied and refuse to edit it.
//!
//! # Map of the crate
//!
//! Layers, bottom first: a module uses only modules of the rows below its own, and modules
//! of one row do not use each other. `tests/integration/layers.rs` checks it (see
//! `docs/architecture.md`, "Checking the layers").
//!
//! | layer | module | owns |
//! |---|---|---|
//! | 1 | [`calendar`] | UTC dates without a date crate, formatting, and the [`calendar::Clock`] |
//! | 2 | [`domain`] | facts every layer shares: the FortiOS release a fabric presents ([`domain::Firmware`]), serial and name rules, well-known hostnames, EMS capabilities, contract types |
//! | 3 | [`config`] | the replicated configuration database: schema, `ConfigDb`, `ConfigCommand`, pure `apply` |
//! | 4 | [`topology`] | the cluster-config TOML file: validated types, defaults, problems with file:line |
//! | 5 | [`wire`], [`state_dir`] | what crosses a socket (protobuf, the EMS and FortiCloud HTTP contracts); `.fabricsim/<fabric>/` |
//! | 6 | [`link`] | the fabric's own connections: mutual TLS under the fabric CA, and the faults a link can be given (cut, delay) |
//! | 7 | [`raft`], [`sim`], [`connector`] | openraft over its write-ahead log, redb for snapshots, and TLS connections of its own (tonic for votes and snapshots); the simulated PKI, EMS servers and FortiCloud; the FortiGate side of reaching an EMS |
//! | 8 | [`cli`] | the FortiOS CLI behind its `Backend`: tokenizer, contexts, verb tables, formatting, help, transcripts |
//! | 9 | [`node`] | one FortiGate: Raft membership, its EMS checker, its local tables; no sockets |
//! | 10 | [`rpc`], [`rest`], [`ssh`] | gRPC services (admin, member join, simulator control, Raft transport), their client, the proto conversions; the FortiOS REST API and web GUI over HTTPS; the FortiOS CLI over SSH |
//! | 11 | [`status`] | the fabric's status assembled from node answers |
//! | 12 | [`server`] | a node composed with its listeners (gRPC, HTTPS, SSH), its join loop and the REST API's view of the fabric |
//! | 13 | [`launcher`] | one start-up of a whole fabric: lab, nodes root first, bootstrap, kill/restart, stop |
//! | 14 | [`harness`] | `Fabric`: whole fabrics in a test's process, waits with deadlines |
//! | 15 | [`commands`] | the `fabricsim` command line |
//!
//! # Data flow
//!
//! A CLI line reaches a node's admin service and its [`cli::Session`]. On `next`/`end` the
//! session turns the pending edit into a [`config::ConfigCommand`]; the root proposes it to
//! Raft, every node applies it to its [`config::ConfigDb`] in log order, and the result goes
//! back to the session. [`status`] compares every node's revision and content hash with
//! the root's.

pub mod calendar;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connector;
pub mod domain;
pub mod harness;
pub mod launcher;
pub mod link;
pub mod node;
pub mod raft;
pub mod rest;
pub mod rpc;
pub mod server;
pub mod sim;
pub mod ssh;
pub mod state_dir;
pub mod status;
pub mod topology;
pub mod wire;
