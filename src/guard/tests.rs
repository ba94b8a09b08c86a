//! The layouts held against `kafka-protocol`'s decoder, and the crashes of issue 13.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use super::sample::{self, Rng};
use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn header_version(frame: &[u8]) -> i16 {
    let key = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
    key.request_header_version(i16::from_be_bytes([frame[2], frame[3]]))
}

/// The three frames of issue 13 that aborted the broker (length prefix dropped).
#[test]
fn the_reported_crashes_are_refused() {
    for h in [
        "0000001000030001000000010002667a7fffffff",
        "000000120003000c000000010002667a00ffffffff0f",
        "0000001800000003000000010002667affff0001000003e87fffffff",
    ] {
        let frame = hex(h);
        let frame = &frame[4..];
        let e = check(frame, header_version(frame)).unwrap_err();
        assert!(e.what.contains("array of"), "{h}: {e}");
    }
}

#[test]
fn long_varints_are_refused() {
    // Metadata v12 whose topic count is a six-byte varint.
    let frame = hex("0003000c000000010002667a0080808080800100");
    let e = check(&frame, 2).unwrap_err();
    assert!(e.what.contains("varint"), "{e}");
}

#[test]
fn unknown_versions_are_refused() {
    let frame = hex("00037fff00000001");
    assert!(check(&frame, 2).unwrap_err().what.contains("no layout"));
}

/// Every (key, version) the codec decodes is described, and a sample of each, with arrays,
/// nulls and tagged fields, decodes to the last byte and re-encodes to the same request. A
/// wrong layout in `requests.schema` fails here.
#[test]
fn layouts_match_the_decoder_for_every_key_and_version() {
    let schema = schema::get().unwrap();
    let mut rng = Rng::new(13);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for key in ApiKey::iter() {
        let range = key.valid_versions();
        for v in range.min..=range.max {
            let hv = key.request_header_version(v);
            if hv < 1 {
                continue; // header v0: the codec's RequestHeader reads v1 and up only
            }
            let Some(msg) = schema.request(key as i16, v) else {
                // `valid_versions` overstates a few keys (OffsetCommit v10, ...) whose
                // message decoders refuse that version: nothing to describe there.
                if !refuses_version(key, v) {
                    wrong.push(format!("{key:?} v{v}: no layout"));
                }
                continue;
            };
            for round in 0..40 {
                let frame = sample::request(msg, v, hv, round, &mut rng);
                if let Err(e) = sample_round_trips(key, v, hv, &frame) {
                    wrong.push(format!("{key:?} v{v}: {e}"));
                    break;
                }
                checked += 1;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(checked > 10_000, "{checked}");
}

fn refuses_version(key: ApiKey, v: i16) -> bool {
    RequestKind::decode(key, &mut Bytes::from_static(&[0; 64]), v)
        .is_err_and(|e| format!("{e:#}").contains("version not supported"))
}

fn sample_round_trips(key: ApiKey, v: i16, hv: i16, frame: &[u8]) -> Result<(), String> {
    check(frame, hv).map_err(|e| format!("guard: {e}"))?;
    let mut buf = Bytes::from(frame.to_vec());
    RequestHeader::decode(&mut buf, hv).map_err(|e| format!("header: {e}"))?;
    let req = RequestKind::decode(key, &mut buf, v).map_err(|e| format!("decode: {e}"))?;
    if !buf.is_empty() {
        return Err(format!("{} bytes left after decode", buf.len()));
    }
    let mut again = BytesMut::new();
    req.encode(&mut again, v)
        .map_err(|e| format!("encode: {e}"))?;
    let again =
        RequestKind::decode(key, &mut again.freeze(), v).map_err(|e| format!("re-decode: {e}"))?;
    if req != again {
        return Err("re-encode differs".into());
    }
    Ok(())
}

/// Truncations and corruptions of valid requests: the guard refuses or the decoder reads
/// them without trouble; the process survives either way.
#[test]
fn mutated_samples_never_reach_the_decoder_unchecked() {
    let schema = schema::get().unwrap();
    let mut rng = Rng::new(7);
    for msg in schema.messages() {
        let Ok(key) = ApiKey::try_from(msg.key) else {
            continue;
        };
        for v in msg.valid.min..=msg.valid.max.min(key.valid_versions().max) {
            let hv = key.request_header_version(v);
            if hv < 1 {
                continue;
            }
            for _ in 0..50 {
                let mut frame = sample::request(msg, v, hv, 1, &mut rng);
                let at = 8 + rng.below(frame.len().saturating_sub(8).max(1));
                match rng.below(3) {
                    0 => frame.truncate(at),
                    1 => {
                        if let Some(b) = frame.get_mut(at) {
                            *b = 0xff;
                        }
                    }
                    _ => {
                        let end = (at + 4).min(frame.len());
                        for b in frame.get_mut(at..end).unwrap_or_default() {
                            *b = 0x7f;
                        }
                    }
                }
                if check(&frame, hv).is_ok() {
                    let mut buf = Bytes::from(frame);
                    if RequestHeader::decode(&mut buf, hv).is_ok() {
                        let _ = RequestKind::decode(key, &mut buf, v);
                    }
                }
            }
        }
    }
}

/// The embedded subscription layout against the codec, as for requests.
#[test]
fn subscription_layout_matches_the_decoder() {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    let schema = schema::get().unwrap();
    let mut rng = Rng::new(3);
    for v in 0..=3 {
        let msg = schema.embedded("ConsumerProtocolSubscription", v).unwrap();
        for _ in 0..50 {
            // A sample request's body is the message itself after an 8-byte header v0.
            let frame = sample::request(msg, v, 0, 0, &mut rng);
            let body = &frame[8..];
            check_embedded(body, "ConsumerProtocolSubscription", v).unwrap();
            let mut buf = Bytes::from(body.to_vec());
            ConsumerProtocolSubscription::decode(&mut buf, v).unwrap();
            assert!(buf.is_empty(), "v{v}: bytes left");
        }
    }
    let mut bomb = vec![0x7f, 0xff, 0xff, 0xff];
    bomb.extend_from_slice(&[0; 8]);
    assert!(check_embedded(&bomb, "ConsumerProtocolSubscription", 1).is_err());
}

/// The embedded assignment layout against the codec (the console decodes members'
/// assignments with it).
#[test]
fn assignment_layout_matches_the_decoder() {
    use kafka_protocol::messages::ConsumerProtocolAssignment;
    let schema = schema::get().unwrap();
    let mut rng = Rng::new(5);
    for v in 0..=3 {
        let msg = schema.embedded("ConsumerProtocolAssignment", v).unwrap();
        for _ in 0..50 {
            let frame = sample::request(msg, v, 0, 0, &mut rng);
            let body = &frame[8..];
            check_embedded(body, "ConsumerProtocolAssignment", v).unwrap();
            let mut buf = Bytes::from(body.to_vec());
            ConsumerProtocolAssignment::decode(&mut buf, v).unwrap();
            assert!(buf.is_empty(), "v{v}: bytes left");
        }
    }
    let mut bomb = vec![0x7f, 0xff, 0xff, 0xff];
    bomb.extend_from_slice(&[0; 8]);
    assert!(check_embedded(&bomb, "ConsumerProtocolAssignment", 0).is_err());
}
