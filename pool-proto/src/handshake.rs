//! The connection handshake: version exchange and a mutual
//! challenge-response over the shared cookie.
//!
//! ```text
//!  initiator                                   responder
//!      | Hello { version, node, name, kind, nonce_i }  |
//!      |---------------------------------------------->|  version checked
//!      |  Challenge { version, node, name, kind,       |
//!      |              nonce_r, proof_r }               |
//!      |<----------------------------------------------|  proof_r = MAC(R, nonce_i, nonce_r, ids)
//!  proof_r checked                                     |
//!      | Proof { proof_i }                             |
//!      |---------------------------------------------->|  proof_i = MAC(I, nonce_r, nonce_i, ids)
//!      |                       Accepted                |  proof_i checked
//!      |<----------------------------------------------|
//! ```
//!
//! MAC is HMAC-SHA256 keyed by the cookie, so the cookie never travels. Each
//! side proves itself over the *other* side's fresh random nonce, so a
//! recorded handshake cannot be replayed; the role byte and both identities
//! are bound into the MAC input, so a proof cannot be reflected back to its
//! maker or moved to another connection, and a peer claiming our own node id
//! is refused (with equal identities a relayed handshake would pass). Tags
//! are compared in constant time.
//! Either side that detects a problem sends `Refused` with the reason before
//! closing, so both ends log the same cause.
//!
//! The state machines ([`Initiator`], [`Responder`]) are pure: they take
//! messages and return what to send. [`initiate`] and [`respond`] drive them
//! over a byte stream with a deadline.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::codec::Framed;

use crate::codec::{Codec, MAX_FRAME_LEN};
use crate::error::Error;
use crate::id::NodeId;
use crate::message::{Msg, NodeKind};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 4;

/// How long a handshake may take before it fails (DESIGN.md: 5 s).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Frame limit while the peer is not authenticated yet: handshake messages
/// are a few hundred bytes, so a peer that has not proved the cookie cannot
/// make us buffer more than this.
pub const HANDSHAKE_MAX_FRAME: usize = 64 * 1024;

/// Length of nonces and proofs, bytes.
pub const NONCE_LEN: usize = 32;

/// Domain separation for the MAC input.
const MAC_LABEL: &[u8] = b"spawnpool handshake v1";

type HmacSha256 = Hmac<Sha256>;

/// The shared secret, and where it came from (a file or `POOL_COOKIE`),
/// so that a refused handshake can say which cookie this node used. Cheap
/// to clone; the secret is never printed. Two cookies are equal when their
/// secrets are, wherever they came from.
#[derive(Clone)]
pub struct Cookie {
    secret: Arc<[u8]>,
    from: Arc<str>,
}

impl PartialEq for Cookie {
    fn eq(&self, other: &Self) -> bool {
        self.secret == other.secret
    }
}

impl Eq for Cookie {}

impl Cookie {
    /// A cookie from its secret bytes (surrounding whitespace is not part
    /// of it), read from `from`. Fails if nothing is left.
    pub fn new(secret: impl AsRef<[u8]>, from: &str) -> Result<Self, Error> {
        let s = secret.as_ref().trim_ascii();
        if s.is_empty() {
            return Err(Error::EmptyCookie {
                from: from.to_owned(),
            });
        }
        Ok(Cookie {
            secret: Arc::from(s),
            from: Arc::from(from),
        })
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.secret
    }

    /// Where the cookie came from: a file's path or `POOL_COOKIE`.
    pub fn source(&self) -> &str {
        &self.from
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cookie(<redacted> from {})", self.from)
    }
}

/// Who a node is, as the handshake tells the peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Incarnation.
    pub node: NodeId,
    /// Name (unique among live nodes).
    pub name: String,
    /// Master, worker or hidden.
    pub kind: NodeKind,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.node)
    }
}

/// Why a handshake was refused, as told to the peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefuseReason {
    /// The versions differ; carries the refuser's version.
    VersionMismatch {
        /// The refuser's version.
        version: u32,
    },
    /// The proof did not match the refuser's cookie.
    BadCookie,
    /// Anything else.
    Other(String),
}

/// The messages of the handshake phase (one per frame).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandshakeMsg {
    /// Initiator → responder: who I am and my challenge.
    Hello {
        /// Protocol version.
        version: u32,
        /// The initiator.
        id: Identity,
        /// Fresh random challenge, [`NONCE_LEN`] bytes.
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
    },
    /// Responder → initiator: who I am, my challenge, my proof over yours.
    Challenge {
        /// Protocol version.
        version: u32,
        /// The responder.
        id: Identity,
        /// Fresh random challenge.
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
        /// HMAC over the initiator's nonce.
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
    },
    /// Initiator → responder: my proof over your challenge.
    Proof {
        /// HMAC over the responder's nonce.
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
    },
    /// Responder → initiator: you are in.
    Accepted,
    /// Either way: the handshake failed, and why.
    Refused(RefuseReason),
}

