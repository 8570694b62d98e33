//! The connection handshake, over in-memory streams (`tokio::io::duplex`)
//! and through the pure state machines: success, wrong cookie, wrong
//! version, silence, early close, out-of-order messages, replay and
//! reflection.

use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use pool_proto::handshake::{
    Connection, DEFAULT_HANDSHAKE_TIMEOUT, HandshakeMsg, Initiator, NONCE_LEN, RefuseReason,
    Responder, Step, initiate, respond,
};
use pool_proto::{
    Codec, Cookie, Dest, Error, HandshakeConfig, Identity, Msg, MsgKind, NodeId, NodeKind,
    PROTOCOL_VERSION, Payload, Pid, Request, Response, SendMsg,
};
use tokio::io::{AsyncWriteExt, DuplexStream, duplex};
use tokio::time::Instant;
use tokio_util::codec::Framed;

/// Room in each direction of the in-memory pipe: more than any handshake.
const PIPE: usize = 64 * 1024;

fn cookie(secret: &str) -> Cookie {
    Cookie::new(secret, "test").expect("test cookies are not empty")
}

fn identity(name: &str, kind: NodeKind) -> Identity {
    Identity {
        node: NodeId::random(),
        name: name.to_owned(),
        kind,
    }
}

fn worker() -> Identity {
    identity("w1", NodeKind::Worker)
}

fn master() -> Identity {
    identity("master", NodeKind::Master)
}

/// What `initiate` and `respond` return over the in-memory pipe.
type Outcome = Result<(Connection<DuplexStream>, Identity), Error>;

/// `initiate` with owned arguments, so a test can build them inline.
async fn initiate_as(
    io: DuplexStream,
    me: Identity,
    secret: Cookie,
    config: HandshakeConfig,
) -> Outcome {
    initiate(io, &me, &secret, &config).await
}

/// `respond` with owned arguments.
async fn respond_as(
    io: DuplexStream,
    me: Identity,
    secret: Cookie,
    config: HandshakeConfig,
) -> Outcome {
    respond(io, &me, &secret, &config).await
}

/// A message-phase frame to send after the handshake.
fn ping(id: u64) -> Msg {
    Msg::Request {
        id,
        body: Request::Ping,
    }
}

fn send_to(pid: Pid, text: &str) -> Msg {
    Msg::Send(SendMsg {
        to: Dest::Pid(pid),
        from: None,
        kind: MsgKind::Plain,
        payload: Payload::encode(text).expect("strings encode"),
        trace: None,
    })
}

/// A peer that speaks the handshake frames by hand.
type RawPeer = Framed<DuplexStream, Codec<HandshakeMsg>>;

fn raw(io: DuplexStream) -> RawPeer {
    Framed::new(io, Codec::new())
}

/// The next handshake frame from a raw peer's point of view.
async fn recv(peer: &mut RawPeer) -> HandshakeMsg {
    match peer.next().await {
        Some(Ok(msg)) => msg,
        other => panic!("expected a handshake frame, got {other:?}"),
    }
}

/// The next message-phase frame on an established connection.
async fn recv_msg(conn: &mut Connection<DuplexStream>) -> Msg {
    match conn.next().await {
        Some(Ok(msg)) => msg,
        other => panic!("expected a message frame, got {other:?}"),
    }
}

/// Writes `frames` to the raw peer's stream in a single write, so that the
/// other side receives them in one read.
async fn write_at_once(peer: &mut RawPeer, frames: &[&[u8]]) {
    let bytes: Vec<u8> = frames.concat();
    peer.get_mut()
        .write_all(&bytes)
        .await
        .expect("the pipe has room");
}

fn handshake_frame(msg: &HandshakeMsg) -> Vec<u8> {
    let mut buf = BytesMut::new();
    Codec::<HandshakeMsg>::new()
        .encode_into(msg, &mut buf)
        .expect("handshake messages encode");
    buf.to_vec()
}

fn msg_frame(msg: &Msg) -> Vec<u8> {
    let mut buf = BytesMut::new();
    Codec::<Msg>::new()
        .encode_into(msg, &mut buf)
        .expect("messages encode");
    buf.to_vec()
}

