//! Record segments ("the shelf"): the business records of a closed day that can no longer
//! change (final payments and refunds past the refund window, their `out_trade_no` and
//! `out_refund_no` index keys, delivered webhook events, deposits, batch transfers, the
//! day's reports), moved out of the `aux` column family into one file per day so the hot
//! store holds a window of history, not all of it. Pure file format and I/O (no RocksDB):
//! the store writes and reads them.
//!
//! Unlike a journal segment ([`crate::archive`]), read whole by replays, a record segment is
//! read one key at a time (`GET /v1/payments/{id}` of an old payment), so it carries a block
//! index: a point read reads the header, the trailer, the index and one block.
//!
//! Layout (integers little-endian):
//! - header: `RPSHLF01`, format `1u8`, date (`i32`), the smallest and largest time of the
//!   time-ordered ids it holds (`u64` ms each; see [`engine::ids::time_ordered_id`]), CRC-32
//!   of all of it (`u32`);
//! - blocks: `b'B'`, raw length (`u32`), compressed length (`u32`), CRC-32 of the compressed
//!   bytes (`u32`), the bytes (LZ4 of `[key len u16][key][value len u32][value]…`, keys in
//!   byte order, at most [`BLOCK_RAW_MAX`] raw bytes);
//! - index: `b'I'`, blocks (`u32`), per block its offset (`u64`) and first key (`u16` length,
//!   bytes), CRC-32 of the index (`u32`);
//! - trailer (fixed size): `b'T'`, records (`u64`), blocks (`u32`), the index's offset
//!   (`u64`), SHA-256 of every byte before the trailer.
//!
//! Written to `<name>.tmp`, synced, renamed, directory synced: a crash leaves no segment or a
//! whole one. A point read checks the header's, the index's and its block's CRCs; [`read`]
//! checks everything, the file's SHA-256 included (`payd verify`).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use engine::gl::BusinessDate;
use sha2::{Digest, Sha256};

use crate::archive::SegmentError;

pub const MAGIC: &[u8; 8] = b"RPSHLF01";
pub const FORMAT: u8 = 1;
pub const BLOCK_RAW_MAX: usize = 64 << 10;
const HEADER_LEN: usize = 8 + 1 + 4 + 8 + 8 + 4;
const TRAILER_LEN: usize = 1 + 8 + 4 + 8 + 32;

