use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use toml::de::{DeTable, DeValue};

use super::file::*;
use super::names::*;
use super::reader::*;
use super::suggest::*;
use super::*;
use crate::domain::*;

mod ems;
mod forticloud;
mod props;

const DEFAULT_TOML: &str = include_str!("../../../cluster-configs/default.toml");
const TEN_NODES_TOML: &str = include_str!("../../../cluster-configs/ten-nodes.toml");
const EMS_UNTRUSTED_TOML: &str = include_str!("../../../cluster-configs/ems-untrusted.toml");
const EMS_UNAUTHORIZED_TOML: &str = include_str!("../../../cluster-configs/ems-unauthorized.toml");
const PENDING_MEMBER_TOML: &str = include_str!("../../../cluster-configs/pending-member.toml");

fn parse(text: &str) -> Result<Topology, TopologyError> {
    Topology::parse(text, Path::new(MEMORY_SOURCE))
}

fn problems(text: &str) -> Vec<Problem> {
    match parse(text) {
        Ok(topology) => panic!("expected problems, got {topology:#?}"),
        Err(TopologyError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("expected Invalid, got {other:?}"),
    }
}

/// Asserts that exactly the expected problems were found: one per `(line, text)`, where
/// `text` is part of the message, in line order.
fn assert_problems(text: &str, expected: &[(usize, &str)]) {
    let found = problems(text);
    let listing = found
        .iter()
        .map(|p| format!("  {}:{}: {} (fix: {})", p.line, p.column, p.message, p.fix))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        found.len(),
        expected.len(),
        "wrong number of problems:\n{listing}"
    );
    for (problem, (line, part)) in found.iter().zip(expected) {
        assert_eq!(problem.line, *line, "wrong line for {part:?}:\n{listing}");
        assert!(
            problem.message.contains(part),
            "expected {part:?} on line {line}:\n{listing}"
        );
    }
}

/// A valid two-node fabric; tests append to it or replace parts of it.
const SMALL: &str = r#"[fabric]
name = "lab"

[[node]]
name = "root"
serial = "FGVM01TM22000001"
role = "root"
listen = "127.0.0.11:8013"

[[node]]
name = "branch1"
serial = "FGVM01TM22000002"
listen = "127.0.0.12:8013"
"#;

#[test]
fn default_topology_parses() {
    let topology = parse(DEFAULT_TOML).expect("default.toml is valid");
    assert_eq!(topology.fabric.name, "default");
    assert_eq!(topology.fabric.voters, 5);
    assert_eq!(topology.raft, RaftSettings::default());
    let names: Vec<&str> = topology.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["root", "branch1", "branch2"]);
    let root = topology.root();
    assert_eq!(root.name, "root");
    assert_eq!(root.id, 1);
    assert_eq!(root.serial, "FGVM01TM22000001");
    assert_eq!(root.listen, "127.0.0.11:8013".parse().unwrap());
    assert_eq!(root.hostname, "FGT-root");
    let branch2 = topology.node("branch2").expect("branch2 exists");
    assert_eq!(branch2.id, 3);
    assert_eq!(branch2.role, Role::Member);
    assert_eq!(branch2.serial, "FGVM01TM22000003");
    assert_eq!(branch2.listen, "127.0.0.13:8013".parse().unwrap());
    assert_eq!(branch2.hostname, "FGT-branch2");
    assert_eq!(branch2.upstream, None);
    let members: Vec<&str> = topology.members().map(|n| n.name.as_str()).collect();
    assert_eq!(members, ["branch1", "branch2"]);
}

