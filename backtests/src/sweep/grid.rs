//! What a sweep runs: the grid's axes, the `--where` filter, random search and shards.

use std::collections::HashSet;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// The most combinations a grid may have (its values are numbered with a `u64`, and a grid
/// beyond this is searched at random, not walked).
pub const MAX_GRID: u64 = 1 << 48;

fn bad(key: &'static str, reason: impl Into<String>) -> Error {
    Error::Sweep { key, reason: reason.into() }
}

/// One parameter's values: `fast=2..100`, `size=0.25..1:0.25`, `mode=long_short,long_only`.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The strategy parameter.
    pub name: String,
    /// Its values, as the text the registry parses.
    pub values: Vec<String>,
    /// The spec it was read from (for the sweep's record).
    pub spec: String,
}

impl Axis {
    /// Reads `name=A..B` (whole numbers from A to B inclusive), `name=A..B:STEP` (A, A+STEP,
    /// ... up to B; decimals allowed), `name=v1,v2,...` (a list) or `name=v` (one value).
    pub fn parse(spec: &str) -> Result<Axis> {
        let (name, values) = spec
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| {
                bad("grid", format!("`{spec}` is not NAME=VALUES (fast=2..100, mode=a,b)"))
            })?;
        let values = if let Some((from, rest)) = values.split_once("..") {
            let (to, step) = match rest.split_once(':') {
                Some((to, step)) => (to.trim(), Some(step.trim())),
                None => (rest.trim(), None),
            };
            range(spec, from.trim(), to, step)?
        } else {
            values.split(',').map(|v| v.trim().to_string()).collect::<Vec<_>>()
        };
        if values.iter().any(String::is_empty) {
            return Err(bad("grid", format!("`{spec}` has an empty value")));
        }
        let mut seen = HashSet::new();
        if let Some(d) = values.iter().find(|v| !seen.insert(v.as_str())) {
            return Err(bad("grid", format!("`{spec}` lists {d} twice")));
        }
        Ok(Axis { name: name.to_string(), values, spec: spec.to_string() })
    }
}

/// The most values one axis may have.
const MAX_AXIS: u64 = 10_000_000;

/// `from..to[:step]` as text values, exact in decimal (0.1..0.3:0.1 is 0.1, 0.2, 0.3).
fn range(spec: &str, from: &str, to: &str, step: Option<&str>) -> Result<Vec<String>> {
    let num = |s: &str| -> Result<Decimal> {
        Decimal::parse(s).ok_or_else(|| bad("grid", format!("`{spec}`: `{s}` is not a number")))
    };
    let (a, b) = (num(from)?, num(to)?);
    let step = match step {
        Some(s) => num(s)?,
        None => Decimal { units: 1, scale: 0 },
    };
    let scale = a.scale.max(b.scale).max(step.scale);
    let (a, b, st) = (a.at(scale), b.at(scale), step.at(scale));
    let (Some(a), Some(b), Some(st)) = (a, b, st) else {
        return Err(bad("grid", format!("`{spec}`: numbers too large")));
    };
    if st <= 0 {
        return Err(bad("grid", format!("`{spec}`: the step must be positive")));
    }
    if b < a {
        return Err(bad("grid", format!("`{spec}`: the range is empty ({to} is below {from})")));
    }
    let n = ((b - a) / st) as u64 + 1;
    if n > MAX_AXIS {
        return Err(bad("grid", format!("`{spec}` has {n} values, more than {MAX_AXIS}")));
    }
    Ok((0..n as i128).map(|k| Decimal { units: a + k * st, scale }.to_string()).collect())
}

/// A decimal number as an integer count of 10^-scale.
#[derive(Debug, Clone, Copy)]
struct Decimal {
    units: i128,
    scale: u32,
}

impl Decimal {
    fn parse(s: &str) -> Option<Decimal> {
        let (neg, digits) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
            || int.len() + frac.len() > 30
        {
            return None;
        }
        let units: i128 = format!("{int}{frac}").parse().ok()?;
        Some(Decimal { units: if neg { -units } else { units }, scale: frac.len() as u32 })
    }

