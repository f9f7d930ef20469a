use super::*;

/// [`SMALL`] and a minimal `[forticloud]` on lines 15 to 17; `extra` starts on line 18.
fn with_cloud(extra: &str) -> String {
    format!("{SMALL}\n[forticloud]\nlisten = \"127.0.0.35:0\"\nems_listen = \"127.0.0.36:0\"\n{extra}")
}

#[test]
fn forticloud_defaults_and_adds_its_names_to_dns() {
    let topology = parse(&with_cloud("")).expect("valid");
    let cloud = topology.forticloud.expect("[forticloud] is read");
    assert_eq!(
        cloud,
        ForticloudSpec {
            account: DEFAULT_FORTICLOUD_ACCOUNT.to_owned(),
            listen: "127.0.0.35:0".parse().unwrap(),
            ems_listen: "127.0.0.36:0".parse().unwrap(),
            registered: Vec::new(),
            contracts: Vec::new(),
        }
    );
    let dns: Vec<(&str, String)> = topology
        .dns
        .iter()
        .map(|(name, ip)| (name.as_str(), ip.to_string()))
        .collect();
    assert_eq!(
        dns,
        [
            (FORTICLOUD_HOSTNAME, "127.0.0.35".to_owned()),
            (EMS_CLOUD_HOSTNAME, "127.0.0.36".to_owned()),
        ]
    );
    assert_eq!(
        cloud.ems_cloud(),
        EmsSpec {
            name: "ems-cloud".to_owned(),
            serial: "FCTEMS0000000001".to_owned(),
            hostname: "fortigate.ems-cloud.example".to_owned(),
            listen: "127.0.0.36:0".parse().unwrap(),
            certificate: CertProfile::Public,
            sites: Vec::new(),
            authorized: Vec::new(),
            capabilities: all_capabilities(),
            respond: true,
        }
    );
}

#[test]
fn forticloud_keys_and_contracts_are_read() {
    let text = with_cloud(
        "account = \"ops@fabric.example\"\nregistered = [\"FGVM01TM22000002\", \"FGVM01TM22000001\"]\n\n\
         [[forticloud.contract]]\nserial = \"FGVM01TM22000001\"\ntype = \"FCEM\"\nexpires = \"2027-12-31\"\n\n\
         [[forticloud.contract]]\nserial = \"FGVM01TM22000002\"\ntype = \"FCEM\"\nexpires = \"2024-02-29\"\n\n\
         [dns]\n\"FortiCloud.example\" = \"127.0.0.35\"\n",
    );
    let topology = parse(&text).expect("valid");
    let cloud = topology.forticloud.expect("[forticloud] is read");
    assert_eq!(cloud.account, "ops@fabric.example");
    assert_eq!(
        cloud.registered,
        ["FGVM01TM22000002", "FGVM01TM22000001"],
        "in file order"
    );
    let contract = |serial: &str, expires: &str| ContractSpec {
        serial: serial.to_owned(),
        kind: FCEM_CONTRACT.to_owned(),
        expires: expires.to_owned(),
    };
    assert_eq!(
        cloud.contracts,
        [
            contract("FGVM01TM22000001", "2027-12-31"),
            contract("FGVM01TM22000002", "2024-02-29")
        ]
    );
    assert_eq!(
        topology.dns.len(),
        2,
        "a written name is kept once: {:?}",
        topology.dns
    );

    // Contracts may also be written inline.
    let inline = with_cloud(
        "contract = [{ serial = \"FGVM01TM22000002\", type = \"FCEM\", expires = \"2030-01-01\" }]\n",
    );
    let cloud = parse(&inline).expect("valid").forticloud.unwrap();
    assert_eq!(cloud.contracts, [contract("FGVM01TM22000002", "2030-01-01")]);
}

#[test]
fn every_problem_of_a_bad_forticloud_table_is_reported_on_its_line() {
    // tests/topology/forticloud-every-problem.txt holds every problem of this file, on its line.
    let text = include_str!("../../../tests/topology/forticloud-every-problem.toml");
    let found = problems(text);
    assert_eq!(
        fix_for(&found, "account"),
        "write the account's email address, e.g. account = \"admin@lab.example\", or remove the \
         line to get that one"
    );
    assert_eq!(
        fix_for(&found, "10.0.0.35"),
        "FortiCloud and EMS Cloud listen on 127.0.0.0/8 only; e.g. listen = \"127.0.0.35:443\""
    );
    assert_eq!(
        fix_for(&found, "ems-cloud:443"),
        "write ip:port on loopback, e.g. ems_listen = \"127.0.0.36:0\" (port 0 picks a free port)"
    );
    assert_eq!(
        fix_for(&found, "\"FGVM01TM22000003\""),
        "did you mean \"FGVM01TM22000002\"? FortiCloud registers nodes by serial"
    );
    assert_eq!(
        fix_for(&found, "is listed twice"),
        "remove the second \"FGVM01TM22000001\" from registered"
    );
    assert_eq!(fix_for(&found, "regsitered"), "did you mean \"registered\"?");
    assert_eq!(
        fix_for(&found, "\"FGVM01TM22000009\""),
        "did you mean \"FGVM01TM22000001\"? FortiCloud holds contracts for nodes by serial"
    );
    assert_eq!(
        fix_for(&found, "\"fcem\""),
        "write type = \"FCEM\"; contract types are written in capitals"
    );
    assert_eq!(fix_for(&found, "\"FCXX\""), "did you mean \"FCEM\"?");
    assert_eq!(
        fix_for(&found, "2027-02-30"),
        "write the contract's last day as YYYY-MM-DD, e.g. expires = \"2027-12-31\""
    );
    assert_eq!(fix_for(&found, "expiry"), "did you mean \"expires\"?");
    assert_eq!(
        fix_for(&found, "two FCEM contracts"),
        "a FortiGate holds one contract of each type; remove the [[forticloud.contract]] on line 38"
    );
}

