//! The public decoders against hostile input: the spec example, then thousands of truncated,
//! bit-flipped and random datums and frame headers, which must give errors (never a panic or
//! a large allocation; the frame decoder never holds more than it was given).

use bytes::{BufMut, BytesMut};
use sluice_flume_rpc::{decode_event, encode_event, encode_frame, Event, FrameDecoder};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn the_idl_example_is_02_02_61_02_62_00_04_68_69() {
    let e = Event::new("hi").with_header("a", "b");
    let bytes = encode_event(&e);
    assert_eq!(
        bytes,
        [0x02, 0x02, 0x61, 0x02, 0x62, 0x00, 0x04, 0x68, 0x69]
    );
    assert_eq!(decode_event(&bytes).unwrap(), e);
}

#[test]
fn mangled_event_datums_fail_cleanly() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let good = encode_event(
        &Event::new("payload with some length")
            .with_header("timestamp", "1700000000000")
            .with_header("host", "web-1"),
    );
    let mut ok = 0;
    for _ in 0..20_000 {
        let mut b = good.clone();
        match rng.below(4) {
            0 => b.truncate(rng.below(good.len())),
            1 => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            2 => {
                // A varint of a huge or negative length spliced in.
                let i = rng.below(b.len());
                let junk = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
                b.splice(i..i, junk.iter().copied());
            }
            _ => {
                let n = rng.below(64);
                b = (0..n).map(|_| rng.next() as u8).collect();
            }
        }
        // Must return, Ok or Err; a decoded event can't be bigger than its input.
        if let Ok(e) = decode_event(&b) {
            assert!(e.body.len() <= b.len());
            ok += 1;
        }
    }
    // Bit flips inside strings still decode; most mangling must not.
    assert!(ok < 20_000 / 2, "{ok} mangled datums decoded");
}

#[test]
fn hostile_frame_headers_never_make_the_decoder_hold_more_than_it_got() {
    let mut rng = Rng(0xf4a3_e000_0000_0077);
    let max = 1 << 20;
    for _ in 0..20_000 {
        let mut buf = BytesMut::new();
        buf.put_i32(rng.next() as i32);
        // Counts and lengths drawn from the edges: negative, zero, small, huge.
        let edge = |rng: &mut Rng| -> i32 {
            match rng.below(5) {
                0 => -(rng.below(1000) as i32) - 1,
                1 => 0,
                2 => rng.below(16) as i32,
                3 => i32::MAX - rng.below(1000) as i32,
                _ => rng.next() as i32,
            }
        };
        buf.put_i32(edge(&mut rng));
        for _ in 0..rng.below(4) {
            buf.put_i32(edge(&mut rng));
            let n = rng.below(32);
            buf.extend((0..n).map(|_| rng.next() as u8));
        }
        let given = buf.len();
        let mut d = FrameDecoder::new(max);
        match d.decode(&mut buf) {
            Ok(Some(f)) => assert!(f.payload.len() <= given),
            Ok(None) => assert!(d.partial_len() <= given),
            Err(_) => {}
        }
    }
}

#[test]
fn a_frame_split_anywhere_decodes_the_same() {
    let payload: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let wire = encode_frame(42, &payload);
    for cut in [0, 1, 7, 8, 11, 12, 13, 2000, wire.len() - 1, wire.len()] {
        let mut d = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::from(&wire[..cut]);
        let early = d.decode(&mut buf).unwrap();
        buf.extend_from_slice(&wire[cut..]);
        let f = early.or_else(|| d.decode(&mut buf).unwrap()).unwrap();
        assert_eq!(
            (f.serial, &f.payload[..]),
            (42, &payload[..]),
            "cut at {cut}"
        );
    }
}
