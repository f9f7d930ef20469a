use super::*;

#[test]
fn default_topology_has_an_ems_its_names_checks_and_a_bootstrap() {
    let topology = parse(DEFAULT_TOML).expect("default.toml is valid");
    assert_eq!(topology.checks, CheckSettings { interval_secs: 30 });
    let ip: IpAddr = "127.0.0.31".parse().unwrap();
    // The FortiCloud names are added to [dns] by [forticloud]; these are the EMS's.
    let dns: Vec<(&str, IpAddr)> = topology
        .dns
        .iter()
        .filter(|(name, _)| name.ends_with("ems.lab.example"))
        .map(|(name, ip)| (name.as_str(), *ip))
        .collect();
    assert_eq!(
        dns,
        [
            ("default.ems.lab.example", ip),
            ("ems.lab.example", ip),
            ("sitea.ems.lab.example", ip)
        ]
    );
    let serials: Vec<String> = topology.nodes.iter().map(|n| n.serial.clone()).collect();
    assert_eq!(topology.ems.len(), 1);
    assert_eq!(
        topology.ems_server("ems1"),
        Some(&EmsSpec {
            name: "ems1".to_string(),
            serial: "FCTEMS8822001234".to_string(),
            hostname: "ems.lab.example".to_string(),
            listen: "127.0.0.31:8443".parse().unwrap(),
            certificate: CertProfile::Trusted,
            sites: vec!["Default".to_string(), "SiteA".to_string()],
            authorized: serials,
            capabilities: all_capabilities(),
            respond: true,
        })
    );
    assert_eq!(topology.ems_server("ems2"), None);
    assert_eq!(topology.fabric.firmware, Firmware::parse("7.0.12").unwrap());
    assert_eq!(
        topology.bootstrap,
        [
            "config endpoint-control fctems",
            "edit 1",
            "set name ems1",
            "set status enable",
            "set server default.ems.lab.example",
            "set https-port 8443",
            "end",
            "execute fctems verify ems1",
        ]
    );
}

#[test]
fn example_topologies_parse_and_can_run_side_by_side() {
    let files = [
        ("default.toml", DEFAULT_TOML),
        ("ten-nodes.toml", TEN_NODES_TOML),
        ("ems-untrusted.toml", EMS_UNTRUSTED_TOML),
        ("ems-unauthorized.toml", EMS_UNAUTHORIZED_TOML),
    ];
    let mut owners: HashMap<IpAddr, &str> = HashMap::new();
    let mut fabrics = HashSet::new();
    for (file, text) in files {
        let topology = parse(text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            fabrics.insert(topology.fabric.name.clone()),
            "{file}: fabric name repeats"
        );
        let ips = topology
            .nodes
            .iter()
            .map(|n| n.listen.ip())
            .chain(topology.ems.iter().map(|e| e.listen.ip()));
        for ip in ips {
            let owner = *owners.entry(ip).or_insert(file);
            assert_eq!(owner, file, "{ip} is used by {owner} and {file}");
        }
        let serials: HashSet<&str> = topology
            .nodes
            .iter()
            .map(|n| n.serial.as_str())
            .chain(topology.ems.iter().map(|e| e.serial.as_str()))
            .collect();
        assert_eq!(serials.len(), topology.nodes.len() + topology.ems.len(), "{file}");
    }

    let ten = parse(TEN_NODES_TOML).unwrap();
    assert!(ten.ems.is_empty() && ten.dns.is_empty() && ten.bootstrap.is_empty());

    let untrusted = parse(EMS_UNTRUSTED_TOML).unwrap();
    assert_eq!(untrusted.fabric.name, "untrusted");
    let listens: Vec<SocketAddr> = untrusted.nodes.iter().map(|n| n.listen).collect();
    let expected: Vec<SocketAddr> = (41..=43)
        .map(|last| SocketAddr::from(([127, 0, 0, last], 8013)))
        .collect();
    assert_eq!(listens, expected);
    let ems = untrusted.ems_server("ems1").expect("ems1");
    assert_eq!(ems.listen, "127.0.0.44:8443".parse().unwrap());
    assert_eq!(ems.certificate, CertProfile::Untrusted);
    let serials: Vec<&str> = untrusted.nodes.iter().map(|n| n.serial.as_str()).collect();
    assert_eq!(ems.authorized, serials);
    assert_eq!(untrusted.dns[&ems.hostname], ems.listen.ip());
    assert!(untrusted.bootstrap.contains(&"edit ems1".to_string()));
    assert!(
        !untrusted.bootstrap.iter().any(|line| line.contains("verify")),
        "verifying is left to the reader"
    );

    let unauthorized = parse(EMS_UNAUTHORIZED_TOML).unwrap();
    assert_eq!(unauthorized.fabric.name, "unauthorized");
    let listens: Vec<SocketAddr> = unauthorized.nodes.iter().map(|n| n.listen).collect();
    let expected: Vec<SocketAddr> = (51..=53)
        .map(|last| SocketAddr::from(([127, 0, 0, last], 8013)))
        .collect();
    assert_eq!(listens, expected);
    let ems = unauthorized.ems_server("ems1").expect("ems1");
    assert_eq!(ems.listen, "127.0.0.54:8443".parse().unwrap());
    assert_eq!(ems.certificate, CertProfile::Trusted);
    assert_eq!(ems.authorized, [unauthorized.root().serial.clone()]);
    assert_eq!(unauthorized.dns[&ems.hostname], ems.listen.ip());
    // The file's comments authorize branch1 by this serial.
    assert_eq!(unauthorized.node("branch1").unwrap().serial, "FGVM01TM22000502");
    assert_eq!(
        unauthorized.bootstrap.last().unwrap(),
        "execute fctems verify ems1"
    );
}

