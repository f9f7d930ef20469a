//! The FortiGate side against the simulators, without a fabric: the connector's FortiCloud
//! query and EMS check talk to the simulated FortiCloud and EMS Cloud over real TLS, so a
//! change to the wire contracts that one end does not follow fails here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use fabricsim::connector::forticloud::{CloudContract, query};
use fabricsim::connector::{
    self, CertificateState, DeviceState, EmsStatus, ProbeTarget, Resolver, TrustStore,
};
use fabricsim::domain::{EMS_CLOUD_HOSTNAME, EMS_CLOUD_SERIAL, FCEM_CONTRACT, FORTICLOUD_HOSTNAME};
use fabricsim::sim::{EmsServer, Forticloud, Pki};
use fabricsim::topology::{CertProfile, ContractSpec, ForticloudSpec};
use tokio::net::TcpListener;

const ROOT: &str = "FGVM01TM22000001";
const MEMBER: &str = "FGVM01TM22000002";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Time limit of a call to a server that answers at once: a deadline to fail by.
const DEADLINE: Duration = Duration::from_secs(5);

/// The root registered with an FCEM contract, the member registered without one.
fn spec() -> ForticloudSpec {
    ForticloudSpec {
        account: "admin@lab.example".to_owned(),
        listen: SocketAddr::new(LOCALHOST, 0),
        ems_listen: SocketAddr::new(LOCALHOST, 0),
        registered: vec![ROOT.to_owned(), MEMBER.to_owned()],
        contracts: vec![ContractSpec {
            serial: ROOT.to_owned(),
            kind: FCEM_CONTRACT.to_owned(),
            expires: "2999-12-31".to_owned(),
        }],
    }
}

async fn start_cloud(pki: &Pki) -> Forticloud {
    let listener = TcpListener::bind(spec().listen).await.unwrap();
    let ip = listener.local_addr().unwrap().ip();
    let identity = pki
        .server_identity("forticloud", FORTICLOUD_HOSTNAME, Some(ip), CertProfile::Public)
        .unwrap();
    Forticloud::start(&spec(), identity, listener).await.unwrap()
}

#[tokio::test]
async fn the_connector_reads_what_the_simulated_forticloud_holds() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::open(dir.path()).unwrap();
    let cloud = start_cloud(&pki).await;
    let ask = |serial: &'static str| {
        let (addr, anchors) = (cloud.addr(), pki.trust_anchors());
        async move { query(addr, FORTICLOUD_HOSTNAME, serial, LOCALHOST, &anchors, DEADLINE).await }
    };
    let root = ask(ROOT).await.unwrap();
    assert_eq!(root, cloud.record(ROOT));
    assert_eq!(
        root.ems_cloud(),
        Some(&CloudContract {
            kind: FCEM_CONTRACT.to_owned(),
            expires: "2999-12-31".to_owned(),
            expired: false,
        })
    );
    cloud.entitle(MEMBER, None);
    assert_eq!(ask(MEMBER).await.unwrap(), cloud.record(MEMBER));
    cloud.shutdown().await;
}

#[tokio::test]
async fn an_ems_cloud_server_registers_fortigates_as_forticloud_decides() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::open(dir.path()).unwrap();
    let cloud = start_cloud(&pki).await;
    let ems_spec = spec().ems_cloud();
    let listener = TcpListener::bind(ems_spec.listen).await.unwrap();
    let ip = listener.local_addr().unwrap().ip();
    let identity = pki
        .server_identity(&ems_spec.name, &ems_spec.hostname, Some(ip), ems_spec.certificate)
        .unwrap();
    let ems = EmsServer::start(ems_spec, identity, listener).await.unwrap();
    ems.set_authorizer(cloud.authorizer());

    let trust = TrustStore {
        anchors: pki.trust_anchors(),
        pinned: Vec::new(),
    };
    let mut resolver = Resolver::default();
    resolver.table.insert(EMS_CLOUD_HOSTNAME.to_owned(), ip);
    let root = register(&ems, &trust, &resolver, ROOT).await;
    assert_eq!(root.certificate, CertificateState::Authorized);
    assert_eq!(root.device, DeviceState::Authorized, "{}", root.detail);
    assert_eq!(root.ems_serial.as_deref(), Some(EMS_CLOUD_SERIAL));
    let member = register(&ems, &trust, &resolver, MEMBER).await;
    assert_eq!(member.device, DeviceState::Denied, "{}", member.detail);
    cloud.entitle(MEMBER, None);
    assert_eq!(
        register(&ems, &trust, &resolver, MEMBER).await.device,
        DeviceState::Authorized
    );

    ems.shutdown().await;
    cloud.shutdown().await;
}

/// What a FortiGate with serial `serial` learns when it checks the EMS Cloud server `ems`.
async fn register(ems: &EmsServer, trust: &TrustStore, resolver: &Resolver, serial: &str) -> EmsStatus {
    let target = ProbeTarget {
        entry: "cloud".to_owned(),
        server: EMS_CLOUD_HOSTNAME.to_owned(),
        port: ems.addr().port(),
        source: LOCALHOST,
        timeout: DEADLINE,
        fortigate_serial: serial.to_owned(),
        fortigate_hostname: format!("FGT-{serial}"),
    };
    connector::probe(&target, trust, resolver).await
}