/// (key, value) pairs in key order.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShelfHeader {
    pub date: BusinessDate,
    /// The smallest and largest id time (ms) of its time-ordered records (`u64::MAX, 0`
    /// when it holds none).
    pub min_ms: u64,
    pub max_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShelfInfo {
    pub header: ShelfHeader,
    pub records: u64,
    pub blocks: u32,
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// The file name of `date`'s record segment.
pub fn file_name(date: BusinessDate) -> String {
    format!("{date}.shelf")
}

fn io(path: &Path, e: impl std::fmt::Display) -> SegmentError {
    SegmentError::Io {
        path: path.display().to_string(),
        what: e.to_string(),
    }
}

fn corrupt(path: &str, offset: usize, what: impl Into<String>) -> SegmentError {
    SegmentError::Corrupt {
        path: path.to_string(),
        offset: offset as u64,
        what: what.into(),
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn header_bytes(h: &ShelfHeader) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN);
    b.extend_from_slice(MAGIC);
    b.push(FORMAT);
    b.extend_from_slice(&h.date.0.to_le_bytes());
    b.extend_from_slice(&h.min_ms.to_le_bytes());
    b.extend_from_slice(&h.max_ms.to_le_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn decode_header(name: &str, b: &[u8]) -> Result<ShelfHeader, SegmentError> {
    if b.len() < HEADER_LEN || &b[..8] != MAGIC {
        return Err(corrupt(
            name,
            0,
            "not a record segment (no RPSHLF01 header)",
        ));
    }
    if crc32fast::hash(&b[..HEADER_LEN - 4]) != le32(b, HEADER_LEN - 4) || b[8] != FORMAT {
        return Err(corrupt(name, 0, "header checksum mismatch"));
    }
    Ok(ShelfHeader {
        date: BusinessDate(i32::from_le_bytes(b[9..13].try_into().expect("4 bytes"))),
        min_ms: le64(b, 13),
        max_ms: le64(b, 21),
    })
}

/// Writes `records` (sorted by key, keys at most `u16::MAX` bytes) as `dir/<date>.shelf`,
/// durably, replacing a segment of the same date (a retried archive run writes a superset).
pub fn write(
    dir: &Path,
    header: &ShelfHeader,
    records: &Records,
) -> Result<ShelfInfo, SegmentError> {
    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(file_name(header.date));
    let tmp = path.with_extension("shelf.tmp");
    let mut out = header_bytes(header);
    let mut index: Vec<(u64, &[u8])> = Vec::new();
    let mut raw = Vec::with_capacity(BLOCK_RAW_MAX);
    let mut first: Option<&[u8]> = None;
    let flush = |raw: &mut Vec<u8>, out: &mut Vec<u8>| {
        let compressed = lz4_flex::block::compress(raw);
        out.push(b'B');
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&compressed).to_le_bytes());
        out.extend_from_slice(&compressed);
        raw.clear();
    };
    let mut previous: Option<&[u8]> = None;
    for (key, value) in records {
        if key.len() > usize::from(u16::MAX) || previous.is_some_and(|p| p >= key.as_slice()) {
            return Err(io(
                &path,
                "keys must be unique, sorted and at most 65535 bytes",
            ));
        }
        previous = Some(key);
        if !raw.is_empty() && raw.len() + 6 + key.len() + value.len() > BLOCK_RAW_MAX {
            index.push((
                out.len() as u64,
                first.take().expect("a block has a first key"),
            ));
            flush(&mut raw, &mut out);
        }
        if raw.is_empty() {
            first = Some(key);
        }
        raw.extend_from_slice(&(key.len() as u16).to_le_bytes());
        raw.extend_from_slice(key);
        raw.extend_from_slice(&(value.len() as u32).to_le_bytes());
        raw.extend_from_slice(value);
    }
    if !raw.is_empty() {
        index.push((
            out.len() as u64,
            first.take().expect("a block has a first key"),
        ));
        flush(&mut raw, &mut out);
    }
    let index_at = out.len() as u64;
    let mut idx = vec![b'I'];
    idx.extend_from_slice(&(index.len() as u32).to_le_bytes());
    for (offset, key) in &index {
        idx.extend_from_slice(&offset.to_le_bytes());
        idx.extend_from_slice(&(key.len() as u16).to_le_bytes());
        idx.extend_from_slice(key);
    }
    let crc = crc32fast::hash(&idx);
    idx.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&idx);
    let sha: [u8; 32] = Sha256::digest(&out).into();
    out.push(b'T');
    out.extend_from_slice(&(records.len() as u64).to_le_bytes());
    out.extend_from_slice(&(index.len() as u32).to_le_bytes());
    out.extend_from_slice(&index_at.to_le_bytes());
    out.extend_from_slice(&sha);
    let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(&out).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))?;
    Ok(ShelfInfo {
        header: *header,
        records: records.len() as u64,
        blocks: index.len() as u32,
        bytes: out.len() as u64,
        sha256: sha,
    })
}

/// Reads a segment's header alone (checked).
pub fn read_header(path: &Path) -> Result<ShelfHeader, SegmentError> {
    let mut bytes = [0u8; HEADER_LEN];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| io(path, e))?;
    decode_header(&path.display().to_string(), &bytes)
}

/// A segment's figures from its header and trailer alone (header CRC checked): records,
/// blocks, file size, the SHA-256 its trailer states (checked by [`read`]).
pub fn read_info(path: &Path) -> Result<ShelfInfo, SegmentError> {
    Ok(open(path)?.1)
}

