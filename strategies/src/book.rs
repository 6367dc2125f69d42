//! A local L2 order book with exact prices and sizes.
//!
//! Venues send prices and sizes as decimal strings (`"61837.63000000"`); [`Fixed`] keeps them
//! exactly, as integers of 10^-8 (every Binance and Coinbase spot and futures instrument fits),
//! so a level is found by equality, never by a float comparison, and formats back to the same
//! digits.
//!
//! [`OrderBook`] keeps each side as sorted chunks of at most 64 levels. A single sorted vector
//! was tried first: Binance's diffs touch levels all through a 1,000-level book (68 levels a
//! diff on USD-M), and the moves behind each insert made the replay of the recordings 23%
//! slower than with an ordered map (criterion, `kairos-feeds` bench `replay/parse_and_book`);
//! chunks bound the moves, and two short binary searches find a level with fewer pointer hops
//! than the map's. A diff's levels, which come in price order, are searched from where the
//! previous one went (its chunk, then a galloping search within it). A property test checks
//! the book's levels, best levels and order against an ordered map under random updates.

use std::fmt;

/// A non-negative decimal with 8 fractional digits, exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fixed(i64);

impl Fixed {
    /// Fractional digits kept.
    pub const DECIMALS: u32 = 8;
    /// 10^DECIMALS.
    pub const SCALE: i64 = 100_000_000;
    /// Zero.
    pub const ZERO: Fixed = Fixed(0);

    /// From a count of 10^-8 units.
    pub const fn from_units(units: i64) -> Self {
        Self(units)
    }

    /// The count of 10^-8 units.
    pub const fn units(self) -> i64 {
        self.0
    }

    /// Parses a decimal string (`"61837.63000000"`, `"0.014"`, `"5"`). More than 8 fractional
    /// digits are taken only when the extra ones are zeros. `None` for anything else: signs,
    /// exponents, spaces, values above about 92 billion.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        // The common case, without a checked step per digit: at most 10 integer and 8
        // fractional digits cannot overflow (below 10^18 units).
        let mut v: i64 = 0;
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v * 10 + i64::from(d);
            i += 1;
            if i > 10 {
                return Self::parse_checked(b);
            }
        }
        let int_len = i;
        if i < b.len() {
            if b[i] != b'.' {
                return None;
            }
            i += 1;
        }
        let frac_start = i;
        if let Some(w) = b.get(i..i + 8).and_then(eight_digits) {
            // Eight fractional digits (every Binance spot price and size): at once.
            v = v * 100_000_000 + w;
            i += 8;
        }
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            // More fractional digits than the scale holds: before the multiply, which would
            // overflow for ten integer digits.
            if i - frac_start >= Self::DECIMALS as usize {
                return Self::parse_checked(b);
            }
            v = v * 10 + i64::from(d);
            i += 1;
        }
        let frac_len = i - frac_start;
        if int_len == 0 && frac_len == 0 {
            return None;
        }
        Some(Self(v * FRAC_SCALE[frac_len]))
    }

    /// A decimal at the start of `b` that ends at a `"` (a JSON string's contents read in
    /// place): the value and the length before the quote, exactly as [`Fixed::parse`] reads
    /// those bytes. `None` when the fast shape does not hold (up to 10 integer and 8 fractional
    /// digits, then the quote): the caller then reads the string and gives it to
    /// [`Fixed::parse`], which decides.
    #[inline]
    pub fn parse_until_quote(b: &[u8]) -> Option<(Self, usize)> {
        let mut v: i64 = 0;
        let mut i = 0;
        loop {
            let d = b.get(i)?.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if i == 10 {
                return None;
            }
            v = v * 10 + i64::from(d);
            i += 1;
        }
        let int_len = i;
        let mut frac_len = 0;
        if b[i] == b'.' {
            i += 1;
            if let Some(w) = b.get(i..i + 8).and_then(eight_digits) {
                v = v * Self::SCALE + w;
                i += 8;
                frac_len = 8;
            } else {
                loop {
                    let d = b.get(i)?.wrapping_sub(b'0');
                    if d > 9 {
                        break;
                    }
                    if frac_len == 8 {
                        return None;
                    }
                    v = v * 10 + i64::from(d);
                    i += 1;
                    frac_len += 1;
                }
            }
        }
        if b.get(i) != Some(&b'"') || int_len + frac_len == 0 {
            return None;
        }
        Some((Self(v * FRAC_SCALE[frac_len]), i))
    }

    /// [`Fixed::parse`] with every step checked (long inputs: more than 10 integer digits, or
    /// more than 8 fractional ones, which must then be zeros).
    fn parse_checked(b: &[u8]) -> Option<Self> {
        let dot = b.iter().position(|&c| c == b'.').unwrap_or(b.len());
        let (int, frac) = (&b[..dot], b.get(dot + 1..).unwrap_or_default());
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let mut v: i64 = 0;
        for &c in int {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
        }
        let mut scale = Self::SCALE;
        v = v.checked_mul(Self::SCALE)?;
        for (i, &c) in frac.iter().enumerate() {
            if !c.is_ascii_digit() {
                return None;
            }
            if i >= Self::DECIMALS as usize {
                if c != b'0' {
                    return None;
                }
                continue;
            }
            scale /= 10;
            v = v.checked_add(i64::from(c - b'0') * scale)?;
        }
        Some(Self(v))
    }

    /// As a float (for indicators and reports; not for matching levels).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    /// Whether it is zero (a level of size zero is removed).
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The nearest 10^-8 to a float: `61800.30000000001` becomes `61800.3` exactly. `None` for
    /// NaN, infinities, negatives and values out of range.
    pub fn from_f64(x: f64) -> Option<Self> {
        let units = (x * Self::SCALE as f64).round();
        (x.is_finite() && x >= 0.0 && units < i64::MAX as f64).then_some(Self(units as i64))
    }

    /// `self` rounded down to a whole multiple of `step` (`step` must be positive).
    pub fn floor_to(self, step: Fixed) -> Fixed {
        Fixed(self.0 - self.0 % step.0.max(1))
    }

    /// `self` rounded up to a whole multiple of `step`; `None` on overflow.
    pub fn ceil_to(self, step: Fixed) -> Option<Fixed> {
        let step = step.0.max(1);
        let r = self.0 % step;
        if r == 0 { Some(self) } else { self.0.checked_add(step - r).map(Fixed) }
    }

    /// `self - other`, saturating at zero.
    pub fn saturating_sub(self, other: Fixed) -> Fixed {
        Fixed((self.0 - other.0).max(0))
    }

    /// `self + other`; `None` on overflow.
    pub fn checked_add(self, other: Fixed) -> Option<Fixed> {
        self.0.checked_add(other.0).map(Fixed)
    }
}

