//! The three `hdfs.fileType`s, as encoders into a byte buffer (the sink writes the buffer to
//! the file and flushes it once per transaction):
//! - `SequenceFile`: a Hadoop SequenceFile, version 6: `SEQ` 6, the key and value class
//!   names, the compression flags, empty metadata, a 16-byte sync marker. Uncompressed,
//!   records are `int recordLength, int keyLength, key, value`; a sync escape (`-1` + marker)
//!   is written at every flush that follows new records (Hadoop's `Writer.sync()`, which
//!   Flume calls on each batch) and whenever 100 KiB of records passed without one. With
//!   `hdfs.codeC = deflate` (Hadoop's `DefaultCodec`; Flume always uses BLOCK compression)
//!   each flush writes one block: sync escape, record count, then key lengths, keys, value
//!   lengths and values, each as its own zlib stream (Hadoop's `BlockCompressWriter`). Gzip
//!   is refused for SequenceFiles, as Hadoop refuses it without its native library. With
//!   `hdfs.writeFormat = Writable` (the default) key/value are `LongWritable` (the
//!   `timestamp` header, or now) and `BytesWritable` (the body); with `Text` the value is a
//!   `Text`. A non-numeric `timestamp` header fails the append, as Java's `Long.valueOf` does.
//! - `DataStream`: the event serializer's bytes.
//! - `CompressedStream`: the serializer's bytes through `hdfs.codeC` (`gzip` or `deflate`,
//!   i.e. Hadoop's `GzipCodec` / `DefaultCodec`); each flush finishes the compressed stream
//!   and the next append starts a new one, so a file is a concatenation of gzip members
//!   (zlib streams), as Hadoop's codec streams write it after `finish()` / `resetState()`.

use std::io::Write;

use flate2::write::{GzEncoder, ZlibEncoder};

use super::serializer::{EventSerializer, SerializerSpec};
use crate::event::Event;

/// Hadoop's `SequenceFile.SYNC_INTERVAL` (5 × 1024 × 20 bytes).
const SEQ_SYNC_INTERVAL: u64 = 5 * 1024 * 20;

/// `hdfs.writeFormat` for SequenceFiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFormat {
    /// `LongWritable` / `BytesWritable`.
    Writable,
    /// `LongWritable` / `Text`.
    Text,
}

/// `hdfs.codeC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Hadoop's `GzipCodec`, extension `.gz`.
    Gzip,
    /// Hadoop's `DefaultCodec` (zlib), extension `.deflate`.
    Deflate,
}

impl Codec {
    /// Parse a codec name as Flume's `getCodec` matches it: the class name, its simple name,
    /// or the simple name without `Codec`, case-insensitively. `None` for "None".
    pub fn parse(name: &str) -> Result<Option<Codec>, String> {
        let n = name.trim();
        let matches = |simple: &str, full: &str| {
            n == full
                || n.eq_ignore_ascii_case(simple)
                || simple
                    .strip_suffix("Codec")
                    .is_some_and(|p| n.eq_ignore_ascii_case(p))
        };
        if n.eq_ignore_ascii_case("None") {
            Ok(None)
        } else if matches("GzipCodec", "org.apache.hadoop.io.compress.GzipCodec") {
            Ok(Some(Codec::Gzip))
        } else if matches("DefaultCodec", "org.apache.hadoop.io.compress.DefaultCodec")
            || n.eq_ignore_ascii_case("deflate")
        {
            Ok(Some(Codec::Deflate))
        } else {
            Err(format!(
                "unsupported compression codec {n:?}; sluice-flume supports gzip (GzipCodec) and deflate (DefaultCodec)"
            ))
        }
    }

    /// The extension Hadoop gives files of this codec.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
            Codec::Deflate => ".deflate",
        }
    }
}

/// What kind of file the sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    /// A Hadoop SequenceFile; block-compressed with `DefaultCodec` when the flag is set.
    SequenceFile(WriteFormat, bool),
    /// Serializer output.
    DataStream(SerializerSpec),
    /// Serializer output through a codec.
    CompressedStream(SerializerSpec, Codec),
}