#[test]
fn the_new_tables_default_when_absent() {
    let topology = parse(SMALL).expect("valid");
    assert!(topology.ems.is_empty());
    assert_eq!(topology.forticloud, None);
    assert!(topology.dns.is_empty());
    assert_eq!(topology.checks.interval_secs, DEFAULT_CHECK_INTERVAL_SECS);
    assert!(topology.bootstrap.is_empty());
    let empty = format!("{SMALL}\n[checks]\n\n[dns]\n\n[bootstrap]\n");
    let topology = parse(&empty).expect("valid");
    assert_eq!(topology.checks, CheckSettings::default());
    assert!(topology.dns.is_empty() && topology.bootstrap.is_empty());
}

#[test]
fn ems_keys_default_one_by_one() {
    let topology = parse(&with_ems("")).expect("valid");
    assert_eq!(
        topology.ems,
        [EmsSpec {
            name: "ems1".to_string(),
            serial: "FCTEMS8822001234".to_string(),
            hostname: "ems.lab.example".to_string(),
            listen: "127.0.0.31:8443".parse().unwrap(),
            certificate: CertProfile::Trusted,
            sites: Vec::new(),
            authorized: Vec::new(),
            capabilities: all_capabilities(),
            respond: true,
        }]
    );
    let text = with_ems(
        "certificate = \"wrong-host\"\nsites = [\"SiteA\", \"b_2\"]\nauthorized = [\"FGVM01TM22000002\"]\n\
         capabilities = [\"websocket\", \"fabric-auth\"]\nrespond = false\n",
    )
    .replace("\"ems.lab.example\"", "\"EMS.Lab.Example\"")
    .replace("127.0.0.31:8443", "127.0.0.31:0");
    let ems = parse(&text).expect("valid").ems.remove(0);
    assert_eq!(ems.hostname, "ems.lab.example", "kept in lowercase");
    assert_eq!(ems.listen.port(), 0, "port 0 is kept");
    assert_eq!(ems.certificate, CertProfile::WrongHost);
    assert_eq!(ems.sites, ["Default", "SiteA", "b_2"]);
    assert_eq!(ems.authorized, ["FGVM01TM22000002"]);
    assert_eq!(ems.capabilities, ["fabric-auth", "websocket"], "in FortiOS order");
    assert!(!ems.respond);
}

