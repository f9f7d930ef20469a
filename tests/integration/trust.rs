//! The fabric's own connections are mutual TLS: a plaintext client, a certificate of
//! another CA, and a valid certificate used under another serial are all refused, and
//! the operator's certificate still needs the admin token.

use std::time::Duration;

use fabricsim::harness::{Fabric, ROOT_SERIAL, generated_topology};
use fabricsim::link::{Credentials, Dialer, Links};
use fabricsim::raft::append::{AppendConnection, StreamError};
use fabricsim::rpc::client::{AdminConnection, Operator};
use fabricsim::sim::pki::Pki;
use fabricsim::wire::proto::fabric::admin_client::AdminClient;
use fabricsim::wire::proto::fabric::member_client::MemberClient;
use fabricsim::wire::proto::fabric::{JoinRequest, StatusRequest};
use fabricsim::wire::proto::raft::RaftPayload;
use fabricsim::wire::proto::raft::raft_client::RaftClient;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::CONVERGE;

const TIMEOUT: Duration = Duration::from_secs(5);

/// A client certificate for `common_name` from a CA of its own, not the fabric's.
fn foreign_certificate(common_name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Another CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec![common_name.to_ascii_lowercase()]).expect("leaf params");
    leaf.distinguished_name.push(DnType::CommonName, common_name);
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = leaf
        .signed_by(&key, &Issuer::new(ca, &ca_key))
        .expect("leaf certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (vec![leaf.der().clone(), ca_cert.der().clone()], key)
}

fn join_request(node_id: u64, serial: &str) -> JoinRequest {
    JoinRequest {
        node_id,
        name: "branch2".to_owned(),
        serial: serial.to_owned(),
        addr: "127.0.0.1:1".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_refused_on_the_fabric_port() {
    let fabric = Fabric::start(generated_topology("trust", 3))
        .await
        .expect("fabric starts");
    let before = fabric.wait_converged(CONVERGE).await.expect("converges");
    let root = fabric.addrs()["root"];
    let spec = fabric.topology().node("branch2").expect("branch2").clone();

    // Plaintext: the listener speaks only TLS, so no call is answered.
    let plaintext = tonic::transport::Endpoint::from_shared(format!("http://{root}"))
        .unwrap()
        .timeout(TIMEOUT)
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let answer = AdminClient::new(channel).status(StatusRequest {}).await;
        assert!(answer.is_err(), "a plaintext call was answered: {answer:?}");
    }

    // A certificate of another CA, for a serial the fabric knows.
    let pki = Pki::open(&fabric.data_root().join("pki")).expect("the fabric's PKI");
    let (chain, key) = foreign_certificate(&spec.serial);
    let foreign =
        Dialer::new(&Credentials::new(pki.fabric_ca(), chain, key), Links::default()).expect("dialer");
    if let Ok(channel) = foreign.connect(root, TIMEOUT).await {
        let answer = MemberClient::new(channel)
            .join(join_request(spec.id, &spec.serial))
            .await;
        assert!(answer.is_err(), "a foreign certificate was accepted: {answer:?}");
    }

    // branch1's own valid certificate, claiming to be branch2 ...
    let own = Dialer::new(fabric.node("branch1").unwrap().credentials(), Links::default()).expect("dialer");
    let channel = own
        .connect(root, TIMEOUT)
        .await
        .expect("branch1's certificate is valid");
    let answer = MemberClient::new(channel.clone())
        .join(join_request(spec.id, &spec.serial))
        .await
        .expect_err("a join under another serial is refused");
    assert_eq!(answer.code(), tonic::Code::PermissionDenied, "{answer:?}");
    assert!(answer.message().contains("its certificate is for"), "{answer:?}");

    // ... and claiming to be the root in a Raft vote.
    let vote = openraft::raft::VoteRequest::<u64>::new(openraft::Vote::new(99, 1), None);
    let payload = RaftPayload {
        json: serde_json::to_vec(&vote).unwrap(),
    };
    let answer = RaftClient::new(channel.clone())
        .vote(payload)
        .await
        .expect_err("a vote under the root's id is refused");
    assert_eq!(answer.code(), tonic::Code::PermissionDenied, "{answer:?}");
    assert!(answer.message().contains(ROOT_SERIAL), "{answer:?}");

    // ... and sending AppendEntries on a Raft connection as the root: refused, and closed.
    let append = openraft::raft::AppendEntriesRequest::<fabricsim::raft::TypeConfig> {
        vote: openraft::Vote::new_committed(99, 1),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    let member = fabric.addrs()["branch2"];
    let mut connection = AppendConnection::open(&own, member, TIMEOUT)
        .await
        .expect("branch1's certificate is valid");
    let answer = connection
        .append(&append)
        .await
        .expect_err("AppendEntries under the root's id is refused");
    assert!(
        matches!(&answer, StreamError::Refused(why) if why.contains(ROOT_SERIAL)),
        "{answer:?}"
    );
    let again = connection.append(&append).await;
    assert!(matches!(again, Err(StreamError::Io(_))), "{again:?}");

    // A certificate of another CA gets no answer on a Raft connection either.
    let answered = match AppendConnection::open(&foreign, member, TIMEOUT).await {
        Ok(mut connection) => connection.append(&append).await.ok(),
        Err(_) => None,
    };
    assert!(
        answered.is_none(),
        "a foreign certificate was answered: {answered:?}"
    );

    // The operator's own certificate without the admin token.
    let credentials = pki.operator_credentials().expect("the operator's certificate");
    let operator = Operator::new("not-the-token", &credentials).expect("operator");
    let mut connection = AdminConnection::connect(root, &operator)
        .await
        .expect("the operator's certificate is valid");
    let refused = connection.status().await.expect_err("a call without the token");
    assert!(
        refused.to_string().contains("missing or wrong admin token"),
        "{refused}"
    );

    // None of it reached Raft: same term everywhere, still converged.
    let after = fabric.wait_converged(CONVERGE).await.expect("still converged");
    let terms = |status: &fabricsim::status::FabricReport| -> Vec<Option<u64>> {
        status.nodes.iter().map(|n| n.raft.term).collect()
    };
    assert_eq!(terms(&after), terms(&before));
    fabric.stop().await;
}
