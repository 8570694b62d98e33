//! The crate's error type. Every message says what happened and, where
//! there is something to do, what to do.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::id::{NodeId, ParseIdError};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in framing, decoding, the handshake or the cookie.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A length prefix announced a frame over the limit (the frame was not
    /// read; the connection must be closed).
    #[error(
        "frame of {len} bytes exceeds the {max}-byte limit: the peer is not a Spawnpool node of a compatible version, or the limit (--max-frame) is set lower here than there"
    )]
    FrameTooLarge {
        /// The announced (or produced) length.
        len: u64,
        /// The limit.
        max: usize,
    },

    /// A frame's body is not a valid message.
    #[error(
        "undecodable frame body ({len} bytes): {reason}; the peer speaks another protocol or version"
    )]
    Decode {
        /// What the decoder reported.
        reason: String,
        /// Length of the body.
        len: usize,
    },

    /// A frame's body decoded but left bytes over.
    #[error(
        "frame body of {len} bytes has {extra} bytes after the message: the peer is corrupt or not a Spawnpool node"
    )]
    TrailingBytes {
        /// Bytes left over.
        extra: usize,
        /// Length of the body.
        len: usize,
    },

    /// The stream ended in the middle of a frame.
    #[error("connection ended in the middle of a frame ({buffered} bytes buffered{}): the peer crashed or closed early", .expected.map(|e| format!(" of {e}")).unwrap_or_default())]
    Truncated {
        /// Bytes received of the incomplete frame.
        buffered: usize,
        /// The frame's full size (header included), if the header arrived.
        expected: Option<usize>,
    },

    /// A value could not be encoded.
    #[error("could not encode a message: {reason}")]
    Encode {
        /// What the encoder reported.
        reason: String,
    },

    /// An I/O error on the connection.
    #[error("connection error: {0}")]
    Io(#[from] io::Error),

    /// The peer speaks another protocol version.
    #[error(
        "protocol version mismatch: this node speaks version {ours}, the peer speaks {theirs}; run the same Spawnpool release on every node"
    )]
    VersionMismatch {
        /// Our version.
        ours: u32,
        /// Theirs.
        theirs: u32,
    },

    /// The peer's cookie proof did not match ours, or the peer refused
    /// ours: the two nodes have different cookies. (A replayed handshake
    /// fails here too: its recorded proof answers another connection's
    /// nonce, and the two cannot be told apart.)
    #[error(
        "the cookies differ (this node's cookie from {cookie_from}; the peer {peer} proved another, or replayed a handshake recorded elsewhere): give every node and client the same cookie, with POOL_COOKIE, --cookie-file or ~/.spawnpool/cookie"
    )]
    BadCookie {
        /// Who the peer said it was, as far as we know.
        peer: String,
        /// Where this node's cookie came from (a path, or `POOL_COOKIE`).
        cookie_from: String,
    },

    /// The handshake did not complete in time.
    #[error(
        "handshake timed out after {after:?} while {stage}: the peer is too slow, hung, or not a Spawnpool node"
    )]
    HandshakeTimeout {
        /// The bound that expired.
        after: Duration,
        /// What we were waiting for.
        stage: &'static str,
    },

    /// The connection closed during the handshake.
    #[error(
        "connection closed during the handshake while {stage}: the peer refused us (see its log) or crashed"
    )]
    HandshakeClosed {
        /// What we were waiting for.
        stage: &'static str,
    },

    /// The peer sent a handshake message out of order or malformed.
    #[error("handshake protocol error: expected {expected}, got {got}")]
    HandshakeProtocol {
        /// What we expected.
        expected: &'static str,
        /// What arrived.
        got: String,
    },

    /// The peer refused the handshake for a reason of its own.
    #[error("the peer refused the connection: {reason}")]
    Refused {
        /// The peer's reason.
        reason: String,
    },

    /// A peer claimed an identity it may not use.
    #[error("peer claims to be node {claimed} but {why}")]
    Impostor {
        /// The id it claimed.
        claimed: NodeId,
        /// Why that is refused.
        why: String,
    },

    /// The cookie file could not be read or created.
    #[error("cookie file {}: {source}; check the path and its permissions, or set POOL_COOKIE", path.display())]
    CookieFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// The cookie file is readable or writable by others.
    #[error(
        "cookie file {} has mode {mode:o}, so other users can read it: run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    CookiePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The cookie is empty.
    #[error("the cookie from {from} is empty: put a secret of at least one character there")]
    EmptyCookie {
        /// Where it came from.
        from: String,
    },

    /// No home directory to keep the default cookie file in.
    #[error(
        "no home directory for the default cookie file: set HOME, POOL_COOKIE or --cookie-file"
    )]
    NoHome,

    /// A TLS file (certificate, key or CA) cannot be used.
    #[error("TLS {what} file {}: {problem}", path.display())]
    TlsFile {
        /// Which file, with its flag.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// The TLS settings are incomplete or inconsistent.
    #[error("TLS settings: {0}")]
    TlsSettings(String),

    /// The TLS handshake failed.
    #[error("TLS handshake failed while {side}: {reason}{}", if hint.is_empty() { String::new() } else { format!(" ({hint})") })]
    Tls {
        /// `connecting` or `accepting`.
        side: &'static str,
        /// What rustls (or the socket) reported.
        reason: String,
        /// What it most likely means and what to do.
        hint: &'static str,
        /// Retrying cannot help (a certificate was refused, the peer does
        /// not speak TLS), as opposed to a connection that dropped.
        permanent: bool,
    },

    /// The peer answered with TLS while this node speaks plaintext.
    #[error(
        "the peer speaks TLS and this node does not: start this node with --tls-cert, --tls-key and --tls-ca (a certificate signed by the pool's CA)"
    )]
    PeerSpeaksTls,

    /// The peer answered in HTTP: the address is an HTTP port (the
    /// master's, 7401 by default), not a node port.
    #[error(
        "{addr} answered in HTTP: --master takes the master's node port (its --listen, 7400 by default), not its HTTP port (--http, 7401 by default)"
    )]
    PeerSpeaksHttp {
        /// The address dialled (`the peer` where it is not known).
        addr: String,
    },

    /// The peer sent an HTTP request to a node port.
    #[error(
        "the peer sent an HTTP request to a node port: this port speaks the Spawnpool protocol; the master's HTTP API is on its --http port (7401 by default)"
    )]
    HttpRequest,

    /// A pid, node id or reference in text form did not parse.
    #[error(transparent)]
    InvalidId(#[from] ParseIdError),

    /// A byte size did not parse.
    #[error(
        "invalid size {input:?}: use a number of bytes, optionally with a unit, e.g. 65536, 64KiB, 16MiB, 1GiB"
    )]
    InvalidSize {
        /// The text given.
        input: String,
    },

    /// A duration did not parse.
    #[error("invalid duration {input:?}: use a number with a unit, e.g. 500ms, 3s, 1m")]
    InvalidDuration {
        /// The text given.
        input: String,
    },

    /// A label constraint did not parse.
    #[error("invalid label {input:?}: use key=value, e.g. zone=a")]
    InvalidLabel {
        /// The text given.
        input: String,
    },

    /// A placement strategy name did not parse.
    #[error(
        "unknown placement strategy {input:?}: use least-loaded, two-choices, round-robin or random"
    )]
    InvalidStrategy {
        /// The text given.
        input: String,
    },
}