#[test]
fn ten_node_topology_parses_as_a_tree() {
    let topology = parse(TEN_NODES_TOML).expect("ten-nodes.toml is valid");
    assert_eq!(topology.fabric.name, "ten");
    assert_eq!(topology.fabric.voters, 5);
    assert_eq!(topology.nodes.len(), 10);
    assert_eq!(topology.members().count(), 9);
    for (index, node) in topology.nodes.iter().enumerate() {
        assert_eq!(node.id, index as u64 + 1);
        let expected = SocketAddr::from(([127, 0, 0, 21 + index as u8], 8013));
        assert_eq!(node.listen, expected, "{}", node.name);
    }
    // Some member connects through another member, and every chain ends at the root.
    let through_members = topology
        .members()
        .filter(|m| m.upstream.as_deref().is_some_and(|up| up != "root"))
        .count();
    assert!(through_members >= 2, "the example should be a tree");
    for member in topology.members() {
        let mut at = member;
        for _ in 0..topology.nodes.len() {
            match &at.upstream {
                Some(up) => at = topology.node(up).expect("upstream exists"),
                None => break,
            }
        }
        assert!(
            at.role == Role::Root || at.upstream.is_none(),
            "{} does not reach the root",
            member.name
        );
    }
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let text = r#"
[fabric]
name = "mini"

[[node]]
name = "a"
serial = "FGVM01TM22000001"
role = "root"
listen = "127.0.0.1:0"

[[node]]
name = "b"
serial = "FGVM01TM22000002"
listen = "127.0.0.2:0"
id = 10
hostname = "edge"

[[node]]
name = "c"
serial = "FGVM01TM22000003"
listen = "127.0.0.3:0"
upstream = "b"
"#;
    let topology = parse(text).expect("valid");
    assert_eq!(topology.source, Path::new(MEMORY_SOURCE));
    assert_eq!(topology.fabric.voters, DEFAULT_VOTERS);
    assert_eq!(topology.raft, RaftSettings::default());
    let ids: Vec<u64> = topology.nodes.iter().map(|n| n.id).collect();
    assert_eq!(ids, [1, 10, 3], "ids by position unless written");
    let hostnames: Vec<&str> = topology.nodes.iter().map(|n| n.hostname.as_str()).collect();
    assert_eq!(hostnames, ["FGT-a", "edge", "FGT-c"]);
    assert_eq!(topology.nodes[1].role, Role::Member, "role defaults to member");
    assert_eq!(topology.nodes[2].upstream.as_deref(), Some("b"));
    assert_eq!(topology.nodes[0].listen.port(), 0, "port 0 is kept");
}

#[test]
fn raft_keys_override_defaults_one_by_one() {
    let text = format!("{SMALL}\n[raft]\nheartbeat_ms = 100\nkeep_logs = 7\n");
    let raft = parse(&text).expect("valid").raft;
    assert_eq!(
        raft,
        RaftSettings {
            heartbeat_ms: 100,
            keep_logs: 7,
            ..RaftSettings::default()
        }
    );
}

#[test]
fn one_problem_is_counted_in_the_singular() {
    let text = SMALL.replace("role = \"root\"\n", "");
    let error = parse(&text).unwrap_err().to_string();
    assert!(error.ends_with("\n1 problem in <memory>"), "{error}");
    assert!(
        error.contains("<memory>:4:1: no node has role \"root\""),
        "{error}"
    );
    assert!(error.contains("e.g. \"root\" (line 4)"), "{error}");
}

#[test]
fn syntax_errors_carry_their_position() {
    let text = "[fabric\nname = \"x\"\n[[node]]\nname = \"a\" \"b\"\n";
    let found = problems(text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!((found[0].line, found[0].column), (1, 8));
    assert_eq!((found[1].line, found[1].column), (4, 12));
    assert!(found.iter().all(|p| p.fix == "check the TOML syntax near here"));
}

#[test]
fn unknown_keys_suggest_the_closest_or_list_the_valid_ones() {
    let text = SMALL.replace("listen = \"127.0.0.12", "lisen = \"127.0.0.12")
        + "wibble = 1\n\n[raft]\nheartbeat = 100\n\n[fabrik]\n";
    let found = problems(&text);
    let fix_for = |part: &str| {
        found
            .iter()
            .find(|p| p.message.contains(part))
            .map(|p| p.fix.clone())
            .unwrap_or_else(|| panic!("no problem about {part}: {found:#?}"))
    };
    assert_eq!(fix_for("\"lisen\""), "did you mean \"listen\"?");
    assert_eq!(
        fix_for("\"wibble\""),
        "valid keys in [[node]]: name, serial, role, listen, hostname, id, upstream, https, ssh, authorized"
    );
    assert_eq!(fix_for("\"heartbeat\""), "did you mean \"heartbeat_ms\"?");
    assert_eq!(fix_for("\"fabrik\" at the top level"), "did you mean [fabric]?");
}

#[test]
fn a_key_at_the_top_level_is_pointed_to_its_table() {
    let text = format!("voters = 3\n{SMALL}");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].line, 1);
    assert_eq!(found[0].message, "unknown key \"voters\" at the top level");
    assert!(found[0].fix.contains("belongs in [fabric]"), "{found:#?}");
}

