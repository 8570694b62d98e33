//! Optional TLS under the handshake (feature `tls`): every connection can
//! be wrapped in mutual TLS before the cookie handshake runs inside it,
//! unchanged.
//!
//! ```text
//!  TCP connect/accept ──> TLS handshake (both sides present a certificate
//!                          signed by the pool's CA)  ──> cookie handshake ──> frames
//! ```
//!
//! - **Mutual**: the accepting side requires a client certificate and
//!   verifies it against the CA ([`TlsConfig`] holds one CA bundle for both
//!   directions); the connecting side verifies the server's certificate
//!   against the same CA *and* checks that it names the address it dialled
//!   (an IP address in the certificate's subjectAltName for `10.0.0.5:7400`,
//!   a DNS name for `node1.example:7400`). Node certificates can therefore
//!   be per host, and a certificate stolen from one host does not let its
//!   holder pose as another.
//! - A node without a certificate signed by the CA is refused by the TLS
//!   handshake; the cookie challenge still runs inside, so a pool needs both
//!   the CA's signature and the cookie.
//! - With TLS configured, a plaintext peer is refused (its first frame is
//!   not a TLS record), and a TLS node cannot talk to a plaintext one: the
//!   errors say which side lacks TLS.
//! - Crypto is rustls with the *ring* provider, built with
//!   `builder_with_provider`, so no process-wide default provider is needed
//!   and aws-lc is never linked (DEPS.md).
//!
//! [`Stream`] is what the rest of the code reads and writes: a plain stream
//! or a TLS one, behind one `AsyncRead + AsyncWrite` type. Every function
//! here is generic over the byte stream underneath (TCP by default, or one
//! of [`crate::transport`]'s, e.g. an in-memory pipe in tests).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::{TlsAcceptor, TlsConnector};

mod provider;

use crate::error::Error;
use crate::handshake::{self, Connection, Cookie, HandshakeConfig, Identity};

/// A connection's byte stream: plain, or TLS over it (`S`: TCP unless
/// said otherwise).
#[derive(Debug)]
pub enum Stream<S = TcpStream> {
    /// No TLS.
    Plain(S),
    /// TLS (either side of it). Boxed: a TLS session is a few KiB.
    Tls(Box<tokio_rustls::TlsStream<S>>),
}

impl<S> Stream<S> {
    /// True for a TLS stream.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl Stream<crate::transport::BoxIo> {
    /// Moves the stream underneath to the reactor of `rt`
    /// ([`transport::rebind`](crate::transport::rebind)), keeping a TLS
    /// session as it is.
    pub fn rebind(self, rt: &tokio::runtime::Handle) -> std::io::Result<Self> {
        match self {
            Stream::Plain(io) => Ok(Stream::Plain(crate::transport::rebind(io, rt)?)),
            Stream::Tls(mut tls) => {
                let inner = tls.get_mut().0;
                // A stand-in while the stream is moved: it is never read.
                let old = std::mem::replace(
                    inner,
                    Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink())),
                );
                *inner = crate::transport::rebind(old, rt)?;
                Ok(Stream::Tls(tls))
            }
        }
    }
}

