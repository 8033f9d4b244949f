//! The validating JSON scanner behind [`super::LazyObject`]: strings,
//! numbers, literals and nested values checked byte by byte (RFC 8259),
//! plain string bytes skipped eight at a time.

use std::ops::Range;

/// Nesting deeper than this is left to `serde_json` (its limit is 128).
pub(super) const MAX_DEPTH: usize = 100;

/// The index of the first byte at or after `i` in `b` that is a quote, a
/// backslash, a control character or not ASCII (`b.len()` when none):
/// eight bytes at a time, with the classic bit tricks for "has a zero
/// byte" and "has a byte less than n" (Anderson, *Bit Twiddling Hacks*).
/// Their false positives only ever sit above a true match in the
/// little-endian word, so the lowest flagged byte is the first match.
#[inline]
pub(super) fn skip_plain(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let q = w ^ (ONES * u64::from(b'"'));
        let e = w ^ (ONES * u64::from(b'\\'));
        let hits = ((q.wrapping_sub(ONES) & !q)
            | (e.wrapping_sub(ONES) & !e)
            | (w.wrapping_sub(ONES * 0x20) & !w)
            | w)
            & HIGH;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c) {
            return i;
        }
        i += 1;
    }
    i
}

/// A validating scanner over JSON text; every method returns `None` for
/// anything it does not accept.
pub(super) struct Scanner<'a> {
    pub(super) b: &'a [u8],
    pub(super) i: usize,
}

impl Scanner<'_> {
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// A string starting at the quote; its range, quotes included. `key`
    /// refuses any escape, values refuse `\u`; a string with a non-ASCII
    /// byte must be valid UTF-8.
    #[inline]
    pub(super) fn string(&mut self, key: bool) -> Option<Range<usize>> {
        let start = self.i;
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        let mut ascii = true;
        loop {
            // Skip plain bytes in one go; stop at a quote, escape, control
            // or non-ASCII byte.
            self.i = skip_plain(self.b, self.i);
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    if !ascii && std::str::from_utf8(&self.b[start + 1..self.i - 1]).is_err() {
                        return None;
                    }
                    return Some(start..self.i);
                }
                b'\\' if !key => {
                    match self.b.get(self.i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        _ => return None,
                    }
                    self.i += 2;
                }
                c if c >= 0x80 => {
                    ascii = false;
                    self.i += 1;
                }
                _ => return None,
            }
        }
    }

    #[inline]
    fn digits(&mut self) -> usize {
        let s = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - s
    }

    #[inline]
    fn number(&mut self) -> Option<()> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        let n = self.digits();
        if n == 0 || (n > 1 && self.b[int_start] == b'0') || n > 300 {
            return None;
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if self.i - start > 300 {
            return None;
        }
        // Without an exponent, fewer than 301 integer digits are finite
        // and below 1e300. With one, out of range is an error for
        // serde_json: leave it the case.
        if float
            && self.b[int_start..self.i]
                .iter()
                .any(|c| matches!(c, b'e' | b'E'))
        {
            let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
            let f: f64 = text.parse().ok()?;
            if !f.is_finite() || f.abs() > 1e300 {
                return None;
            }
        }
        Some(())
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    pub(super) fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string(false).map(|_| ()),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'[' => self.sequence(depth, b']', |s| s.value(depth + 1)),
            b'{' => self.sequence(depth, b'}', |s| {
                s.string(false)?;
                s.ws();
                if s.peek()? != b':' {
                    return None;
                }
                s.i += 1;
                s.ws();
                s.value(depth + 1)
            }),
            _ => None,
        }
    }

    /// The rest of an array or object whose opening byte is at the cursor,
    /// up to its `close` byte: comma-separated items, each read by `item`
    /// after whitespace; `None` past [`MAX_DEPTH`] levels.
    fn sequence(
        &mut self,
        depth: usize,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.i += 1;
        self.ws();
        if self.peek()? == close {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            item(self)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                c if c == close => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}
