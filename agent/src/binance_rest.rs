//! Binance spot REST: signed requests (HMAC-SHA256 with `recvWindow`), the exchange's filters
//! for tick size, lot size and minimum notional, and its rate-limit headers.
//!
//! Signing follows Binance's documented procedure: the parameters, percent-encoded, joined as
//! a query string; its HMAC-SHA256 under the secret key in hex is the `signature` parameter,
//! and the API key goes in the `X-MBX-APIKEY` header. The documented example's signature is a
//! test.
//!
//! Rate limits: every answer's `X-MBX-USED-WEIGHT-1M` (and the order counts) are kept; a
//! request that would go past the request-weight limit of `exchangeInfo` is refused here
//! before it is sent, and after a 429 (too many requests) or 418 (IP banned) every request
//! is refused until the `Retry-After` the exchange gave has passed. Ignoring a 429 is what gets
//! an IP banned.
//!
//! Orders are identified by a client order id the caller chooses
//! ([`client_order_id`]): deterministic, so that after a crash the agent can ask the exchange
//! whether an order it journalled was sent before it sends anything again.

use std::fmt;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use kairos_strategies::{Fixed, OrderId, Side};
use serde::Deserialize;
use sha2::Sha256;
use zeroize::Zeroizing;

/// What went wrong talking to Binance.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The request did not get an answer (connection, timeout).
    #[error("{method} {url}: {reason}")]
    Http {
        /// GET, POST or DELETE.
        method: &'static str,
        /// The endpoint (without the signed query).
        url: String,
        /// What happened.
        reason: String,
    },
    /// Binance answered with an error code.
    #[error("{method} {path}: Binance error {code} (HTTP {status}): {msg}")]
    Api {
        /// GET, POST or DELETE.
        method: &'static str,
        /// The endpoint path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Binance's error code (-1013 filter failure, -2010 new order rejected, ...).
        code: i64,
        /// Binance's message.
        msg: String,
    },
    /// Too many requests: nothing is sent until `retry_after`.
    #[error(
        "rate limited by Binance ({why}): no request is sent for {:.1} s",
        retry_after.as_secs_f64()
    )]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
        /// The header or limit that said so.
        why: String,
    },
    /// An answer that is not what Binance sends.
    #[error("{path}: unexpected answer: {reason}")]
    Decode {
        /// The endpoint path.
        path: String,
        /// What did not fit.
        reason: String,
    },
    /// The order breaks one of the symbol's filters (checked before sending).
    #[error("{symbol}: {reason}")]
    Filter {
        /// The symbol.
        symbol: String,
        /// Which filter, with the numbers.
        reason: String,
    },
    /// No credentials for a signed endpoint.
    #[error("{0} needs an API key and secret")]
    NoCredentials(String),
}

/// The error code Binance gives when an order it is asked about does not exist.
pub const ORDER_DOES_NOT_EXIST: i64 = -2013;

/// An API key and its secret. Neither `Debug` nor `Display` shows the secret, and the API key
/// only by its first four characters; the secret is zeroed when dropped.
#[derive(Clone)]
pub struct Credentials {
    api_key: String,
    secret: Zeroizing<String>,
}

impl Credentials {
    /// Credentials from a key and its secret.
    pub fn new(api_key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self { api_key: api_key.into(), secret: Zeroizing::new(secret.into()) }
    }

    /// Credentials from the environment variables `key_var` and `secret_var`; the error names
    /// the variable that is missing (never its value).
    pub fn from_env(key_var: &str, secret_var: &str) -> Result<Self, String> {
        let get =
            |v: &str| std::env::var(v).map_err(|_| format!("environment variable {v} is not set"));
        Ok(Self::new(get(key_var)?, get(secret_var)?))
    }

    /// `HMAC-SHA256(secret, payload)` in lowercase hex: the `signature` parameter.
    pub fn sign(&self, payload: &str) -> String {
        sign(&self.secret, payload)
    }

    /// The API key (not a secret: it names the account; requests carry it in the clear).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    fn key_hint(&self) -> String {
        let head: String = self.api_key.chars().take(4).collect();
        format!("{head}…")
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials {{ api_key: {}, secret: <redacted> }}", self.key_hint())
    }
}

