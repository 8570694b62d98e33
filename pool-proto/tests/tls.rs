//! TLS under the handshake (feature `tls`), over real loopback sockets with
//! certificates made here (rcgen): mutual TLS with the cookie challenge
//! inside; a certificate from another CA, a certificate that does not name
//! the dialled address, a plaintext peer of a TLS node and a TLS peer of a
//! plaintext node are each refused with an error that says why; bad files
//! are named with what is wrong.

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pool_proto::handshake::{initiate, respond};
use pool_proto::tls::{self, Stream, TlsConfig, TlsFiles};
use pool_proto::{Cookie, Error, HandshakeConfig, Identity, Msg, NodeId, NodeKind, Request};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::net::{TcpListener, TcpStream};

/// A CA that signs node certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A node certificate for `sans` (IP addresses or DNS names): its PEM
    /// and its key's PEM.
    fn node(&self, sans: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A node's TLS config with a certificate for `sans`.
    fn config(&self, sans: &[&str]) -> TlsConfig {
        let (cert, key) = self.node(sans);
        TlsConfig::from_pem(cert.as_bytes(), key.as_bytes(), self.pem.as_bytes()).unwrap()
    }
}

fn identity(name: &str, kind: NodeKind) -> Identity {
    Identity {
        node: NodeId::random(),
        name: name.to_owned(),
        kind,
    }
}

fn cookie() -> Cookie {
    Cookie::new("tls-test-cookie", "test").unwrap()
}

fn hs() -> HandshakeConfig {
    HandshakeConfig {
        timeout: Duration::from_secs(5),
        ..HandshakeConfig::default()
    }
}

/// One connection: the server side wraps with `server_tls` and responds,
/// the client side dials `127.0.0.1`, wraps with `client_tls` and
/// initiates. Returns both sides' results (peer identity or error).
async fn connect_pair(
    server_tls: Option<TlsConfig>,
    client_tls: Option<TlsConfig>,
) -> (Result<Identity, Error>, Result<Identity, Error>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let stream = tls::accept(server_tls.as_ref(), tcp).await?;
        let me = identity("master", NodeKind::Master);
        let (mut conn, peer) = respond(stream, &me, &cookie(), &hs()).await?;
        // One frame each way proves the stream carries frames after it.
        let got = conn.next().await.expect("a frame")?;
        assert_eq!(
            got,
            Msg::Request {
                id: 1,
                body: Request::Ping
            }
        );
        conn.send(Msg::Request {
            id: 2,
            body: Request::Ping,
        })
        .await?;
        Ok::<_, Error>(peer)
    });
    let client = async {
        let tcp = TcpStream::connect(&addr).await?;
        let stream = tls::connect(client_tls.as_ref(), tcp, &addr).await?;
        let me = identity("w1", NodeKind::Worker);
        let (mut conn, peer) = initiate(stream, &me, &cookie(), &hs()).await?;
        conn.send(Msg::Request {
            id: 1,
            body: Request::Ping,
        })
        .await?;
        let back = conn.next().await.expect("a frame")?;
        assert!(matches!(back, Msg::Request { id: 2, .. }));
        assert_eq!(conn.get_ref().is_tls(), client_tls.is_some());
        Ok::<_, Error>(peer)
    };
    let client = tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .expect("the client finishes");
    let server = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server finishes")
        .unwrap();
    (server, client)
}

/// Both sides present certificates signed by the pool's CA (the server's
/// names 127.0.0.1, the address dialled): the TLS handshake, the cookie
/// handshake inside it and frames after it all work.
#[tokio::test]
async fn mutual_tls_carries_the_handshake_and_frames() {
    let ca = Ca::new("pool CA");
    let (server, client) = connect_pair(
        Some(ca.config(&["127.0.0.1"])),
        Some(ca.config(&["127.0.0.1"])),
    )
    .await;
    assert_eq!(server.unwrap().name, "w1");
    assert_eq!(client.unwrap().name, "master");
}

/// Without TLS on either side everything works as before, over the same
/// `Stream` type.
#[tokio::test]
async fn plaintext_on_both_sides_still_works() {
    let (server, client) = connect_pair(None, None).await;
    assert_eq!(server.unwrap().name, "w1");
    assert_eq!(client.unwrap().name, "master");
}