#[test]
fn sites_gain_default_unless_it_is_there_in_any_case() {
    let sites = |list: &str| {
        parse(&with_ems(&format!("sites = {list}\n")))
            .expect("valid")
            .ems
            .remove(0)
            .sites
    };
    assert_eq!(sites("[\"SiteB\"]"), ["Default", "SiteB"]);
    assert_eq!(sites("[\"SiteB\", \"default\"]"), ["SiteB", "default"]);
    assert_eq!(sites("[\"DEFAULT\"]"), ["DEFAULT"]);
    assert_eq!(sites("[]"), Vec::<String>::new(), "no sites: a single-tenant EMS");
}

#[test]
fn every_certificate_profile_reads_as_it_displays() {
    for profile in [
        "trusted",
        "untrusted",
        "self-signed",
        "expired",
        "wrong-host",
        "public",
    ] {
        let text = with_ems(&format!("certificate = \"{profile}\"\n"));
        let ems = parse(&text).unwrap_or_else(|e| panic!("{e}")).ems.remove(0);
        assert_eq!(ems.certificate.to_string(), profile);
    }
    assert_eq!(CertProfile::default(), CertProfile::Trusted);
}

#[test]
fn checks_dns_and_bootstrap_are_read() {
    let text = format!(
        "{SMALL}\n[checks]\ninterval_secs = 5\n\n[dns]\n\"Fabric.Example\" = \"10.1.2.3\"\n\
         localhost = \"127.0.0.1\"\n\n[bootstrap]\nroot = [\"config system global\", \"set hostname X\", \"end\"]\n"
    );
    let topology = parse(&text).expect("valid");
    assert_eq!(topology.checks.interval_secs, 5);
    let dns: Vec<(&str, String)> = topology
        .dns
        .iter()
        .map(|(name, ip)| (name.as_str(), ip.to_string()))
        .collect();
    assert_eq!(
        dns,
        [
            ("fabric.example", "10.1.2.3".to_string()),
            ("localhost", "127.0.0.1".to_string())
        ]
    );
    assert_eq!(
        topology.bootstrap,
        ["config system global", "set hostname X", "end"]
    );
}

#[test]
fn every_problem_of_a_bad_ems_table_is_reported_on_its_line() {
    // tests/topology/ems-every-problem.txt holds every problem of this file, on its line.
    let text = include_str!("../../../tests/topology/ems-every-problem.toml");
    let found = problems(text);
    assert_eq!(fix_for(&found, "\"ems 1\""), "write name = \"ems-1\"");
    assert_eq!(
        fix_for(&found, "FCTEMS12345"),
        "an EMS serial is \"FCTEMS\" followed by 10 digits; e.g. serial = \"FCTEMS8822000001\""
    );
    assert!(fix_for(&found, "ems_lab").ends_with("e.g. hostname = \"ems-lab.example\""));
    assert_eq!(
        fix_for(&found, "10.0.0.31"),
        "EMS servers listen on 127.0.0.0/8 only; e.g. listen = \"127.0.0.31:8443\""
    );
    assert_eq!(
        fix_for(&found, "certificate"),
        "write it like certificate = \"trusted\""
    );
    assert_eq!(
        fix_for(&found, "\"Site B\""),
        "write a site name of 1 to 63 letters, digits, \"-\" and \"_\", e.g. \"Site-B\""
    );
    assert_eq!(fix_for(&found, "fabric_auth"), "did you mean \"fabric-auth\"?");
    assert!(fix_for(&found, "telepathy").starts_with("capabilities are: fabric-auth, silent-approval"));
    assert_eq!(fix_for(&found, "respond"), "write it like respond = true");
    assert_eq!(
        fix_for(&found, "colour"),
        "valid keys in [[ems]]: name, serial, hostname, listen, certificate, sites, authorized, \
         capabilities, respond"
    );
}

