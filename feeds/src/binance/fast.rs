//! A scanner for the exact shape of Binance's combined-stream `depthUpdate`, `bookTicker` and
//! `trade` messages: compact JSON, keys as Binance writes them, strings without escapes.
//!
//! serde_json spends most of a replay's time on these messages' many short strings (measured in
//! BENCHMARKS.md; sonic-rs and simd-json were slower still). This reads them in one pass without
//! a visitor. It is only a fast path: anything it is not certain of (whitespace, an escape, a
//! duplicate or missing field, a number that is not a plain integer, an unknown field whose
//! value is not a string, integer, boolean or null, a stream of another kind) makes it answer
//! `None`, and [`super::parse`] then parses the text with serde_json, which decides. Whatever it
//! does answer is exactly what the serde path gives for the same text (a test checks every
//! recorded message, a property test mutated ones).

use kairos_strategies::Fixed;

use super::{DepthDiff, Kind, Level, Message, Top, TradeMsg, kind_of};

/// The message, or `None` when the serde path must decide.
pub(super) fn parse(text: &str) -> Option<Message> {
    let mut c = Cursor { s: text, b: text.as_bytes(), i: 0 };
    c.lit(b"{\"stream\":")?;
    let stream = c.string()?;
    c.lit(b",\"data\":")?;
    let msg = match kind_of(stream) {
        Kind::Depth => depth(&mut c)?,
        Kind::Top => top(&mut c)?,
        Kind::Trade => trade(&mut c)?,
        Kind::Snapshot | Kind::Other => return None,
    };
    c.lit(b"}")?;
    (c.i == c.b.len()).then_some(msg)
}

struct Cursor<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + s.len())? == s {
            self.i += s.len();
            Some(())
        } else {
            None
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A string without escapes or control characters; its contents.
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        self.lit(b"\"")?;
        let start = self.i;
        // Eight bytes at a time while none of them is a quote, a backslash or a control
        // character (SWAR: a byte is zero in `x` exactly when it equals the one looked for).
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().ok()?);
            let special = zero_byte(w ^ (ONES * u64::from(b'"')))
                | zero_byte(w ^ (ONES * u64::from(b'\\')))
                | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS);
            if special != 0 {
                break;
            }
            self.i += 8;
        }
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' | 0..0x20 => return None,
                _ => self.i += 1,
            }
        }
        // The cut is at ASCII quotes, so it is on character boundaries.
        let s = self.s.get(start..self.i)?;
        self.i += 1;
        Some(s)
    }

    /// A decimal string, parsed exactly.
    #[inline]
    fn decimal(&mut self) -> Option<Fixed> {
        // The digits read in place (one pass instead of finding the quote, then parsing); the
        // string and `Fixed::parse` for anything else.
        if self.peek() == Some(b'"')
            && let Some((f, n)) = Fixed::parse_until_quote(&self.b[self.i + 1..])
        {
            self.i += n + 2;
            return Some(f);
        }
        Fixed::parse(self.string()?)
    }

    /// A JSON integer that fits a u64 (no sign, fraction, exponent or leading zero).
    #[inline]
    fn u64(&mut self) -> Option<u64> {
        let (b, start) = (self.b, self.i);
        let mut i = start;
        let mut v: u64 = 0;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // Nineteen digits always fit, unchecked; longer ones are serde's to judge.
            if i - start == 19 {
                return None;
            }
            v = v * 10 + u64::from(d);
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || (digits > 1 && b[start] == b'0') {
            return None;
        }
        self.i = i;
        // A number must end here: `1.5` or `1e3` is not an integer.
        match self.peek()? {
            b',' | b'}' | b']' => Some(v),
            _ => None,
        }
    }

    /// The value of a field the message's type does not read: a string, an integer (negative
    /// too), a boolean or null.
    fn skip_simple(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.lit(b"true"),
            b'f' => self.lit(b"false"),
            b'n' => self.lit(b"null"),
            b'-' => {
                self.i += 1;
                self.u64().map(drop)
            }
            _ => self.u64().map(drop),
        }
    }

    /// `[["price","size"],...]`, appended to `out`.
    fn levels(&mut self, out: &mut Vec<Level>) -> Option<()> {
        self.lit(b"[")?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.lit(b"[")?;
            let price = self.decimal()?;
            self.lit(b",")?;
            let size = self.decimal()?;
            self.lit(b"]")?;
            out.push((price, size));
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Walks an object `{"k":v,...}`, handing each key to `field` (which reads its value and
    /// answers `Some(bit)` for a field it knows, `Some(0)` after skipping one it does not). A
    /// known field seen twice is refused (serde's derive refuses it too). Returns the bits seen.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &[u8]) -> Option<u32>) -> Option<u32> {
        self.lit(b"{")?;
        let mut seen = 0u32;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(seen);
        }
        loop {
            let key = self.string()?.as_bytes();
            self.lit(b":")?;
            let bit = field(self, key)?;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(seen);
                }
                _ => return None,
            }
        }
    }
}