    fn at(self, scale: u32) -> Option<i128> {
        self.units.checked_mul(10i128.checked_pow(scale - self.scale)?)
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = 10i128.pow(self.scale);
        let (sign, u) = if self.units < 0 { ("-", -self.units) } else { ("", self.units) };
        let (int, mut frac) = (u / p, u % p);
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let mut digits = self.scale as usize;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        write!(f, "{sign}{int}.{frac:0digits$}")
    }
}

/// The axes; combination `k` takes each axis's value by the digits of `k` in mixed radix,
/// the last axis changing fastest.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// The axes, in the order given.
    pub axes: Vec<Axis>,
    size: u64,
}

impl Grid {
    /// A grid over `axes`; an error for none, a parameter twice, or too many combinations.
    pub fn new(axes: Vec<Axis>) -> Result<Grid> {
        if axes.is_empty() {
            return Err(bad("grid", "no axes: give at least one --grid NAME=VALUES"));
        }
        for (i, a) in axes.iter().enumerate() {
            if axes[..i].iter().any(|b| b.name == a.name) {
                return Err(bad("grid", format!("`{}` has two axes", a.name)));
            }
        }
        let size = axes.iter().try_fold(1u64, |n, a| n.checked_mul(a.values.len() as u64));
        let size = size.filter(|&n| n <= MAX_GRID).ok_or_else(|| {
            bad("grid", format!("more than {MAX_GRID} combinations: narrow the axes"))
        })?;
        Ok(Grid { axes, size })
    }

    /// How many combinations it has (before any filter).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The index of each axis's value in combination `k`.
    pub fn digits(&self, mut k: u64, out: &mut Vec<usize>) {
        out.clear();
        out.resize(self.axes.len(), 0);
        for (d, a) in out.iter_mut().zip(&self.axes).rev() {
            let n = a.values.len() as u64;
            *d = (k % n) as usize;
            k /= n;
        }
    }

    /// Combination `k`'s values, axis by axis.
    pub fn values(&self, k: u64) -> Vec<&str> {
        let mut d = Vec::new();
        self.digits(k, &mut d);
        d.iter().zip(&self.axes).map(|(&i, a)| a.values[i].as_str()).collect()
    }
}