#[test]
fn ems_required_keys_and_wrong_shapes_are_explained() {
    let text = format!("{SMALL}\n[[ems]]\ncertificate = \"untrusted\"\nsites = \"Default\"\nrespond = 1\n");
    assert_problems(
        &text,
        &[
            (15, "missing key \"name\" in [[ems]]"),
            (15, "missing key \"serial\" in [[ems]]"),
            (15, "missing key \"hostname\" in [[ems]]"),
            (15, "missing key \"listen\" in [[ems]]"),
            (17, "wrong value for \"sites\" in [[ems]]"),
            (18, "wrong value for \"respond\" in [[ems]]"),
        ],
    );
    let found = problems(&text);
    assert_eq!(
        fix_for(&found, "\"hostname\""),
        "add hostname = \"ems.lab.example\""
    );
    assert_eq!(
        fix_for(&found, "\"sites\""),
        "write it like sites = [\"Default\", \"SiteA\"]"
    );

    assert_problems(
        &format!("ems = 1\ndns = 3\nchecks = 5\nbootstrap = []\n{SMALL}"),
        &[
            (1, "\"ems\" must be an array of tables, found an integer"),
            (2, "\"dns\" must be a table, found an integer"),
            (3, "\"checks\" must be a table, found an integer"),
            (4, "\"bootstrap\" must be a table, found an array"),
        ],
    );
    assert_problems(
        &format!("{SMALL}\n[ems]\nname = \"ems1\"\n"),
        &[(15, "\"ems\" must be an array of tables, found a table")],
    );
}

#[test]
fn ems_names_serials_and_addresses_are_unique_and_port_zero_may_repeat() {
    let more = |name: &str, serial: &str, listen: &str| {
        format!(
            "\n[[ems]]\nname = \"{name}\"\nserial = \"{serial}\"\nhostname = \"{name}.lab.example\"\n\
             listen = \"{listen}\"\n"
        )
    };
    let text = with_ems("")
        + &more("ems1", "FCTEMS8822001234", "127.0.0.31:8443")
        + &more("ems3", "FCTEMS8822000003", "127.0.0.12:8013")
        + &more("ems4", "FCTEMS8822000004", "127.0.0.12:0")
        + &more("ems5", "FCTEMS8822000005", "127.0.0.12:0");
    assert_problems(
        &text,
        &[
            (22, "two EMS servers are named \"ems1\": line 16 and line 22"),
            (
                23,
                "two EMS servers have serial \"FCTEMS8822001234\": EMS \"ems1\" (line 17) and \
                 EMS \"ems1\" (line 23)",
            ),
            (
                25,
                "EMS \"ems1\" listens on 127.0.0.31:8443 (line 25), as does EMS \"ems1\" (line 19)",
            ),
            (
                31,
                "EMS \"ems3\" listens on 127.0.0.12:8013 (line 31), as does node \"branch1\" (line 13)",
            ),
        ],
    );
    let found = problems(&text);
    assert!(fix_for(&found, "are named").ends_with("e.g. name = \"ems1-2\""));
    assert!(fix_for(&found, "have serial").contains("serial = \"FCTEMS8822000001\""));
    assert_eq!(
        fix_for(&found, "as does node"),
        "give EMS \"ems3\" its own address, e.g. listen = \"127.0.0.32:8013\", or port 0 to pick a free port"
    );
}

#[test]
fn authorized_serials_are_well_formed_and_name_nodes() {
    let text = with_ems("authorized = [\"FGVM01TM22000003\", \"FGVM01TM22000777\", \"fgvm01tm22000002\"]\n");
    let found = problems(&text);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_eq!(
        fix_for(&found, "\"FGVM01TM22000003\""),
        "did you mean \"FGVM01TM22000001\"? an EMS authorizes nodes by serial"
    );
    assert_eq!(
        fix_for(&found, "\"FGVM01TM22000777\""),
        "use a serial of a node in this file: \"FGVM01TM22000001\", \"FGVM01TM22000002\""
    );
    assert!(
        fix_for(&found, "fgvm01tm22000002").ends_with("of nodes in this file, e.g. \"FGVM01TM22000002\"")
    );

    // Nodes that could not be read are not compared with.
    let text = with_ems("authorized = [\"FGVM01TM22000777\"]\n").replacen("[[node]]", "[[nodes]]", 2);
    let found = problems(&text);
    assert!(
        !found.iter().any(|p| p.message.contains("names no node")),
        "{found:#?}"
    );
}