#[test]
fn forticloud_required_keys_and_shapes_are_explained() {
    let text = format!("{SMALL}\n[forticloud]\naccount = 7\n\n[[forticloud.contract]]\ntype = \"FCEM\"\n");
    assert_problems(
        &text,
        &[
            (15, "missing key \"listen\" in [forticloud]"),
            (15, "missing key \"ems_listen\" in [forticloud]"),
            (16, "wrong value for \"account\" in [forticloud]"),
            (18, "missing key \"serial\" in [[forticloud.contract]]"),
            (18, "missing key \"expires\" in [[forticloud.contract]]"),
        ],
    );
    let found = problems(&text);
    assert_eq!(
        fix_for(&found, "\"ems_listen\""),
        "add ems_listen = \"127.0.0.36:0\""
    );
    assert_eq!(fix_for(&found, "\"expires\""), "add expires = \"2027-12-31\"");

    assert_problems(
        &format!("forticloud = 1\n{SMALL}"),
        &[(1, "\"forticloud\" must be a table, found an integer")],
    );
    let text = with_cloud("contract = \"FCEM\"\n");
    assert_problems(
        &text,
        &[(18, "\"contract\" must be an array of tables, found a string")],
    );
    assert_eq!(
        problems(&text)[0].fix,
        "write [[forticloud.contract]] above each entry (two brackets)"
    );
    let text = format!("{SMALL}\n[[contract]]\nserial = \"FGVM01TM22000001\"\n");
    assert_problems(&text, &[(15, "unknown key \"contract\" at the top level")]);
    assert_eq!(
        problems(&text)[0].fix,
        "write the header [[forticloud.contract]] instead"
    );
    let text = with_cloud("expires = \"2027-12-31\"\n");
    assert_problems(&text, &[(18, "unknown key \"expires\" in [forticloud]")]);
    let contract = |expires: &str| {
        with_cloud(&format!(
            "\n[[forticloud.contract]]\nserial = \"FGVM01TM22000001\"\ntype = \"FCEM\"\nexpires = {expires}\n"
        ))
    };
    assert_problems(
        &contract("20271231"),
        &[(22, "wrong value for \"expires\" in [[forticloud.contract]]")],
    );
    assert_eq!(
        problems(&contract("[2027, 12, 31]"))[0].fix,
        "write it like expires = \"2027-12-31\""
    );
    assert_problems(
        &contract("2027-12-31T23:59:59Z"),
        &[(
            22,
            "expires \"2027-12-31T23:59:59Z\" is a date and time; a contract ends on a whole day",
        )],
    );
    // A TOML date is read as the date it is.
    let cloud = parse(&contract("2027-12-31")).expect("valid").forticloud.unwrap();
    assert_eq!(cloud.contracts[0].expires, "2027-12-31");
}

