//! Archive segments (issue #15): a closed day's journal records, moved out of the journal
//! column family into one file per day, compressed and checksummed, with the day's snapshot
//! hash. Pure file format and I/O (no RocksDB): the store writes and reads them.
//!
//! Layout (integers little-endian):
//! - header: `RPARCH01`, format `1u8`, date (`i32`, days since 1970-01-01), first and end
//!   journal keys (`u64` each: the records of keys `first..end`), the day's snapshot
//!   SHA-256 (32 bytes), CRC-32 of all of it (`u32`);
//! - blocks: `b'B'`, raw length (`u32`), compressed length (`u32`), CRC-32 of the compressed
//!   bytes (`u32`), the bytes (LZ4 of `[key u64][len u32][value]…`, at most
//!   [`BLOCK_RAW_MAX`] raw bytes);
//! - trailer: `b'T'`, records (`u64`), blocks (`u32`), SHA-256 of every byte before the
//!   trailer.
//!
//! A segment is written to `<name>.tmp`, synced, renamed into place and its directory
//! synced: a crash leaves either no segment or a whole one. Every read checks every CRC and
//! the file's SHA-256, and names the block and offset at fault.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use engine::gl::BusinessDate;
use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"RPARCH01";
pub const FORMAT: u8 = 1;
/// Raw bytes per block at most (records are never split; one larger record is its own block).
pub const BLOCK_RAW_MAX: usize = 1 << 20;
const HEADER_LEN: usize = 8 + 1 + 4 + 8 + 8 + 32 + 4;

/// A segment's records: (journal key, record bytes), in key order.
pub type Records = Vec<(u64, Vec<u8>)>;

/// What a segment holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub date: BusinessDate,
    /// The journal keys of its records: `first_key..end_key`.
    pub first_key: u64,
    pub end_key: u64,
    pub snapshot_sha256: [u8; 32],
}

/// A segment once written: its header, counts, size and SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub header: SegmentHeader,
    pub records: u64,
    pub blocks: u32,
    pub bytes: u64,
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("{path}: {what}")]
    Io { path: String, what: String },
    #[error("{path}: {what} (at byte {offset})")]
    Corrupt {
        path: String,
        offset: u64,
        what: String,
    },
}

/// The file name of `date`'s segment.
pub fn file_name(date: BusinessDate) -> String {
    format!("{date}.seg")
}

fn io(path: &Path, e: impl std::fmt::Display) -> SegmentError {
    SegmentError::Io {
        path: path.display().to_string(),
        what: e.to_string(),
    }
}

fn header_bytes(h: &SegmentHeader) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN);
    b.extend_from_slice(MAGIC);
    b.push(FORMAT);
    b.extend_from_slice(&h.date.0.to_le_bytes());
    b.extend_from_slice(&h.first_key.to_le_bytes());
    b.extend_from_slice(&h.end_key.to_le_bytes());
    b.extend_from_slice(&h.snapshot_sha256);
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Writes `records` (journal key, record bytes, in key order) as `dir/<date>.seg`, durably.
pub fn write(
    dir: &Path,
    header: &SegmentHeader,
    records: impl IntoIterator<Item = (u64, Vec<u8>)>,
) -> Result<SegmentInfo, SegmentError> {
    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(file_name(header.date));
    let tmp = path.with_extension("seg.tmp");
    let mut out = Vec::new();
    out.extend_from_slice(&header_bytes(header));
    let (mut records_n, mut blocks) = (0u64, 0u32);
    let mut raw = Vec::with_capacity(BLOCK_RAW_MAX);
    let flush = |raw: &mut Vec<u8>, out: &mut Vec<u8>, blocks: &mut u32| {
        if raw.is_empty() {
            return;
        }
        let compressed = lz4_flex::block::compress(raw);
        out.push(b'B');
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&compressed).to_le_bytes());
        out.extend_from_slice(&compressed);
        raw.clear();
        *blocks += 1;
    };
    for (key, value) in records {
        if !raw.is_empty() && raw.len() + 12 + value.len() > BLOCK_RAW_MAX {
            flush(&mut raw, &mut out, &mut blocks);
        }
        raw.extend_from_slice(&key.to_le_bytes());
        raw.extend_from_slice(&(value.len() as u32).to_le_bytes());
        raw.extend_from_slice(&value);
        records_n += 1;
    }
    flush(&mut raw, &mut out, &mut blocks);
    let sha: [u8; 32] = Sha256::digest(&out).into();
    out.push(b'T');
    out.extend_from_slice(&records_n.to_le_bytes());
    out.extend_from_slice(&blocks.to_le_bytes());
    out.extend_from_slice(&sha);
    let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(&out).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))?;
    Ok(SegmentInfo {
        header: header.clone(),
        records: records_n,
        blocks,
        bytes: out.len() as u64,
        sha256: sha,
    })
}