impl HandshakeMsg {
    fn name(&self) -> &'static str {
        match self {
            HandshakeMsg::Hello { .. } => "Hello",
            HandshakeMsg::Challenge { .. } => "Challenge",
            HandshakeMsg::Proof { .. } => "Proof",
            HandshakeMsg::Accepted => "Accepted",
            HandshakeMsg::Refused(_) => "Refused",
        }
    }
}

/// Which side computes a proof.
#[derive(Clone, Copy)]
enum Role {
    Initiator,
    Responder,
}

/// The MAC a `role` side presents: over the peer's nonce, its own nonce and
/// both identities (initiator first).
fn proof(
    cookie: &Cookie,
    role: Role,
    peer_nonce: &[u8],
    own_nonce: &[u8],
    initiator: &Identity,
    responder: &Identity,
) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(cookie.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(MAC_LABEL);
    mac.update(&[match role {
        Role::Initiator => b'I',
        Role::Responder => b'R',
    }]);
    for part in [peer_nonce, own_nonce] {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part);
    }
    for id in [initiator, responder] {
        mac.update(&id.node.as_u64().to_be_bytes());
        mac.update(&(id.name.len() as u32).to_be_bytes());
        mac.update(id.name.as_bytes());
    }
    mac
}

fn fresh_nonce() -> Vec<u8> {
    let mut n = vec![0u8; NONCE_LEN];
    rand::fill(&mut n[..]);
    n
}

/// What a state machine wants done after a message.
#[derive(Debug)]
pub enum Step {
    /// Send this and wait for the next message.
    Send(HandshakeMsg),
    /// The handshake succeeded; send `send` first if present.
    Done {
        /// A last message to send.
        send: Option<HandshakeMsg>,
        /// The authenticated peer.
        peer: Identity,
    },
    /// The handshake failed; send `send` (a `Refused`) if present, then close.
    Failed {
        /// A last message to send.
        send: Option<HandshakeMsg>,
        /// Why.
        error: Error,
    },
}

fn refuse_for(error: &Error) -> Option<HandshakeMsg> {
    match error {
        Error::VersionMismatch { .. } => {
            Some(HandshakeMsg::Refused(RefuseReason::VersionMismatch {
                version: PROTOCOL_VERSION,
            }))
        }
        Error::BadCookie { .. } => Some(HandshakeMsg::Refused(RefuseReason::BadCookie)),
        Error::Impostor { .. } => Some(HandshakeMsg::Refused(RefuseReason::Other(
            error.to_string(),
        ))),
        Error::HandshakeProtocol { expected, .. } => Some(HandshakeMsg::Refused(
            RefuseReason::Other(format!("handshake protocol error: expected {expected}")),
        )),
        _ => None,
    }
}

/// A peer claiming our own node id. With both identities equal the two MAC
/// inputs coincide, so a node's hello relayed to its own responder (and
/// everything relayed back and forth) would authenticate an attacker who
/// holds no cookie; no node ever needs a connection to itself.
fn own_id(node: NodeId) -> Error {
    Error::Impostor {
        claimed: node,
        why: "that is this node's own id (a handshake reflected back to its maker)".to_owned(),
    }
}

fn fail(error: Error) -> Step {
    Step::Failed {
        send: refuse_for(&error),
        error,
    }
}

/// The peer's proof does not match `cookie`: the cookies differ.
fn bad_cookie(peer: String, cookie: &Cookie) -> Error {
    Error::BadCookie {
        peer,
        cookie_from: cookie.source().to_owned(),
    }
}

/// An error for a `Refused` received from the peer.
fn refused_error(reason: RefuseReason, peer: &str, cookie: &Cookie) -> Error {
    match reason {
        RefuseReason::VersionMismatch { version } => Error::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: version,
        },
        RefuseReason::BadCookie => bad_cookie(peer.to_owned(), cookie),
        RefuseReason::Other(reason) => Error::Refused { reason },
    }
}

#[derive(Debug)]
enum InitState {
    AwaitChallenge,
    AwaitAccept { peer: Identity },
    Finished,
}