/// The shortest exact decimal: `61837.63`, `0.014`, `5`.
impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, mut frac) = (self.0 / Self::SCALE, self.0 % Self::SCALE);
        if frac == 0 {
            return write!(f, "{int}");
        }
        let mut digits = Self::DECIMALS as usize;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        write!(f, "{int}.{frac:0digits$}")
    }
}

/// As its exact decimal string (`"61837.63"`), the way venues write prices and sizes.
impl serde::Serialize for Fixed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// From a decimal string (`"61837.63000000"`); anything else is an error naming the text.
impl<'de> serde::Deserialize<'de> for Fixed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Fixed;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal number as a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Fixed, E> {
                Fixed::parse(v).ok_or_else(|| {
                    E::custom(format_args!(
                        "not a decimal number: {:?}",
                        v.chars().take(40).collect::<String>()
                    ))
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// `FRAC_SCALE[k]`: what a value read with `k` fractional digits is multiplied by to be in
/// units of 10^-8.
const FRAC_SCALE: [i64; 9] =
    [100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];

/// The value of eight ASCII digits, if all eight are digits: one 64-bit load and three
/// multiplications instead of eight steps (the technique of simdjson's
/// `parse_eight_digits_unrolled`).
#[inline]
fn eight_digits(b: &[u8]) -> Option<i64> {
    let w = u64::from_le_bytes(b.try_into().ok()?);
    // Each byte in 0x30..=0x39: its high nibble is 3, and adding 6 does not carry into it.
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    if w & HIGH != ZEROS || w.wrapping_add(0x0606_0606_0606_0606) & HIGH != ZEROS {
        return None;
    }
    let w = ((w & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561)) >> 8;
    let w = ((w & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601)) >> 16;
    let w = ((w & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001)) >> 32;
    Some(w as i64)
}

/// One side of a book: its levels in ascending price order, cut into chunks of at most
/// [`CHUNK`] levels, with each chunk's highest price in `tops` for the search.
///
/// Two short binary searches (over the chunks' tops, then inside one chunk) find a level, and
/// an insertion or removal moves at most a chunk's levels. Measured against the ordered map
/// this replaced, over the recorded Binance diffs (a thousand levels and more a side, touched
/// all through): see BENCHMARKS.md.
#[derive(Debug, Clone, Default)]
struct Side {
    chunks: Vec<Vec<(Fixed, Fixed)>>,
    /// `chunks[i]`'s highest price; no chunk is ever empty.
    tops: Vec<Fixed>,
    len: usize,
    bids: bool,
}

/// Where the previous level of a diff went: its chunk and its place there. A diff's levels
/// come in price order (descending bids on spot, ascending on USD-M), near one another at the
/// top of the book, so the next search starts there. Any finger gives the same answer.
#[derive(Debug, Clone, Copy)]
struct Finger {
    chunk: usize,
    pos: usize,
}

impl Finger {
    const NONE: Finger = Finger { chunk: usize::MAX, pos: 0 };
}

/// `chunk.binary_search_by_key(&price, ..)`, galloping out from `from` (steps 1, 2, 4, ...)
/// to the smallest window that holds `price`'s place and searching only that: a level next
/// to the previous one is found in a couple of loads of the cache lines just read.
#[inline]
fn search_from(chunk: &[(Fixed, Fixed)], price: Fixed, from: usize) -> Result<usize, usize> {
    let n = chunk.len();
    if n == 0 {
        return Err(0);
    }
    let from = from.min(n - 1);
    let (lo, hi) = if chunk[from].0 < price {
        // The place is after `from`.
        let (mut lo, mut step) = (from + 1, 1);
        loop {
            let probe = from + step;
            if probe >= n {
                break (lo, n);
            }
            if chunk[probe].0 >= price {
                break (lo, probe + 1);
            }
            lo = probe + 1;
            step *= 2;
        }
    } else {
        // The place is at `from` or before it.
        let (mut hi, mut step) = (from + 1, 1);
        loop {
            if step > from {
                break (0, hi);
            }
            let probe = from - step;
            if chunk[probe].0 < price {
                break (probe + 1, hi);
            }
            hi = probe + 1;
            step *= 2;
        }
    };
    match chunk[lo..hi].binary_search_by_key(&price, |l| l.0) {
        Ok(i) => Ok(lo + i),
        Err(i) => Err(lo + i),
    }
}

/// The most levels a chunk holds before it is split in two.
const CHUNK: usize = 64;

impl Side {
    /// The chunk that holds `price` or where it would go (`None` when the side is empty).
    #[inline]
    fn chunk_of(&self, price: Fixed) -> Option<usize> {
        if self.tops.is_empty() {
            return None;
        }
        Some(self.tops.partition_point(|t| *t < price).min(self.tops.len() - 1))
    }

    /// [`Side::chunk_of`], trying `hint` first: the chunk of the previous level of a diff,
    /// whose levels come in price order (descending bids on spot, ascending on USD-M), so the
    /// next one is most often in the same chunk. Any `hint` gives the same answer.
    #[inline]
    fn chunk_near(&self, price: Fixed, hint: usize) -> Option<usize> {
        let n = self.tops.len();
        if hint < n
            && (hint == 0 || self.tops[hint - 1] < price)
            && (hint == n - 1 || price <= self.tops[hint])
        {
            return Some(hint);
        }
        self.chunk_of(price)
    }

    fn set(&mut self, price: Fixed, size: Fixed) {
        let mut finger = Finger::NONE;
        self.set_near(price, size, &mut finger);
    }

    /// [`Side::set`], starting the search where `finger` points and leaving it at the level
    /// set.
    #[inline]
    fn set_near(&mut self, price: Fixed, size: Fixed, finger: &mut Finger) {
        let Some(c) = self.chunk_near(price, finger.chunk) else {
            if !size.is_zero() {
                self.chunks.push(vec![(price, size)]);
                self.tops.push(price);
                self.len = 1;
            }
            return;
        };
        let chunk = &mut self.chunks[c];
        let found = if c == finger.chunk {
            search_from(chunk, price, finger.pos)
        } else {
            chunk.binary_search_by_key(&price, |l| l.0)
        };
        *finger = Finger { chunk: c, pos: found.unwrap_or_else(|i| i) };
        match found {
            Ok(i) if size.is_zero() => {
                chunk.remove(i);
                self.len -= 1;
                match chunk.last() {
                    Some(l) => self.tops[c] = l.0,
                    None => {
                        self.chunks.remove(c);
                        self.tops.remove(c);
                    }
                }
            }
            Ok(i) => chunk[i].1 = size,
            Err(_) if size.is_zero() => {}
            Err(i) => {
                chunk.insert(i, (price, size));
                self.len += 1;
                self.tops[c] = self.tops[c].max(price);
                if chunk.len() > CHUNK {
                    let upper = chunk.split_off(chunk.len() / 2);
                    self.tops[c] = chunk[chunk.len() - 1].0;
                    self.tops.insert(c + 1, upper[upper.len() - 1].0);
                    self.chunks.insert(c + 1, upper);
                }
            }
        }
    }

    fn get(&self, price: Fixed) -> Fixed {
        let Some(c) = self.chunk_of(price) else { return Fixed::ZERO };
        let chunk = &self.chunks[c];
        chunk.binary_search_by_key(&price, |l| l.0).map_or(Fixed::ZERO, |i| chunk[i].1)
    }

    fn best(&self) -> Option<(Fixed, Fixed)> {
        if self.bids {
            self.chunks.last().and_then(|c| c.last()).copied()
        } else {
            self.chunks.first().and_then(|c| c.first()).copied()
        }
    }

    /// Levels from the lowest price up.
    fn ascending(&self) -> impl DoubleEndedIterator<Item = (Fixed, Fixed)> + '_ {
        self.chunks.iter().flatten().copied()
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.tops.clear();
        self.len = 0;
    }
}

/// An L2 book: the total size at each price, per side.
#[derive(Debug, Clone)]
pub struct OrderBook {
    bids: Side,
    asks: Side,
}

impl Default for OrderBook {
    fn default() -> Self {
        Self::new()
    }
}

impl OrderBook {
    /// An empty book.
    pub fn new() -> Self {
        Self { bids: Side { bids: true, ..Side::default() }, asks: Side::default() }
    }

    /// Sets the bid at `price` to `size` (zero removes it).
    pub fn set_bid(&mut self, price: Fixed, size: Fixed) {
        self.bids.set(price, size);
    }

    /// Sets the ask at `price` to `size` (zero removes it).
    pub fn set_ask(&mut self, price: Fixed, size: Fixed) {
        self.asks.set(price, size);
    }

    /// Sets the level at `price` on `side` to `size` (zero removes it).
    pub fn set(&mut self, side: crate::BookSide, price: Fixed, size: Fixed) {
        match side {
            crate::BookSide::Bid => self.bids.set(price, size),
            crate::BookSide::Ask => self.asks.set(price, size),
        }
    }

    /// Sets every `(price, size)` of `bids` and of `asks`, in order.
    pub fn set_levels(&mut self, bids: &[(Fixed, Fixed)], asks: &[(Fixed, Fixed)]) {
        let mut finger = Finger::NONE;
        for &(p, q) in bids {
            self.bids.set_near(p, q, &mut finger);
        }
        finger = Finger::NONE;
        for &(p, q) in asks {
            self.asks.set_near(p, q, &mut finger);
        }
    }

    /// The size at `price` on `side` (zero where there is no level).
    pub fn level(&self, side: crate::BookSide, price: Fixed) -> Fixed {
        match side {
            crate::BookSide::Bid => self.bids.get(price),
            crate::BookSide::Ask => self.asks.get(price),
        }
    }

    /// The best bid: `(price, size)`.
    pub fn best_bid(&self) -> Option<(Fixed, Fixed)> {
        self.bids.best()
    }

    /// The best ask: `(price, size)`.
    pub fn best_ask(&self) -> Option<(Fixed, Fixed)> {
        self.asks.best()
    }

    /// Bids from the best down.
    pub fn bids(&self) -> impl Iterator<Item = (Fixed, Fixed)> + '_ {
        self.bids.ascending().rev()
    }

    /// Asks from the best up.
    pub fn asks(&self) -> impl Iterator<Item = (Fixed, Fixed)> + '_ {
        self.asks.ascending()
    }