/// `HMAC-SHA256(secret, payload)` in lowercase hex.
pub fn sign(secret: &str, payload: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The parameters as Binance signs them: `key=value` joined by `&`, values percent-encoded
/// (everything but `A-Z a-z 0-9 - _ . ~`, UTF-8 bytes for the rest).
pub fn query_string(params: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// The client order id of a run's order: `{prefix}-{id}`, within Binance's
/// `^[.A-Z:/a-z0-9_-]{1,36}$`. The same run prefix and order id always give the same id, so a
/// restarted agent can look an order up before sending it again.
pub fn client_order_id(prefix: &str, order: OrderId) -> String {
    let id = format!("{prefix}-{}", order.0);
    debug_assert!(valid_client_order_id(&id), "{id}");
    id
}

/// Whether `id` is a client order id Binance accepts.
pub fn valid_client_order_id(id: &str) -> bool {
    (1..=36).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'_' | b'-'))
}

/// A symbol's trading rules from `exchangeInfo`.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolRules {
    /// The symbol.
    pub symbol: String,
    /// `TRADING`, `BREAK`, ...
    pub status: String,
    /// PRICE_FILTER: the price step.
    pub tick_size: Fixed,
    /// PRICE_FILTER: the lowest and highest price (zero: no bound).
    pub min_price: Fixed,
    /// PRICE_FILTER.
    pub max_price: Fixed,
    /// LOT_SIZE: the quantity step.
    pub step_size: Fixed,
    /// LOT_SIZE.
    pub min_qty: Fixed,
    /// LOT_SIZE.
    pub max_qty: Fixed,
    /// NOTIONAL (or the older MIN_NOTIONAL): the smallest order value.
    pub min_notional: Option<f64>,
    /// Whether the minimum applies to market orders too.
    pub min_notional_market: bool,
}

impl SymbolRules {
    /// `price` rounded to the tick: buys down, sells up (never a worse price than asked).
    pub fn round_price(&self, price: f64, side: Side) -> Option<Fixed> {
        round_to(price, self.tick_size, matches!(side, Side::Sell))
    }

    /// `qty` rounded down to the step.
    pub fn round_qty(&self, qty: f64) -> Option<Fixed> {
        round_to(qty, self.step_size, false)
    }

    /// Checks an order's quantity and price (the reference price for a market order) against
    /// the filters, naming the one it breaks as Binance does (`LOT_SIZE`, `PRICE_FILTER`,
    /// `NOTIONAL`).
    pub fn check(&self, qty: Fixed, price: Fixed, market: bool) -> Result<(), String> {
        if self.status != "TRADING" {
            return Err(format!("{} is not trading (status {})", self.symbol, self.status));
        }
        if qty < self.min_qty || (!self.max_qty.is_zero() && qty > self.max_qty) {
            return Err(format!(
                "LOT_SIZE: quantity {qty} is outside [{}, {}]",
                self.min_qty, self.max_qty
            ));
        }
        if !on_step(qty, self.step_size) {
            return Err(format!(
                "LOT_SIZE: quantity {qty} is not a multiple of {}",
                self.step_size
            ));
        }
        if !market {
            if price < self.min_price || (!self.max_price.is_zero() && price > self.max_price) {
                return Err(format!(
                    "PRICE_FILTER: price {price} is outside [{}, {}]",
                    self.min_price, self.max_price
                ));
            }
            if !on_step(price, self.tick_size) {
                return Err(format!(
                    "PRICE_FILTER: price {price} is not a multiple of {}",
                    self.tick_size
                ));
            }
        }
        if let Some(min) = self.min_notional
            && (!market || self.min_notional_market)
        {
            let notional = qty.to_f64() * price.to_f64();
            if notional < min {
                return Err(format!("NOTIONAL: {qty} at {price} is worth {notional}, below {min}"));
            }
        }
        Ok(())
    }
}

/// Whether `v` is a whole number of `step`s (any value when the step is zero).
pub(crate) fn on_step(v: Fixed, step: Fixed) -> bool {
    step.is_zero() || v.units() % step.units() == 0
}

fn round_to(v: f64, step: Fixed, up: bool) -> Option<Fixed> {
    let f = Fixed::from_f64(v)?;
    if step.is_zero() {
        return Some(f);
    }
    let s = step.units();
    let mut k = f.units() / s;
    if up && f.units() % s != 0 {
        k += 1;
    }
    Some(Fixed::from_units(k * s))
}