#[test]
fn missing_tables_and_wrong_shapes_are_explained() {
    assert_problems("", &[(1, "missing table [fabric]"), (1, "defines no [[node]]")]);
    assert_problems(
        "fabric = \"x\"\nnode = 3\n",
        &[
            (1, "\"fabric\" must be a table, found a string"),
            (2, "\"node\" must be an array of tables, found an integer"),
        ],
    );
    assert_problems(
        "[fabric]\nname = \"x\"\n[node]\nname = \"a\"\n",
        &[(3, "\"node\" must be an array of tables, found a table")],
    );
}

#[test]
fn wrong_types_are_each_reported_with_an_example() {
    let text = SMALL
        .replace("name = \"lab\"", "name = \"lab\"\nvoters = \"five\"")
        .replace("role = \"root\"", "role = \"boss\"\nid = -1")
        + "hostname = 7\n";
    let found = problems(&text);
    let summary: Vec<(usize, &str)> = found.iter().map(|p| (p.line, p.fix.as_str())).collect();
    assert_eq!(
        summary,
        [
            (3, "write a number from 1 to 15, e.g. voters = 5"),
            (8, "write it like role = \"member\""),
            (9, "write a number from 1 to 65535, e.g. id = 2"),
            (16, "write it like hostname = \"FGT-branch1\""),
        ],
        "{found:#?}"
    );
    // The root's role was rejected, so "no root" would only repeat that problem.
    assert!(!found.iter().any(|p| p.message.contains("no node has role")));
}

#[test]
fn duplicate_ids_name_both_lines_and_port_zero_may_repeat() {
    let text = SMALL.replace("127.0.0.11:8013", "127.0.0.12:0").replace(
        "listen = \"127.0.0.12:8013\"",
        "listen = \"127.0.0.12:0\"\nid = 1",
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].line, 14);
    assert_eq!(
        found[0].message,
        "two nodes have id 1: \"root\" (line 4, by position) and \"branch1\" (line 14)"
    );
    assert!(found[0].fix.contains("set id = 2 on \"branch1\""), "{found:#?}");
}

#[test]
fn duplicate_listen_addresses_get_a_free_one_suggested() {
    let text = SMALL.replace("127.0.0.12:8013", "127.0.0.11:8013");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].message,
        "two nodes listen on 127.0.0.11:8013: \"root\" (line 8) and \"branch1\" (line 13)"
    );
    assert!(
        found[0].fix.contains("listen = \"127.0.0.12:8013\""),
        "{found:#?}"
    );
}

#[test]
fn upstream_chains_through_members_are_accepted() {
    let text = format!(
        "{SMALL}upstream = \"root\"\n\n[[node]]\nname = \"shop\"\nserial = \"FGVM01TM22000003\"\n\
         listen = \"127.0.0.13:8013\"\nupstream = \"branch1\"\n"
    );
    let topology = parse(&text).expect("valid");
    assert_eq!(
        topology.node("shop").unwrap().upstream.as_deref(),
        Some("branch1")
    );
}

#[test]
fn an_unknown_upstream_without_a_close_name_suggests_the_root() {
    let text = format!("{SMALL}upstream = \"warehouse\"\n");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].line, 14);
    assert!(found[0].message.starts_with("unreachable upstream \"warehouse\""));
    assert!(found[0].fix.contains("upstream = \"root\""), "{found:#?}");
}

