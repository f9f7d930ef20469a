//! fabricsim: a simulator of the FortiGate Security Fabric.
//!
//! One root FortiGate and any number of members, each a node with its own gRPC endpoint,
//! its own Raft log and a FortiOS CLI. The root owns the FortiClient EMS connector
//! settings (`config endpoint-control fctems`) and replicates them to every member through
//! the Raft log; members serve what they applied and refuse to edit it.
//!
//! # Map of the crate
//!
//! | module | owns |
//! |---|---|
//! | [`domain`] | facts every layer shares: serial and name rules, well-known hostnames, EMS capabilities, contract types |
//! | [`topology`] | the cluster-config TOML file: types, defaults, validation with file:line |
//! | [`config`] | the replicated configuration database: schema, `ConfigDb`, `ConfigCommand`, pure `apply` |
//! | [`cli`] | the FortiOS CLI: tokenizer, session contexts, `show`/`get` formatting, help, transcripts |
//! | [`raft`] | openraft's type configuration, the redb log store, the state machine, the tonic network |
//! | [`node`] | one FortiGate: start, join the fabric (members) or lead it (root), its EMS checker, shutdown |
//! | [`connector`] | what a FortiGate does to reach its EMS: resolve, connect from its source, TLS, classify the certificate, ask the EMS |
//! | [`sim`] | the simulated world around the fabric: the PKI and the EMS servers |
//! | [`rpc`] | gRPC services (admin CLI and status, member join, Raft transport) and their client |
//! | [`calendar`] | UTC dates without a date crate: certificate validity, contract expiry, timestamps |
//! | [`status`] | the fabric's status: per-node reports, convergence, table and JSON |
//! | [`state_dir`] | `.fabricsim/<fabric>/`: node data, admin token, listen addresses, locks |
//! | [`harness`] | `Fabric`: whole fabrics in a test's process, kill/restart, waits with deadlines |
//! | [`commands`] | the `fabricsim` command line: `up`, `status`, `exec`, `cli`, `node`, `check`, `bench` |
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
pub mod node;
pub mod raft;
pub mod rpc;
pub mod sim;
pub mod state_dir;
pub mod status;
pub mod topology;
pub mod wire;