/// Reads only a segment's header (checked): which journal keys it holds, without reading
/// the rest.
pub fn read_header(path: &Path) -> Result<SegmentHeader, SegmentError> {
    let mut bytes = [0u8; HEADER_LEN];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| io(path, e))?;
    decode_header(&path.display().to_string(), &bytes)
}

fn decode_header(name: &str, bytes: &[u8]) -> Result<SegmentHeader, SegmentError> {
    let corrupt = |what: &str| SegmentError::Corrupt {
        path: name.to_string(),
        offset: 0,
        what: what.to_string(),
    };
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(corrupt("not an archive segment (no RPARCH01 header)"));
    }
    let crc = u32::from_le_bytes(
        bytes[HEADER_LEN - 4..HEADER_LEN]
            .try_into()
            .expect("4 bytes"),
    );
    if crc32fast::hash(&bytes[..HEADER_LEN - 4]) != crc || bytes[8] != FORMAT {
        return Err(corrupt("header checksum mismatch"));
    }
    let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    Ok(SegmentHeader {
        date: BusinessDate(i32::from_le_bytes(
            bytes[9..13].try_into().expect("4 bytes"),
        )),
        first_key: le64(13),
        end_key: le64(21),
        snapshot_sha256: bytes[29..61].try_into().expect("32 bytes"),
    })
}

/// Reads a whole segment, checking everything: its header, each block's CRC, the record
/// framing inside, the counts and the file's SHA-256. The error names what and where.
pub fn read(path: &Path) -> Result<(SegmentInfo, Records), SegmentError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io(path, e))?;
    decode(&path.display().to_string(), &bytes)
}

