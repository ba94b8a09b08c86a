//! Avro's IPC handshake records (`org.apache.avro.ipc.HandshakeRequest`/`HandshakeResponse`)
//! and their datums. The rules that pick a [`HandshakeMatch`] live with the two ends
//! (`server.rs`, `client.rs`); this file is only the records.
//!
//! ```text
//! HandshakeRequest  { fixed MD5(16) clientHash; union{null,string} clientProtocol;
//!                     MD5 serverHash; union{null,map<bytes>} meta }
//! HandshakeResponse { enum{BOTH,CLIENT,NONE} match; union{null,string} serverProtocol;
//!                     union{null,MD5} serverHash; union{null,map<bytes>} meta }
//! ```

use crate::codec::{DecodeError, Reader, Writer};

/// The server's verdict on a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeMatch {
    /// The server knows the client's protocol and the client guessed the server's hash.
    Both,
    /// The server knows the client's protocol; the client's guess of the server's hash was
    /// wrong, so the reply carries the server's protocol and hash.
    Client,
    /// The server does not know the client's protocol: the client must resend the request with
    /// its protocol text. The reply carries only the handshake.
    None,
}

impl HandshakeMatch {
    const SYMBOLS: [HandshakeMatch; 3] = [
        HandshakeMatch::Both,
        HandshakeMatch::Client,
        HandshakeMatch::None,
    ];
}

/// What a client sends before its first call on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HandshakeRequest {
    pub(crate) client_hash: [u8; 16],
    pub(crate) client_protocol: Option<String>,
    pub(crate) server_hash: [u8; 16],
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HandshakeResponse {
    pub(crate) matched: HandshakeMatch,
    pub(crate) server_protocol: Option<String>,
    pub(crate) server_hash: Option<[u8; 16]>,
}

fn write_opt_string(w: &mut Writer, s: Option<&str>) {
    match s {
        None => w.len(0),
        Some(s) => {
            w.len(1);
            w.string(s);
        }
    }
}

/// `union{null, map<bytes>} meta`: Sluice sends null and ignores what it gets.
fn skip_meta(r: &mut Reader<'_>, what: &str) -> Result<(), DecodeError> {
    if r.index(2, what)? == 1 {
        r.skip_bytes_map(what)?;
    }
    Ok(())
}

impl HandshakeRequest {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.fixed(&self.client_hash);
        write_opt_string(w, self.client_protocol.as_deref());
        w.fixed(&self.server_hash);
        w.len(0); // meta: null
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let client_hash = r.fixed::<16>("HandshakeRequest.clientHash")?;
        let client_protocol = match r.index(2, "HandshakeRequest.clientProtocol")? {
            0 => None,
            _ => Some(r.string("HandshakeRequest.clientProtocol")?.to_string()),
        };
        let server_hash = r.fixed::<16>("HandshakeRequest.serverHash")?;
        skip_meta(r, "HandshakeRequest.meta")?;
        Ok(HandshakeRequest {
            client_hash,
            client_protocol,
            server_hash,
        })
    }
}

impl HandshakeResponse {
    pub(crate) fn encode(&self, w: &mut Writer) {
        let idx = match self.matched {
            HandshakeMatch::Both => 0,
            HandshakeMatch::Client => 1,
            HandshakeMatch::None => 2,
        };
        w.len(idx);
        write_opt_string(w, self.server_protocol.as_deref());
        match &self.server_hash {
            None => w.len(0),
            Some(h) => {
                w.len(1);
                w.fixed(h);
            }
        }
        w.len(0); // meta: null
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let i = r.index(HandshakeMatch::SYMBOLS.len(), "HandshakeResponse.match")?;
        let matched = HandshakeMatch::SYMBOLS
            .get(i)
            .copied()
            .unwrap_or(HandshakeMatch::None);
        let server_protocol = match r.index(2, "HandshakeResponse.serverProtocol")? {
            0 => None,
            _ => Some(r.string("HandshakeResponse.serverProtocol")?.to_string()),
        };
        let server_hash = match r.index(2, "HandshakeResponse.serverHash")? {
            0 => None,
            _ => Some(r.fixed::<16>("HandshakeResponse.serverHash")?),
        };
        skip_meta(r, "HandshakeResponse.meta")?;
        Ok(HandshakeResponse {
            matched,
            server_protocol,
            server_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for client_protocol in [None, Some("{\"protocol\":\"P\"}".to_string())] {
            let req = HandshakeRequest {
                client_hash: [1; 16],
                client_protocol,
                server_hash: [2; 16],
            };
            let mut w = Writer::new();
            req.encode(&mut w);
            let b = w.into_inner();
            let mut r = Reader::new(&b);
            assert_eq!(HandshakeRequest::decode(&mut r).unwrap(), req);
            r.finish("req").unwrap();
        }
    }

    #[test]
    fn a_null_protocol_request_is_34_bytes() {
        // 16 hash + union index 0 + 16 hash + union index 0.
        let req = HandshakeRequest {
            client_hash: [0xaa; 16],
            client_protocol: None,
            server_hash: [0xbb; 16],
        };
        let mut w = Writer::new();
        req.encode(&mut w);
        let b = w.into_inner();
        assert_eq!(b.len(), 34);
        assert_eq!(b[16], 0);
        assert_eq!(b[33], 0);
    }

    #[test]
    fn responses_round_trip_and_both_is_four_zero_bytes() {
        let both = HandshakeResponse {
            matched: HandshakeMatch::Both,
            server_protocol: None,
            server_hash: None,
        };
        let mut w = Writer::new();
        both.encode(&mut w);
        assert_eq!(w.into_inner(), [0, 0, 0, 0]);
        for matched in [HandshakeMatch::Client, HandshakeMatch::None] {
            let resp = HandshakeResponse {
                matched,
                server_protocol: Some("{}".into()),
                server_hash: Some([9; 16]),
            };
            let mut w = Writer::new();
            resp.encode(&mut w);
            let b = w.into_inner();
            assert_eq!(
                HandshakeResponse::decode(&mut Reader::new(&b)).unwrap(),
                resp
            );
        }
    }

    #[test]
    fn meta_maps_from_java_are_skipped() {
        // A Java RPCPlugin may send meta = {"k": bytes "v"}.
        let mut w = Writer::new();
        w.len(0); // BOTH
        w.len(0); // serverProtocol null
        w.len(0); // serverHash null
        w.len(1); // meta: map
        w.len(1);
        w.string("k");
        w.bytes(b"v");
        w.long(0);
        let b = w.into_inner();
        let mut r = Reader::new(&b);
        let resp = HandshakeResponse::decode(&mut r).unwrap();
        r.finish("resp").unwrap();
        assert_eq!(resp.matched, HandshakeMatch::Both);
    }

    #[test]
    fn bad_indexes_are_errors() {
        assert!(HandshakeResponse::decode(&mut Reader::new(&[6, 0, 0, 0])).is_err());
        let mut b = vec![0u8; 16];
        b.push(4); // union index 2 of 2
        assert!(HandshakeRequest::decode(&mut Reader::new(&b)).is_err());
    }
}