#[test]
fn dns_entries_are_names_with_ipv4_addresses() {
    let text = format!(
        r#"{SMALL}
[dns]
"ems_lab.example" = "127.0.0.31"
"a.example" = "::1"
"b.example" = "127.0.0.31:8443"
"c.example" = "somewhere"
"d.example" = 31
"E.example" = "127.0.0.5"
"e.example" = "127.0.0.6"
fabric.example = "127.0.0.7"
"-bad.example" = "127.0.0.8"
"127.0.0.9" = "127.0.0.9"
"x..example" = "127.0.0.10"
"#
    );
    assert_problems(
        &text,
        &[
            (
                16,
                "[dns] name \"ems_lab.example\" has the label \"ems_lab\", which may only use",
            ),
            (17, "[dns] address \"::1\" is an IPv6 address"),
            (18, "\"127.0.0.31:8443\" for \"b.example\" has a port"),
            (19, "[dns] address \"somewhere\" is not an IPv4 address"),
            (20, "wrong value for \"d.example\" in [dns]: found an integer"),
            (
                22,
                "two [dns] entries are for \"e.example\": \"E.example\" (line 21) and \"e.example\" (line 22)",
            ),
            (23, "the name fabric.example in [dns] is not quoted"),
            (24, "has the label \"-bad\", which starts or ends with \"-\""),
            (25, "[dns] name \"127.0.0.9\" is an IP address, not a name"),
            (26, "[dns] name \"x..example\" has an empty label"),
        ],
    );
    let found = problems(&text);
    assert!(fix_for(&found, "ems_lab").ends_with("e.g. \"ems-lab.example\" = \"127.0.0.31\""));
    assert_eq!(
        fix_for(&found, "has a port"),
        "write \"b.example\" = \"127.0.0.31\""
    );
    assert_eq!(
        fix_for(&found, "not quoted"),
        "quote the name: \"fabric.example\" = \"127.0.0.7\""
    );
    assert_eq!(
        fix_for(&found, "somewhere"),
        "write an IPv4 address, e.g. \"c.example\" = \"127.0.0.31\""
    );
    let unquoted = found.iter().find(|p| p.message.contains("not quoted")).unwrap();
    assert_eq!(unquoted.column, 1);
}

#[test]
fn dns_names_of_an_ems_point_at_its_address() {
    let text = with_ems("sites = [\"SiteA\"]\n")
        + "\n[dns]\n\"EMS.lab.example\" = \"127.0.0.31\"\n\"default.ems.lab.example\" = \"127.0.0.99\"\n\
           \"sitea.ems.lab.example\" = \"127.0.0.31\"\n\"siteb.ems.lab.example\" = \"127.0.0.77\"\n\
           \"ems.lab.example.other\" = \"127.0.0.78\"\n";
    assert_problems(
        &text,
        &[(
            24,
            "[dns] name \"default.ems.lab.example\" points at 127.0.0.99, but it is site \"Default\" \
             of EMS \"ems1\", which listens on 127.0.0.31 (line 19)",
        )],
    );
    let found = problems(&text);
    assert_eq!(found[0].fix, "write \"default.ems.lab.example\" = \"127.0.0.31\"");

    let text = with_ems("") + "\n[dns]\n\"ems.lab.example\" = \"127.0.0.32\"\n";
    assert_problems(
        &text,
        &[(
            22,
            "it is the hostname of EMS \"ems1\", which listens on 127.0.0.31 (line 19)",
        )],
    );

    // A site name that is not a site of the EMS may point anywhere; a good file keeps
    // the names lowercase.
    let text = with_ems("sites = [\"SiteA\"]\n")
        + "\n[dns]\n\"EMS.lab.example\" = \"127.0.0.31\"\n\"siteb.ems.lab.example\" = \"127.0.0.77\"\n";
    let dns = parse(&text).expect("valid").dns;
    assert_eq!(
        dns.keys().collect::<Vec<_>>(),
        ["ems.lab.example", "siteb.ems.lab.example"]
    );
}