fn assert_bad_cookie(side: &str, result: Result<impl std::fmt::Debug, Error>) {
    match result {
        Err(e @ Error::BadCookie { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("POOL_COOKIE"),
                "{side}: the message should say where the cookie comes from: {text}"
            );
        }
        other => panic!("{side}: expected BadCookie, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Over a stream.

/// Two nodes with the same cookie authenticate each other, each learns the
/// other's identity, and the returned connections carry `Msg` frames both
/// ways.
#[tokio::test]
async fn equal_cookies_authenticate_and_carry_messages_both_ways() {
    let (a_io, b_io) = duplex(PIPE);
    let (a, b) = (worker(), master());
    let secret = cookie("same secret");
    let config = HandshakeConfig::default();
    let (initiated, responded) = tokio::join!(
        initiate(a_io, &a, &secret, &config),
        respond(b_io, &b, &secret, &config)
    );
    let (mut a_conn, a_saw) = initiated.expect("initiator completes");
    let (mut b_conn, b_saw) = responded.expect("responder completes");
    assert_eq!(a_saw, b, "the initiator learns the responder's identity");
    assert_eq!(b_saw, a, "the responder learns the initiator's identity");

    a_conn.send(ping(1)).await.expect("send a -> b");
    assert_eq!(recv_msg(&mut b_conn).await, ping(1));
    let reply = Msg::Response {
        id: 1,
        body: Response::Pong,
    };
    b_conn.send(reply.clone()).await.expect("send b -> a");
    assert_eq!(recv_msg(&mut a_conn).await, reply);

    // The connections use the configured frame limit.
    assert_eq!(a_conn.codec().max_frame_len(), config.max_frame_len);
    assert_eq!(b_conn.codec().max_frame_len(), config.max_frame_len);
}

/// Frames the responder sends in the same write as its `Accepted` reach the
/// initiator's connection: the bytes read past the handshake are kept.
#[tokio::test]
async fn frames_sent_with_accepted_reach_the_initiator() {
    let (a_io, b_io) = duplex(PIPE);
    let (a, b) = (worker(), master());
    let secret = cookie("s");
    let pid = Pid::new(b.node, 1);
    let early = [send_to(pid, "first"), send_to(pid, "second")];

    let responder = async {
        let mut peer = raw(b_io);
        let mut machine = Responder::new(b.clone(), secret.clone());
        let Step::Send(challenge) = machine.on_message(recv(&mut peer).await) else {
            panic!("responder refused a valid hello")
        };
        peer.send(challenge).await.expect("send challenge");
        let Step::Done {
            send: Some(accepted),
            ..
        } = machine.on_message(recv(&mut peer).await)
        else {
            panic!("responder refused a valid proof")
        };
        let frames = [
            handshake_frame(&accepted),
            msg_frame(&early[0]),
            msg_frame(&early[1]),
        ];
        write_at_once(&mut peer, &[&frames[0], &frames[1], &frames[2]]).await;
        peer
    };
    let (initiated, _peer) = tokio::join!(
        initiate_as(a_io, a.clone(), secret.clone(), HandshakeConfig::default()),
        responder
    );
    let (mut conn, peer_id) = initiated.expect("initiator completes");
    assert_eq!(peer_id, b);
    assert_eq!(recv_msg(&mut conn).await, early[0]);
    assert_eq!(recv_msg(&mut conn).await, early[1]);
}

/// Frames the initiator sends in the same write as its `Proof` reach the
/// responder's connection once the handshake is done.
#[tokio::test]
async fn frames_sent_with_the_proof_reach_the_responder() {
    let (a_io, b_io) = duplex(PIPE);
    let (a, b) = (worker(), master());
    let secret = cookie("s");
    let early = send_to(Pid::new(b.node, 9), "right after the proof");

    let initiator = async {
        let mut peer = raw(a_io);
        let (mut machine, hello) = Initiator::new(a.clone(), secret.clone());
        peer.send(hello).await.expect("send hello");
        let Step::Send(proof) = machine.on_message(recv(&mut peer).await) else {
            panic!("initiator refused a valid challenge")
        };
        write_at_once(&mut peer, &[&handshake_frame(&proof), &msg_frame(&early)]).await;
        let accepted = recv(&mut peer).await;
        assert!(matches!(machine.on_message(accepted), Step::Done { .. }));
        peer
    };
    let (responded, _peer) = tokio::join!(
        respond_as(b_io, b.clone(), secret.clone(), HandshakeConfig::default()),
        initiator
    );
    let (mut conn, peer_id) = responded.expect("responder completes");
    assert_eq!(peer_id, a);
    assert_eq!(recv_msg(&mut conn).await, early);
}

/// An initiator with a different cookie fails with `BadCookie` on both
/// sides, and both errors say how to fix it.
#[tokio::test]
async fn a_different_cookie_on_the_initiator_fails_both_sides() {
    let (a_io, b_io) = duplex(PIPE);
    let config = HandshakeConfig::default();
    let (initiated, responded) = tokio::join!(
        initiate_as(a_io, worker(), cookie("wrong"), config.clone()),
        respond_as(b_io, master(), cookie("right"), config.clone())
    );
    assert_bad_cookie("initiator", initiated);
    assert_bad_cookie("responder", responded);
}

/// A responder with a different cookie fails with `BadCookie` on both
/// sides.
#[tokio::test]
async fn a_different_cookie_on_the_responder_fails_both_sides() {
    let (a_io, b_io) = duplex(PIPE);
    let config = HandshakeConfig::default();
    let (initiated, responded) = tokio::join!(
        initiate_as(a_io, worker(), cookie("right"), config.clone()),
        respond_as(b_io, master(), cookie("wrong"), config.clone())
    );
    assert_bad_cookie("initiator", initiated);
    assert_bad_cookie("responder", responded);
}

/// A peer that answers the challenge with a forged proof (it does not know
/// the cookie) is refused with `BadCookie`, and is told so.
#[tokio::test]
async fn a_forged_proof_is_refused_and_the_peer_told() {
    let (a_io, b_io) = duplex(PIPE);
    let b = master();
    let attacker = async {
        let mut peer = raw(a_io);
        let (_machine, hello) = Initiator::new(worker(), cookie("unknown to the attacker"));
        peer.send(hello).await.expect("send hello");
        assert!(matches!(
            recv(&mut peer).await,
            HandshakeMsg::Challenge { .. }
        ));
        peer.send(HandshakeMsg::Proof {
            proof: vec![0xab; NONCE_LEN],
        })
        .await
        .expect("send proof");
        recv(&mut peer).await
    };
    let (responded, told) = tokio::join!(
        respond_as(
            b_io,
            b.clone(),
            cookie("secret"),
            HandshakeConfig::default()
        ),
        attacker
    );
    assert_bad_cookie("responder", responded);
    assert_eq!(told, HandshakeMsg::Refused(RefuseReason::BadCookie));
}

/// A `Hello` of another protocol version is refused with `VersionMismatch`
/// (both versions named) and the peer receives `Refused(VersionMismatch)`
/// carrying ours.
#[tokio::test]
async fn a_hello_of_another_version_is_refused() {
    let (a_io, b_io) = duplex(PIPE);
    let peer_side = async {
        let mut peer = raw(a_io);
        peer.send(HandshakeMsg::Hello {
            version: PROTOCOL_VERSION + 1,
            id: worker(),
            nonce: vec![7; NONCE_LEN],
        })
        .await
        .expect("send hello");
        recv(&mut peer).await
    };
    let (responded, told) = tokio::join!(
        respond_as(b_io, master(), cookie("s"), HandshakeConfig::default()),
        peer_side
    );
    match responded {
        Err(Error::VersionMismatch { ours, theirs }) => {
            assert_eq!((ours, theirs), (PROTOCOL_VERSION, PROTOCOL_VERSION + 1));
        }
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    assert_eq!(
        told,
        HandshakeMsg::Refused(RefuseReason::VersionMismatch {
            version: PROTOCOL_VERSION
        })
    );
}

/// A `Challenge` of another protocol version is refused by the initiator in
/// the same way.
#[tokio::test]
async fn a_challenge_of_another_version_is_refused() {
    let (a_io, b_io) = duplex(PIPE);
    let peer_side = async {
        let mut peer = raw(b_io);
        assert!(matches!(recv(&mut peer).await, HandshakeMsg::Hello { .. }));
        peer.send(HandshakeMsg::Challenge {
            version: PROTOCOL_VERSION + 1,
            id: master(),
            nonce: vec![7; NONCE_LEN],
            proof: vec![0; NONCE_LEN],
        })
        .await
        .expect("send challenge");
        recv(&mut peer).await
    };
    let (initiated, told) = tokio::join!(
        initiate_as(a_io, worker(), cookie("s"), HandshakeConfig::default()),
        peer_side
    );
    assert!(
        matches!(
            initiated,
            Err(Error::VersionMismatch { ours, theirs })
                if ours == PROTOCOL_VERSION && theirs == PROTOCOL_VERSION + 1
        ),
        "{initiated:?}"
    );
    assert_eq!(
        told,
        HandshakeMsg::Refused(RefuseReason::VersionMismatch {
            version: PROTOCOL_VERSION
        })
    );
}

/// A refusal received from the peer becomes the matching error: a version
/// refusal names the peer's version, any other reason is passed on.
#[tokio::test]
async fn a_refusal_from_the_peer_becomes_the_matching_error() {
    let cases = [
        (
            RefuseReason::VersionMismatch { version: 3 },
            "VersionMismatch",
        ),
        (RefuseReason::BadCookie, "BadCookie"),
        (RefuseReason::Other("node name taken".into()), "Refused"),
    ];
    for (reason, expected) in cases {
        let (a_io, b_io) = duplex(PIPE);
        let refuser = async {
            let mut peer = raw(b_io);
            recv(&mut peer).await;
            peer.send(HandshakeMsg::Refused(reason.clone()))
                .await
                .expect("send refusal");
            peer
        };
        let (initiated, _peer) = tokio::join!(
            initiate_as(a_io, worker(), cookie("s"), HandshakeConfig::default()),
            refuser
        );
        let ok = match &initiated {
            Err(Error::VersionMismatch { theirs: 3, .. }) => expected == "VersionMismatch",
            Err(Error::BadCookie { .. }) => expected == "BadCookie",
            Err(Error::Refused { reason }) => expected == "Refused" && reason == "node name taken",
            _ => false,
        };
        assert!(ok, "{reason:?} gave {initiated:?}");
    }
}

/// A peer that connects and says nothing makes the responder give up with
/// `HandshakeTimeout` after the configured time (paused clock: instant).
#[tokio::test(start_paused = true)]
async fn a_silent_initiator_times_out_the_responder() {
    let (_silent, b_io) = duplex(PIPE);
    let start = Instant::now();
    let result = respond_as(b_io, master(), cookie("s"), HandshakeConfig::default()).await;
    match result {
        Err(Error::HandshakeTimeout { after, stage }) => {
            assert_eq!(after, DEFAULT_HANDSHAKE_TIMEOUT);
            assert!(stage.contains("hello"), "stage: {stage}");
        }
        other => panic!("expected HandshakeTimeout, got {other:?}"),
    }
    assert_eq!(start.elapsed(), DEFAULT_HANDSHAKE_TIMEOUT);
}

/// A responder that reads the hello and never answers makes the initiator
/// give up with `HandshakeTimeout` after the configured time.
#[tokio::test(start_paused = true)]
async fn a_silent_responder_times_out_the_initiator() {
    let (a_io, b_io) = duplex(PIPE);
    let config = HandshakeConfig {
        timeout: Duration::from_millis(750),
        ..HandshakeConfig::default()
    };
    let start = Instant::now();
    let silent = async {
        let mut peer = raw(b_io);
        recv(&mut peer).await;
        peer
    };
    let (result, _peer) = tokio::join!(
        initiate_as(a_io, worker(), cookie("s"), config.clone()),
        silent
    );
    match result {
        Err(Error::HandshakeTimeout { after, stage }) => {
            assert_eq!(after, config.timeout);
            assert!(stage.contains("challenge"), "stage: {stage}");
        }
        other => panic!("expected HandshakeTimeout, got {other:?}"),
    }
    assert_eq!(start.elapsed(), config.timeout);
}

/// A peer that closes after its hello (before its proof) gives the
/// responder `HandshakeClosed`, naming what it was waiting for.
#[tokio::test]
async fn an_initiator_closing_mid_handshake_gives_handshake_closed() {
    let (a_io, b_io) = duplex(PIPE);
    let quitter = async {
        let mut peer = raw(a_io);
        let (_machine, hello) = Initiator::new(worker(), cookie("s"));
        peer.send(hello).await.expect("send hello");
        // Close our sending half; keep reading so the challenge lands.
        peer.get_mut().shutdown().await.expect("shut down writes");
        recv(&mut peer).await
    };
    let (result, got) = tokio::join!(
        respond_as(b_io, master(), cookie("s"), HandshakeConfig::default()),
        quitter
    );
    assert!(matches!(got, HandshakeMsg::Challenge { .. }));
    match result {
        Err(Error::HandshakeClosed { stage }) => assert!(stage.contains("proof"), "{stage}"),
        other => panic!("expected HandshakeClosed, got {other:?}"),
    }
}

/// A responder that hangs up after reading the hello gives the initiator
/// `HandshakeClosed`.
#[tokio::test]
async fn a_responder_closing_mid_handshake_gives_handshake_closed() {
    let (a_io, b_io) = duplex(PIPE);
    let quitter = async {
        let mut peer = raw(b_io);
        recv(&mut peer).await;
        drop(peer);
    };
    let (result, ()) = tokio::join!(
        initiate_as(a_io, worker(), cookie("s"), HandshakeConfig::default()),
        quitter
    );
    match result {
        Err(Error::HandshakeClosed { stage }) => {
            assert!(stage.contains("challenge"), "{stage}")
        }
        other => panic!("expected HandshakeClosed, got {other:?}"),
    }
}

/// A proof before any hello is a protocol error; the peer is told why.
#[tokio::test]
async fn a_proof_before_the_hello_is_a_protocol_error() {
    let (a_io, b_io) = duplex(PIPE);
    let peer_side = async {
        let mut peer = raw(a_io);
        peer.send(HandshakeMsg::Proof {
            proof: vec![0; NONCE_LEN],
        })
        .await
        .expect("send proof");
        recv(&mut peer).await
    };
    let (result, told) = tokio::join!(
        respond_as(b_io, master(), cookie("s"), HandshakeConfig::default()),
        peer_side
    );
    match result {
        Err(Error::HandshakeProtocol { expected, got }) => {
            assert_eq!((expected, got.as_str()), ("Hello", "Proof"));
        }
        other => panic!("expected HandshakeProtocol, got {other:?}"),
    }
    assert!(
        matches!(&told, HandshakeMsg::Refused(RefuseReason::Other(why)) if why.contains("Hello")),
        "{told:?}"
    );
}

/// `Accepted` in answer to a hello (skipping the challenge) is a protocol
/// error for the initiator: a responder cannot skip proving itself.
#[tokio::test]
async fn accepted_without_a_challenge_is_a_protocol_error() {
    let (a_io, b_io) = duplex(PIPE);
    let peer_side = async {
        let mut peer = raw(b_io);
        recv(&mut peer).await;
        peer.send(HandshakeMsg::Accepted).await.expect("send");
        recv(&mut peer).await
    };
    let (result, told) = tokio::join!(
        initiate_as(a_io, worker(), cookie("s"), HandshakeConfig::default()),
        peer_side
    );
    match result {
        Err(Error::HandshakeProtocol { expected, got }) => {
            assert_eq!((expected, got.as_str()), ("Challenge", "Accepted"));
        }
        other => panic!("expected HandshakeProtocol, got {other:?}"),
    }
    assert!(matches!(
        told,
        HandshakeMsg::Refused(RefuseReason::Other(_))
    ));
}

/// A message-phase frame where a handshake frame belongs is a decode error,
/// not a crash or a hang.
#[tokio::test]
async fn a_message_frame_during_the_handshake_is_a_decode_error() {
    let (a_io, b_io) = duplex(PIPE);
    let peer_side = async {
        let mut peer = raw(a_io);
        write_at_once(&mut peer, &[&msg_frame(&ping(1))]).await;
        peer
    };
    let (result, _peer) = tokio::join!(
        respond_as(b_io, master(), cookie("s"), HandshakeConfig::default()),
        peer_side
    );
    assert!(matches!(result, Err(Error::Decode { .. })), "{result:?}");
}

// ---------------------------------------------------------------------------
// The pure state machines.

/// Runs a full honest handshake between two machines and returns every
/// message exchanged: (hello, challenge, proof, accepted).
fn honest_exchange(
    a: &Identity,
    b: &Identity,
    secret: &Cookie,
) -> (HandshakeMsg, HandshakeMsg, HandshakeMsg, HandshakeMsg) {
    let (mut init, hello) = Initiator::new(a.clone(), secret.clone());
    let mut resp = Responder::new(b.clone(), secret.clone());
    let Step::Send(challenge) = resp.on_message(hello.clone()) else {
        panic!("responder refused an honest hello")
    };
    let Step::Send(proof) = init.on_message(challenge.clone()) else {
        panic!("initiator refused an honest challenge")
    };
    let Step::Done {
        send: Some(accepted),
        peer,
    } = resp.on_message(proof.clone())
    else {
        panic!("responder refused an honest proof")
    };
    assert_eq!(&peer, a);
    let Step::Done { peer, send: None } = init.on_message(accepted.clone()) else {
        panic!("initiator refused Accepted")
    };
    assert_eq!(&peer, b);
    (hello, challenge, proof, accepted)
}

fn nonce_of(msg: &HandshakeMsg) -> &[u8] {
    match msg {
        HandshakeMsg::Hello { nonce, .. } | HandshakeMsg::Challenge { nonce, .. } => nonce,
        other => panic!("{other:?} has no nonce"),
    }
}

/// Fails unless `step` is a failure with `BadCookie` and a `Refused` to
/// send.
fn assert_refused_bad_cookie(what: &str, step: Step) {
    match step {
        Step::Failed {
            send: Some(HandshakeMsg::Refused(RefuseReason::BadCookie)),
            error: Error::BadCookie { .. },
        } => {}
        other => panic!("{what}: expected a BadCookie refusal, got {other:?}"),
    }
}

/// Each handshake uses fresh random nonces on both sides, so no two
/// handshakes ask the same question.
#[test]
fn nonces_are_fresh_in_every_handshake() {
    let (a, b, secret) = (worker(), master(), cookie("s"));
    let (hello1, challenge1, ..) = honest_exchange(&a, &b, &secret);
    let (hello2, challenge2, ..) = honest_exchange(&a, &b, &secret);
    assert_eq!(nonce_of(&hello1).len(), NONCE_LEN);
    assert_ne!(nonce_of(&hello1), nonce_of(&hello2));
    assert_ne!(nonce_of(&challenge1), nonce_of(&challenge2));
    assert_ne!(nonce_of(&hello1), nonce_of(&challenge1));
}

/// A recorded handshake cannot be replayed: an attacker who replays the
/// initiator's hello and then its proof to a new responder (same node, same
/// cookie) gets a fresh challenge, and the old proof fails it.
#[test]
fn a_replayed_proof_is_refused() {
    let (a, b, secret) = (worker(), master(), cookie("s"));
    let (hello, _challenge, proof, _accepted) = honest_exchange(&a, &b, &secret);

    let mut victim = Responder::new(b.clone(), secret.clone());
    let Step::Send(fresh) = victim.on_message(hello) else {
        panic!("the replayed hello itself is well-formed and gets a challenge")
    };
    assert!(matches!(fresh, HandshakeMsg::Challenge { .. }));
    assert_refused_bad_cookie("replayed proof", victim.on_message(proof));
}

/// A responder's proof sent back to it as the initiator's proof (reflected
/// to its maker) is refused: the role and the nonce order are in the MAC.
#[test]
fn a_responders_own_proof_reflected_back_is_refused() {
    let (b, secret) = (master(), cookie("s"));
    let mut victim = Responder::new(b, secret);
    let Step::Send(HandshakeMsg::Challenge { proof, .. }) =
        victim.on_message(HandshakeMsg::Hello {
            version: PROTOCOL_VERSION,
            id: worker(),
            nonce: vec![1; NONCE_LEN],
        })
    else {
        panic!("a well-formed hello gets a challenge")
    };
    assert_refused_bad_cookie(
        "reflected proof",
        victim.on_message(HandshakeMsg::Proof { proof }),
    );
}

/// An attacker without the cookie cannot answer a node's hello by
/// reflecting it to that same node's responder and relaying the resulting
/// challenge back: the identities are bound in order into the MAC.
#[test]
fn a_challenge_reflected_through_the_victims_own_responder_is_refused() {
    let (a, secret) = (worker(), cookie("s"));
    let claimed = master();
    let (mut victim_out, hello) = Initiator::new(a.clone(), secret.clone());
    let mut victim_in = Responder::new(a.clone(), secret.clone());

    // Reflect the victim's nonce into its own responder, claiming to be B.
    let Step::Send(HandshakeMsg::Challenge {
        nonce,
        proof,
        version,
        ..
    }) = victim_in.on_message(HandshakeMsg::Hello {
        version: PROTOCOL_VERSION,
        id: claimed.clone(),
        nonce: nonce_of(&hello).to_vec(),
    })
    else {
        panic!("a well-formed hello gets a challenge")
    };
    // Relay the victim's own proof back to it, still claiming to be B.
    let relayed = HandshakeMsg::Challenge {
        version,
        id: claimed,
        nonce,
        proof,
    };
    assert_refused_bad_cookie("reflected challenge", victim_out.on_message(relayed));
}

/// An attacker without the cookie who relays a node's hello to that same
/// node's responder, and everything back and forth between the two, would
/// make the two MAC inputs identical (both identities are the node's own).
/// A node therefore never accepts a handshake in its own name: the
/// responder refuses the relayed hello, and the initiator refuses a
/// challenge in its own name, whatever proof it carries.
#[test]
fn a_handshake_relayed_between_a_node_and_itself_is_refused() {
    let (a, secret) = (worker(), cookie("s"));
    let (mut victim_out, hello) = Initiator::new(a.clone(), secret.clone());
    let mut victim_in = Responder::new(a.clone(), secret);

    let step = victim_in.on_message(hello);
    match step {
        Step::Failed {
            error: Error::Impostor { claimed, .. },
            send: Some(HandshakeMsg::Refused(RefuseReason::Other(why))),
        } => {
            assert_eq!(claimed, a.node);
            assert!(why.contains("own id"), "{why}");
        }
        other => panic!("the responder accepted a hello in its own name: {other:?}"),
    }

    let step = victim_out.on_message(HandshakeMsg::Challenge {
        version: PROTOCOL_VERSION,
        id: a.clone(),
        nonce: vec![2; NONCE_LEN],
        proof: vec![3; NONCE_LEN],
    });
    assert!(
        matches!(step, Step::Failed { error: Error::Impostor { claimed, .. }, .. } if claimed == a.node),
        "the initiator accepted a challenge in its own name: {step:?}"
    );
}

/// A nonce of the wrong length is a protocol error on either side.
#[test]
fn a_nonce_of_the_wrong_length_is_a_protocol_error() {
    let mut resp = Responder::new(master(), cookie("s"));
    let step = resp.on_message(HandshakeMsg::Hello {
        version: PROTOCOL_VERSION,
        id: worker(),
        nonce: vec![0; 8],
    });
    assert!(
        matches!(
            step,
            Step::Failed {
                error: Error::HandshakeProtocol { .. },
                send: Some(_)
            }
        ),
        "{step:?}"
    );

    let (mut init, _hello) = Initiator::new(worker(), cookie("s"));
    let step = init.on_message(HandshakeMsg::Challenge {
        version: PROTOCOL_VERSION,
        id: master(),
        nonce: vec![],
        proof: vec![0; NONCE_LEN],
    });
    assert!(
        matches!(
            step,
            Step::Failed {
                error: Error::HandshakeProtocol { .. },
                send: Some(_)
            }
        ),
        "{step:?}"
    );
}

/// Repeating a step or talking after the end is a protocol error: a second
/// hello to a responder waiting for a proof, anything after `Done`.
#[test]
fn messages_out_of_order_are_protocol_errors() {
    let (a, b, secret) = (worker(), master(), cookie("s"));
    let (mut init, hello) = Initiator::new(a.clone(), secret.clone());
    let mut resp = Responder::new(b, secret);
    let Step::Send(challenge) = resp.on_message(hello.clone()) else {
        panic!("honest hello refused")
    };
    let step = resp.on_message(hello.clone());
    assert!(
        matches!(&step, Step::Failed { error: Error::HandshakeProtocol { expected: "Proof", got }, .. } if got == "Hello"),
        "{step:?}"
    );

    let Step::Send(_proof) = init.on_message(challenge.clone()) else {
        panic!("honest challenge refused")
    };
    let step = init.on_message(challenge);
    assert!(
        matches!(&step, Step::Failed { error: Error::HandshakeProtocol { expected: "Accepted", got }, .. } if got == "Challenge"),
        "{step:?}"
    );
    let step = init.on_message(HandshakeMsg::Accepted);
    assert!(
        matches!(
            &step,
            Step::Failed {
                error: Error::HandshakeProtocol { .. },
                ..
            }
        ),
        "a machine that failed must not accept later: {step:?}"
    );
}

// ---------------------------------------------------------------------------
// Peers that speak HTTP, and the cookie's source.

/// An initiator whose peer answers with an HTTP status line (the master's
/// HTTP port given as its node port) fails with `PeerSpeaksHttp`, whose
/// message says which port `--master` takes, instead of a frame of
/// 1213486160 bytes (the bytes "HTTP" read as a length).
#[tokio::test]
async fn an_http_answer_is_said_as_http() {
    let (a_io, mut b_io) = duplex(PIPE);
    let http = async move {
        b_io.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await
            .expect("the pipe takes the answer");
        b_io
    };
    let (initiated, _b) = tokio::join!(
        initiate_as(a_io, worker(), cookie("c"), HandshakeConfig::default()),
        http
    );
    match initiated {
        Err(e @ Error::PeerSpeaksHttp { .. }) => {
            let text = e.to_string();
            assert!(text.contains("answered in HTTP"), "{text}");
            assert!(text.contains("--master"), "{text}");
            assert!(!text.contains("1213486160"), "{text}");
        }
        other => panic!("expected PeerSpeaksHttp, got {other:?}"),
    }
}

/// A responder that receives an HTTP request (curl or a browser at a node
/// port) fails with `HttpRequest`, which says where the HTTP API is.
#[tokio::test]
async fn an_http_request_at_a_node_port_is_said_as_http() {
    let (mut a_io, b_io) = duplex(PIPE);
    let request = async move {
        a_io.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("the pipe takes the request");
        a_io
    };
    let (responded, _a) = tokio::join!(
        respond_as(b_io, master(), cookie("c"), HandshakeConfig::default()),
        request
    );
    match responded {
        Err(e @ Error::HttpRequest) => assert!(e.to_string().contains("--http"), "{e}"),
        other => panic!("expected HttpRequest, got {other:?}"),
    }
}

/// A wrong cookie is said as "the cookies differ" on both sides, each
/// naming where its own cookie came from.
#[tokio::test]
async fn a_wrong_cookie_names_each_sides_cookie_source() {
    let (a_io, b_io) = duplex(PIPE);
    let config = HandshakeConfig::default();
    let ours = Cookie::new("one", "/etc/a/cookie").unwrap();
    let theirs = Cookie::new("two", "POOL_COOKIE").unwrap();
    let (initiated, responded) = tokio::join!(
        initiate_as(a_io, worker(), ours, config.clone()),
        respond_as(b_io, master(), theirs, config.clone())
    );
    let text = |r: Result<_, Error>| match r {
        Err(e @ Error::BadCookie { .. }) => e.to_string(),
        other => panic!("expected BadCookie, got {:?}", other.map(|_| ())),
    };
    let (i, r) = (text(initiated.map(|_| ())), text(responded.map(|_| ())));
    assert!(
        i.contains("the cookies differ") && i.contains("from /etc/a/cookie"),
        "{i}"
    );
    assert!(
        r.contains("the cookies differ") && r.contains("from POOL_COOKIE"),
        "{r}"
    );
}
