//! Kafka's default partitioner for keyed records (`BuiltInPartitioner.partitionForKey`):
//! `toPositive(murmur2(key)) % partitions`, with `Utils.murmur2`'s seed and mixing, so a key
//! lands in the partition a Java producer (or librdkafka's `murmur2_random`) would pick.

/// MurmurHash2 (32-bit) with Kafka's seed, as Kafka's `Utils.murmur2` computes it (a Java
/// int).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Kafka hashes `length` as a Java int; keys are far shorter than 2^31.
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h = SEED ^ len;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate().rev() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// The partition of `partitions` Kafka's default partitioner gives `key`; 0 when there are
/// no partitions.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Vectors from Kafka's UtilsTest.testMurmur2.
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, want) in cases {
            assert_eq!(murmur2(data), *want, "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn keys_map_to_kafkas_partition() {
        assert_eq!(
            partition_for_key(b"foobar", 7),
            (-790_332_482i32 & 0x7fff_ffff) % 7
        );
        for key in [&b"spark"[..], b"kafka", b"x", b""] {
            let p = partition_for_key(key, 6);
            assert!((0..6).contains(&p));
        }
        assert_eq!(partition_for_key(b"k", 0), 0);
    }
}