impl Error {
    /// True if the error means the bytes on the connection are not a valid
    /// frame stream (as opposed to an I/O failure or a handshake refusal).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::FrameTooLarge { .. }
                | Error::PeerSpeaksHttp { .. }
                | Error::HttpRequest
                | Error::Decode { .. }
                | Error::TrailingBytes { .. }
                | Error::Truncated { .. }
                | Error::HandshakeProtocol { .. }
        )
    }
}

/// TLS failures explained (feature `tls`). The TLS layer and the handshake
/// that runs over it both need this, so it lives here, below both of them.
#[cfg(feature = "tls")]
impl Error {
    /// An I/O error of a TLS stream: an explained [`Error::Tls`] if TLS
    /// caused it, else the I/O error as it is.
    pub(crate) fn from_tls_io(side: &'static str, e: io::Error) -> Error {
        let is_tls = e
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        if is_tls {
            Error::tls_handshake(side, &e)
        } else {
            Error::Io(e)
        }
    }

    /// A failed TLS handshake as an [`Error::Tls`], with what it most
    /// likely means.
    pub(crate) fn tls_handshake(side: &'static str, e: &io::Error) -> Error {
        use rustls::{AlertDescription as A, CertificateError as C, Error as R};
        let rustls_error = e.get_ref().and_then(|inner| inner.downcast_ref::<R>());
        let (hint, permanent) = match rustls_error {
            Some(R::InvalidCertificate(C::UnknownIssuer | C::BadSignature))
            | Some(R::InvalidCertificate(C::Other(_))) => (
                "the peer's certificate is not signed by the CA of --tls-ca: it belongs to another pool, or one of the two nodes has the wrong CA file",
                true,
            ),
            Some(R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => (
                "the peer's certificate does not name the address dialled: put that IP address or DNS name in its subjectAltName (or advertise an address the certificate names)",
                true,
            ),
            Some(R::InvalidCertificate(
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. },
            )) => (
                "a certificate is expired or not yet valid: renew it, and check both machines' clocks",
                true,
            ),
            Some(R::InvalidCertificate(_)) => (
                "the peer's certificate was rejected: check that it is a node certificate signed by the pool's CA",
                true,
            ),
            Some(R::NoCertificatesPresented) => (
                "the peer presented no certificate: every node (and poolctl) needs --tls-cert and --tls-key",
                true,
            ),
            Some(R::AlertReceived(
                A::UnknownCA
                | A::BadCertificate
                | A::CertificateUnknown
                | A::CertificateRequired
                | A::AccessDenied
                | A::CertificateExpired
                | A::DecryptError,
            )) => (
                "the peer refused our certificate: it must be signed by the peer's --tls-ca (see the peer's log for its reason)",
                true,
            ),
            Some(R::InvalidMessage(_)) => (
                "the peer does not speak TLS: give it --tls-cert, --tls-key and --tls-ca too, or turn TLS off on this node",
                true,
            ),
            Some(R::AlertReceived(_)) => ("the peer ended the TLS handshake (see its log)", false),
            _ if e.kind() == io::ErrorKind::UnexpectedEof => (
                "the peer closed the connection during the TLS handshake: it may not use TLS, or it refused our certificate (see its log)",
                false,
            ),
            _ => ("", false),
        };
        Error::Tls {
            side,
            reason: e.to_string(),
            hint,
            permanent,
        }
    }
}