/// The connecting side's state machine.
///
/// ```
/// use pool_proto::handshake::{Cookie, Identity, Initiator, Responder, Step};
/// use pool_proto::{NodeId, NodeKind};
///
/// let cookie = Cookie::new("secret", "test").unwrap();
/// let a = Identity { node: NodeId::random(), name: "a".into(), kind: NodeKind::Worker };
/// let b = Identity { node: NodeId::random(), name: "b".into(), kind: NodeKind::Master };
/// let (mut init, hello) = Initiator::new(a.clone(), cookie.clone());
/// let mut resp = Responder::new(b.clone(), cookie);
/// let Step::Send(challenge) = resp.on_message(hello) else { panic!() };
/// let Step::Send(proof) = init.on_message(challenge) else { panic!() };
/// let Step::Done { send: Some(accepted), peer } = resp.on_message(proof) else { panic!() };
/// assert_eq!(peer, a);
/// let Step::Done { peer, .. } = init.on_message(accepted) else { panic!() };
/// assert_eq!(peer, b);
/// ```
#[derive(Debug)]
pub struct Initiator {
    me: Identity,
    cookie: Cookie,
    nonce: Vec<u8>,
    state: InitState,
}

impl Initiator {
    /// Starts a handshake; returns the machine and the `Hello` to send.
    pub fn new(me: Identity, cookie: Cookie) -> (Self, HandshakeMsg) {
        let nonce = fresh_nonce();
        let hello = HandshakeMsg::Hello {
            version: PROTOCOL_VERSION,
            id: me.clone(),
            nonce: nonce.clone(),
        };
        let machine = Initiator {
            me,
            cookie,
            nonce,
            state: InitState::AwaitChallenge,
        };
        (machine, hello)
    }

    /// What the machine is waiting for, for timeout messages.
    pub fn stage(&self) -> &'static str {
        match self.state {
            InitState::AwaitChallenge => "waiting for the peer's challenge",
            InitState::AwaitAccept { .. } => "waiting for the peer to accept our proof",
            InitState::Finished => "finished",
        }
    }

    /// Feeds one message from the responder.
    pub fn on_message(&mut self, msg: HandshakeMsg) -> Step {
        let state = std::mem::replace(&mut self.state, InitState::Finished);
        match (state, msg) {
            (_, HandshakeMsg::Refused(reason)) => Step::Failed {
                send: None,
                error: refused_error(reason, "the responder", &self.cookie),
            },
            (
                InitState::AwaitChallenge,
                HandshakeMsg::Challenge {
                    version,
                    id,
                    nonce,
                    proof: their_proof,
                },
            ) => {
                if version != PROTOCOL_VERSION {
                    return fail(Error::VersionMismatch {
                        ours: PROTOCOL_VERSION,
                        theirs: version,
                    });
                }
                if nonce.len() != NONCE_LEN {
                    return fail(Error::HandshakeProtocol {
                        expected: "a 32-byte nonce",
                        got: format!("{} bytes", nonce.len()),
                    });
                }
                if id.node == self.me.node {
                    return fail(own_id(id.node));
                }
                let expected = proof(
                    &self.cookie,
                    Role::Responder,
                    &self.nonce,
                    &nonce,
                    &self.me,
                    &id,
                );
                if expected.verify_slice(&their_proof).is_err() {
                    return fail(bad_cookie(id.to_string(), &self.cookie));
                }
                let mine = proof(
                    &self.cookie,
                    Role::Initiator,
                    &nonce,
                    &self.nonce,
                    &self.me,
                    &id,
                )
                .finalize()
                .into_bytes()
                .to_vec();
                self.state = InitState::AwaitAccept { peer: id };
                Step::Send(HandshakeMsg::Proof { proof: mine })
            }
            (InitState::AwaitAccept { peer }, HandshakeMsg::Accepted) => {
                Step::Done { send: None, peer }
            }
            (state, other) => {
                let expected = match state {
                    InitState::AwaitChallenge => "Challenge",
                    InitState::AwaitAccept { .. } => "Accepted",
                    InitState::Finished => "nothing (handshake finished)",
                };
                fail(Error::HandshakeProtocol {
                    expected,
                    got: other.name().to_owned(),
                })
            }
        }
    }
}

#[derive(Debug)]
enum RespState {
    AwaitHello,
    AwaitProof { peer: Identity, peer_nonce: Vec<u8> },
    Finished,
}

/// The accepting side's state machine.
#[derive(Debug)]
pub struct Responder {
    me: Identity,
    cookie: Cookie,
    nonce: Vec<u8>,
    state: RespState,
}

impl Responder {
    /// Waits for a `Hello`.
    pub fn new(me: Identity, cookie: Cookie) -> Self {
        Responder {
            me,
            cookie,
            nonce: fresh_nonce(),
            state: RespState::AwaitHello,
        }
    }

