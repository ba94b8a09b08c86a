//! Our clients against our servers over real TCP: both protocols, plain and deflate, every
//! handshake path (BOTH, CLIENT, NONE → resend), ping, unknown messages, pipelined requests
//! answered in order, and shutdown finishing the request in flight.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_flume_rpc::{
    encode_event, encode_frame, AvroSourceClient, ClientOptions, Compression, Event, FrameDecoder,
    HandshakeMatch, Protocol, RpcClient, RpcError, Server, ServerOptions, SparkSinkClient, Status,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::support::{init_tracing, poll_until, Collector, FakeSparkSink};

const MODES: [Compression; 2] = [Compression::None, Compression::Deflate { level: 6 }];

fn client_opts(compression: Compression) -> ClientOptions {
    ClientOptions {
        compression,
        ..ClientOptions::default()
    }
}

fn server_opts(compression: Compression) -> ServerOptions {
    ServerOptions {
        compression,
        ..ServerOptions::default()
    }
}

#[tokio::test]
async fn avro_source_append_and_append_batch_plain_and_deflate() {
    init_tracing();
    for mode in MODES {
        let collector = Collector::new();
        let server = Server::avro_source("127.0.0.1:0", collector.clone(), server_opts(mode))
            .await
            .unwrap();
        let addr = server.local_addr().to_string();
        let mut client = AvroSourceClient::connect(&addr, client_opts(mode))
            .await
            .unwrap();

        let one = Event::new("first").with_header("host", "h1");
        assert_eq!(client.append(&one).await.unwrap(), Status::Ok);
        let batch: Vec<Event> = (0..50)
            .map(|i| Event::new(format!("event-{i}")).with_header("i", i.to_string()))
            .collect();
        assert_eq!(client.append_batch(&batch).await.unwrap(), Status::Ok);
        assert_eq!(client.append_batch(&[]).await.unwrap(), Status::Ok);
        // A 1 MiB body crosses in one call too.
        let big = Event::new(vec![b'x'; 1 << 20]);
        assert_eq!(client.append(&big).await.unwrap(), Status::Ok);

        *collector.status.lock().unwrap() = Status::Failed;
        assert_eq!(
            client.append(&Event::new("refused")).await.unwrap(),
            Status::Failed
        );

        let mut want = vec![one.clone()];
        want.extend(batch.iter().cloned());
        want.push(big.clone());
        want.push(Event::new("refused"));
        assert_eq!(collector.events(), want, "{mode:?}");
        assert_eq!(
            *collector.calls.lock().unwrap(),
            ["append", "appendBatch", "appendBatch", "append", "append"]
        );
        assert_eq!(client.rpc().handshakes(), [HandshakeMatch::Both]);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn spark_sink_get_ack_nack_plain_and_deflate() {
    init_tracing();
    for mode in MODES {
        let events: Vec<Event> = (0..7)
            .map(|i| Event::new(format!("s{i}")).with_header("n", i.to_string()))
            .collect();
        let sink = FakeSparkSink::new(events.clone());
        let server = Server::spark_sink("127.0.0.1:0", sink.clone(), server_opts(mode))
            .await
            .unwrap();
        let addr = server.local_addr().to_string();
        let mut client = SparkSinkClient::connect(&addr, client_opts(mode))
            .await
            .unwrap();

        let b1 = client.get_event_batch(3).await.unwrap();
        assert_eq!(b1.error_msg, "");
        assert_eq!(b1.events, events[..3]);
        client.ack(&b1.sequence_number).await.unwrap();

        let b2 = client.get_event_batch(3).await.unwrap();
        assert_eq!(b2.events, events[3..6]);
        client.nack(&b2.sequence_number).await.unwrap();
        // The nacked events come again, first.
        let b3 = client.get_event_batch(10).await.unwrap();
        assert_eq!(b3.events, events[3..]);
        assert_ne!(b3.sequence_number, b2.sequence_number);
        client.ack(&b3.sequence_number).await.unwrap();

        let empty = client.get_event_batch(5).await.unwrap();
        assert_eq!(empty.error_msg, "no events");
        assert!(empty.events.is_empty());

        {
            let s = sink.state.lock().unwrap();
            assert_eq!(s.acked, [b1.sequence_number, b3.sequence_number]);
            assert_eq!(s.nacked, [b2.sequence_number]);
        }
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_wrong_server_hash_guess_gets_client() {
    init_tracing();
    let collector = Collector::new();
    let server = Server::avro_source("127.0.0.1:0", collector.clone(), ServerOptions::default())
        .await
        .unwrap();
    let addr = server.local_addr().to_string();

    let mut rpc = RpcClient::connect(&addr, Protocol::avro_source(), ClientOptions::default())
        .await
        .unwrap();
    rpc.set_server_hash_guess([0xee; 16]);
    let mut client = AvroSourceClient::from_rpc(rpc).unwrap();
    assert_eq!(client.append(&Event::new("a")).await.unwrap(), Status::Ok);
    assert_eq!(client.append(&Event::new("b")).await.unwrap(), Status::Ok);
    // CLIENT establishes the connection at once; the second call carries no handshake.
    assert_eq!(client.rpc().handshakes(), [HandshakeMatch::Client]);
    assert_eq!(collector.events().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn an_unknown_client_protocol_gets_none_and_the_resend_succeeds() {
    init_tracing();
    let collector = Collector::new();
    let server = Server::avro_source("127.0.0.1:0", collector.clone(), ServerOptions::default())
        .await
        .unwrap();
    let addr = server.local_addr().to_string();

    // Same protocol, different text (as Java's would be): a hash the server has never seen.
    let ours = Protocol::avro_source();
    let variant_text = ours
        .text()
        .replacen('{', "{\"doc\":\"a client with its own text\",", 1);
    let variant = Arc::new(Protocol::parse(&variant_text).unwrap());
    assert_ne!(variant.md5(), ours.md5());

    let rpc = RpcClient::connect(&addr, variant.clone(), ClientOptions::default())
        .await
        .unwrap();
    let mut client = AvroSourceClient::from_rpc(rpc).unwrap();
    assert_eq!(client.append(&Event::new("x")).await.unwrap(), Status::Ok);
    // NONE carried only the handshake (and the server's hash); the resend carried our text
    // and the server's real hash, so it got BOTH.
    assert_eq!(
        client.rpc().handshakes(),
        [HandshakeMatch::None, HandshakeMatch::Both]
    );
    assert_eq!(
        collector.events(),
        [Event::new("x")],
        "delivered exactly once"
    );

    // A second connection: the server now knows the variant's hash and the client has the
    // server's hash cached, so one round does it.
    let rpc = RpcClient::connect(&addr, variant, ClientOptions::default())
        .await
        .unwrap();
    let mut second = AvroSourceClient::from_rpc(rpc).unwrap();
    assert_eq!(second.append(&Event::new("y")).await.unwrap(), Status::Ok);
    assert_eq!(second.rpc().handshakes(), [HandshakeMatch::Both]);
    server.shutdown().await;
}

#[tokio::test]
async fn ping_handshakes_and_unknown_messages_get_an_error_reply() {
    init_tracing();
    let collector = Collector::new();
    let server = Server::avro_source("127.0.0.1:0", collector.clone(), ServerOptions::default())
        .await
        .unwrap();
    let addr = server.local_addr().to_string();
    let mut rpc = RpcClient::connect(&addr, Protocol::avro_source(), ClientOptions::default())
        .await
        .unwrap();
    rpc.ping().await.unwrap();
    assert!(rpc.is_established());
    rpc.ping().await.unwrap();
    assert_eq!(rpc.handshakes(), [HandshakeMatch::Both]);

    let err = rpc.call("frobnicate", &[]).await.unwrap_err();
    match &err {
        RpcError::Remote(msg) => {
            assert!(msg.contains("frobnicate"), "{msg}");
            assert!(msg.contains(&addr), "names the peer: {msg}");
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
    // The connection survives an error reply.
    let status = rpc
        .call("append", &encode_event(&Event::new("after")))
        .await
        .unwrap();
    assert_eq!(status, [0], "Status OK");
    assert_eq!(collector.events(), [Event::new("after")]);
    server.shutdown().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_with_their_serials() {
    init_tracing();
    let collector = Collector::new();
    let server = Server::avro_source("127.0.0.1:0", collector.clone(), ServerOptions::default())
        .await
        .unwrap();
    let mut sock = TcpStream::connect(server.local_addr()).await.unwrap();

    // First request: handshake (our hash both ways, no text) + empty meta + "append" + event.
    let hash = Protocol::avro_source().md5();
    let mut first = Vec::new();
    first.extend_from_slice(&hash);
    first.push(0); // clientProtocol: null
    first.extend_from_slice(&hash);
    first.push(0); // meta: null
    let call = |body: &str| {
        let mut v = vec![0u8]; // call metadata: empty map
        v.push(12); // "append": length 6, zig-zag
        v.extend_from_slice(b"append");
        v.extend_from_slice(&encode_event(&Event::new(body.to_string())));
        v
    };
    first.extend_from_slice(&call("p0"));
    let mut wire = encode_frame(100, &first);
    for (serial, body) in [(7, "p1"), (-3, "p2"), (100, "p3")] {
        wire.extend_from_slice(&encode_frame(serial, &call(body)));
    }
    sock.write_all(&wire).await.unwrap();

    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut replies = Vec::new();
    while replies.len() < 4 {
        let n = tokio::time::timeout(Duration::from_secs(20), sock.read_buf(&mut buf))
            .await
            .expect("replies within 20 s")
            .unwrap();
        assert!(n > 0, "server closed after {} replies", replies.len());
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            replies.push(f);
        }
    }
    let serials: Vec<i32> = replies.iter().map(|f| f.serial).collect();
    assert_eq!(serials, [100, 7, -3, 100]);
    // BOTH handshake (4 zero bytes), then meta, no error, Status OK.
    assert_eq!(&replies[0].payload[..], [0, 0, 0, 0, 0, 0, 0]);
    for r in &replies[1..] {
        assert_eq!(
            &r.payload[..],
            [0, 0, 0],
            "the spec's `00 00 00` append reply"
        );
    }
    let bodies: Vec<_> = collector.events().into_iter().map(|e| e.body).collect();
    assert_eq!(bodies, ["p0", "p1", "p2", "p3"]);
    server.shutdown().await;
}

/// Blocks `append` until released.
struct Gate {
    entered: Notify,
    release: Notify,
}

#[async_trait::async_trait]
impl sluice_flume_rpc::AvroSourceHandler for Gate {
    async fn append(&self, _event: Event) -> Status {
        let released = self.release.notified();
        self.entered.notify_one();
        released.await;
        Status::Ok
    }
    async fn append_batch(&self, _events: Vec<Event>) -> Status {
        Status::Ok
    }
}

#[tokio::test]
async fn shutdown_stops_accepting_and_finishes_the_request_in_flight() {
    init_tracing();
    let gate = Arc::new(Gate {
        entered: Notify::new(),
        release: Notify::new(),
    });
    let server = Server::avro_source("127.0.0.1:0", gate.clone(), ServerOptions::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut client = AvroSourceClient::connect(&addr.to_string(), ClientOptions::default())
        .await
        .unwrap();
    let entered = gate.entered.notified();
    let call = tokio::spawn(async move {
        let r = client.append(&Event::new("in flight")).await;
        (client, r)
    });
    entered.await;

    let shutdown = tokio::spawn(server.shutdown());
    // The listener goes away first...
    poll_until("the listener to close", Duration::from_secs(20), || async {
        TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;
    // ...while the request in flight still gets its answer.
    gate.release.notify_one();
    let (mut client, r) = call.await.unwrap();
    assert_eq!(r.unwrap(), Status::Ok);
    shutdown.await.unwrap();
    // And then the connection is closed.
    let err = client.append(&Event::new("late")).await.unwrap_err();
    assert!(
        matches!(err, RpcError::Protocol(_) | RpcError::Io(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn connect_errors_and_timeouts_name_the_peer() {
    init_tracing();
    // A port nobody listens on.
    let port = crate::support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let err = AvroSourceClient::connect(&addr, ClientOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Io(_)), "{err:?}");
    assert!(err.to_string().contains(&addr), "{err}");

    // A server that accepts but never answers: the call times out, and the client is then
    // unusable rather than reading a stale reply later.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let mut s = s;
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    });
    let opts = ClientOptions {
        request_timeout: Duration::from_millis(300),
        ..ClientOptions::default()
    };
    let mut client = AvroSourceClient::connect(&silent, opts).await.unwrap();
    let err = client.append(&Event::new("x")).await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout(_)), "{err:?}");
    assert!(err.to_string().contains(&silent), "{err}");
    let again = client.append(&Event::new("y")).await.unwrap_err();
    assert!(matches!(again, RpcError::Protocol(_)), "{again:?}");
    drop(client);
    hold.await.unwrap();
}