    /// Levels on each side: `(bids, asks)`.
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len, self.asks.len)
    }

    /// Removes every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Whether the best bid is below the best ask (a crossed book means lost updates).
    pub fn is_consistent(&self) -> bool {
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => b.0 < a.0,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn fixed_parses_and_prints_exactly() {
        for (s, units, back) in [
            ("61837.63000000", 6_183_763_000_000, "61837.63"),
            ("0.014", 1_400_000, "0.014"),
            ("5", 500_000_000, "5"),
            ("0.00000001", 1, "0.00000001"),
            ("61800.30", 6_180_030_000_000, "61800.3"),
            ("1.1234567800", 112_345_678, "1.12345678"),
            (".5", 50_000_000, "0.5"),
            ("7.", 700_000_000, "7"),
        ] {
            let f = Fixed::parse(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(f.units(), units, "{s}");
            assert_eq!(f.to_string(), back, "{s}");
        }
        for bad in ["", ".", "-1", "1e5", " 1", "1.000000001", "abc", "99999999999999", "1.2.3"] {
            assert_eq!(Fixed::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fixed_is_a_decimal_string_in_json() {
        let v: Vec<(Fixed, Fixed)> = serde_json::from_str(r#"[["61837.63000000","0.5"]]"#).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"[["61837.63","0.5"]]"#);
        let err = serde_json::from_str::<Fixed>(r#""NaN""#).unwrap_err().to_string();
        assert!(err.contains("not a decimal number: \"NaN\""), "{err}");
        assert!(serde_json::from_str::<Fixed>("1.5").is_err(), "a JSON number is not taken");
    }

    #[test]
    fn best_levels_and_removal() {
        let p = |s: &str| Fixed::parse(s).unwrap();
        let mut b = OrderBook::new();
        b.set_bid(p("100"), p("1"));
        b.set_bid(p("101"), p("2"));
        b.set_bid(p("99"), p("3"));
        b.set_ask(p("103"), p("1"));
        b.set_ask(p("102"), p("4"));
        assert_eq!(b.best_bid(), Some((p("101"), p("2"))));
        assert_eq!(b.best_ask(), Some((p("102"), p("4"))));
        b.set_bid(p("101"), Fixed::ZERO);
        b.set_ask(p("102"), Fixed::ZERO);
        b.set_ask(p("110"), Fixed::ZERO); // removing an absent level does nothing
        assert_eq!(b.best_bid(), Some((p("100"), p("1"))));
        assert_eq!(b.best_ask(), Some((p("103"), p("1"))));
        assert_eq!(b.bids().map(|l| l.0).collect::<Vec<_>>(), vec![p("100"), p("99")]);
        assert_eq!(b.depth(), (2, 1));
        assert!(b.is_consistent());
    }

    /// Ten integer digits and more fractional digits than the scale: the unchecked parser hands
    /// over to the checked one before it could overflow (it did, in a debug build).
    #[test]
    fn ten_integer_digits_and_nine_decimals_fall_back_without_overflow() {
        for s in ["9223400000.000000000", "9999999999.999999999", "9223372036.854775807"] {
            assert_eq!(Fixed::parse(s), Fixed::parse_checked(s.as_bytes()), "{s}");
        }
        assert_eq!(Fixed::parse("9223400000.000000000"), Fixed::parse("9223400000"));
        assert_eq!(Fixed::parse("1.000000000"), Fixed::parse("1"));
    }

    proptest! {
        #[test]
        fn parse_agrees_with_the_checked_parser(
            s in "[0-9]{0,13}(\\.[0-9]{0,12})?|[0-9]{0,6}\\.[0-9]{8}|[0-9]{9,11}\\.[0-9]{7,10}|[0-9]{0,3}\\.[0-9/:]{8,9}|[0-9.+e -]{0,24}",
        ) {
            prop_assert_eq!(Fixed::parse(&s), Fixed::parse_checked(s.as_bytes()), "{:?}", s);
        }

        /// Read in place up to a quote, a decimal is what `Fixed::parse` makes of the same
        /// bytes, or left to it; the plain shapes are always read in place.
        #[test]
        fn parse_until_quote_agrees_with_parse(
            s in "[0-9]{0,12}(\\.[0-9]{0,10})?|[0-9]{1,10}\\.[0-9]{8}|[0-9.+e\\\\ -]{0,14}",
            tail in "\"?[0-9a-z\",\\]]{0,4}",
        ) {
            let text = format!("{s}{tail}");
            let got = Fixed::parse_until_quote(text.as_bytes());
            if let Some((f, n)) = got {
                let end = text.find('"');
                prop_assert_eq!(Some(n), end, "{:?}", text);
                prop_assert_eq!(Fixed::parse(&text[..n]), Some(f), "{:?}", text);
            }
            let plain = s.split_once('.').is_none_or(|(i, f)| i.len() <= 10 && f.len() <= 8)
                && s.bytes().all(|c| c.is_ascii_digit() || c == b'.')
                && s.bytes().filter(|&c| c == b'.').count() <= 1
                && s.split('.').next().is_some_and(|i| i.len() <= 10)
                && s != "." && !s.is_empty();
            if plain && tail.starts_with('"') {
                prop_assert!(got.is_some(), "{:?}", text);
            }
        }

        /// The galloping search answers as a binary search does, from wherever it starts.
        #[test]
        fn search_from_is_a_binary_search(
            mut prices in proptest::collection::vec(0i64..200, 0..70),
            price in 0i64..200,
            from in 0usize..100,
        ) {
            prices.sort();
            prices.dedup();
            let chunk: Vec<(Fixed, Fixed)> =
                prices.iter().map(|&p| (Fixed::from_units(p), Fixed::from_units(1))).collect();
            let price = Fixed::from_units(price);
            prop_assert_eq!(
                search_from(&chunk, price, from),
                chunk.binary_search_by_key(&price, |l| l.0)
            );
        }

        /// Updates applied as diffs (sorted runs, in either order, each search starting where
        /// the previous level went) leave the same book as one level at a time.
        #[test]
        fn set_levels_equals_level_by_level(
            start in proptest::collection::vec((0i64..3000, 1i64..4), 0..2000),
            diffs in proptest::collection::vec(
                (proptest::collection::vec((0i64..3000, 0i64..3), 0..200), any::<bool>(), any::<bool>()),
                0..20,
            ),
        ) {
            let levels = |v: &[(i64, i64)]| -> Vec<(Fixed, Fixed)> {
                v.iter().map(|&(p, q)| (Fixed::from_units(p), Fixed::from_units(q))).collect()
            };
            let (mut a, mut b) = (OrderBook::new(), OrderBook::new());
            let s = levels(&start);
            a.set_levels(&s, &s);
            for &(p, q) in &s { b.set_bid(p, q); b.set_ask(p, q); }
            for (d, sorted, descending) in diffs {
                let mut d = levels(&d);
                if sorted { d.sort(); }
                if descending { d.reverse(); }
                a.set_levels(&d, &d);
                for &(p, q) in &d { b.set_bid(p, q); b.set_ask(p, q); }
                prop_assert_eq!(a.bids().collect::<Vec<_>>(), b.bids().collect::<Vec<_>>());
                prop_assert_eq!(a.asks().collect::<Vec<_>>(), b.asks().collect::<Vec<_>>());
            }
        }

        /// The book equals an ordered map under any sequence of level updates.
        #[test]
        fn book_matches_an_ordered_map(
            // Narrow price ranges revisit levels; wide ones fill, split and empty chunks.
            range in proptest::sample::select(vec![60i64, 500, 5000]),
            updates in proptest::collection::vec((any::<bool>(), 0i64..5000, 0i64..4), 0..3000)
        ) {
            let mut book = OrderBook::new();
            let (mut bids, mut asks) = (BTreeMap::new(), BTreeMap::new());
            for (bid, price, size) in updates {
                let (price, size) = (Fixed::from_units(price % range), Fixed::from_units(size));
                let model = if bid { &mut bids } else { &mut asks };
                if size.is_zero() { model.remove(&price); } else { model.insert(price, size); }
                if bid { book.set_bid(price, size) } else { book.set_ask(price, size) }
                prop_assert_eq!(book.best_bid(), bids.iter().next_back().map(|(p, s)| (*p, *s)));
                prop_assert_eq!(book.best_ask(), asks.iter().next().map(|(p, s)| (*p, *s)));
                let side = if bid { crate::BookSide::Bid } else { crate::BookSide::Ask };
                let model = if bid { &bids } else { &asks };
                prop_assert_eq!(book.level(side, price), model.get(&price).copied().unwrap_or(Fixed::ZERO));
            }
            prop_assert_eq!(book.depth(), (bids.len(), asks.len()));
            prop_assert_eq!(book.bids().collect::<Vec<_>>(), bids.iter().rev().map(|(p, s)| (*p, *s)).collect::<Vec<_>>());
            prop_assert_eq!(book.asks().collect::<Vec<_>>(), asks.iter().map(|(p, s)| (*p, *s)).collect::<Vec<_>>());
        }

        /// Any text parses to the value it spells or to nothing, never a panic; what parses
        /// prints back to the same number.
        #[test]
        fn fixed_round_trips(s in "[0-9]{0,12}(\\.[0-9]{0,10})?|.{0,20}") {
            if let Some(f) = Fixed::parse(&s) {
                prop_assert_eq!(Fixed::parse(&f.to_string()), Some(f));
            }
        }
    }
}