/// A new order as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    /// Symbol.
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// `MARKET`, `LIMIT` or `LIMIT_MAKER`.
    pub kind: &'static str,
    /// `GTC`, `IOC` or `FOK` for limit orders.
    pub time_in_force: Option<&'static str>,
    /// Quantity, on the lot step.
    pub quantity: Fixed,
    /// Limit price, on the tick.
    pub price: Option<Fixed>,
    /// The client order id ([`client_order_id`]).
    pub client_order_id: String,
}

impl NewOrder {
    /// A good-till-cancelled limit order at `price`, or a market order without one.
    pub fn new(
        symbol: &str,
        side: Side,
        quantity: Fixed,
        price: Option<Fixed>,
        client_order_id: &str,
    ) -> Self {
        Self {
            symbol: symbol.into(),
            side,
            kind: if price.is_some() { "LIMIT" } else { "MARKET" },
            time_in_force: price.map(|_| "GTC"),
            quantity,
            price,
            client_order_id: client_order_id.into(),
        }
    }
}

/// An order as Binance reports it (`POST`, `GET` or `DELETE /api/v3/order`, `openOrders`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReport {
    /// Symbol.
    pub symbol: String,
    /// The exchange's id.
    pub order_id: u64,
    /// Ours; in a cancel's answer, the cancel request's own (the order's is then
    /// `orig_client_order_id`): [`OrderReport::ours`] gives the order's in both.
    pub client_order_id: String,
    /// In a cancel's answer: the cancelled order's client order id.
    #[serde(default)]
    pub orig_client_order_id: Option<String>,
    /// Limit price (`0` for market orders).
    #[serde(deserialize_with = "fixed")]
    pub price: Fixed,
    /// Quantity asked for.
    #[serde(deserialize_with = "fixed")]
    pub orig_qty: Fixed,
    /// Quantity traded.
    #[serde(deserialize_with = "fixed")]
    pub executed_qty: Fixed,
    /// `NEW`, `PARTIALLY_FILLED`, `FILLED`, `CANCELED`, `REJECTED`, `EXPIRED`,
    /// `EXPIRED_IN_MATCH`.
    pub status: String,
    /// `BUY` or `SELL`.
    pub side: String,
    /// `MARKET`, `LIMIT`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The trades a new order made at once (`newOrderRespType=FULL`).
    #[serde(default)]
    pub fills: Vec<OrderFill>,
}

/// One trade in a new order's answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFill {
    /// Price.
    #[serde(deserialize_with = "fixed")]
    pub price: Fixed,
    /// Quantity.
    #[serde(deserialize_with = "fixed")]
    pub qty: Fixed,
    /// Commission.
    #[serde(deserialize_with = "fixed")]
    pub commission: Fixed,
    /// The trade's id.
    pub trade_id: u64,
}

impl OrderReport {
    /// The order's client order id (a cancel's answer names it `origClientOrderId`).
    pub fn ours(&self) -> &str {
        self.orig_client_order_id.as_deref().unwrap_or(&self.client_order_id)
    }

    /// Whether the order can no longer trade.
    pub fn is_final(&self) -> bool {
        matches!(
            self.status.as_str(),
            "FILLED" | "CANCELED" | "REJECTED" | "EXPIRED" | "EXPIRED_IN_MATCH"
        )
    }
}

/// One of our trades (`GET /api/v3/myTrades`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeReport {
    /// Symbol.
    pub symbol: String,
    /// The trade's id (increasing per symbol).
    pub id: u64,
    /// The order it filled.
    pub order_id: u64,
    /// Price.
    #[serde(deserialize_with = "fixed")]
    pub price: Fixed,
    /// Quantity.
    #[serde(deserialize_with = "fixed")]
    pub qty: Fixed,
    /// Commission paid.
    #[serde(deserialize_with = "fixed")]
    pub commission: Fixed,
    /// In which asset.
    pub commission_asset: String,
    /// Milliseconds since the epoch.
    pub time: i64,
    /// Whether we bought.
    pub is_buyer: bool,
    /// Whether we were the maker.
    pub is_maker: bool,
}

/// One asset's balance (`GET /api/v3/account`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Balance {
    /// Asset.
    pub asset: String,
    /// Available.
    #[serde(deserialize_with = "fixed")]
    pub free: Fixed,
    /// In open orders.
    #[serde(deserialize_with = "fixed")]
    pub locked: Fixed,
}

