//! The health check behind `sluice health`: connect, send one ApiVersions request, read the
//! answer. Used by the container image's HEALTHCHECK. Blocking std IO: it runs alone. When
//! every listener uses TLS, the same exchange runs over TLS ([`check_tls`]).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Largest answer accepted from the broker.
const MAX_RESPONSE: usize = 1 << 20;

/// Ask `addr` for its API versions; returns how many APIs it lists.
pub fn check(addr: &str, timeout: Duration) -> anyhow::Result<usize> {
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))?;
    let mut s = TcpStream::connect_timeout(&sock, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    api_versions(&mut s)
}

/// [`check`] over TLS, for a broker whose listeners all use TLS. The check proves
/// liveness only and sends nothing secret, so the broker's certificate is not verified
/// (it need not name the loopback address). `Ok(None)`: the broker completed the handshake
/// and then refused the connection for want of a client certificate
/// (`ssl.client.auth=required`), which still shows it up and serving TLS.
pub fn check_tls(addr: &str, timeout: Duration) -> anyhow::Result<Option<usize>> {
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))?;
    let tcp = TcpStream::connect_timeout(&sock, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    #[allow(deprecated)] // see crate::security::tls on the ring provider
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::IpAddress(sock.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    match api_versions(&mut s) {
        Ok(n) => Ok(Some(n)),
        Err(e) if needs_client_cert(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the broker refused the connection over the client certificate.
fn needs_client_cert(e: &anyhow::Error) -> bool {
    use rustls::AlertDescription as A;
    e.chain().any(|c| {
        let tls = c.downcast_ref::<rustls::Error>().or_else(|| {
            c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        matches!(
            tls,
            Some(rustls::Error::AlertReceived(
                A::CertificateRequired | A::BadCertificate | A::HandshakeFailure
            ))
        )
    })
}

/// Accepts any server certificate, checking only the handshake signatures.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One ApiVersions exchange on `s`: how many APIs the answer lists.
fn api_versions<S: Read + Write>(s: &mut S) -> anyhow::Result<usize> {
    let version = 3;
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("sluice-health")))
        .encode(
            &mut buf,
            ApiKey::ApiVersions.request_header_version(version),
        )?;
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("sluice-health"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")))
        .encode(&mut buf, version)?;
    let len = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    s.write_all(&buf)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).context("no answer")?;
    let n = usize::try_from(i32::from_be_bytes(len))
        .ok()
        .filter(|n| *n <= MAX_RESPONSE)
        .context("bad answer length")?;
    let mut body = vec![0u8; n];
    s.read_exact(&mut body).context("short answer")?;
    let mut body = Bytes::from(body);
    let hdr = ResponseHeader::decode(
        &mut body,
        ApiKey::ApiVersions.response_header_version(version),
    )?;
    anyhow::ensure!(hdr.correlation_id == 1, "answer to another request");
    let resp = ApiVersionsResponse::decode(&mut body, version)?;
    anyhow::ensure!(resp.error_code == 0, "error code {}", resp.error_code);
    Ok(resp.api_keys.len())
}