    /// What the machine is waiting for, for timeout messages.
    pub fn stage(&self) -> &'static str {
        match self.state {
            RespState::AwaitHello => "waiting for the peer's hello",
            RespState::AwaitProof { .. } => "waiting for the peer's proof",
            RespState::Finished => "finished",
        }
    }

    /// Feeds one message from the initiator.
    pub fn on_message(&mut self, msg: HandshakeMsg) -> Step {
        let state = std::mem::replace(&mut self.state, RespState::Finished);
        match (state, msg) {
            (_, HandshakeMsg::Refused(reason)) => Step::Failed {
                send: None,
                error: refused_error(reason, "the initiator", &self.cookie),
            },
            (RespState::AwaitHello, HandshakeMsg::Hello { version, id, nonce }) => {
                if version != PROTOCOL_VERSION {
                    return fail(Error::VersionMismatch {
                        ours: PROTOCOL_VERSION,
                        theirs: version,
                    });
                }
                if nonce.len() != NONCE_LEN {
                    return fail(Error::HandshakeProtocol {
                        expected: "a 32-byte nonce",
                        got: format!("{} bytes", nonce.len()),
                    });
                }
                if id.node == self.me.node {
                    return fail(own_id(id.node));
                }
                let mine = proof(
                    &self.cookie,
                    Role::Responder,
                    &nonce,
                    &self.nonce,
                    &id,
                    &self.me,
                )
                .finalize()
                .into_bytes()
                .to_vec();
                let reply = HandshakeMsg::Challenge {
                    version: PROTOCOL_VERSION,
                    id: self.me.clone(),
                    nonce: self.nonce.clone(),
                    proof: mine,
                };
                self.state = RespState::AwaitProof {
                    peer: id,
                    peer_nonce: nonce,
                };
                Step::Send(reply)
            }
            (RespState::AwaitProof { peer, peer_nonce }, HandshakeMsg::Proof { proof: theirs }) => {
                let expected = proof(
                    &self.cookie,
                    Role::Initiator,
                    &self.nonce,
                    &peer_nonce,
                    &peer,
                    &self.me,
                );
                if expected.verify_slice(&theirs).is_err() {
                    return fail(bad_cookie(peer.to_string(), &self.cookie));
                }
                Step::Done {
                    send: Some(HandshakeMsg::Accepted),
                    peer,
                }
            }
            (state, other) => {
                let expected = match state {
                    RespState::AwaitHello => "Hello",
                    RespState::AwaitProof { .. } => "Proof",
                    RespState::Finished => "nothing (handshake finished)",
                };
                fail(Error::HandshakeProtocol {
                    expected,
                    got: other.name().to_owned(),
                })
            }
        }
    }
}

/// Settings of the handshake driver.
#[derive(Clone, Debug)]
pub struct HandshakeConfig {
    /// The whole handshake must finish within this.
    pub timeout: Duration,
    /// Frame limit for the connection (handshake and after).
    pub max_frame_len: usize,
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        HandshakeConfig {
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_frame_len: MAX_FRAME_LEN,
        }
    }
}

/// A connection after a successful handshake: frames of [`Msg`].
pub type Connection<S> = Framed<S, Codec<Msg>>;

/// The two state machines, for the driver.
trait Machine {
    fn stage(&self) -> &'static str;
    fn on_message(&mut self, msg: HandshakeMsg) -> Step;
}

impl Machine for Initiator {
    fn stage(&self) -> &'static str {
        Initiator::stage(self)
    }
    fn on_message(&mut self, msg: HandshakeMsg) -> Step {
        Initiator::on_message(self, msg)
    }
}

impl Machine for Responder {
    fn stage(&self) -> &'static str {
        Responder::stage(self)
    }
    fn on_message(&mut self, msg: HandshakeMsg) -> Step {
        Responder::on_message(self, msg)
    }
}