pub(crate) fn fixed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Fixed, D::Error> {
    let s = String::deserialize(d)?;
    Fixed::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a decimal: {s:?}")))
}

/// What the rate-limit headers said last, and any wait the exchange imposed.
#[derive(Debug, Clone, Default)]
pub struct RateUse {
    /// `X-MBX-USED-WEIGHT-1M`.
    pub used_weight_1m: u64,
    /// `X-MBX-ORDER-COUNT-10S`.
    pub order_count_10s: u64,
    /// `X-MBX-ORDER-COUNT-1D`.
    pub order_count_1d: u64,
    /// The request-weight limit per minute (`exchangeInfo`'s `REQUEST_WEIGHT`).
    pub weight_limit_1m: Option<u64>,
    /// No request before this (after a 429 or 418).
    pub blocked_until: Option<Instant>,
    /// The header that blocked.
    pub blocked_why: String,
}

/// A Binance spot REST client.
pub struct BinanceRest {
    base: String,
    http: reqwest_feeds::Client,
    creds: Option<Credentials>,
    /// Milliseconds a signed request stays valid (`recvWindow`).
    pub recv_window_ms: u64,
    /// Milliseconds to add to the local clock to get the exchange's ([`BinanceRest::sync_time`]).
    pub clock_offset_ms: i64,
    /// The rate-limit state.
    pub rate: RateUse,
}

impl fmt::Debug for BinanceRest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BinanceRest")
            .field("base", &self.base)
            .field("creds", &self.creds)
            .field("recv_window_ms", &self.recv_window_ms)
            .finish_non_exhaustive()
    }
}

/// What a request needs.
enum Auth {
    None,
    Signed,
}