#[test]
fn forticloud_addresses_and_names_are_its_own() {
    let text =
        with_ems("") + "\n[forticloud]\nlisten = \"127.0.0.12:8013\"\nems_listen = \"127.0.0.31:8443\"\n";
    assert_problems(
        &text,
        &[
            (
                22,
                "FortiCloud listens on 127.0.0.12:8013 (line 22), as does node \"branch1\" (line 13)",
            ),
            (
                23,
                "EMS Cloud listens on 127.0.0.31:8443 (line 23), as does EMS \"ems1\" (line 19)",
            ),
        ],
    );
    let found = problems(&text);
    assert_eq!(
        fix_for(&found, "FortiCloud listens"),
        "give FortiCloud its own address, e.g. listen = \"127.0.0.32:8013\", or port 0 to pick a free port"
    );
    assert!(fix_for(&found, "EMS Cloud listens").contains("ems_listen = \"127.0.0.32:8443\""));

    let text = with_cloud("")
        .replace("127.0.0.36:0", "127.0.0.35:443")
        .replace("127.0.0.35:0", "127.0.0.35:443");
    assert_problems(
        &text,
        &[(
            17,
            "EMS Cloud listens on 127.0.0.35:443 (line 17), as does FortiCloud (line 16)",
        )],
    );
    let text = with_cloud("").replace("127.0.0.35:0", "127.0.0.12:0");
    assert!(parse(&text).is_ok(), "port 0 picks a free port, so it may repeat");

    let text = format!(
        "{SMALL}\n[[ems]]\nname = \"ems-cloud\"\nserial = \"FCTEMS0000000001\"\n\
         hostname = \"Fortigate.EMS-Cloud.example\"\nlisten = \"127.0.0.31:8443\"\n\n\
         [[ems]]\nname = \"ems2\"\nserial = \"FCTEMS8822000002\"\nhostname = \"forticloud.example\"\n\
         listen = \"127.0.0.32:8443\"\n"
    );
    assert!(parse(&text).is_ok(), "the names are free without [forticloud]");
    let text = text + "\n[forticloud]\nlisten = \"127.0.0.35:0\"\nems_listen = \"127.0.0.36:0\"\n";
    assert_problems(
        &text,
        &[
            (
                16,
                "EMS name \"ems-cloud\" is the name of the EMS Cloud server of [forticloud]",
            ),
            (
                17,
                "EMS serial \"FCTEMS0000000001\" of EMS \"ems-cloud\" is the serial of the EMS Cloud \
                 server",
            ),
            (
                18,
                "EMS hostname \"fortigate.ems-cloud.example\" of EMS \"ems-cloud\" is the name of EMS Cloud",
            ),
            (
                24,
                "EMS hostname \"forticloud.example\" of EMS \"ems2\" is the name of FortiCloud",
            ),
        ],
    );
    let found = problems(&text);
    assert_eq!(
        fix_for(&found, "EMS name"),
        "rename the EMS, e.g. name = \"ems-cloud-2\""
    );
    assert!(fix_for(&found, "EMS serial").ends_with("e.g. serial = \"FCTEMS8822000001\""));
}

#[test]
fn dns_names_of_forticloud_point_at_it() {
    let text = with_cloud(
        "\n[dns]\n\"forticloud.example\" = \"127.0.0.99\"\n\"fortigate.ems-cloud.example\" = \"127.0.0.36\"\n",
    );
    assert_problems(
        &text,
        &[(
            20,
            "[dns] name \"forticloud.example\" points at 127.0.0.99, but it is the name of FortiCloud, \
             which listens on 127.0.0.35 (line 16)",
        )],
    );
    assert_eq!(
        problems(&text)[0].fix,
        "write \"forticloud.example\" = \"127.0.0.35\""
    );
    let text = format!("{SMALL}\n[dns]\n\"forticloud.example\" = \"127.0.0.99\"\n");
    let dns = parse(&text)
        .expect("without [forticloud] the name is anyone's")
        .dns;
    assert_eq!(dns[FORTICLOUD_HOSTNAME], "127.0.0.99".parse::<IpAddr>().unwrap());
}

#[test]
fn contract_dates_are_real_days_written_yyyy_mm_dd() {
    assert_eq!(parse_contract_date("2027-12-31"), Ok((2027, 12, 31)));
    assert_eq!(parse_contract_date("2028-02-29"), Ok((2028, 2, 29)));
    assert_eq!(parse_contract_date("2000-02-29"), Ok((2000, 2, 29)));
    let fault = |text: &str| parse_contract_date(text).unwrap_err();
    assert_eq!(fault("2100-02-29"), "has day 29, but 2100-02 has 28 days");
    assert_eq!(fault("2027-13-01"), "has month 13; months are 01 to 12");
    assert_eq!(fault("2027-04-31"), "has day 31, but 2027-04 has 30 days");
    assert_eq!(fault("2027-01-00"), "has day 00, but 2027-01 has 31 days");
    for shape in [
        "2027-1-05",
        "27-01-05",
        "2027/01/05",
        "2027-01-05T00:00",
        "２０２７-01-05",
        "+027-01-05",
        "",
    ] {
        assert_eq!(fault(shape), "is not a date written YYYY-MM-DD", "{shape:?}");
    }
    assert_eq!(date_suggestion("2027-1-5"), "2027-01-05");
    assert_eq!(date_suggestion("2027/12/31"), "2027-12-31");
    assert_eq!(date_suggestion("31/12/2027"), SUGGESTED_CONTRACT_DATE);
    assert_eq!(date_suggestion("2027-02-30"), SUGGESTED_CONTRACT_DATE);
}

#[test]
fn columns_count_characters_not_bytes() {
    let reader = Reader::new("é = 1\n  ü = 2\n");
    assert_eq!(reader.position(0), (1, 1));
    assert_eq!(reader.position("é = 1\n  ".len()), (2, 3));
    assert_eq!(reader.position("é = 1\n  ü".len()), (2, 4));
}

#[test]
fn edit_distance_counts_single_character_edits() {
    assert_eq!(edit_distance("lisen", "listen"), 1);
    assert_eq!(edit_distance("listen", "listen"), 0);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("serail", "serial"), 2);
}

#[test]
fn role_displays_as_written_in_the_file() {
    assert_eq!(Role::Root.to_string(), "root");
    assert_eq!(Role::Member.to_string(), "member");
}