/// A client whose certificate is signed by another CA is refused by the
/// server, which says the certificate is not signed by its CA; the client
/// learns that the peer refused its certificate.
#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let ca = Ca::new("pool CA");
    let rogue = Ca::new("rogue CA");
    // The rogue node trusts the pool's CA (so it accepts the server) but
    // its own certificate is signed by the rogue CA.
    let (cert, key) = rogue.node(&["127.0.0.1"]);
    let rogue_cfg =
        TlsConfig::from_pem(cert.as_bytes(), key.as_bytes(), ca.pem.as_bytes()).unwrap();
    let (server, client) = connect_pair(Some(ca.config(&["127.0.0.1"])), Some(rogue_cfg)).await;
    let server = server.unwrap_err();
    assert!(
        matches!(
            server,
            Error::Tls {
                permanent: true,
                ..
            }
        ),
        "{server:?}"
    );
    let text = server.to_string();
    assert!(
        text.contains("UnknownIssuer") && text.contains("not signed by the CA"),
        "{text}"
    );
    let client = client.unwrap_err().to_string();
    assert!(
        client.contains("UnknownCA") && client.contains("refused our certificate"),
        "{client}"
    );

    // A node that trusts only the rogue CA refuses the pool's server.
    let (server, client) = connect_pair(
        Some(ca.config(&["127.0.0.1"])),
        Some(rogue.config(&["127.0.0.1"])),
    )
    .await;
    assert!(server.is_err());
    let client = client.unwrap_err().to_string();
    assert!(
        client.contains("UnknownIssuer") && client.contains("not signed by the CA"),
        "{client}"
    );
}

/// The server's certificate must name the address the client dialled.
#[tokio::test]
async fn a_server_certificate_for_another_address_is_refused() {
    let ca = Ca::new("pool CA");
    let (server, client) = connect_pair(
        Some(ca.config(&["10.1.2.3", "node9.example"])),
        Some(ca.config(&["127.0.0.1"])),
    )
    .await;
    assert!(server.is_err());
    let client = client.unwrap_err().to_string();
    assert!(
        client.contains("not valid for name") && client.contains("subjectAltName"),
        "{client}"
    );
}

/// A plaintext node dialling a TLS node is refused by it ("does not speak
/// TLS"), and itself learns that the peer speaks TLS; a TLS node dialling
/// a plaintext node is refused with the same diagnosis on the plaintext
/// side.
#[tokio::test]
async fn plaintext_and_tls_do_not_mix() {
    let ca = Ca::new("pool CA");
    let (server, client) = connect_pair(Some(ca.config(&["127.0.0.1"])), None).await;
    let server = server.unwrap_err().to_string();
    assert!(server.contains("does not speak TLS"), "{server}");
    let client = client.unwrap_err();
    assert!(
        matches!(client, Error::PeerSpeaksTls | Error::HandshakeClosed { .. }),
        "{client:?}"
    );

    let (server, client) = connect_pair(None, Some(ca.config(&["127.0.0.1"]))).await;
    let server = server.unwrap_err();
    assert!(matches!(server, Error::PeerSpeaksTls), "{server:?}");
    assert!(client.is_err());
}

/// A peer that connects and says nothing holds the TLS accept only as long
/// as the caller's bound (the handshake timeout wraps both).
#[tokio::test]
async fn a_silent_peer_does_not_hold_the_tls_accept() {
    let ca = Ca::new("pool CA");
    let cfg = ca.config(&["127.0.0.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = TcpStream::connect(addr).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(300), cfg.accept(tcp)).await;
    assert!(
        r.is_err(),
        "the accept waits for the peer; the caller's timeout ends it"
    );
}

/// Missing, empty and mismatched files are refused with the file named and
/// what is wrong with it.
#[test]
fn bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("pool CA");
    let (cert, key) = ca.node(&["127.0.0.1"]);
    let (_, other_key) = ca.node(&["127.0.0.1"]);
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cert_p = write("node.pem", &cert);
    let key_p = write("node.key", &key);
    let ca_p = write("ca.pem", &ca.pem);
    let other_key_p = write("other.key", &other_key);
    let junk_p = write("junk.pem", "hello\n");
    let missing = dir.path().join("missing.pem");

    let load = |c: &Path, k: &Path, a: &Path| TlsConfig::from_files(c, k, a).map(drop);
    load(&cert_p, &key_p, &ca_p).unwrap();

    let e = load(&missing, &key_p, &ca_p).unwrap_err().to_string();
    assert!(
        e.contains("missing.pem") && e.contains("--tls-cert") && e.contains("cannot read"),
        "{e}"
    );
    let e = load(&cert_p, &junk_p, &ca_p).unwrap_err().to_string();
    assert!(
        e.contains("junk.pem") && e.contains("--tls-key") && e.contains("no private key"),
        "{e}"
    );
    let e = load(&cert_p, &key_p, &junk_p).unwrap_err().to_string();
    assert!(
        e.contains("junk.pem") && e.contains("--tls-ca") && e.contains("no certificate"),
        "{e}"
    );
    let e = load(&key_p, &key_p, &ca_p).unwrap_err().to_string();
    assert!(e.contains("node.key") && e.contains("--tls-cert"), "{e}");
    let e = load(&cert_p, &other_key_p, &ca_p).unwrap_err().to_string();
    assert!(
        e.contains("node.pem") && e.contains("other.key") && e.contains("do not go together"),
        "{e}"
    );

    let files = TlsFiles {
        cert: Some(cert_p),
        key: Some(key_p),
        ca: Some(ca_p),
    };
    assert!(files.load().unwrap().is_some());
}

/// `Stream` is the type the daemons read and write.
#[tokio::test]
async fn stream_reports_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let s = Stream::Plain(tcp);
    assert!(!s.is_tls());
    assert!(s.tcp().peer_addr().is_ok());
}