/// Opens a segment and reads its header (CRC checked) and trailer: the file, its figures
/// and where its index starts.
fn open(path: &Path) -> Result<(File, ShelfInfo, usize), SegmentError> {
    let name = path.display().to_string();
    let mut f = File::open(path).map_err(|e| io(path, e))?;
    let len = f.metadata().map_err(|e| io(path, e))?.len() as usize;
    if len < HEADER_LEN + TRAILER_LEN {
        return Err(corrupt(&name, len, "truncated: no trailer"));
    }
    let mut head = [0u8; HEADER_LEN];
    f.read_exact(&mut head).map_err(|e| io(path, e))?;
    let header = decode_header(&name, &head)?;
    let mut trailer = [0u8; TRAILER_LEN];
    f.seek(SeekFrom::Start((len - TRAILER_LEN) as u64))
        .and_then(|_| f.read_exact(&mut trailer))
        .map_err(|e| io(path, e))?;
    if trailer[0] != b'T' {
        return Err(corrupt(
            &name,
            len - TRAILER_LEN,
            "truncated or damaged: no trailer",
        ));
    }
    let index_at = le64(&trailer, 13) as usize;
    if index_at < HEADER_LEN || index_at > len - TRAILER_LEN {
        return Err(corrupt(
            &name,
            len - TRAILER_LEN,
            "index offset out of the file",
        ));
    }
    let info = ShelfInfo {
        header,
        records: le64(&trailer, 1),
        blocks: le32(&trailer, 9),
        bytes: len as u64,
        sha256: trailer[21..].try_into().expect("32 bytes"),
    };
    Ok((f, info, index_at))
}

/// One block's records, its CRC checked.
fn decode_block(
    name: &str,
    bytes: &[u8],
    at: usize,
    block: usize,
) -> Result<(Records, usize), SegmentError> {
    if bytes.len() < at + 13 || bytes[at] != b'B' {
        return Err(corrupt(
            name,
            at,
            format!("block {block}: bad block header"),
        ));
    }
    let raw_len = le32(bytes, at + 1) as usize;
    let comp_len = le32(bytes, at + 5) as usize;
    let crc = le32(bytes, at + 9);
    let start = at + 13;
    let end = start
        .checked_add(comp_len)
        .filter(|e| *e <= bytes.len())
        .ok_or_else(|| corrupt(name, at, format!("block {block}: length past the end")))?;
    if raw_len > BLOCK_RAW_MAX.max(comp_len * 256) {
        return Err(corrupt(
            name,
            at,
            format!("block {block}: implausible length {raw_len}"),
        ));
    }
    let data = &bytes[start..end];
    if crc32fast::hash(data) != crc {
        return Err(corrupt(
            name,
            start,
            format!("block {block}: checksum mismatch"),
        ));
    }
    let raw = lz4_flex::block::decompress(data, raw_len)
        .map_err(|e| corrupt(name, start, format!("block {block}: {e}")))?;
    let mut out = Vec::new();
    let mut p = 0;
    let truncated = || corrupt(name, start, format!("block {block}: truncated record"));
    while p < raw.len() {
        let klen = usize::from(u16::from_le_bytes(
            raw.get(p..p + 2)
                .ok_or_else(truncated)?
                .try_into()
                .expect("2"),
        ));
        let key = raw.get(p + 2..p + 2 + klen).ok_or_else(truncated)?;
        let v_at = p + 2 + klen;
        let vlen = u32::from_le_bytes(
            raw.get(v_at..v_at + 4)
                .ok_or_else(truncated)?
                .try_into()
                .expect("4"),
        ) as usize;
        let value = raw.get(v_at + 4..v_at + 4 + vlen).ok_or_else(truncated)?;
        out.push((key.to_vec(), value.to_vec()));
        p = v_at + 4 + vlen;
    }
    Ok((out, end))
}

/// The index: (block offset, first key), CRC checked.
fn decode_index(name: &str, idx: &[u8], at: usize) -> Result<Vec<(u64, Vec<u8>)>, SegmentError> {
    if idx.len() < 9 || idx[0] != b'I' {
        return Err(corrupt(name, at, "bad index header"));
    }
    let body = &idx[..idx.len() - 4];
    if crc32fast::hash(body) != le32(idx, idx.len() - 4) {
        return Err(corrupt(name, at, "index checksum mismatch"));
    }
    let n = le32(body, 1) as usize;
    let mut out = Vec::with_capacity(n.min(1 << 20));
    let mut p = 5;
    for i in 0..n {
        let bad = || corrupt(name, at + p, format!("index entry {i} truncated"));
        let offset = u64::from_le_bytes(body.get(p..p + 8).ok_or_else(bad)?.try_into().expect("8"));
        let klen = usize::from(u16::from_le_bytes(
            body.get(p + 8..p + 10)
                .ok_or_else(bad)?
                .try_into()
                .expect("2"),
        ));
        let key = body.get(p + 10..p + 10 + klen).ok_or_else(bad)?;
        out.push((offset, key.to_vec()));
        p += 10 + klen;
    }
    if p != body.len() {
        return Err(corrupt(name, at, "index length mismatch"));
    }
    Ok(out)
}