impl BinanceRest {
    /// A client for `base` (`https://api.binance.com`, or a test server), with credentials
    /// for the signed endpoints.
    pub fn new(base: &str, creds: Option<Credentials>) -> Result<Self, RestError> {
        let http =
            reqwest_feeds::Client::builder().timeout(Duration::from_secs(10)).build().map_err(
                |e| RestError::Http { method: "GET", url: base.into(), reason: e.to_string() },
            )?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            creds,
            recv_window_ms: 5_000,
            clock_offset_ms: 0,
            rate: RateUse::default(),
        })
    }

    fn now_ms(&self) -> i64 {
        let local = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        local + self.clock_offset_ms
    }

    async fn call(
        &mut self,
        method: &'static str,
        path: &str,
        params: &[(&str, String)],
        auth: Auth,
        weight: u64,
    ) -> Result<String, RestError> {
        if let Some(until) = self.rate.blocked_until {
            let now = Instant::now();
            if now < until {
                return Err(RestError::RateLimited {
                    retry_after: until - now,
                    why: self.rate.blocked_why.clone(),
                });
            }
            self.rate.blocked_until = None;
        }
        if let Some(limit) = self.rate.weight_limit_1m
            && self.rate.used_weight_1m + weight > limit
        {
            // The weight counts per minute: wait for the next one.
            let into_minute = (self.now_ms().rem_euclid(60_000)) as u64;
            return Err(RestError::RateLimited {
                retry_after: Duration::from_millis(60_000 - into_minute),
                why: format!(
                    "X-MBX-USED-WEIGHT-1M {} + {weight} would pass the limit {limit}",
                    self.rate.used_weight_1m
                ),
            });
        }
        let mut query = query_string(params);
        let mut req_builder_key = None;
        if let Auth::Signed = auth {
            let creds = self.creds.as_ref().ok_or_else(|| RestError::NoCredentials(path.into()))?;
            let extra = [
                ("recvWindow", self.recv_window_ms.to_string()),
                ("timestamp", self.now_ms().to_string()),
            ];
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&query_string(&extra));
            let sig = creds.sign(&query);
            query.push_str("&signature=");
            query.push_str(&sig);
            req_builder_key = Some(creds.api_key.clone());
        }
        let url = format!("{}{path}", self.base);
        let full = if query.is_empty() { url.clone() } else { format!("{url}?{query}") };
        let mut req = match method {
            "POST" => self.http.post(&full),
            "DELETE" => self.http.delete(&full),
            _ => self.http.get(&full),
        };
        if let Some(k) = req_builder_key {
            req = req.header("X-MBX-APIKEY", k);
        }
        let resp = req.send().await.map_err(|e| RestError::Http {
            method,
            url: url.clone(),
            reason: e.without_url().to_string(),
        })?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let Some(w) = header("x-mbx-used-weight-1m") {
            self.rate.used_weight_1m = w;
        }
        if let Some(c) = header("x-mbx-order-count-10s") {
            self.rate.order_count_10s = c;
        }
        if let Some(c) = header("x-mbx-order-count-1d") {
            self.rate.order_count_1d = c;
        }
        if status == 429 || status == 418 {
            let secs = header("retry-after").unwrap_or(60);
            let why = if status == 418 { "HTTP 418: the IP is banned" } else { "HTTP 429" };
            self.rate.blocked_until = Some(Instant::now() + Duration::from_secs(secs));
            self.rate.blocked_why = format!("{why}, Retry-After {secs}");
            return Err(RestError::RateLimited {
                retry_after: Duration::from_secs(secs),
                why: self.rate.blocked_why.clone(),
            });
        }
        let body = resp.text().await.map_err(|e| RestError::Http {
            method,
            url: url.clone(),
            reason: e.without_url().to_string(),
        })?;
        if !(200..300).contains(&status) {
            #[derive(Deserialize)]
            struct ApiError {
                code: i64,
                msg: String,
            }
            return Err(match serde_json::from_str::<ApiError>(&body) {
                Ok(e) => {
                    RestError::Api { method, path: path.into(), status, code: e.code, msg: e.msg }
                }
                Err(_) => RestError::Decode {
                    path: path.into(),
                    reason: format!(
                        "HTTP {status}: {}",
                        body.chars().take(200).collect::<String>()
                    ),
                },
            });
        }
        Ok(body)
    }

    fn decode<T: serde::de::DeserializeOwned>(path: &str, body: &str) -> Result<T, RestError> {
        serde_json::from_str(body)
            .map_err(|e| RestError::Decode { path: path.into(), reason: e.to_string() })
    }

    /// Sets [`BinanceRest::clock_offset_ms`] from `GET /api/v3/time` (half the round trip
    /// counted), so that signed requests carry the exchange's time.
    pub async fn sync_time(&mut self) -> Result<i64, RestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Time {
            server_time: i64,
        }
        let sent = Instant::now();
        let body = self.call("GET", "/api/v3/time", &[], Auth::None, 1).await?;
        let t: Time = Self::decode("/api/v3/time", &body)?;
        let half = (sent.elapsed().as_millis() / 2) as i64;
        let local = self.now_ms() - self.clock_offset_ms;
        self.clock_offset_ms = t.server_time + half - local;
        Ok(self.clock_offset_ms)
    }

    /// The rules of `symbols` (`GET /api/v3/exchangeInfo`), and the request-weight limit.
    pub async fn exchange_info(&mut self, symbols: &[&str]) -> Result<Vec<SymbolRules>, RestError> {
        const PATH: &str = "/api/v3/exchangeInfo";
        let list = serde_json::to_string(symbols).unwrap_or_default();
        let body = self.call("GET", PATH, &[("symbols", list)], Auth::None, 20).await?;
        let info: serde_json::Value = Self::decode(PATH, &body)?;
        let bad = |reason: String| RestError::Decode { path: PATH.into(), reason };
        if let Some(limits) = info["rateLimits"].as_array() {
            for l in limits {
                if l["rateLimitType"] == "REQUEST_WEIGHT"
                    && l["interval"] == "MINUTE"
                    && l["intervalNum"] == 1
                {
                    self.rate.weight_limit_1m = l["limit"].as_u64();
                }
            }
        }
        let mut out = Vec::new();
        for s in info["symbols"].as_array().ok_or_else(|| bad("no `symbols` array".into()))? {
            let name = s["symbol"].as_str().ok_or_else(|| bad("a symbol without a name".into()))?;
            let filters =
                s["filters"].as_array().ok_or_else(|| bad(format!("{name}: no filters")))?;
            let find = |t: &str| filters.iter().find(|f| f["filterType"] == t);
            let dec = |f: &serde_json::Value, k: &str| -> Result<Fixed, RestError> {
                f[k].as_str()
                    .and_then(Fixed::parse)
                    .ok_or_else(|| bad(format!("{name}: {} has no decimal `{k}`", f["filterType"])))
            };
            let price =
                find("PRICE_FILTER").ok_or_else(|| bad(format!("{name}: no PRICE_FILTER")))?;
            let lot = find("LOT_SIZE").ok_or_else(|| bad(format!("{name}: no LOT_SIZE")))?;
            let (min_notional, min_notional_market) =
                match find("NOTIONAL").or_else(|| find("MIN_NOTIONAL")) {
                    Some(n) => (
                        Some(dec(n, "minNotional")?.to_f64()),
                        n["applyMinToMarket"]
                            .as_bool()
                            .or(n["applyToMarket"].as_bool())
                            .unwrap_or(true),
                    ),
                    None => (None, false),
                };
            out.push(SymbolRules {
                symbol: name.to_string(),
                status: s["status"].as_str().unwrap_or("").to_string(),
                tick_size: dec(price, "tickSize")?,
                min_price: dec(price, "minPrice")?,
                max_price: dec(price, "maxPrice")?,
                step_size: dec(lot, "stepSize")?,
                min_qty: dec(lot, "minQty")?,
                max_qty: dec(lot, "maxQty")?,
                min_notional,
                min_notional_market,
            });
        }
        for want in symbols {
            if !out.iter().any(|r| r.symbol == *want) {
                return Err(bad(format!(
                    "{want} is not in the answer (not a Binance spot symbol?)"
                )));
            }
        }
        Ok(out)
    }

    /// `POST /api/v3/order` with the full answer (`newOrderRespType=FULL`).
    pub async fn new_order(&mut self, o: &NewOrder) -> Result<OrderReport, RestError> {
        const PATH: &str = "/api/v3/order";
        if !valid_client_order_id(&o.client_order_id) {
            return Err(RestError::Filter {
                symbol: o.symbol.clone(),
                reason: format!(
                    "client order id {:?} is not ^[.A-Z:/a-z0-9_-]{{1,36}}$",
                    o.client_order_id
                ),
            });
        }
        let mut p = vec![
            ("symbol", o.symbol.clone()),
            (
                "side",
                match o.side {
                    Side::Buy => "BUY".to_string(),
                    Side::Sell => "SELL".to_string(),
                },
            ),
            ("type", o.kind.to_string()),
        ];
        if let Some(t) = o.time_in_force {
            p.push(("timeInForce", t.to_string()));
        }
        p.push(("quantity", o.quantity.to_string()));
        if let Some(price) = o.price {
            p.push(("price", price.to_string()));
        }
        p.push(("newClientOrderId", o.client_order_id.clone()));
        p.push(("newOrderRespType", "FULL".to_string()));
        let body = self.call("POST", PATH, &p, Auth::Signed, 1).await?;
        Self::decode(PATH, &body)
    }

    /// `GET /api/v3/order` by client order id: `None` when Binance does not know it.
    pub async fn query_order(
        &mut self,
        symbol: &str,
        client_order_id: &str,
    ) -> Result<Option<OrderReport>, RestError> {
        const PATH: &str = "/api/v3/order";
        let p =
            [("symbol", symbol.to_string()), ("origClientOrderId", client_order_id.to_string())];
        match self.call("GET", PATH, &p, Auth::Signed, 4).await {
            Ok(body) => Self::decode(PATH, &body).map(Some),
            Err(RestError::Api { code: ORDER_DOES_NOT_EXIST, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /api/v3/order` by client order id.
    pub async fn cancel_order(
        &mut self,
        symbol: &str,
        client_order_id: &str,
    ) -> Result<OrderReport, RestError> {
        const PATH: &str = "/api/v3/order";
        let p =
            [("symbol", symbol.to_string()), ("origClientOrderId", client_order_id.to_string())];
        let body = self.call("DELETE", PATH, &p, Auth::Signed, 1).await?;
        Self::decode(PATH, &body)
    }

    /// `GET /api/v3/openOrders` of `symbol`.
    pub async fn open_orders(&mut self, symbol: &str) -> Result<Vec<OrderReport>, RestError> {
        const PATH: &str = "/api/v3/openOrders";
        let body =
            self.call("GET", PATH, &[("symbol", symbol.to_string())], Auth::Signed, 6).await?;
        Self::decode(PATH, &body)
    }

    /// Balances (`GET /api/v3/account`, zero balances left out).
    pub async fn balances(&mut self) -> Result<Vec<Balance>, RestError> {
        const PATH: &str = "/api/v3/account";
        #[derive(Deserialize)]
        struct Account {
            balances: Vec<Balance>,
        }
        let p = [("omitZeroBalances", "true".to_string())];
        let body = self.call("GET", PATH, &p, Auth::Signed, 20).await?;
        Ok(Self::decode::<Account>(PATH, &body)?.balances)
    }

    /// Our trades in `symbol` from trade id `from_id` on (`GET /api/v3/myTrades`).
    pub async fn my_trades(
        &mut self,
        symbol: &str,
        from_id: Option<u64>,
    ) -> Result<Vec<TradeReport>, RestError> {
        const PATH: &str = "/api/v3/myTrades";
        let mut p = vec![("symbol", symbol.to_string())];
        if let Some(id) = from_id {
            p.push(("fromId", id.to_string()));
        }
        p.push(("limit", "1000".to_string()));
        let body = self.call("GET", PATH, &p, Auth::Signed, 20).await?;
        Self::decode(PATH, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binance's documented examples (SIGNED endpoint security, HMAC keys): the ASCII request
    /// and the one with a Unicode symbol, percent-encoded before signing.
    #[test]
    fn the_documented_signatures() {
        let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        let creds = Credentials::new(
            "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
            secret,
        );
        let params = |symbol: &str| {
            vec![
                ("symbol", symbol.to_string()),
                ("side", "BUY".to_string()),
                ("type", "LIMIT".to_string()),
                ("timeInForce", "GTC".to_string()),
                ("quantity", "1".to_string()),
                ("price", "0.1".to_string()),
                ("recvWindow", "5000".to_string()),
                ("timestamp", "1499827319559".to_string()),
            ]
        };
        let q = query_string(&params("LTCBTC"));
        assert_eq!(
            q,
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
        );
        assert_eq!(
            creds.sign(&q),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
        let q = query_string(&params("１２３４５６"));
        assert!(
            q.starts_with("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY"),
            "{q}"
        );
        assert_eq!(
            creds.sign(&q),
            "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
        );
        // Neither the secret nor the whole key is ever printed.
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains(secret)
                && !shown.contains("vmPUZE6mv9SD5VN")
                && shown.contains("vmPU…"),
            "{shown}"
        );
    }

    #[test]
    fn client_order_ids_are_deterministic_and_valid() {
        assert_eq!(client_order_id("kx7-20261203", OrderId(42)), "kx7-20261203-42");
        assert!(valid_client_order_id(&client_order_id("a", OrderId(u64::MAX))));
        for bad in ["", "has space", "é", &"x".repeat(37)] {
            assert!(!valid_client_order_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn filters_round_and_check_as_binance_does() {
        let f = |s: &str| Fixed::parse(s).unwrap();
        let r = SymbolRules {
            symbol: "BTCUSDT".into(),
            status: "TRADING".into(),
            tick_size: f("0.01"),
            min_price: f("0.01"),
            max_price: f("1000000"),
            step_size: f("0.00001"),
            min_qty: f("0.00001"),
            max_qty: f("9000"),
            min_notional: Some(5.0),
            min_notional_market: true,
        };
        // 61800.30000000001 is what f64 arithmetic gives; the order carries 61800.3.
        assert_eq!(r.round_price(61_800.300_000_000_01, Side::Buy).unwrap().to_string(), "61800.3");
        assert_eq!(r.round_price(61_800.305, Side::Buy).unwrap().to_string(), "61800.3");
        assert_eq!(r.round_price(61_800.305, Side::Sell).unwrap().to_string(), "61800.31");
        assert_eq!(r.round_qty(0.001239).unwrap().to_string(), "0.00123");
        assert!(r.check(f("0.00123"), f("61800.3"), false).is_ok());
        let e = r.check(f("0.00005"), f("61800.3"), false).unwrap_err();
        assert!(e.starts_with("NOTIONAL") && e.contains("below 5"), "{e}");
        let e = r.check(f("0.000001"), f("61800.3"), false).unwrap_err();
        assert!(e.starts_with("LOT_SIZE"), "{e}");
        let e = r.check(f("0.001"), f("61800.305"), false).unwrap_err();
        assert!(e.starts_with("PRICE_FILTER") && e.contains("multiple of 0.01"), "{e}");
        let halted = SymbolRules { status: "BREAK".into(), ..r };
        assert!(halted.check(f("0.001"), f("61800.3"), false).unwrap_err().contains("not trading"));
    }
}