impl Stream<TcpStream> {
    /// The TCP stream underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// Splits it into a read half and a write half that can move to
    /// different tasks: a plain stream without a lock (as
    /// `TcpStream::into_split`), a TLS one through `tokio::io::split`.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Plain(r), WriteHalf::Plain(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

/// The read half of a [`Stream`] ([`Stream::into_split`]).
#[derive(Debug)]
pub enum ReadHalf {
    /// No TLS.
    Plain(tokio::net::tcp::OwnedReadHalf),
    /// TLS.
    Tls(tokio::io::ReadHalf<tokio_rustls::TlsStream<TcpStream>>),
}

/// The write half of a [`Stream`] ([`Stream::into_split`]).
#[derive(Debug)]
pub enum WriteHalf {
    /// No TLS.
    Plain(tokio::net::tcp::OwnedWriteHalf),
    /// TLS.
    Tls(tokio::io::WriteHalf<tokio_rustls::TlsStream<TcpStream>>),
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ReadHalf::Tls(s) => eof_without_close_notify(Pin::new(s).poll_read(cx, buf)),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_write(cx, buf),
            WriteHalf::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            WriteHalf::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WriteHalf::Plain(s) => s.is_write_vectored(),
            WriteHalf::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_flush(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_shutdown(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => eof_without_close_notify(Pin::new(s.as_mut()).poll_read(cx, buf)),
        }
    }
}

/// A TLS peer that closes without `close_notify` (a killed process, or a
/// client such as poolctl that just exits) ends the stream like a plain
/// TCP close, instead of as an error: frames are length-delimited, so a
/// truncation is still caught (a frame cut short is an error of its own).
fn eof_without_close_notify(r: Poll<io::Result<()>>) -> Poll<io::Result<()>> {
    match r {
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(())),
        other => other,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A node's TLS settings, loaded and checked: its certificate chain and
/// key, and the CA that signs every node of the pool. Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    /// Where it came from, for `Debug` and logs.
    source: Arc<str>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsConfig({})", self.source)
    }
}

/// Which file of the three, for messages.
#[derive(Clone, Copy)]
enum Kind {
    Cert,
    Key,
    Ca,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Cert => "certificate (--tls-cert)",
            Kind::Key => "private key (--tls-key)",
            Kind::Ca => "CA (--tls-ca)",
        }
    }
}

fn file_error(kind: Kind, path: &Path, problem: impl Into<String>) -> Error {
    Error::TlsFile {
        what: kind.what(),
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// The three files, as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--tls-cert`: this node's certificate (PEM; the chain up to, not
    /// including, the CA may follow it).
    pub cert: Option<PathBuf>,
    /// `--tls-key`: its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// `--tls-ca`: the pool's CA certificate(s) (PEM).
    pub ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Loads the files: `None` when none is given (TLS off), an error
    /// naming what is missing when only some are.
    pub fn load(&self) -> Result<Option<TlsConfig>, Error> {
        match (&self.cert, &self.key, &self.ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => TlsConfig::from_files(cert, key, ca).map(Some),
            _ => {
                let missing: Vec<&str> = [
                    (self.cert.is_none(), "--tls-cert"),
                    (self.key.is_none(), "--tls-key"),
                    (self.ca.is_none(), "--tls-ca"),
                ]
                .into_iter()
                .filter_map(|(m, name)| m.then_some(name))
                .collect();
                Err(Error::TlsSettings(format!(
                    "TLS needs all of --tls-cert, --tls-key and --tls-ca (or none, for no TLS); {} missing",
                    missing.join(" and ")
                )))
            }
        }
    }
}

fn read(kind: Kind, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| file_error(kind, path, format!("cannot read it: {e}")))
}

fn certs(kind: Kind, path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(kind, path, format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            kind,
            path,
            "holds no certificate (expected a PEM block `-----BEGIN CERTIFICATE-----`)",
        ));
    }
    Ok(certs)
}

fn key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        let problem = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "holds no private key (expected a PEM block such as `-----BEGIN PRIVATE KEY-----`)"
                    .to_owned()
            }
            other => format!("not a valid PEM private key: {other}"),
        };
        file_error(Kind::Key, path, problem)
    })
}

impl TlsConfig {
    /// Loads a certificate chain, its private key and the CA from PEM files.
    /// Every error names the file and what is wrong with it.
    pub fn from_files(cert: &Path, key: &Path, ca: &Path) -> Result<TlsConfig, Error> {
        let source = format!(
            "cert {}, key {}, ca {}",
            cert.display(),
            key.display(),
            ca.display()
        );
        Self::build(
            (cert, &read(Kind::Cert, cert)?),
            (key, &read(Kind::Key, key)?),
            (ca, &read(Kind::Ca, ca)?),
            source,
        )
    }