/// Why an event could not be appended.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AppendError(pub String);

/// An open file's encoder.
pub trait FormatWriter: Send {
    /// Bytes that start the file.
    fn open(&mut self, out: &mut Vec<u8>);
    /// One event.
    fn append(&mut self, e: &Event, out: &mut Vec<u8>) -> Result<(), AppendError>;
    /// End of a batch (Flume's `sync()`, before hflush).
    fn sync(&mut self, out: &mut Vec<u8>);
    /// Bytes that end the file.
    fn close(&mut self, out: &mut Vec<u8>);
}

impl FileFormat {
    /// An encoder for a new file.
    pub fn writer(&self) -> Box<dyn FormatWriter> {
        match self {
            FileFormat::SequenceFile(f, compressed) => {
                Box::new(SequenceFileWriter::new(*f, *compressed))
            }
            FileFormat::DataStream(s) => Box::new(DataStream {
                serializer: s.build(),
            }),
            FileFormat::CompressedStream(s, c) => Box::new(Compressed {
                serializer: s.build(),
                codec: *c,
                stream: None,
            }),
        }
    }
}

/// Hadoop's `WritableUtils.writeVLong`.
pub fn write_vlong(out: &mut Vec<u8>, v: i64) {
    if (-112..=127).contains(&v) {
        out.push(v as u8);
        return;
    }
    let mut len: i32 = -112;
    let mut i = v;
    if i < 0 {
        i ^= -1;
        len = -120;
    }
    let mut tmp = i;
    while tmp != 0 {
        tmp >>= 8;
        len -= 1;
    }
    out.push(len as u8);
    let n = if len < -120 {
        -(len + 120)
    } else {
        -(len + 112)
    };
    for idx in (1..=n).rev() {
        let shift = (idx - 1) * 8;
        out.push(((i >> shift) & 0xff) as u8);
    }
}

/// Hadoop's `Text.writeString`.
fn write_text(out: &mut Vec<u8>, s: &[u8]) {
    write_vlong(out, i64::try_from(s.len()).unwrap_or(i64::MAX));
    out.extend_from_slice(s);
}

fn be_len(n: usize) -> [u8; 4] {
    i32::try_from(n).unwrap_or(i32::MAX).to_be_bytes()
}

/// Hadoop's `io.seqfile.compress.blocksize` default: buffered key and value bytes that make
/// a block-compressed SequenceFile write a block without waiting for a flush.
const SEQ_COMPRESS_BLOCK_SIZE: usize = 1_000_000;

/// The four buffers of a block-compressed SequenceFile's pending block.
#[derive(Default)]
struct Block {
    records: i64,
    key_lens: Vec<u8>,
    keys: Vec<u8>,
    val_lens: Vec<u8>,
    vals: Vec<u8>,
}

struct SequenceFileWriter {
    format: WriteFormat,
    /// `Some` for a block-compressed file (Hadoop's `BlockCompressWriter`).
    block: Option<Block>,
    sync: [u8; 16],
    /// Bytes written to the file so far.
    pos: u64,
    last_sync_pos: u64,
}

/// `DefaultCodec`: one zlib stream per buffer (Hadoop finishes and resets it each time).
fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2 + 16),
        flate2::Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = z.write_all(data);
    z.finish().unwrap_or_default()
}