fn depth(c: &mut Cursor<'_>) -> Option<Message> {
    let (mut event_ms, mut first, mut last, mut prev) = (0, 0, 0, None);
    let mut symbol = "";
    // Room for a typical diff's levels up front (a level is about 25 bytes of text), instead
    // of growing the vectors several times each.
    let guess = (c.b.len() - c.i) / 50;
    let (mut bids, mut asks) = (Vec::with_capacity(guess), Vec::with_capacity(guess));
    let seen = c.object(|c, key| {
        Some(match key {
            b"E" => {
                event_ms = c.u64()?;
                1
            }
            b"s" => {
                symbol = c.string()?;
                2
            }
            b"U" => {
                first = c.u64()?;
                4
            }
            b"u" => {
                last = c.u64()?;
                8
            }
            b"pu" => {
                prev = Some(c.u64()?);
                16
            }
            b"b" => {
                c.levels(&mut bids)?;
                32
            }
            b"a" => {
                c.levels(&mut asks)?;
                64
            }
            _ => {
                c.skip_simple()?;
                0
            }
        })
    })?;
    // Every field but `pu` is required.
    (seen | 16 == 127).then(|| {
        Message::Depth(DepthDiff {
            symbol: symbol.to_ascii_uppercase(),
            event_ms,
            first,
            last,
            prev,
            bids,
            asks,
        })
    })
}

fn top(c: &mut Cursor<'_>) -> Option<Message> {
    let mut update_id = 0;
    let mut symbol = "";
    let mut px = [Fixed::ZERO; 4];
    let seen = c.object(|c, key| {
        let slot = match key {
            b"u" => {
                update_id = c.u64()?;
                return Some(1);
            }
            b"s" => {
                symbol = c.string()?;
                return Some(2);
            }
            b"b" => 0,
            b"B" => 1,
            b"a" => 2,
            b"A" => 3,
            _ => {
                c.skip_simple()?;
                return Some(0);
            }
        };
        px[slot] = c.decimal()?;
        Some(4 << slot)
    })?;
    (seen == 63).then(|| {
        Message::Top(
            symbol.to_ascii_uppercase(),
            Top { update_id, bid: (px[0], px[1]), ask: (px[2], px[3]) },
        )
    })
}