/// `--where`: comparisons of parameters and numbers, joined by `&&` (or `and`, or `,`), with
/// `+ - * /` and parentheses: `fast<slow`, `slow >= 2*fast && fast > 3`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    text: String,
    tests: Vec<(Expr, Cmp, Expr)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Num(f64),
    /// A grid axis, by position.
    Axis(usize),
    Bin(Box<Expr>, u8, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Filter {
    /// Parses `text`. Names are grid axes, or other parameters of the strategy with the
    /// numeric values in `fixed` (the sweep's fixed parameters and the defaults).
    pub fn parse(text: &str, axes: &[String], fixed: &[(String, f64)]) -> Result<Filter> {
        let mut p = Parser { s: text.as_bytes(), i: 0, axes, fixed, text };
        let mut tests = Vec::new();
        loop {
            let a = p.sum()?;
            let cmp = p.cmp()?;
            let b = p.sum()?;
            tests.push((a, cmp, b));
            p.ws();
            if p.i == p.s.len() {
                break;
            }
            if !(p.eat("&&") || p.eat("and") || p.eat(",")) {
                return Err(p.err("expected `&&` between comparisons"));
            }
        }
        Ok(Filter { text: text.to_string(), tests })
    }

    /// The text it was read from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether a combination whose axes have the numeric `values` passes (`NaN` for an axis
    /// that is not a number fails every comparison it is in).
    pub fn accepts(&self, values: &[f64]) -> bool {
        self.tests.iter().all(|(a, c, b)| {
            let (a, b) = (eval(a, values), eval(b, values));
            match c {
                Cmp::Lt => a < b,
                Cmp::Le => a <= b,
                Cmp::Gt => a > b,
                Cmp::Ge => a >= b,
                Cmp::Eq => a == b,
                Cmp::Ne => a != b,
            }
        })
    }

    /// The axes it reads.
    pub fn axes_read(&self) -> Vec<usize> {
        fn walk(e: &Expr, out: &mut Vec<usize>) {
            match e {
                Expr::Axis(i) => out.push(*i),
                Expr::Bin(a, _, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Num(_) => {}
            }
        }
        let mut out = Vec::new();
        for (a, _, b) in &self.tests {
            walk(a, &mut out);
            walk(b, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn eval(e: &Expr, v: &[f64]) -> f64 {
    match e {
        Expr::Num(x) => *x,
        Expr::Axis(i) => v[*i],
        Expr::Bin(a, op, b) => {
            let (a, b) = (eval(a, v), eval(b, v));
            match op {
                b'+' => a + b,
                b'-' => a - b,
                b'*' => a * b,
                _ => a / b,
            }
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    axes: &'a [String],
    fixed: &'a [(String, f64)],
    text: &'a str,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> Error {
        bad("where", format!("`{}`: {what} at character {}", self.text, self.i + 1))
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(tok.as_bytes()) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }

    fn cmp(&mut self) -> Result<Cmp> {
        for (tok, c) in [
            ("<=", Cmp::Le),
            (">=", Cmp::Ge),
            ("==", Cmp::Eq),
            ("!=", Cmp::Ne),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
            ("=", Cmp::Eq),
        ] {
            if self.eat(tok) {
                return Ok(c);
            }
        }
        Err(self.err("expected a comparison (< <= > >= == !=)"))
    }

    fn sum(&mut self) -> Result<Expr> {
        let mut e = self.product()?;
        loop {
            let op = if self.eat("+") {
                b'+'
            } else if self.eat("-") {
                b'-'
            } else {
                return Ok(e);
            };
            e = Expr::Bin(Box::new(e), op, Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr> {
        let mut e = self.atom()?;
        loop {
            let op = if self.eat("*") {
                b'*'
            } else if self.eat("/") {
                b'/'
            } else {
                return Ok(e);
            };
            e = Expr::Bin(Box::new(e), op, Box::new(self.atom()?));
        }
    }

    fn atom(&mut self) -> Result<Expr> {
        self.ws();
        if self.eat("(") {
            let e = self.sum()?;
            if !self.eat(")") {
                return Err(self.err("expected `)`"));
            }
            return Ok(e);
        }
        let start = self.i;
        let c = *self.s.get(self.i).ok_or_else(|| self.err("expected a name or a number"))?;
        if c.is_ascii_digit() || c == b'.' || c == b'-' {
            self.i += 1;
            while self.s.get(self.i).is_some_and(|c| c.is_ascii_digit() || *c == b'.') {
                self.i += 1;
            }
            let t = &self.text[start..self.i];
            return t
                .parse()
                .map(Expr::Num)
                .map_err(|_| self.err(&format!("`{t}` is not a number")));
        }
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            self.i += 1;
        }
        let name = &self.text[start..self.i];
        if name.is_empty() {
            return Err(self.err("expected a name or a number"));
        }
        if let Some(k) = self.axes.iter().position(|a| a == name) {
            return Ok(Expr::Axis(k));
        }
        if let Some((_, v)) = self.fixed.iter().find(|(n, _)| n == name) {
            return Ok(Expr::Num(*v));
        }
        Err(bad(
            "where",
            format!(
                "`{}`: `{name}` is neither a grid axis ({}) nor a numeric parameter of the strategy",
                self.text,
                self.axes.join(", ")
            ),
        ))
    }
}

/// `--search`: every combination, or a seeded random sample of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// Every combination that passes the filter.
    Grid,
    /// `trials` distinct combinations that pass the filter, drawn with `seed` (every one when
    /// there are no more than `trials`).
    Random {
        /// How many.
        trials: u64,
        /// The generator's seed.
        seed: u64,
    },
}

/// `--shard I/N`: the combinations whose place in the plan is `I` modulo `N` (`I` from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

impl Shard {
    /// Reads `I/N`.
    pub fn parse(s: &str) -> Result<Shard> {
        let parsed = s.split_once('/').and_then(|(i, n)| {
            Some(Shard { index: i.trim().parse().ok()?, count: n.trim().parse().ok()? })
        });
        match parsed {
            Some(sh) if sh.count > 0 && sh.index < sh.count => Ok(sh),
            _ => Err(bad(
                "shard",
                format!("`{s}` is not I/N with 0 <= I < N (0/4 is the first of four)"),
            )),
        }
    }
}

/// The combinations a sweep runs, in the order of their indices.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Combination indices, ascending.
    pub combinations: Vec<u64>,
    /// How many passed the filter in the whole grid (for a random search, in the sample's
    /// draws: those it kept).
    pub eligible: u64,
}

/// The most combinations one plan holds (8 bytes each: 800 MB at most).
pub const MAX_PLAN: u64 = 100_000_000;

impl Plan {
    /// The plan of `grid` under `filter`, `search` and `shard`. `numeric(axis, value)` is a
    /// value as a number for the filter (`NaN` when it is not one).
    pub fn new(
        grid: &Grid,
        filter: Option<&Filter>,
        numeric: &[Vec<f64>],
        search: Search,
        shard: Option<Shard>,
    ) -> Result<Plan> {
        let mut digits = Vec::new();
        let mut vals = vec![0.0; grid.axes.len()];
        let mut pass = |k: u64| -> bool {
            let Some(f) = filter else { return true };
            grid.digits(k, &mut digits);
            for (a, &d) in digits.iter().enumerate() {
                vals[a] = numeric[a][d];
            }
            f.accepts(&vals)
        };
        let mut combinations = match search {
            Search::Grid => {
                if grid.size() > MAX_PLAN * 16 {
                    return Err(bad(
                        "grid",
                        format!(
                            "{} combinations are too many to walk: use --search random --trials N",
                            grid.size()
                        ),
                    ));
                }
                let all: Vec<u64> = (0..grid.size()).filter(|&k| pass(k)).collect();
                if all.len() as u64 > MAX_PLAN {
                    return Err(bad(
                        "grid",
                        format!(
                            "{} combinations pass the filter, more than {MAX_PLAN}: use --search random --trials N",
                            all.len()
                        ),
                    ));
                }
                all
            }
            Search::Random { trials, seed } => {
                if trials == 0 || trials > MAX_PLAN {
                    return Err(bad("trials", format!("{trials} is not in 1..={MAX_PLAN}")));
                }
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut chosen = HashSet::new();
                let mut out = Vec::new();
                // Draws stop after many misses in a row (a sparse filter, or fewer eligible
                // combinations than trials): the grid is then walked instead, when small.
                let mut misses = 0u64;
                while (out.len() as u64) < trials && misses < 10_000 + 20 * trials {
                    let k = rng.random_range(0..grid.size());
                    if chosen.contains(&k) || !pass(k) {
                        misses += 1;
                        continue;
                    }
                    misses = 0;
                    chosen.insert(k);
                    out.push(k);
                }
                if (out.len() as u64) < trials && grid.size() <= MAX_PLAN {
                    // Fewer eligible combinations than trials, or a filter that passes few
                    // draws: the eligible ones, walked, and `trials` of them drawn.
                    out = (0..grid.size()).filter(|&k| pass(k)).collect();
                    let n = out.len();
                    let want = (trials as usize).min(n);
                    for i in 0..want {
                        let j = rng.random_range(i..n);
                        out.swap(i, j);
                    }
                    out.truncate(want);
                }
                out.sort_unstable();
                out
            }
        };
        let eligible = combinations.len() as u64;
        if let Some(sh) = shard {
            combinations = combinations
                .into_iter()
                .enumerate()
                .filter(|(j, _)| *j as u64 % sh.count == sh.index)
                .map(|(_, k)| k)
                .collect();
        }
        Ok(Plan { combinations, eligible })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_read_ranges_steps_and_lists() {
        assert_eq!(Axis::parse("fast=2..5").unwrap().values, ["2", "3", "4", "5"]);
        assert_eq!(
            Axis::parse("x=0.1..0.5:0.1").unwrap().values,
            ["0.1", "0.2", "0.3", "0.4", "0.5"]
        );
        assert_eq!(Axis::parse("x=1..2:0.25").unwrap().values, ["1", "1.25", "1.5", "1.75", "2"]);
        assert_eq!(Axis::parse("x=10..20:4").unwrap().values, ["10", "14", "18"]);
        assert_eq!(Axis::parse("x=-2..0").unwrap().values, ["-2", "-1", "0"]);
        assert_eq!(
            Axis::parse("mode=long_short, long_only").unwrap().values,
            ["long_short", "long_only"]
        );
        assert_eq!(Axis::parse("fast=7").unwrap().values, ["7"]);
        for bad in [
            "fast",
            "=1",
            "fast=",
            "fast=5..2",
            "fast=1..5:0",
            "fast=1..5:-1",
            "fast=a..b",
            "fast=1,,2",
            "fast=1,1",
            "x=0..100000000",
        ] {
            let e = Axis::parse(bad).unwrap_err().to_string();
            assert!(e.contains("grid"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_grid_numbers_combinations_with_the_last_axis_fastest() {
        let g =
            Grid::new(vec![Axis::parse("a=1..3").unwrap(), Axis::parse("b=x,y").unwrap()]).unwrap();
        assert_eq!(g.size(), 6);
        let all: Vec<Vec<&str>> = (0..6).map(|k| g.values(k)).collect();
        assert_eq!(all[0], ["1", "x"]);
        assert_eq!(all[1], ["1", "y"]);
        assert_eq!(all[5], ["3", "y"]);
        assert!(Grid::new(vec![]).is_err());
        assert!(Grid::new(vec![Axis::parse("a=1").unwrap(), Axis::parse("a=2").unwrap()]).is_err());
    }

    fn filter(t: &str) -> Result<Filter> {
        Filter::parse(t, &["fast".into(), "slow".into()], &[("size".into(), 0.5)])
    }

    #[test]
    fn filters_compare_axes_numbers_and_fixed_parameters() {
        let f = filter("fast<slow").unwrap();
        assert!(f.accepts(&[2.0, 3.0]));
        assert!(!f.accepts(&[3.0, 3.0]));
        let f = filter("slow >= 2*fast && fast > 3, size < 1").unwrap();
        assert!(f.accepts(&[4.0, 8.0]));
        assert!(!f.accepts(&[4.0, 7.0]));
        assert!(!f.accepts(&[3.0, 8.0]));
        let f = filter("(slow - fast) / 2 == 5 and fast != 1").unwrap();
        assert!(f.accepts(&[2.0, 12.0]));
        assert!(!f.accepts(&[1.0, 11.0]));
        assert_eq!(f.axes_read(), [0, 1]);
        for (t, want) in [
            ("fast", "comparison"),
            ("fast < ", "name or a number"),
            ("fast < slw", "`slw` is neither"),
            ("fast < slow slow", "`&&`"),
            ("(fast < slow", "expected `)`"),
            ("fast < 1.2.3", "not a number"),
        ] {
            let e = filter(t).unwrap_err().to_string();
            assert!(e.contains(want), "{t}: {e}");
        }
    }

    #[test]
    fn plans_filter_sample_reproducibly_and_shard_without_overlap() {
        let g = Grid::new(vec![
            Axis::parse("fast=2..100").unwrap(),
            Axis::parse("slow=2..100").unwrap(),
        ])
        .unwrap();
        let numeric: Vec<Vec<f64>> =
            g.axes.iter().map(|a| a.values.iter().map(|v| v.parse().unwrap()).collect()).collect();
        let f = filter("fast<slow").unwrap();
        let all = Plan::new(&g, Some(&f), &numeric, Search::Grid, None).unwrap();
        assert_eq!(all.combinations.len(), 4851, "99*98/2 pairs with fast < slow");
        assert!(all.combinations.windows(2).all(|w| w[0] < w[1]));
        let mut union = Vec::new();
        for i in 0..3 {
            let p =
                Plan::new(&g, Some(&f), &numeric, Search::Grid, Some(Shard { index: i, count: 3 }))
                    .unwrap();
            union.extend(p.combinations);
        }
        union.sort_unstable();
        assert_eq!(union, all.combinations, "the shards cover the plan once");
        let r = |seed| {
            Plan::new(&g, Some(&f), &numeric, Search::Random { trials: 100, seed }, None).unwrap()
        };
        let (a, b, c) = (r(7), r(7), r(8));
        assert_eq!(a.combinations, b.combinations);
        assert_ne!(a.combinations, c.combinations);
        assert_eq!(a.combinations.len(), 100);
        assert!(a.combinations.iter().all(|k| all.combinations.binary_search(k).is_ok()));
        let many =
            Plan::new(&g, Some(&f), &numeric, Search::Random { trials: 9000, seed: 1 }, None)
                .unwrap();
        assert_eq!(
            many.combinations, all.combinations,
            "more trials than combinations: all of them"
        );
        for bad in ["1/1/", "3/3", "a/2", "0/0", "1"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Shard::parse("2/5").unwrap(), Shard { index: 2, count: 5 });
    }
}
