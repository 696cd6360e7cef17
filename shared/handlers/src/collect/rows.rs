//! Counting the CSV records of a result file as it streams past, for the manifest's `rows`.

/// Counts CSV records in a byte stream with constant memory, exactly as `csv-core`'s default
/// reader delimits them (the property test keeps it as the oracle): `,` separates fields, `\n`,
/// `\r` and `\r\n` end a record, blank lines are no records, a field that *starts* with `"` is
/// quoted until a `"` that is not doubled (`""`), and newlines inside it do not end the record; a
/// `"` elsewhere in a field is an ordinary byte. A last record without a newline counts.
///
/// It jumps from one interesting byte to the next with `memchr` (`"` inside quotes; `"`, `\n`,
/// `\r` outside), so ordinary bytes cost what a vectorised search costs, not a state transition.
#[derive(Debug, Default, Clone)]
pub struct RowCounter {
    records: u64,
    /// Some byte of the current record has been seen (false at the start of a record).
    in_record: bool,
    /// Inside a quoted field.
    in_quotes: bool,
    /// Inside a quoted field, the last byte was a `"` whose meaning the next byte decides.
    quote_pending: bool,
    /// The last byte of the previous chunk (decides whether a `"` at offset 0 starts a field).
    last: u8,
}

impl RowCounter {
    /// Feeds the next bytes.
    pub fn feed(&mut self, input: &[u8]) {
        let mut i = 0;
        let n = input.len();
        while i < n {
            if self.quote_pending {
                self.quote_pending = false;
                if input[i] == b'"' {
                    // `""`: a literal quote, still inside the quoted field.
                    i += 1;
                    continue;
                }
                // The quote closed the field; this byte is read outside quotes.
                self.in_quotes = false;
            }
            if self.in_quotes {
                match memchr::memchr(b'"', &input[i..]) {
                    Some(at) => {
                        i += at + 1;
                        self.quote_pending = true;
                    }
                    None => i = n,
                }
                continue;
            }
            match memchr::memchr3(b'"', b'\n', b'\r', &input[i..]) {
                None => {
                    self.in_record = true;
                    i = n;
                }
                Some(at) => {
                    let pos = i + at;
                    if at > 0 {
                        self.in_record = true;
                    }
                    if input[pos] == b'"' {
                        let prev = if pos > 0 { input[pos - 1] } else { self.last };
                        if !self.in_record || prev == b',' {
                            self.in_quotes = true;
                        }
                        self.in_record = true;
                    } else if self.in_record {
                        self.records += 1;
                        self.in_record = false;
                    }
                    i = pos + 1;
                }
            }
        }
        if let Some(&b) = input.last() {
            self.last = b;
        }
    }

    /// Records seen, counting a final record without a trailing newline.
    pub fn records(&self) -> u64 {
        self.records + u64::from(self.in_record)
    }
}

#[cfg(test)]
mod tests {
    use super::RowCounter;

    fn count(chunks: &[&[u8]]) -> u64 {
        let mut c = RowCounter::default();
        for chunk in chunks {
            c.feed(chunk);
        }
        c.records()
    }

    #[test]
    fn counts_records_across_chunks_and_quotes() {
        assert_eq!(count(&[b"a,b\n1,2\n"]), 2);
        assert_eq!(count(&[b"a,b\n1,\"x\ny\"\n"]), 2, "newline inside quotes");
        assert_eq!(
            count(&[b"a,b\n1,\"x", b"\ny\"\n3,4"]),
            3,
            "split chunks, no trailing newline"
        );
        assert_eq!(count(&[b""]), 0);
        assert_eq!(
            count(&[b"a,\"x\"\"\ny\"\r\n\r\n\nb"]),
            2,
            "escaped quote, CRLF, blank lines"
        );
        assert_eq!(
            count(&[b"a\"b\nc\n"]),
            2,
            "a quote inside an unquoted field is literal"
        );
        assert_eq!(
            count(&[b"\"a\"", b"\"", b"\n\"\n"]),
            1,
            "escape split across chunks"
        );
    }

    /// csv-core's default reader, the oracle.
    fn csv_core_records(input: &[u8]) -> u64 {
        use csv_core::ReadRecordResult::*;
        let mut reader = csv_core::Reader::new();
        let (mut out, mut ends) = (vec![0; 1 << 16], vec![0; 1024]);
        let (mut records, mut rest) = (0, input);
        loop {
            let (result, consumed, _, _) = reader.read_record(rest, &mut out, &mut ends);
            rest = &rest[consumed..];
            match result {
                InputEmpty if rest.is_empty() => {
                    // End of input: let the reader flush a last record without a newline.
                    match reader.read_record(&[], &mut out, &mut ends).0 {
                        Record => records += 1,
                        _ => return records,
                    }
                }
                Record => records += 1,
                End => return records,
                _ => {}
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any mix of the bytes that matter, cut into chunks anywhere, counts as csv-core does.
        #[test]
        fn counts_like_csv_core(
            input in proptest::collection::vec(
                proptest::sample::select(b"a,\"\n\r ".to_vec()), 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut counter = RowCounter::default();
            let mut from = 0;
            for cut in cuts.into_iter().chain([input.len()]) {
                counter.feed(&input[from..cut]);
                from = cut;
            }
            proptest::prop_assert_eq!(counter.records(), csv_core_records(&input));
        }

        /// RFC 4180 documents: quoted fields with newlines and `""`, CRLF or LF, blank lines,
        /// with or without a last newline.
        #[test]
        fn counts_rfc4180_like_csv_core(
            rows in proptest::collection::vec(proptest::collection::vec(
                (proptest::bool::ANY, "[a-z \"\n\r,]{0,6}"), 1..4), 0..8),
            crlf in proptest::bool::ANY,
            blank_lines in proptest::collection::vec(0usize..8, 0..3),
            last_newline in proptest::bool::ANY,
            chunk in 1usize..17,
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut doc = String::new();
            for (i, row) in rows.iter().enumerate() {
                let fields: Vec<String> = row.iter().map(|(quoted, text)| {
                    if *quoted || text.contains(['"', ',', '\n', '\r']) {
                        format!("\"{}\"", text.replace('"', "\"\""))
                    } else {
                        text.clone()
                    }
                }).collect();
                doc.push_str(&fields.join(","));
                if i + 1 < rows.len() || last_newline {
                    doc.push_str(eol);
                }
                if blank_lines.contains(&i) {
                    doc.push_str(eol);
                }
            }
            let mut counter = RowCounter::default();
            for piece in doc.as_bytes().chunks(chunk) {
                counter.feed(piece);
            }
            proptest::prop_assert_eq!(counter.records(), csv_core_records(doc.as_bytes()));
        }
    }
}