/// The value stored under `key`, reading one block (header, index and block CRCs checked).
pub fn get(path: &Path, key: &[u8]) -> Result<Option<Vec<u8>>, SegmentError> {
    let name = path.display().to_string();
    let (mut f, info, index_at) = open(path)?;
    let len = info.bytes as usize;
    let mut idx = vec![0u8; len - TRAILER_LEN - index_at];
    f.seek(SeekFrom::Start(index_at as u64))
        .and_then(|_| f.read_exact(&mut idx))
        .map_err(|e| io(path, e))?;
    let index = decode_index(&name, &idx, index_at)?;
    // The last block whose first key is ≤ key.
    let i = index.partition_point(|(_, first)| first.as_slice() <= key);
    if i == 0 {
        return Ok(None);
    }
    let (offset, _) = index[i - 1];
    let end = index.get(i).map_or(index_at, |(o, _)| *o as usize);
    let offset = offset as usize;
    if offset < HEADER_LEN || end <= offset || end > index_at {
        return Err(corrupt(
            &name,
            index_at,
            format!("index entry {} out of order", i - 1),
        ));
    }
    let mut block = vec![0u8; end - offset];
    f.seek(SeekFrom::Start(offset as u64))
        .and_then(|_| f.read_exact(&mut block))
        .map_err(|e| io(path, e))?;
    let (records, _) = decode_block(&name, &block, 0, i - 1).map_err(|e| shift(e, offset))?;
    Ok(records
        .binary_search_by(|(k, _)| k.as_slice().cmp(key))
        .ok()
        .map(|at| records[at].1.clone()))
}

fn shift(e: SegmentError, by: usize) -> SegmentError {
    match e {
        SegmentError::Corrupt { path, offset, what } => SegmentError::Corrupt {
            path,
            offset: offset + by as u64,
            what,
        },
        e => e,
    }
}

/// Reads a whole segment, checking everything: header, each block's CRC, the index against
/// the blocks, key order, the counts and the file's SHA-256.
pub fn read(path: &Path) -> Result<(ShelfInfo, Records), SegmentError> {
    let name = path.display().to_string();
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io(path, e))?;
    let header = decode_header(&name, &bytes)?;
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(corrupt(&name, bytes.len(), "truncated: no trailer"));
    }
    let t = bytes.len() - TRAILER_LEN;
    if bytes[t] != b'T' {
        return Err(corrupt(&name, t, "truncated or damaged: no trailer"));
    }
    let sha: [u8; 32] = Sha256::digest(&bytes[..t]).into();
    let stored_sha: [u8; 32] = bytes[t + 21..].try_into().expect("32 bytes");
    let records_n = le64(&bytes, t + 1);
    let blocks_n = le32(&bytes, t + 9) as usize;
    let index_at = le64(&bytes, t + 13) as usize;
    if index_at < HEADER_LEN || index_at > t {
        return Err(corrupt(&name, t, "index offset out of the file"));
    }
    let index = decode_index(&name, &bytes[index_at..t], index_at)?;
    let mut records: Records = Vec::new();
    let mut at = HEADER_LEN;
    let mut block = 0;
    while at < index_at {
        let (first, _) = index
            .get(block)
            .ok_or_else(|| corrupt(&name, at, format!("block {block} is not in the index")))?;
        if *first as usize != at {
            return Err(corrupt(
                &name,
                at,
                format!("block {block}: index says offset {first}"),
            ));
        }
        let (mut got, end) = decode_block(&name, &bytes[..index_at], at, block)?;
        if got.first().map(|(k, _)| k) != Some(&index[block].1) {
            return Err(corrupt(
                &name,
                at,
                format!("block {block}: first key differs from the index"),
            ));
        }
        if let (Some((last, _)), Some((next, _))) = (records.last(), got.first()) {
            if last >= next {
                return Err(corrupt(
                    &name,
                    at,
                    format!("block {block}: keys out of order"),
                ));
            }
        }
        if got.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(corrupt(
                &name,
                at,
                format!("block {block}: keys out of order"),
            ));
        }
        records.append(&mut got);
        at = end;
        block += 1;
    }
    if sha != stored_sha {
        return Err(corrupt(&name, t, "file checksum (SHA-256) mismatch"));
    }
    if block != blocks_n || index.len() != blocks_n || records.len() as u64 != records_n {
        return Err(corrupt(
            &name,
            t,
            format!(
                "the trailer counts {records_n} records in {blocks_n} blocks, the file holds {} in {block}",
                records.len()
            ),
        ));
    }
    Ok((
        ShelfInfo {
            header,
            records: records_n,
            blocks: blocks_n as u32,
            bytes: bytes.len() as u64,
            sha256: stored_sha,
        },
        records,
    ))
}

