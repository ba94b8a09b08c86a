//! The health check behind `sluice health`: connect, send one ApiVersions request, read the
//! answer. Used by the container image's HEALTHCHECK. Blocking std IO: it runs alone.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
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