impl SequenceFileWriter {
    fn new(format: WriteFormat, compressed: bool) -> Self {
        SequenceFileWriter {
            format,
            block: compressed.then(Block::default),
            sync: *uuid::Uuid::new_v4().as_bytes(),
            pos: 0,
            last_sync_pos: 0,
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(bytes);
        self.pos += bytes.len() as u64;
    }

    fn write_sync(&mut self, out: &mut Vec<u8>) {
        if self.last_sync_pos != self.pos {
            let sync = self.sync;
            self.emit(out, &(-1i32).to_be_bytes());
            self.emit(out, &sync);
            self.last_sync_pos = self.pos;
        }
    }

    /// `BlockCompressWriter.sync()`: a sync marker, the record count, then the key lengths,
    /// keys, value lengths and values, each compressed on its own.
    fn write_block(&mut self, out: &mut Vec<u8>) {
        let Some(b) = self.block.take() else { return };
        if b.records == 0 {
            self.block = Some(b);
            return;
        }
        self.write_sync(out);
        let mut data = Vec::new();
        write_vlong(&mut data, b.records);
        for buf in [&b.key_lens, &b.keys, &b.val_lens, &b.vals] {
            let z = zlib(buf);
            write_vlong(&mut data, i64::try_from(z.len()).unwrap_or(i64::MAX));
            data.extend_from_slice(&z);
        }
        self.emit(out, &data);
        self.block = Some(Block::default());
    }
}

impl FormatWriter for SequenceFileWriter {
    fn open(&mut self, out: &mut Vec<u8>) {
        let mut h = Vec::with_capacity(128);
        h.extend_from_slice(b"SEQ\x06");
        write_text(&mut h, b"org.apache.hadoop.io.LongWritable");
        match self.format {
            WriteFormat::Writable => write_text(&mut h, b"org.apache.hadoop.io.BytesWritable"),
            WriteFormat::Text => write_text(&mut h, b"org.apache.hadoop.io.Text"),
        }
        let compressed = self.block.is_some();
        h.push(u8::from(compressed)); // compressed
        h.push(u8::from(compressed)); // block compressed
        if compressed {
            write_text(&mut h, b"org.apache.hadoop.io.compress.DefaultCodec");
        }
        h.extend_from_slice(&0i32.to_be_bytes()); // metadata entries
        h.extend_from_slice(&self.sync);
        self.emit(out, &h);
    }

    fn append(&mut self, e: &Event, out: &mut Vec<u8>) -> Result<(), AppendError> {
        let key: i64 = match e.headers.get("timestamp") {
            Some(v) => v.parse().map_err(|_| {
                AppendError(format!(
                    "the SequenceFile key is the event's timestamp header, and {v:?} is not a number (Java: NumberFormatException)"
                ))
            })?,
            None => chrono::Utc::now().timestamp_millis(),
        };
        let mut value = Vec::with_capacity(e.body.len() + 9);
        match self.format {
            WriteFormat::Writable => {
                value.extend_from_slice(&be_len(e.body.len()));
                value.extend_from_slice(&e.body);
            }
            WriteFormat::Text => write_text(&mut value, &e.body),
        }
        if let Some(b) = self.block.as_mut() {
            write_vlong(&mut b.key_lens, 8);
            b.keys.extend_from_slice(&key.to_be_bytes());
            write_vlong(
                &mut b.val_lens,
                i64::try_from(value.len()).unwrap_or(i64::MAX),
            );
            b.vals.extend_from_slice(&value);
            b.records += 1;
            if b.keys.len() + b.vals.len() >= SEQ_COMPRESS_BLOCK_SIZE {
                self.write_block(out);
            }
            return Ok(());
        }
        if self.pos >= self.last_sync_pos + SEQ_SYNC_INTERVAL {
            self.write_sync(out);
        }
        let mut rec = Vec::with_capacity(value.len() + 16);
        rec.extend_from_slice(&be_len(8 + value.len()));
        rec.extend_from_slice(&8i32.to_be_bytes());
        rec.extend_from_slice(&key.to_be_bytes());
        rec.extend_from_slice(&value);
        self.emit(out, &rec);
        Ok(())
    }