#[test]
fn checks_interval_and_bootstrap_lines_are_held_to_their_rules() {
    let text = format!(
        "{SMALL}\n[checks]\ninterval_secs = 0\ninterval = 5\n\n[bootstrap]\n\
         root = [\"config system global\", \"\"\"set hostname X\nend\"\"\"]\nbranch1 = []\n"
    );
    assert_problems(
        &text,
        &[
            (16, "interval_secs = 0 in [checks] is out of range (1 to 3600)"),
            (17, "unknown key \"interval\" in [checks]"),
            (20, "a [bootstrap] line holds a line break"),
            (22, "unknown key \"branch1\" in [bootstrap]"),
        ],
    );
    let found = problems(&text);
    assert_eq!(
        fix_for(&found, "interval_secs = 0"),
        "write a number from 1 to 3600, e.g. interval_secs = 30"
    );
    assert_eq!(fix_for(&found, "\"interval\""), "did you mean \"interval_secs\"?");
    assert_eq!(
        fix_for(&found, "line break"),
        "write each CLI line as its own string: root = [\"set hostname X\", \"end\"]"
    );
    assert_eq!(fix_for(&found, "branch1"), "valid keys in [bootstrap]: root");

    let text = format!("{SMALL}\n[checks]\ninterval_secs = \"30\"\n");
    let found = problems(&text);
    assert_eq!(
        fix_for(&found, "interval_secs"),
        "write a number from 1 to 3600, e.g. interval_secs = 30"
    );

    // The largest integer TOML holds passes no bound.
    let text = format!("{SMALL}\n[checks]\ninterval_secs = 9223372036854775807\n");
    assert_problems(
        &text,
        &[(
            16,
            "interval_secs = 9223372036854775807 in [checks] is out of range (1 to 3600)",
        )],
    );
}

#[test]
fn a_name_above_the_tables_is_pointed_to_dns() {
    let text = format!("\"ems.lab.example\" = \"127.0.0.31\"\n{SMALL}");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].message,
        "unknown key \"ems.lab.example\" at the top level"
    );
    assert_eq!(
        found[0].fix,
        "names to resolve belong in [dns]; move the line below that header"
    );
}

#[test]
fn dns_names_follow_the_label_rules() {
    for good in [
        "ems.lab.example",
        "localhost",
        "a-1.B2.example",
        "xn--bcher-kva.example",
    ] {
        assert_eq!(fqdn_fault(good), None, "{good}");
    }
    let label = "a".repeat(MAX_DNS_LABEL_LEN);
    assert_eq!(fqdn_fault(&format!("{label}.example")), None);
    let fault = |name: &str| fqdn_fault(name).unwrap_or_else(|| panic!("{name} passed"));
    assert!(fault(&format!("{label}a.example")).contains("64 characters"));
    assert!(fault(&[label.as_str(); 4].join(".")).starts_with("has 255 characters (at most 253)"));
    assert_eq!(fault(""), "is empty");
    assert_eq!(fault("ems.lab.example."), "ends with \".\"");
    assert!(fault(".ems").contains("empty label"));
    assert!(fault("ems-.lab").contains("starts or ends with"));
    assert!(fault("ems lab").contains("may only use letters, digits and \"-\""));
    assert_eq!(fault("10.0.0.1"), "is an IP address, not a name");

    assert_eq!(fqdn_suggestion("EMS_Lab..Example."), "ems-lab.example");
    assert_eq!(fqdn_suggestion("___"), SUGGESTED_EMS_HOSTNAME);
    assert_eq!(fqdn_suggestion("10.0.0.1"), SUGGESTED_EMS_HOSTNAME);
}

#[test]
fn ems_serials_are_fctems_and_ten_digits() {
    assert!(is_ems_serial("FCTEMS8822001234"));
    for bad in [
        "FCTEMS882200123",
        "FCTEMS88220012345",
        "fctems8822001234",
        "FCTEMS88220012AB",
        "FGVM01TM22000001",
    ] {
        assert!(!is_ems_serial(bad), "{bad}");
    }
    let found = problems(&with_ems("").replace("FCTEMS8822001234", "fctems8822001234"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].message,
        "EMS serial \"fctems8822001234\" does not start with \"FCTEMS\""
    );
    assert!(
        found[0].fix.ends_with("e.g. serial = \"FCTEMS8822001234\""),
        "{found:#?}"
    );
}
