//! Framing and version negotiation edge cases.

use kafka_protocol::messages::*;
use sluice::testing::TestBroker;

use crate::client::Client;

fn api_versions_raw(version: i16, correlation: i32) -> Vec<u8> {
    // api key 18, version, correlation id, client id "x" (header v1 layout; a v3+ body would
    // follow, but the broker must answer before parsing it).
    let mut v = Vec::new();
    let body: Vec<u8> = [18i16.to_be_bytes(), version.to_be_bytes()]
        .concat()
        .into_iter()
        .chain(correlation.to_be_bytes())
        .chain([0u8, 1, b'x', 0])
        .collect();
    v.extend_from_slice(&i32::try_from(body.len()).unwrap().to_be_bytes());
    v.extend_from_slice(&body);
    v
}

#[test]
fn api_versions_too_new_gets_v0_unsupported_with_table() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    c.send_raw(&api_versions_raw(99, 42));
    let mut frame = c.read_frame().unwrap();
    // header v0: correlation id only
    let hdr =
        <ResponseHeader as kafka_protocol::protocol::Decodable>::decode(&mut frame, 0).unwrap();
    assert_eq!(hdr.correlation_id, 42);
    let resp = <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut frame, 0)
        .unwrap();
    assert_eq!(resp.error_code, 35);
    assert!(resp
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16 && k.min_version == 0));
}

#[test]
fn api_versions_lists_the_supported_table() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    let ResponseKind::ApiVersions(r) = c.call(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ) else {
        panic!("wrong response kind")
    };
    assert_eq!(r.error_code, 0);
    assert_eq!(r.api_keys.len(), sluice::api::SUPPORTED.len());
    let fetch = r
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .unwrap();
    assert_eq!((fetch.min_version, fetch.max_version), (4, 17));
}

#[test]
fn unsupported_version_in_codec_range_gets_error_code() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    // DescribeCluster v2 is decodable but above our table's max (1).
    let ResponseKind::DescribeCluster(r) = c.call(
        ApiKey::DescribeCluster,
        2,
        RequestKind::DescribeCluster(DescribeClusterRequest::default()),
    ) else {
        panic!("wrong response kind")
    };
    assert_eq!(r.error_code, 35);
}

#[test]
fn bad_frames_close_only_their_connection() {
    let b = TestBroker::start();
    let mut good = Client::connect(b.addr);
    for bad in [
        vec![0x7f, 0xff, 0xff, 0xff],                    // absurd length
        vec![0, 0, 0, 8, 0x27, 0x0f, 0, 0, 0, 0, 0, 1],  // unknown api key 9999
        vec![0, 0, 0, 8, 0, 0, 0, 2, 0, 0, 0, 1],        // Produce v2: below the floor
        vec![0, 0, 0, 30, 0, 3, 0, 9, 0, 0, 0, 1, 0xff], // truncated then closed
        vec![0, 0, 0, 12, 0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff], // garbage body
    ] {
        let mut c = Client::connect(b.addr);
        c.send_raw(&bad);
        c.stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(c.read_frame().is_none(), "broker answered {bad:?}");
    }
    let ResponseKind::Metadata(m) = good.call(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default()),
    ) else {
        panic!("wrong response kind")
    };
    assert_eq!(m.brokers.len(), 1);
    assert_eq!(m.brokers[0].port, i32::from(b.addr.port()));
}
