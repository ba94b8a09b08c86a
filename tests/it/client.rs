//! A minimal raw client for tests: encode one request, read one response.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub struct Client {
    pub stream: TcpStream,
    next_id: i32,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Client { stream, next_id: 1 }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Read one response frame; `None` when the broker closed the connection.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let mut buf = vec![0u8; usize::try_from(i32::from_be_bytes(len)).unwrap()];
        self.stream.read_exact(&mut buf).ok()?;
        Some(Bytes::from(buf))
    }

    pub fn call(&mut self, key: ApiKey, version: i16, req: RequestKind) -> ResponseKind {
        let id = self.next_id;
        self.next_id += 1;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_static_str("it")))
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        req.encode(&mut buf, version).unwrap();
        let len = i32::try_from(buf.len() - 4).unwrap();
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.send_raw(&buf);
        let mut resp = self.read_frame().expect("connection closed");
        let hdr = ResponseHeader::decode(&mut resp, key.response_header_version(version)).unwrap();
        assert_eq!(hdr.correlation_id, id);
        ResponseKind::decode(key, &mut resp, version).unwrap()
    }
}

/// One uncompressed batch of `values`.
pub fn batch(values: &[&[u8]]) -> Bytes {
    let records: Vec<(Option<&[u8]>, &[u8])> = values.iter().map(|v| (None, *v)).collect();
    kv_batch(&records)
}

/// One uncompressed batch of `(key, value)` records.
pub fn kv_batch(records: &[(Option<&[u8]>, &[u8])]) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).unwrap(),
            // the encoder starts a new batch unless offset - sequence stays constant
            sequence: i32::try_from(i).unwrap(),
            timestamp: 1_700_000_000_000,
            key: k.map(Bytes::copy_from_slice),
            value: Some(Bytes::copy_from_slice(v)),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Decode every record value in a fetch response's records.
pub fn values(mut records: Bytes) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    while records.has_remaining() {
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut records).unwrap();
        for r in set.records {
            out.push((r.offset, r.value.unwrap_or_default()));
        }
    }
    out
}