    /// The same from PEM text in memory (tests, embedders).
    pub fn from_pem(cert: &[u8], key: &[u8], ca: &[u8]) -> Result<TlsConfig, Error> {
        let mem = Path::new("(in memory)");
        Self::build((mem, cert), (mem, key), (mem, ca), "in memory".to_owned())
    }

    fn build(
        (cert_path, cert_pem): (&Path, &[u8]),
        (key_path, key_pem): (&Path, &[u8]),
        (ca_path, ca_pem): (&Path, &[u8]),
        source: String,
    ) -> Result<TlsConfig, Error> {
        let chain = certs(Kind::Cert, cert_path, cert_pem)?;
        let key = key(key_path, key_pem)?;
        let mut roots = RootCertStore::empty();
        for ca in certs(Kind::Ca, ca_path, ca_pem)? {
            roots.add(ca).map_err(|e| {
                file_error(
                    Kind::Ca,
                    ca_path,
                    format!("not a usable CA certificate: {e}"),
                )
            })?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(provider::ring_provider());

        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .map_err(|e| file_error(Kind::Ca, ca_path, format!("cannot verify with it: {e}")))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::TlsSettings(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| cert_key_error(cert_path, key_path, e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::TlsSettings(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| cert_key_error(cert_path, key_path, e))?;
        Ok(TlsConfig {
            client: Arc::new(client),
            server: Arc::new(server),
            source: source.into(),
        })
    }

    /// Wraps a connection this node opened to `addr` (`host:port`, as
    /// dialled): the server's certificate must be signed by the CA and name
    /// `host` (an IP address or a DNS name).
    pub async fn connect<S>(&self, io: S, addr: &str) -> Result<Stream<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = server_name(addr)?;
        TlsConnector::from(self.client.clone())
            .connect(name, io)
            .await
            .map(|s| Stream::Tls(Box::new(s.into())))
            .map_err(|e| Error::tls_handshake("connecting", &e))
    }

    /// Wraps a connection this node accepted: the peer must present a
    /// certificate signed by the CA.
    pub async fn accept<S>(&self, io: S) -> Result<Stream<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        TlsAcceptor::from(self.server.clone())
            .accept(io)
            .await
            .map(|s| Stream::Tls(Box::new(s.into())))
            .map_err(|e| Error::tls_handshake("accepting", &e))
    }
}

fn cert_key_error(cert: &Path, key: &Path, e: rustls::Error) -> Error {
    Error::TlsSettings(format!(
        "the certificate {} and the key {} do not go together or are not usable: {e}",
        cert.display(),
        key.display()
    ))
}

/// `host` of `host:port` (`[v6]:port` too) as a TLS server name.
fn server_name(addr: &str) -> Result<ServerName<'static>, Error> {
    let host = match addr.parse::<std::net::SocketAddr>() {
        Ok(sa) => return Ok(ServerName::IpAddress(sa.ip().into())),
        Err(_) => addr.rsplit_once(':').map_or(addr, |(h, _)| h),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|_| {
        Error::TlsSettings(format!(
            "{addr:?} has no host name or IP address usable to check the peer's certificate"
        ))
    })
}

/// Wraps `io` in TLS as the connecting side when `tls` is set.
pub async fn connect<S>(tls: Option<&TlsConfig>, io: S, addr: &str) -> Result<Stream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tls {
        Some(tls) => tls.connect(io, addr).await,
        None => Ok(Stream::Plain(io)),
    }
}

/// Wraps `io` in TLS as the accepting side when `tls` is set.
pub async fn accept<S>(tls: Option<&TlsConfig>, io: S) -> Result<Stream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tls {
        Some(tls) => tls.accept(io).await,
        None => Ok(Stream::Plain(io)),
    }
}