/// Runs one side's state machine over `framed` until done, failed or late.
async fn drive<S, M>(
    framed: &mut Framed<S, Codec<HandshakeMsg>>,
    machine: &mut M,
    first: Option<HandshakeMsg>,
    timeout: Duration,
) -> Result<Identity, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    M: Machine,
{
    let deadline = Instant::now() + timeout;
    let late = |stage: &'static str| Error::HandshakeTimeout {
        after: timeout,
        stage,
    };
    if let Some(msg) = first {
        tokio::time::timeout_at(deadline, framed.send(msg))
            .await
            .map_err(|_| late("sending our hello"))??;
    }
    loop {
        let stage = machine.stage();
        let next = tokio::time::timeout_at(deadline, framed.next())
            .await
            .map_err(|_| late(stage))?;
        let msg = match next {
            Some(msg) => msg.map_err(|e| tls_hint(e, stage))?,
            None => return Err(Error::HandshakeClosed { stage }),
        };
        match machine.on_message(msg) {
            Step::Send(reply) => {
                tokio::time::timeout_at(deadline, framed.send(reply))
                    .await
                    .map_err(|_| late("sending a handshake reply"))??;
            }
            Step::Done { send, peer } => {
                if let Some(last) = send {
                    tokio::time::timeout_at(deadline, framed.send(last))
                        .await
                        .map_err(|_| late("sending our acceptance"))??;
                }
                return Ok(peer);
            }
            Step::Failed { send, error } => {
                if let Some(last) = send {
                    // Best effort: tell the peer why before closing.
                    let _ = tokio::time::timeout_at(deadline, framed.send(last)).await;
                }
                return Err(error);
            }
        }
    }
}

/// A "frame too large" whose length prefix is really the header of a TLS
/// record (content type 20..=23, version 3.x) means the peer speaks TLS
/// and we do not: say so instead of blaming the frame size.
///
/// With the `tls` feature, an I/O error that is really a TLS alert (with
/// TLS 1.3 the client learns that the server refused its certificate only
/// on its first read, i.e. here) becomes an explained [`Error::Tls`].
///
/// A length prefix that reads as ASCII `HTTP` is the status line of an
/// HTTP server (the peer is the master's HTTP port, not its node port),
/// and one that reads as an HTTP method is a browser or curl at a node
/// port: both are said as such.
fn tls_hint(e: Error, stage: &'static str) -> Error {
    match e {
        Error::FrameTooLarge { len, .. } if looks_like_tls(len) => Error::PeerSpeaksTls,
        Error::FrameTooLarge { len, .. } if http_prefix(len) == Some(true) => {
            Error::PeerSpeaksHttp {
                addr: "the peer".to_owned(),
            }
        }
        Error::FrameTooLarge { len, .. } if http_prefix(len) == Some(false) => Error::HttpRequest,
        #[cfg(feature = "tls")]
        Error::Io(io) => Error::from_tls_io(stage, io),
        other => {
            let _ = stage;
            other
        }
    }
}

/// `Some(true)` if the 4-byte length prefix is `HTTP` (a response's
/// status line), `Some(false)` if it starts an HTTP request, else `None`.
fn http_prefix(prefix: u64) -> Option<bool> {
    let bytes = u32::try_from(prefix).ok()?.to_be_bytes();
    match &bytes {
        b"HTTP" => Some(true),
        b"GET " | b"POST" | b"PUT " | b"HEAD" | b"DELE" | b"OPTI" | b"PATC" | b"CONN" | b"TRAC"
        | b"PRI " => Some(false),
        _ => None,
    }
}

fn looks_like_tls(prefix: u64) -> bool {
    let [_, _, _, _, kind, major, minor, _] = prefix.to_be_bytes();
    (20..=23).contains(&kind) && major == 3 && minor <= 4
}

/// Connects as `me` over `io`: runs the initiator side and returns the
/// message-phase connection and the authenticated peer.
pub async fn initiate<S>(
    io: S,
    me: &Identity,
    cookie: &Cookie,
    config: &HandshakeConfig,
) -> Result<(Connection<S>, Identity), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut framed = Framed::new(
        io,
        Codec::<HandshakeMsg>::with_max_frame_len(HANDSHAKE_MAX_FRAME.min(config.max_frame_len)),
    );
    let (mut machine, hello) = Initiator::new(me.clone(), cookie.clone());
    let peer = drive(&mut framed, &mut machine, Some(hello), config.timeout).await?;
    Ok((
        framed.map_codec(|_| Codec::<Msg>::with_max_frame_len(config.max_frame_len)),
        peer,
    ))
}

/// Accepts as `me` over `io`: runs the responder side and returns the
/// message-phase connection and the authenticated peer.
pub async fn respond<S>(
    io: S,
    me: &Identity,
    cookie: &Cookie,
    config: &HandshakeConfig,
) -> Result<(Connection<S>, Identity), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut framed = Framed::new(
        io,
        Codec::<HandshakeMsg>::with_max_frame_len(HANDSHAKE_MAX_FRAME.min(config.max_frame_len)),
    );
    let mut machine = Responder::new(me.clone(), cookie.clone());
    let peer = drive(&mut framed, &mut machine, None, config.timeout).await?;
    Ok((
        framed.map_codec(|_| Codec::<Msg>::with_max_frame_len(config.max_frame_len)),
        peer,
    ))
}