#[test]
fn load_reads_a_file_and_reports_one_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fabric.toml");
    std::fs::write(&path, SMALL).unwrap();
    let topology = Topology::load(&path).expect("valid");
    assert_eq!(topology.source, path);
    assert_eq!(topology.nodes.len(), 2);

    let missing = dir.path().join("absent.toml");
    match Topology::load(&missing) {
        Err(TopologyError::Read { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn schema_examples_are_values_the_tables_accept() {
    for section in SECTIONS {
        let mut text = format!("{}\n", section.header());
        for key in section.keys {
            text.push_str(&format!("{} = {}\n", key.name, key.example));
        }
        let mut reader = Reader::new(&text);
        let document = DeTable::parse(&text).unwrap().into_inner();
        match section.key {
            "fabric" => drop(reader.one::<FabricTable>(&document, section)),
            "raft" => drop(reader.one::<RaftTable>(&document, section)),
            "node" => drop(reader.many::<NodeTable>(&document, section)),
            "ems" => drop(reader.many::<EmsTable>(&document, section)),
            "forticloud" => drop(reader.forticloud(&document)),
            "dns" => drop(reader.dns(&document)),
            "checks" => drop(reader.one::<ChecksTable>(&document, section)),
            "bootstrap" => drop(reader.one::<BootstrapTable>(&document, section)),
            "admin" => drop(reader.one::<AdminTable>(&document, section)),
            "api_user" => drop(reader.many::<ApiUserTable>(&document, section)),
            other => panic!("section {other} has no test"),
        }
        assert!(reader.problems.is_empty(), "{text}{:#?}", reader.problems);
    }
    for section in NESTED_SECTIONS {
        let mut text = format!("{}\n", section.header());
        for key in section.keys {
            text.push_str(&format!("{} = {}\n", key.name, key.example));
        }
        let mut reader = Reader::new(&text);
        let document = DeTable::parse(&text).unwrap().into_inner();
        let Some(DeValue::Table(parent)) = section
            .parent
            .and_then(|parent| document.get(parent))
            .map(|value| value.get_ref())
        else {
            panic!("{} has no parent table", section.header());
        };
        match section.key {
            "contract" => assert_eq!(
                reader.many::<ContractTable>(parent, section).map(|r| r.len()),
                Some(1)
            ),
            other => panic!("section {other} has no test"),
        }
        assert!(reader.problems.is_empty(), "{text}{:#?}", reader.problems);
    }
}

/// [`SMALL`] and one valid EMS on lines 15 to 19; `extra` starts on line 20.
fn with_ems(extra: &str) -> String {
    format!(
        "{SMALL}\n[[ems]]\nname = \"ems1\"\nserial = \"FCTEMS8822001234\"\nhostname = \"ems.lab.example\"\n\
         listen = \"127.0.0.31:8443\"\n{extra}"
    )
}

/// The fix of the one problem whose message contains `part`.
fn fix_for(found: &[Problem], part: &str) -> String {
    let matching: Vec<&Problem> = found.iter().filter(|p| p.message.contains(part)).collect();
    assert_eq!(matching.len(), 1, "one problem about {part:?}: {found:#?}");
    matching[0].fix.clone()
}

fn all_capabilities() -> Vec<String> {
    EMS_CAPABILITIES.iter().map(|c| c.to_string()).collect()
}

#[test]
fn firmware_defaults_to_the_seed_release_and_names_the_accepted_ones() {
    assert_eq!(parse(SMALL).unwrap().fabric.firmware, Firmware::default());
    let later = SMALL.replace("name = \"lab\"", "name = \"lab\"\nfirmware = \"7.0.12\"");
    assert_eq!(
        parse(&later).unwrap().fabric.firmware.fctems_key(),
        FctemsKey::EmsId { max_id: 5 }
    );
    let unknown = SMALL.replace("name = \"lab\"", "name = \"lab\"\nfirmware = \"7.0.9\"");
    assert_problems(
        &unknown,
        &[(3, "firmware = \"7.0.9\": FortiOS 7.0.9 is not simulated")],
    );
    let found = problems(&unknown);
    assert!(
        found[0]
            .fix
            .contains("\"7.0.5\", \"7.0.7\", \"7.0.12\", \"7.2.8\""),
        "{found:#?}"
    );
    let malformed = SMALL.replace("name = \"lab\"", "name = \"lab\"\nfirmware = \"seven\"");
    assert_problems(
        &malformed,
        &[(3, "is not a FortiOS version written MAJOR.MINOR.PATCH")],
    );
    let typed = SMALL.replace("name = \"lab\"", "name = \"lab\"\nfirmware = 7");
    assert_eq!(problems(&typed)[0].fix, "write it like firmware = \"7.0.12\"");
}

#[test]
fn https_and_ssh_default_to_the_listen_ip_and_collide_with_no_other_address() {
    let topology = parse(SMALL).unwrap();
    let root = topology.root();
    assert_eq!(root.https, SocketAddr::new(root.listen.ip(), DEFAULT_HTTPS_PORT));
    assert_eq!(root.ssh, SocketAddr::new(root.listen.ip(), DEFAULT_SSH_PORT));

    let text = SMALL.replacen(
        "listen = \"127.0.0.12:8013\"",
        "listen = \"127.0.0.12:8013\"\nhttps = \"127.0.0.11:10443\"\nssh = \"127.0.0.12:8013\"",
        1,
    );
    let found = problems(&text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0]
            .message
            .starts_with("the https address of \"branch1\" listens on 127.0.0.11:10443"),
        "{found:#?}"
    );
    assert!(
        found[0]
            .message
            .contains("the https address of \"root\" (by default, from its listen)"),
        "{found:#?}"
    );
    assert!(
        found[1].message.starts_with("the ssh address of \"branch1\""),
        "{found:#?}"
    );
    assert!(found[1].fix.contains("ssh = \""), "{found:#?}");

    let text = SMALL.replacen(
        "listen = \"127.0.0.12:8013\"",
        "listen = \"127.0.0.12:8013\"\nhttps = \"10.0.0.1:443\"",
        1,
    );
    assert_problems(&text, &[(14, "https \"10.0.0.1:443\" is not a loopback address")]);
}

#[test]
fn accounts_have_defaults_and_their_rules() {
    let topology = parse(SMALL).unwrap();
    assert_eq!(topology.admin, AdminSpec::default());
    assert!(topology.api_users.is_empty());

    let text = format!(
        "{SMALL}\n[admin]\npassword = \"pw\"\n\n[[api_user]]\nname = \"auto\"\nkey = \"abcdefghij0123456789\"\n\n\
         [[api_user]]\nname = \"auto\"\nkey = \"short\"\n"
    );
    let base = SMALL.lines().count();
    assert_problems(
        &text,
        &[
            (base + 10, "two [[api_user]] are named \"auto\""),
            (base + 11, "API key of 5 characters"),
        ],
    );

    let text = format!("{SMALL}\n[[api_user]]\nname = \"auto\"\nkey = \"abcdefghij0123456789\"\n");
    let topology = parse(&text).unwrap();
    assert_eq!(topology.api_users[0].accprofile, DEFAULT_ACCPROFILE);
    assert_eq!(topology.api_users[0].key.as_deref(), Some("abcdefghij0123456789"));
}

#[test]
fn members_are_pre_authorized_unless_the_file_says_otherwise() {
    let topology = parse(SMALL).expect("valid");
    assert!(topology.nodes.iter().all(|node| node.authorized));
    assert!(
        parse(DEFAULT_TOML)
            .unwrap()
            .nodes
            .iter()
            .all(|node| node.authorized)
    );
    let example = parse(PENDING_MEMBER_TOML).expect("pending-member.toml is valid");
    let authorized: Vec<bool> = example.nodes.iter().map(|node| node.authorized).collect();
    assert_eq!(authorized, [true, true, false]);
    let pending = format!("{SMALL}authorized = false\n");
    let topology = parse(&pending).expect("valid");
    assert!(topology.root().authorized);
    assert!(!topology.nodes[1].authorized);
    let root_pending = SMALL.replace("role = \"root\"\n", "role = \"root\"\nauthorized = false\n");
    assert_problems(&root_pending, &[(8, "cannot wait for authorization")]);
    let found = problems(&root_pending);
    assert!(found[0].fix.contains("remove `authorized = false` from the root"));
    assert_problems(&format!("{SMALL}authorized = \"no\"\n"), &[(14, "authorized")]);
}

#[test]
fn every_number_is_held_to_its_range_with_file_line_and_column() {
    let text = SMALL.replace("name = \"lab\"", "name = \"lab\"\nvoters = 99999999999999999999")
        + "id = -1\n\n[raft]\nheartbeat_ms = 0\nelection_timeout_max_ms = 1.5\nkeep_logs = 1_000_001\n";
    let found = problems(&text);
    let summary: Vec<(usize, usize, &str, &str)> = found
        .iter()
        .map(|p| (p.line, p.column, p.message.as_str(), p.fix.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                3,
                10,
                "voters = 99999999999999999999 in [fabric] is out of range (1 to 15)",
                "write a number from 1 to 15, e.g. voters = 5"
            ),
            (
                15,
                6,
                "id = -1 in [[node]] is out of range (1 to 65535)",
                "write a number from 1 to 65535, e.g. id = 2"
            ),
            (
                18,
                16,
                "heartbeat_ms = 0 in [raft] is out of range (1 to 30000)",
                "write a number from 1 to 30000, e.g. heartbeat_ms = 250"
            ),
            (
                19,
                27,
                "wrong value for \"election_timeout_max_ms\" in [raft]: found a float, expected a number from 1 to 120000",
                "write a number from 1 to 120000, e.g. election_timeout_max_ms = 2000"
            ),
            (
                20,
                13,
                "keep_logs = 1_000_001 in [raft] is out of range (0 to 1000000)",
                "write a number from 0 to 1000000, e.g. keep_logs = 100"
            ),
        ],
        "{found:#?}"
    );
}