    fn sync(&mut self, out: &mut Vec<u8>) {
        if self.block.is_some() {
            self.write_block(out);
        } else {
            self.write_sync(out);
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        self.write_block(out);
    }
}

struct DataStream {
    serializer: Box<dyn EventSerializer>,
}

impl FormatWriter for DataStream {
    fn open(&mut self, out: &mut Vec<u8>) {
        self.serializer.after_create(out);
    }
    fn append(&mut self, e: &Event, out: &mut Vec<u8>) -> Result<(), AppendError> {
        self.serializer.write(e, out);
        Ok(())
    }
    fn sync(&mut self, out: &mut Vec<u8>) {
        self.serializer.flush(out);
    }
    fn close(&mut self, out: &mut Vec<u8>) {
        self.serializer.flush(out);
        self.serializer.before_close(out);
    }
}

enum Stream {
    Gzip(GzEncoder<Vec<u8>>),
    Zlib(ZlibEncoder<Vec<u8>>),
}

struct Compressed {
    serializer: Box<dyn EventSerializer>,
    codec: Codec,
    /// The compressed stream of the current batch; `None` after `finish()`.
    stream: Option<Stream>,
}

impl Compressed {
    fn feed(&mut self, plain: &[u8]) {
        if plain.is_empty() {
            return;
        }
        let level = flate2::Compression::default();
        let stream = self.stream.get_or_insert_with(|| match self.codec {
            Codec::Gzip => Stream::Gzip(GzEncoder::new(Vec::new(), level)),
            Codec::Deflate => Stream::Zlib(ZlibEncoder::new(Vec::new(), level)),
        });
        // Writing into a Vec cannot fail.
        let _ = match stream {
            Stream::Gzip(g) => g.write_all(plain),
            Stream::Zlib(z) => z.write_all(plain),
        };
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        let done = match self.stream.take() {
            Some(Stream::Gzip(g)) => g.finish(),
            Some(Stream::Zlib(z)) => z.finish(),
            None => return,
        };
        if let Ok(bytes) = done {
            out.extend_from_slice(&bytes);
        }
    }
}

impl FormatWriter for Compressed {
    fn open(&mut self, out: &mut Vec<u8>) {
        let _ = out;
        let mut plain = Vec::new();
        self.serializer.after_create(&mut plain);
        self.feed(&plain);
    }
    fn append(&mut self, e: &Event, _out: &mut Vec<u8>) -> Result<(), AppendError> {
        let mut plain = Vec::with_capacity(e.body.len() + 1);
        self.serializer.write(e, &mut plain);
        self.feed(&plain);
        Ok(())
    }
    fn sync(&mut self, out: &mut Vec<u8>) {
        let mut plain = Vec::new();
        self.serializer.flush(&mut plain);
        self.feed(&plain);
        self.finish(out);
    }
    fn close(&mut self, out: &mut Vec<u8>) {
        let mut plain = Vec::new();
        self.serializer.flush(&mut plain);
        self.serializer.before_close(&mut plain);
        self.feed(&plain);
        self.finish(out);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn vlong_matches_hadoop() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7f]),
            (-112, &[0x90]),
            (128, &[0x8f, 0x80]),
            (-113, &[0x87, 0x70]),
            (300, &[0x8e, 0x01, 0x2c]),
            (33, &[0x21]),
        ];
        for (v, want) in cases {
            let mut out = Vec::new();
            write_vlong(&mut out, *v);
            assert_eq!(&out, want, "{v}");
        }
    }

    #[test]
    fn sequence_file_layout() {
        let mut w = FileFormat::SequenceFile(WriteFormat::Writable, false).writer();
        let mut out = Vec::new();
        w.open(&mut out);
        let mut expect = b"SEQ\x06\x21org.apache.hadoop.io.LongWritable\x22org.apache.hadoop.io.BytesWritable\x00\x00\x00\x00\x00\x00".to_vec();
        assert_eq!(&out[..expect.len()], &expect[..]);
        let sync = out[expect.len()..].to_vec();
        assert_eq!(sync.len(), 16);
        expect.extend_from_slice(&sync);
        let e = Event::new("hi").with_header("timestamp", "1000");
        w.append(&e, &mut out).unwrap();
        // record length 14 = 8 (key) + 4 + 2, key length 8, key 1000, value length 2, "hi".
        expect.extend_from_slice(&[
            0, 0, 0, 14, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 2, b'h', b'i',
        ]);
        assert_eq!(out, expect);
        w.sync(&mut out);
        expect.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        expect.extend_from_slice(&sync);
        assert_eq!(out, expect);
        // No new records: no second marker.
        w.sync(&mut out);
        assert_eq!(out, expect);
        let bad = Event::new("x").with_header("timestamp", "soon");
        assert!(w.append(&bad, &mut out).unwrap_err().0.contains("\"soon\""));
    }

    #[test]
    fn text_sequence_file_values() {
        let mut w = FileFormat::SequenceFile(WriteFormat::Text, false).writer();
        let mut out = Vec::new();
        w.open(&mut out);
        assert!(out.windows(25).any(|x| x == b"org.apache.hadoop.io.Text"));
        let start = out.len();
        w.append(&Event::new("hi").with_header("timestamp", "1"), &mut out)
            .unwrap();
        assert_eq!(
            &out[start..],
            &[0, 0, 0, 11, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 2, b'h', b'i']
        );
    }

    #[test]
    fn block_compressed_sequence_file_layout() {
        let mut w = FileFormat::SequenceFile(WriteFormat::Writable, true).writer();
        let mut out = Vec::new();
        w.open(&mut out);
        let codec = b"\x2aorg.apache.hadoop.io.compress.DefaultCodec";
        let flags_at = out.windows(codec.len()).position(|x| x == codec).unwrap() - 2;
        assert_eq!(
            &out[flags_at..flags_at + 2],
            &[1, 1],
            "compressed, block compressed"
        );
        let sync = out[out.len() - 16..].to_vec();
        let header = out.len();
        w.append(&Event::new("hi").with_header("timestamp", "7"), &mut out)
            .unwrap();
        w.append(&Event::new("yo").with_header("timestamp", "8"), &mut out)
            .unwrap();
        assert_eq!(out.len(), header, "records wait for the block");
        w.sync(&mut out);
        let block = &out[header..];
        assert_eq!(&block[..4], &[0xff; 4]);
        assert_eq!(&block[4..20], &sync[..]);
        assert_eq!(block[20], 2, "record count");
        // Four zlib buffers: key lengths, keys, value lengths, values.
        let mut pos = 21;
        let mut bufs = Vec::new();
        for _ in 0..4 {
            let len = usize::from(block[pos]);
            let mut plain = Vec::new();
            flate2::read::ZlibDecoder::new(&block[pos + 1..pos + 1 + len])
                .read_to_end(&mut plain)
                .unwrap();
            bufs.push(plain);
            pos += 1 + len;
        }
        assert_eq!(pos, block.len());
        assert_eq!(bufs[0], vec![8, 8]);
        assert_eq!(bufs[1], [7i64.to_be_bytes(), 8i64.to_be_bytes()].concat());
        assert_eq!(bufs[2], vec![6, 6]);
        assert_eq!(bufs[3], b"\0\0\0\x02hi\0\0\0\x02yo".to_vec());
        // Nothing pending: no empty block.
        let len = out.len();
        w.close(&mut out);
        assert_eq!(out.len(), len);
    }

    #[test]
    fn compressed_stream_is_one_gzip_member_per_batch() {
        let spec = SerializerSpec::Text {
            append_newline: true,
        };
        let mut w = FileFormat::CompressedStream(spec, Codec::Gzip).writer();
        let mut out = Vec::new();
        w.open(&mut out);
        w.append(&Event::new("a"), &mut out).unwrap();
        w.sync(&mut out);
        w.append(&Event::new("b"), &mut out).unwrap();
        w.close(&mut out);
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "a\nb\n");
        assert_eq!(
            out.windows(3).filter(|x| *x == [0x1f, 0x8b, 0x08]).count(),
            2
        );
    }

    #[test]
    fn codec_names() {
        assert_eq!(Codec::parse("gzip"), Ok(Some(Codec::Gzip)));
        assert_eq!(Codec::parse("GzipCodec"), Ok(Some(Codec::Gzip)));
        assert_eq!(
            Codec::parse("org.apache.hadoop.io.compress.GzipCodec"),
            Ok(Some(Codec::Gzip))
        );
        assert_eq!(Codec::parse("default"), Ok(Some(Codec::Deflate)));
        assert_eq!(Codec::parse("none"), Ok(None));
        assert!(Codec::parse("snappy").is_err());
    }
}