fn trade(c: &mut Cursor<'_>) -> Option<Message> {
    let (mut time_ms, mut buyer_is_maker) = (0, false);
    let mut symbol = "";
    let (mut price, mut qty) = (Fixed::ZERO, Fixed::ZERO);
    let seen = c.object(|c, key| {
        Some(match key {
            b"s" => {
                symbol = c.string()?;
                1
            }
            b"T" => {
                time_ms = c.u64()?;
                2
            }
            b"p" => {
                price = c.decimal()?;
                4
            }
            b"q" => {
                qty = c.decimal()?;
                8
            }
            b"m" => {
                buyer_is_maker = match c.peek()? {
                    b't' => c.lit(b"true").map(|_| true)?,
                    _ => c.lit(b"false").map(|_| false)?,
                };
                16
            }
            _ => {
                c.skip_simple()?;
                0
            }
        })
    })?;
    (seen == 31).then(|| {
        Message::Trade(TradeMsg {
            symbol: symbol.to_ascii_uppercase(),
            time_ms,
            price,
            qty,
            buyer_is_maker,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse_serde;
    use super::*;
    use proptest::prelude::*;

    const REAL: [&str; 5] = [
        r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"],["61730.17000000","0.00000000"]],"a":[["61837.64000000","1.54698000"]]}}"#,
        r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256299,"T":1723161256298,"s":"BTCUSDT","U":5123107832006,"u":5123107837557,"pu":5123107831937,"b":[["58710.20","0.014"],["61496.50","0.010"]],"a":[]}}"#,
        r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#,
        r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107837557,"s":"BTCUSDT","b":"61653.30","B":"2.811","a":"61653.40","A":"5.119","T":1723161256298,"E":1723161256299}}"#,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"btcusdt","t":3,"p":"61837.63","q":"0.02","T":1,"m":true,"M":true}}"#,
    ];

    /// What the scanner answers is what serde answers.
    fn agrees(text: &str) -> Result<bool, TestCaseError> {
        match parse(text) {
            Some(m) => {
                prop_assert_eq!(Ok(m), parse_serde(text), "{}", text);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    #[test]
    fn the_real_shapes_take_the_fast_path() {
        for text in REAL {
            assert!(agrees(text).unwrap(), "{text}");
        }
    }

    #[test]
    fn what_it_cannot_be_sure_of_goes_to_serde() {
        let cases = [
            // whitespace, an escape, a duplicate, a missing field, a float, a leading zero,
            // a nested unknown value, a null `pu`, trailing text, another kind of stream
            r#"{"stream":"btcusdt@trade", "data":{"s":"X","T":1,"p":"1","q":"1","m":true}}"#,
            r#"{"stream":"btcusdt@trade","data":{"s":"X\u0041","T":1,"p":"1","q":"1","m":true}}"#,
            r#"{"stream":"btcusdt@trade","data":{"s":"X","T":1,"T":2,"p":"1","q":"1","m":true}}"#,
            r#"{"stream":"btcusdt@trade","data":{"s":"X","p":"1","q":"1","m":true}}"#,
            r#"{"stream":"btcusdt@trade","data":{"s":"X","T":1.5,"p":"1","q":"1","m":true}}"#,
            r#"{"stream":"btcusdt@trade","data":{"s":"X","T":01,"p":"1","q":"1","m":true}}"#,
            r#"{"stream":"btcusdt@trade","data":{"s":"X","T":1,"p":"1","q":"1","m":true,"x":[1]}}"#,
            r#"{"stream":"x@depth","data":{"E":1,"s":"X","U":1,"u":2,"pu":null,"b":[],"a":[]}}"#,
            r#"{"stream":"btcusdt@trade","data":{"s":"X","T":1,"p":"1","q":"1","m":true}} "#,
            r#"{"stream":"btcusdt@aggTrade","data":{"s":"X","T":1,"p":"1","q":"1","m":true}}"#,
            r#"{"stream":"btcusdt@trade","data":{"s":"X","T":1,"p":"1e3","q":"1","m":true}}"#,
            r#"{"stream":"btcusdt@trade","data":{"s":"X","T":18446744073709551616,"p":"1","q":"1","m":true}}"#,
        ];
        for text in cases {
            assert!(parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn every_recorded_message_parses_as_serde_parses_it() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/binance-ws");
        let files =
            ["spot/btcusdt_20240808.gz", "spot/ethusdt_20240808.gz", "usdm/btcusdt_20240808.gz"];
        for f in files {
            let Ok((lines, _)) = crate::record::read_lines(&dir.join(f)) else { continue };
            let (mut fast, mut stream) = (0, 0);
            for line in &lines {
                let json = line.split_once(' ').map_or("", |(_, j)| j);
                if json.starts_with("{\"stream\"") {
                    stream += 1;
                    fast += usize::from(agrees(json).unwrap());
                }
            }
            assert!(stream > 1000 && fast == stream, "{f}: {fast} of {stream} on the fast path");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Real messages with bytes replaced, inserted or removed: the scanner either leaves the
        /// text to serde or answers exactly what serde answers.
        #[test]
        fn mutated_messages_agree_with_serde(
            which in 0usize..REAL.len(),
            edits in proptest::collection::vec((0usize..400, 0u8..3, proptest::sample::select(
                b"0123456789.,:\"[]{}-etrunlfaEsSbBpqmTU \\x".to_vec())), 1..4),
        ) {
            let mut bytes = REAL[which].as_bytes().to_vec();
            for (at, op, b) in edits {
                let i = at % bytes.len();
                match op {
                    0 => bytes[i] = b,
                    1 => bytes.insert(i, b),
                    _ => { bytes.remove(i); }
                }
            }
            let text = String::from_utf8(bytes).unwrap();
            agrees(&text)?;
        }
    }
}