/// [`read`] of bytes already in memory (`name` for the messages).
pub fn decode(name: &str, bytes: &[u8]) -> Result<(SegmentInfo, Records), SegmentError> {
    let corrupt = |offset: usize, what: String| SegmentError::Corrupt {
        path: name.to_string(),
        offset: offset as u64,
        what,
    };
    let header = decode_header(name, bytes)?;
    let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let trailer_len = 1 + 8 + 4 + 32;
    if bytes.len() < HEADER_LEN + trailer_len {
        return Err(corrupt(bytes.len(), "truncated: no trailer".into()));
    }
    let t = bytes.len() - trailer_len;
    if bytes[t] != b'T' {
        return Err(corrupt(t, "truncated or damaged: no trailer".into()));
    }
    let sha: [u8; 32] = Sha256::digest(&bytes[..t]).into();
    let stored_sha: [u8; 32] = bytes[t + 13..].try_into().expect("32 bytes");
    let records_n = le64(t + 1);
    let blocks_n = u32::from_le_bytes(bytes[t + 9..t + 13].try_into().expect("4 bytes"));
    let mut records = Vec::new();
    let mut at = HEADER_LEN;
    let mut block = 0u32;
    while at < t {
        if bytes[at] != b'B' || at + 13 > t {
            return Err(corrupt(at, format!("block {block}: bad block header")));
        }
        let raw_len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().expect("4")) as usize;
        let comp_len = u32::from_le_bytes(bytes[at + 5..at + 9].try_into().expect("4")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 9..at + 13].try_into().expect("4"));
        let start = at + 13;
        let end = start
            .checked_add(comp_len)
            .filter(|e| *e <= t)
            .ok_or_else(|| corrupt(at, format!("block {block}: length past the end")))?;
        if raw_len > BLOCK_RAW_MAX.max(comp_len * 256) {
            return Err(corrupt(
                at,
                format!("block {block}: implausible length {raw_len}"),
            ));
        }
        let data = &bytes[start..end];
        if crc32fast::hash(data) != crc {
            return Err(corrupt(start, format!("block {block}: checksum mismatch")));
        }
        let raw = lz4_flex::block::decompress(data, raw_len)
            .map_err(|e| corrupt(start, format!("block {block}: {e}")))?;
        let mut p = 0;
        while p < raw.len() {
            if p + 12 > raw.len() {
                return Err(corrupt(start, format!("block {block}: truncated record")));
            }
            let key = u64::from_le_bytes(raw[p..p + 8].try_into().expect("8"));
            let len = u32::from_le_bytes(raw[p + 8..p + 12].try_into().expect("4")) as usize;
            let value = raw
                .get(p + 12..p + 12 + len)
                .ok_or_else(|| corrupt(start, format!("block {block}: truncated record")))?;
            if key < header.first_key || key >= header.end_key {
                return Err(corrupt(
                    start,
                    format!(
                        "block {block}: record key {key} outside {}..{}",
                        header.first_key, header.end_key
                    ),
                ));
            }
            if records
                .last()
                .is_some_and(|(k, _): &(u64, Vec<u8>)| *k >= key)
            {
                return Err(corrupt(
                    start,
                    format!("block {block}: keys out of order at {key}"),
                ));
            }
            records.push((key, value.to_vec()));
            p += 12 + len;
        }
        at = end;
        block += 1;
    }
    if sha != stored_sha {
        return Err(corrupt(t, "file checksum (SHA-256) mismatch".into()));
    }
    if block != blocks_n || records.len() as u64 != records_n {
        return Err(corrupt(
            t,
            format!(
                "the trailer counts {records_n} records in {blocks_n} blocks, the file holds {} in {block}",
                records.len()
            ),
        ));
    }
    Ok((
        SegmentInfo {
            header,
            records: records_n,
            blocks: blocks_n,
            bytes: bytes.len() as u64,
            sha256: stored_sha,
        },
        records,
    ))
}

/// The segments in `dir`, oldest date first.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, SegmentError> {
    list_with_extension(dir, "seg")
}

/// The files of `dir` named `<YYYY-MM-DD>.<extension>`, oldest date first (none when `dir`
/// does not exist).
pub fn list_with_extension(dir: &Path, extension: &str) -> Result<Vec<PathBuf>, SegmentError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| io(dir, e))?.path();
        if path.extension().is_some_and(|x| x == extension) {
            out.push(path);
        }
    }
    // `YYYY-MM-DD.<extension>` sorts by date.
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SegmentHeader {
        SegmentHeader {
            date: BusinessDate(20_788),
            first_key: 10,
            end_key: 5_000,
            snapshot_sha256: [7; 32],
        }
    }

    fn records() -> Vec<(u64, Vec<u8>)> {
        (10..4_000u64)
            .map(|k| (k, vec![(k % 251) as u8; (k % 700) as usize]))
            .collect()
    }

    #[test]
    fn a_segment_reads_back_and_every_flipped_byte_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let info = write(dir.path(), &header(), records()).unwrap();
        assert!(info.blocks >= 2, "{info:?}");
        let path = dir.path().join("2026-12-01.seg");
        let (read_info, read_records) = read(&path).unwrap();
        assert_eq!(read_info, info);
        assert_eq!(read_records, records());
        assert_eq!(list(dir.path()).unwrap(), vec![path.clone()]);
        let bytes = fs::read(&path).unwrap();
        // Every byte of the file, flipped, is caught (header, block frames, data, trailer).
        for i in (0..bytes.len())
            .step_by(97)
            .chain([0, 9, 60, bytes.len() - 1])
        {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(decode("x.seg", &bad).is_err(), "flip at {i} not found");
        }
        for cut in [0, 10, HEADER_LEN, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode("x.seg", &bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