/// The record segments in `dir`, oldest date first.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, SegmentError> {
    crate::archive::list_with_extension(dir, "shelf")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Records {
        (0..20_000u32)
            .map(|i| {
                let key = [b"py".as_slice(), &(u128::from(i) * 7_919).to_be_bytes()].concat();
                (key, vec![(i % 251) as u8; (i % 300) as usize])
            })
            .collect()
    }

    fn header() -> ShelfHeader {
        ShelfHeader {
            date: BusinessDate(20_788),
            min_ms: 5,
            max_ms: 9,
        }
    }

    #[test]
    fn every_key_is_found_by_a_point_read_and_absent_keys_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let recs = records();
        let info = write(dir.path(), &header(), &recs).unwrap();
        assert!(info.blocks > 10, "{info:?}");
        let path = dir.path().join("2026-12-01.shelf");
        let (read_info, all) = read(&path).unwrap();
        assert_eq!((read_info, &all), (info.clone(), &recs));
        assert_eq!(read_header(&path).unwrap(), header());
        assert_eq!(super::read_info(&path).unwrap(), info);
        for (k, v) in recs.iter().step_by(37).chain(recs.last()) {
            assert_eq!(get(&path, k).unwrap().as_ref(), Some(v));
        }
        for absent in [
            b"a".to_vec(),
            b"pz".to_vec(),
            [recs[5].0.clone(), vec![0]].concat(),
        ] {
            assert_eq!(get(&path, &absent).unwrap(), None);
        }
        assert_eq!(list(dir.path()).unwrap(), vec![path]);
        // An empty day is a valid segment.
        let empty = tempfile::tempdir().unwrap();
        write(empty.path(), &header(), &Vec::new()).unwrap();
        let path = empty.path().join("2026-12-01.shelf");
        assert_eq!(read(&path).unwrap().1, Vec::new());
        assert_eq!(get(&path, b"py").unwrap(), None);
    }

    #[test]
    fn a_flipped_byte_is_found_by_the_full_read() {
        let dir = tempfile::tempdir().unwrap();
        let recs: Records = records().into_iter().take(3_000).collect();
        write(dir.path(), &header(), &recs).unwrap();
        let bytes = fs::read(dir.path().join("2026-12-01.shelf")).unwrap();
        for i in (0..bytes.len())
            .step_by(101)
            .chain([0, 9, 30, bytes.len() - 1])
        {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            let victim = dir.path().join("bad.shelf");
            fs::write(&victim, &bad).unwrap();
            assert!(read(&victim).is_err(), "flip at {i} not found");
        }
        for cut in [0, 10, HEADER_LEN, bytes.len() / 2, bytes.len() - 1] {
            let victim = dir.path().join("cut.shelf");
            fs::write(&victim, &bytes[..cut]).unwrap();
            assert!(read(&victim).is_err(), "cut at {cut}");
        }
    }
}
