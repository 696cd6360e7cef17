//! Deterministic CSV results of any size, generated while streaming (constant memory).
//!
//! Rows are fixed-width so a file's size is known up front (`Content-Length`) for any row count,
//! and each row has a quoted field with a comma and escaped quotes, so a reader that splits on
//! commas or counts lines naively gets it wrong.

use bytes::Bytes;
use futures::Stream;

/// The header line.
pub const HEADER: &str = "row_id,event_date,campaign,impressions,clicks,spend\n";

/// Bytes in every data row.
pub const ROW_LEN: usize = 72;

/// Target chunk size of the stream.
const CHUNK: usize = 64 * 1024;

fn mix(seed: u64, i: u64) -> u64 {
    // splitmix64: cheap and well distributed.
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Appends data row `i` of file `seed` to `out`.
pub fn write_row(out: &mut Vec<u8>, seed: u64, i: u64) {
    use std::io::Write;
    let h = mix(seed, i);
    let start = out.len();
    writeln!(
        out,
        "{:010},2026-11-{:02},\"Campaign {:03}, \"\"Q4\"\"\",{:08},{:06},{:07}.{:02}",
        i % 10_000_000_000,
        (h % 28) + 1,
        (h >> 8) % 1_000,
        (h >> 16) % 100_000_000,
        (h >> 20) % 1_000_000,
        (h >> 24) % 10_000_000,
        (h >> 32) % 100
    )
    .expect("writing to a Vec cannot fail");
    debug_assert_eq!(out.len() - start, ROW_LEN);
}

/// Size in bytes of a file with `rows` data rows.
pub fn size(rows: u64) -> u64 {
    HEADER.len() as u64 + rows * ROW_LEN as u64
}

/// Data rows that fit in `bytes` (at least one).
pub fn rows_for_bytes(bytes: u64) -> u64 {
    (bytes.saturating_sub(HEADER.len() as u64) / ROW_LEN as u64).max(1)
}

/// The whole file in memory (tests only; use [`stream`] for anything large).
pub fn generate(seed: u64, rows: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(size(rows) as usize);
    out.extend_from_slice(HEADER.as_bytes());
    for i in 0..rows {
        write_row(&mut out, seed, i);
    }
    out
}

/// MD5 of the file, computed row by row in ~64 KiB batches (constant memory), so the file route
/// can send it as the ETag before streaming the body. CPU cost is one more pass over the bytes;
/// the server caches it per `(seed, rows)`.
pub fn md5(seed: u64, rows: u64) -> [u8; 16] {
    use md5::Digest;
    let mut hasher = md5::Md5::new();
    hasher.update(HEADER.as_bytes());
    let mut buf = Vec::with_capacity(CHUNK + ROW_LEN);
    let mut i = 0;
    while i < rows {
        buf.clear();
        while i < rows && buf.len() + ROW_LEN <= CHUNK {
            write_row(&mut buf, seed, i);
            i += 1;
        }
        hasher.update(&buf);
    }
    hasher.finalize().into()
}

/// The file as a stream of ~64 KiB chunks.
pub fn stream(seed: u64, rows: u64) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures::stream::unfold((0u64, false), move |(next, header_sent)| async move {
        if header_sent && next >= rows {
            return None;
        }
        let mut buf = Vec::with_capacity(CHUNK + ROW_LEN);
        if !header_sent {
            buf.extend_from_slice(HEADER.as_bytes());
        }
        let mut i = next;
        while i < rows && buf.len() + ROW_LEN <= CHUNK {
            write_row(&mut buf, seed, i);
            i += 1;
        }
        Some((Ok(Bytes::from(buf)), (i, true)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn rows_are_fixed_width_and_deterministic() {
        let a = generate(7, 1_000);
        assert_eq!(a.len() as u64, size(1_000));
        assert_eq!(a, generate(7, 1_000));
        assert_ne!(a, generate(8, 1_000));
    }

    #[test]
    fn md5_is_the_digest_of_the_generated_bytes() {
        use md5::Digest;
        for rows in [0, 1, 5_000] {
            let expected: [u8; 16] = md5::Md5::digest(generate(11, rows)).into();
            assert_eq!(md5(11, rows), expected, "{rows} rows");
        }
    }

    #[tokio::test]
    async fn stream_equals_generate() {
        let mut streamed = Vec::new();
        let mut s = Box::pin(stream(3, 5_000));
        while let Some(chunk) = s.next().await {
            streamed.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(streamed, generate(3, 5_000));
        let mut empty = Vec::new();
        let mut s = Box::pin(stream(3, 0));
        while let Some(chunk) = s.next().await {
            empty.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(empty, HEADER.as_bytes());
    }
}