/// Runs the TLS side of a connection (`tls_step`) within `config.timeout`;
/// returns the stream and the config of the cookie handshake, whose
/// timeout is what is left of the same bound.
async fn tls_within<S>(
    config: &HandshakeConfig,
    tls_step: impl std::future::Future<Output = Result<Stream<S>, Error>>,
) -> Result<(Stream<S>, HandshakeConfig), Error> {
    let deadline = Instant::now() + config.timeout;
    let stream = tokio::time::timeout_at(deadline, tls_step)
        .await
        .map_err(|_| Error::HandshakeTimeout {
            after: config.timeout,
            stage: "waiting for the peer's TLS handshake",
        })??;
    let rest = HandshakeConfig {
        timeout: deadline.saturating_duration_since(Instant::now()),
        ..config.clone()
    };
    Ok((stream, rest))
}

/// Accepts `io` as `me`: the TLS handshake (when `tls` is set), then the
/// cookie handshake inside it, both within one `config.timeout`, so a peer
/// that stalls anywhere holds the connection no longer than that.
pub async fn accept_handshake<S>(
    tls: Option<&TlsConfig>,
    io: S,
    me: &Identity,
    cookie: &Cookie,
    config: &HandshakeConfig,
) -> Result<(Connection<Stream<S>>, Identity), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (stream, rest) = tls_within(config, accept(tls, io)).await?;
    handshake::respond(stream, me, cookie, &rest)
        .await
        .map_err(|e| full_timeout(e, config))
}

/// Wraps `io` (a connection this node opened to `addr`) in TLS when `tls`
/// is set and runs the cookie handshake inside it as `me`, both within one
/// `config.timeout`.
pub async fn connect_handshake<S>(
    tls: Option<&TlsConfig>,
    io: S,
    addr: &str,
    me: &Identity,
    cookie: &Cookie,
    config: &HandshakeConfig,
) -> Result<(Connection<Stream<S>>, Identity), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (stream, rest) = tls_within(config, connect(tls, io, addr)).await?;
    handshake::initiate(stream, me, cookie, &rest)
        .await
        .map_err(|e| match e {
            // The handshake does not know the address; the error names it.
            Error::PeerSpeaksHttp { .. } => Error::PeerSpeaksHttp {
                addr: addr.to_owned(),
            },
            e => full_timeout(e, config),
        })
}

/// Refuses a connection politely: completes TLS (when set), sends a
/// handshake `Refused` with `reason` (the peer's handshake fails with it,
/// so both logs say why), closes, and discards what the peer sent, all
/// within `timeout`. Used when a listener is at its connection limit; the
/// caller bounds how many of these run at once.
pub async fn refuse<S>(tls: Option<&TlsConfig>, io: S, reason: String, timeout: std::time::Duration)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let mut stream = accept(tls, io).await.ok()?;
        let mut frame = bytes::BytesMut::new();
        crate::codec::encode_frame(
            &handshake::HandshakeMsg::Refused(handshake::RefuseReason::Other(reason)),
            &mut frame,
            handshake::HANDSHAKE_MAX_FRAME,
        )
        .ok()?;
        stream.write_all(&frame).await.ok()?;
        stream.shutdown().await.ok()?;
        // Read until the peer closes, so our close sends no reset that
        // could discard the refusal before the peer reads it.
        let mut sink = [0u8; 4096];
        let mut left = handshake::HANDSHAKE_MAX_FRAME;
        while left > 0 {
            let n = stream.read(&mut sink).await.ok()?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        Some(())
    };
    let _ = tokio::time::timeout(timeout, work).await;
}

/// A timeout of the second stage reports the whole bound, not what was
/// left of it.
fn full_timeout(e: Error, config: &HandshakeConfig) -> Error {
    match e {
        Error::HandshakeTimeout { stage, .. } => Error::HandshakeTimeout {
            after: config.timeout,
            stage,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_addresses() {
        assert!(matches!(
            server_name("127.0.0.1:7400").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:7400").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("node1.example:7400").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(server_name(":7400").is_err());
    }

    #[test]
    fn partial_files_name_what_is_missing() {
        let files = TlsFiles {
            cert: Some("c.pem".into()),
            ..TlsFiles::default()
        };
        let e = files.load().unwrap_err().to_string();
        assert!(e.contains("--tls-key and --tls-ca missing"), "{e}");
        assert!(TlsFiles::default().load().unwrap().is_none());
    }
}
