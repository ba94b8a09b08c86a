//! Malformed input on one connection closes that connection (with a warning naming the peer)
//! and nothing else: a client already connected and a new one keep working.

use std::time::Duration;

use sluice_flume_rpc::{
    encode_frame, AvroSourceClient, ClientOptions, Compression, Event, Protocol, Server,
    ServerOptions, Status,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{init_tracing, Collector};

/// Sends `bytes` on a fresh connection and asserts the server closes it (EOF or reset) rather
/// than answering; a reply frame would show up as data.
async fn assert_closed_after(addr: std::net::SocketAddr, what: &str, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may close before reading everything; a failed write is fine too.
    let _ = s.write_all(bytes).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got)).await;
    match read {
        Err(_) => panic!("{what}: the server kept the connection open"),
        Ok(Ok(_)) => assert!(got.is_empty(), "{what}: the server answered {got:02x?}"),
        Ok(Err(_reset)) => {}
    }
}

/// A handshake from a client with our protocol's hash, or (with a text) from an unknown
/// protocol that the server has to parse.
fn handshake(client_protocol: Option<&str>) -> Vec<u8> {
    let mut v = match client_protocol {
        None => Protocol::avro_source().md5().to_vec(),
        Some(_) => vec![0x77; 16],
    };
    match client_protocol {
        None => v.push(0),
        Some(text) => {
            v.push(2); // union branch 1: string
            let len = i64::try_from(text.len()).unwrap();
            v.extend_from_slice(&zigzag(len));
            v.extend_from_slice(text.as_bytes());
        }
    }
    // A server hash nobody has, so an unknown client protocol is looked at.
    v.extend_from_slice(&[0x55; 16]);
    v.push(0);
    v
}

fn zigzag(n: i64) -> Vec<u8> {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

#[tokio::test]
async fn malformed_input_closes_only_that_connection() {
    init_tracing();
    for mode in [Compression::None, Compression::Deflate { level: 6 }] {
        let collector = Collector::new();
        let opts = ServerOptions {
            compression: mode,
            max_frame_bytes: 1 << 20,
            ..ServerOptions::default()
        };
        let server = Server::avro_source("127.0.0.1:0", collector.clone(), opts)
            .await
            .unwrap();
        let addr = server.local_addr();
        let copts = ClientOptions {
            compression: mode,
            ..ClientOptions::default()
        };
        let mut steady = AvroSourceClient::connect(&addr.to_string(), copts.clone())
            .await
            .unwrap();
        assert_eq!(
            steady.append(&Event::new("before")).await.unwrap(),
            Status::Ok
        );

        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut neg_count = 1i32.to_be_bytes().to_vec();
        neg_count.extend_from_slice(&(-1i32).to_be_bytes());
        cases.push(("negative buffer count", neg_count));
        let mut huge_count = 1i32.to_be_bytes().to_vec();
        huge_count.extend_from_slice(&i32::MAX.to_be_bytes());
        cases.push(("2^31-1 buffers", huge_count));
        let mut huge_len = 1i32.to_be_bytes().to_vec();
        huge_len.extend_from_slice(&1i32.to_be_bytes());
        huge_len.extend_from_slice(&(1i32 << 30).to_be_bytes());
        cases.push(("a 1 GiB buffer", huge_len));
        let mut neg_len = 1i32.to_be_bytes().to_vec();
        neg_len.extend_from_slice(&1i32.to_be_bytes());
        neg_len.extend_from_slice(&(-8i32).to_be_bytes());
        cases.push(("negative buffer length", neg_len));
        cases.push(("a truncated handshake", encode_frame(1, &[0xab; 20])));
        cases.push((
            "a handshake with a bad union index",
            encode_frame(1, &{
                let mut h = handshake(None);
                h[16] = 9;
                h
            }),
        ));
        cases.push((
            "an unparsable client protocol",
            encode_frame(1, &handshake(Some("not json"))),
        ));
        cases.push((
            "another protocol",
            encode_frame(1, &handshake(Some(Protocol::spark_flume().text()))),
        ));
        let mut bad_datum = handshake(None);
        bad_datum.extend_from_slice(&[0, 12]);
        bad_datum.extend_from_slice(b"append");
        bad_datum.extend_from_slice(&[0x02, 0x7f]); // headers: 1 entry, key length -64
        cases.push(("an undecodable event", encode_frame(1, &bad_datum)));
        let mut trailing = handshake(None);
        trailing.extend_from_slice(&[0, 12]);
        trailing.extend_from_slice(b"append");
        trailing.extend_from_slice(&[0, 0, 0xff]); // empty event, then a stray byte
        cases.push(("bytes after the parameters", encode_frame(1, &trailing)));

        for (what, plain) in cases {
            let wire = match mode {
                Compression::None => plain,
                Compression::Deflate { .. } => {
                    use std::io::Write;
                    let mut z =
                        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                    z.write_all(&plain).unwrap();
                    z.flush().unwrap();
                    z.get_ref().clone()
                }
            };
            assert_closed_after(addr, what, &wire).await;
        }
        if matches!(mode, Compression::Deflate { .. }) {
            assert_closed_after(addr, "bytes that are not zlib", b"GET / HTTP/1.1\r\n\r\n").await;
        }

        // The connection that was there before is fine, and so is a new one.
        assert_eq!(
            steady.append(&Event::new("after")).await.unwrap(),
            Status::Ok
        );
        let mut fresh = AvroSourceClient::connect(&addr.to_string(), copts)
            .await
            .unwrap();
        assert_eq!(
            fresh.append_batch(&[Event::new("fresh")]).await.unwrap(),
            Status::Ok
        );
        let bodies: Vec<_> = collector.events().into_iter().map(|e| e.body).collect();
        assert_eq!(bodies, ["before", "after", "fresh"], "{mode:?}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_the_connection_before_it_is_sent() {
    init_tracing();
    let collector = Collector::new();
    let opts = ServerOptions {
        max_frame_bytes: 64 * 1024,
        ..ServerOptions::default()
    };
    let server = Server::avro_source("127.0.0.1:0", collector.clone(), opts)
        .await
        .unwrap();
    let addr = server.local_addr();
    // Only the header and the length prefix of a 10 MiB buffer: the server must not wait for
    // (or allocate) the rest.
    let mut head = 1i32.to_be_bytes().to_vec();
    head.extend_from_slice(&1i32.to_be_bytes());
    head.extend_from_slice(&(10i32 << 20).to_be_bytes());
    assert_closed_after(addr, "a 10 MiB buffer over a 64 KiB limit", &head).await;

    // Our own client gets a clear error when its request is over the server's limit.
    let mut client = AvroSourceClient::connect(&addr.to_string(), ClientOptions::default())
        .await
        .unwrap();
    let err = client
        .append(&Event::new(vec![0u8; 100 * 1024]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert!(collector.events().is_empty());
    server.shutdown().await;
}
