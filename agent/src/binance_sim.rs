//! A Binance spot exchange on 127.0.0.1 for tests: it speaks the REST API's real formats
//! (signed requests checked as Binance checks them, its error codes and messages, its
//! rate-limit headers) and the WebSocket API's user data stream, and holds the venue's truth
//! (orders, trades, balances) for a test to read and move.
//!
//! What it implements: `GET /api/v3/time`, `GET /api/v3/exchangeInfo`, `POST`, `GET` and
//! `DELETE /api/v3/order`, `GET /api/v3/openOrders`, `GET /api/v3/account` and
//! `GET /api/v3/myTrades` on [`SimExchange::url`]; on [`SimExchange::ws_url`], the WebSocket
//! API's `userDataStream.subscribe.signature` (signature checked as for REST, over the
//! parameters sorted by name) and `userDataStream.unsubscribe`, after which every change to an
//! order comes as an `executionReport` event and every balance change as an
//! `outboundAccountPosition`, each wrapped as `{"subscriptionId": N, "event": {...}}`. Market orders fill at once at the symbol's price
//! ([`SimState::price`]); limit orders that cross it fill at it, others rest until
//! [`SimState::trade_at`] moves the price through them. No fees. Like Binance,
//! `newClientOrderId` must be unique only among open orders: a filled order's id can be used
//! again, and that makes a second order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kairos_strategies::Fixed;
use serde_json::{Value, json};

use crate::now_ms;

/// A symbol the exchange lists.
#[derive(Debug, Clone)]
pub struct SimSymbol {
    /// `BTCUSDT`.
    pub symbol: String,
    /// `BTC`.
    pub base: String,
    /// `USDT`.
    pub quote: String,
    /// Price step.
    pub tick_size: Fixed,
    /// Quantity step, which is also the smallest quantity.
    pub step_size: Fixed,
    /// Smallest order value.
    pub min_notional: f64,
}

impl SimSymbol {
    /// BTCUSDT with Binance's filters for it (tick 0.01, step 0.00001, notional at least 5).
    pub fn btcusdt() -> Self {
        let fx = |v: &str| Fixed::parse(v).unwrap_or(Fixed::ZERO);
        Self {
            symbol: "BTCUSDT".into(),
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: fx("0.01"),
            step_size: fx("0.00001"),
            min_notional: 5.0,
        }
    }
}

/// An order as the exchange holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOrder {
    /// The exchange's id.
    pub order_id: u64,
    /// The client's.
    pub client_order_id: String,
    /// Symbol.
    pub symbol: String,
    /// `BUY` or `SELL`.
    pub side: String,
    /// `MARKET` or `LIMIT`.
    pub kind: String,
    /// Limit price (zero for market orders).
    pub price: f64,
    /// Quantity.
    pub qty: f64,
    /// Traded so far.
    pub executed: f64,
    /// Quote value traded so far.
    pub quote: f64,
    /// `NEW`, `PARTIALLY_FILLED`, `FILLED`, `CANCELED`.
    pub status: String,
    /// Milliseconds.
    pub time: i64,
}

/// One trade of ours.
#[derive(Debug, Clone, PartialEq)]
pub struct SimTrade {
    /// Trade id, increasing.
    pub id: u64,
    /// The order.
    pub order_id: u64,
    /// Symbol.
    pub symbol: String,
    /// Price.
    pub price: f64,
    /// Quantity.
    pub qty: f64,
    /// Whether we bought.
    pub is_buyer: bool,
    /// Whether we rested.
    pub is_maker: bool,
    /// Milliseconds.
    pub time: i64,
}

/// The exchange's state.
#[derive(Debug)]
pub struct SimState {
    /// The API key requests must carry.
    pub api_key: String,
    /// Its secret.
    pub secret: String,
    /// Listed symbols.
    pub symbols: Vec<SimSymbol>,
    /// The price market orders fill at, by symbol.
    pub price: BTreeMap<String, f64>,
    /// Every order, oldest first.
    pub orders: Vec<SimOrder>,
    /// Every trade.
    pub trades: Vec<SimTrade>,
    /// Free balance by asset (locked amounts are not modelled).
    pub balances: BTreeMap<String, f64>,
    /// Request weight used (reported in `X-MBX-USED-WEIGHT-1M`; reset by the test).
    pub weight_used: u64,
    /// The next requests answer 429 with `Retry-After` this many seconds.
    pub rate_limit_next: Option<u64>,
    /// Answer every request with HTTP 503 (an exchange that does not answer).
    pub unavailable: bool,
    /// Every request received, as `METHOD /path` (`WS method` for the WebSocket API).
    pub requests: Vec<String>,
    /// User data stream subscriptions accepted so far.
    pub user_subscriptions: u64,
    /// User data events are not sent (they are lost, as on a connection that dropped them).
    pub user_events_muted: bool,
    user_events: tokio::sync::broadcast::Sender<UserFrame>,
    next_order_id: u64,
    next_trade_id: u64,
}

/// What the exchange tells its WebSocket API connections.
#[derive(Debug, Clone)]
enum UserFrame {
    /// A user data event's JSON.
    Event(Arc<str>),
    /// Close every connection.
    Kick,
}

impl SimState {
    /// An exchange listing `symbols`, with `balances`, and credentials.
    pub fn new(
        api_key: &str,
        secret: &str,
        symbols: Vec<SimSymbol>,
        balances: &[(&str, f64)],
    ) -> Self {
        Self {
            api_key: api_key.into(),
            secret: secret.into(),
            symbols,
            price: BTreeMap::new(),
            orders: Vec::new(),
            trades: Vec::new(),
            balances: balances.iter().map(|(a, v)| (a.to_string(), *v)).collect(),
            weight_used: 0,
            rate_limit_next: None,
            unavailable: false,
            requests: Vec::new(),
            user_subscriptions: 0,
            user_events_muted: false,
            user_events: tokio::sync::broadcast::channel(4096).0,
            next_order_id: 1,
            next_trade_id: 1,
        }
    }

    /// Sends an `executionReport` for order `i` to the user data subscribers: `exec` is the
    /// execution type (`NEW`, `TRADE`, `CANCELED`), `trade` the trade of a `TRADE`, `cancel_id`
    /// the client id of a cancel request (a cancel's report carries it as `c`, and the order's
    /// own as `C`).
    fn report(&self, i: usize, exec: &str, trade: Option<&SimTrade>, cancel_id: Option<&str>) {
        let o = &self.orders[i];
        let now = now_ms();
        let quote = self.spec(&o.symbol).map(|s| s.quote.clone()).unwrap_or_default();
        let (c, orig) = match cancel_id {
            Some(id) => (id.to_string(), o.client_order_id.clone()),
            None => (o.client_order_id.clone(), String::new()),
        };
        let (l, lp, t, m) = match trade {
            Some(t) => (t.qty, t.price, t.id as i64, t.is_maker),
            None => (0.0, 0.0, -1, false),
        };
        let ev = json!({
            "e": "executionReport", "E": now, "s": o.symbol, "c": c, "S": o.side, "o": o.kind,
            "f": "GTC", "q": fmt8(o.qty), "p": fmt8(o.price), "P": "0.00000000", "F": "0.00000000",
            "g": -1, "C": orig, "x": exec, "X": o.status, "r": "NONE", "i": o.order_id,
            "l": fmt8(l), "z": fmt8(o.executed), "L": fmt8(lp), "n": "0.00000000",
            "N": if trade.is_some() { Value::String(quote) } else { Value::Null },
            "T": trade.map_or(now, |t| t.time), "t": t, "v": 0, "I": o.order_id * 2, "w": trade.is_none() && o.kind == "LIMIT",
            "m": m, "M": false, "O": o.time, "Z": fmt8(o.quote), "Y": fmt8(l * lp), "Q": "0.00000000",
            "W": o.time, "V": "EXPIRE_MAKER",
        });
        self.emit(ev);
    }

    /// Sends an `outboundAccountPosition` with `assets`' balances.
    fn report_balances(&self, assets: &[&str]) {
        let now = now_ms();
        let b: Vec<Value> = assets
            .iter()
            .map(|a| {
                let v = self.balances.get(*a).copied().unwrap_or(0.0);
                json!({"a": a, "f": fmt8(v), "l": "0.00000000"})
            })
            .collect();
        self.emit(json!({"e": "outboundAccountPosition", "E": now, "u": now, "B": b}));
    }

    fn emit(&self, ev: Value) {
        if !self.user_events_muted {
            // No subscriber is not an error: nobody listens.
            let _ = self.user_events.send(UserFrame::Event(ev.to_string().into()));
        }
    }

    /// The market trades at `price`: resting limits it reaches fill at their price.
    pub fn trade_at(&mut self, symbol: &str, price: f64) {
        self.price.insert(symbol.to_string(), price);
        let now = now_ms();
        let crossing: Vec<usize> = (0..self.orders.len())
            .filter(|&i| {
                let o = &self.orders[i];
                o.symbol == symbol
                    && o.kind == "LIMIT"
                    && matches!(o.status.as_str(), "NEW" | "PARTIALLY_FILLED")
                    && if o.side == "BUY" { price <= o.price } else { price >= o.price }
            })
            .collect();
        for i in crossing {
            let (p, q) = (self.orders[i].price, self.orders[i].qty - self.orders[i].executed);
            self.fill(i, p, q, true, now);
        }
    }

    /// The market trades `qty` of the resting order with client id `client_id` at its limit
    /// (a partial fill); false when no such order is working.
    pub fn trade_part(&mut self, client_id: &str, qty: f64) -> bool {
        let Some(i) = self.orders.iter().rposition(|o| {
            o.client_order_id == client_id
                && matches!(o.status.as_str(), "NEW" | "PARTIALLY_FILLED")
        }) else {
            return false;
        };
        let q = qty.min(self.orders[i].qty - self.orders[i].executed);
        let p = self.orders[i].price;
        self.fill(i, p, q, true, now_ms());
        true
    }

    /// Open orders.
    pub fn open(&self) -> impl Iterator<Item = &SimOrder> {
        self.orders.iter().filter(|o| matches!(o.status.as_str(), "NEW" | "PARTIALLY_FILLED"))
    }

    fn spec(&self, symbol: &str) -> Option<&SimSymbol> {
        self.symbols.iter().find(|s| s.symbol == symbol)
    }

    fn fill(&mut self, i: usize, price: f64, qty: f64, maker: bool, time: i64) {
        let (base, quote) = {
            let s = self.spec(&self.orders[i].symbol).map(|s| (s.base.clone(), s.quote.clone()));
            s.unwrap_or_default()
        };
        let o = &mut self.orders[i];
        o.executed += qty;
        o.quote += qty * price;
        o.status = if o.executed + 1e-12 >= o.qty { "FILLED" } else { "PARTIALLY_FILLED" }.into();
        let buy = o.side == "BUY";
        let (sign_base, sign_quote) = if buy { (1.0, -1.0) } else { (-1.0, 1.0) };
        *self.balances.entry(base.clone()).or_default() += sign_base * qty;
        *self.balances.entry(quote.clone()).or_default() += sign_quote * qty * price;
        self.trades.push(SimTrade {
            id: self.next_trade_id,
            order_id: self.orders[i].order_id,
            symbol: self.orders[i].symbol.clone(),
            price,
            qty,
            is_buyer: buy,
            is_maker: maker,
            time,
        });
        self.next_trade_id += 1;
        if let Some(t) = self.trades.last() {
            self.report(i, "TRADE", Some(t), None);
        }
        self.report_balances(&[&base, &quote]);
    }
}

/// A running simulated exchange.
#[derive(Debug, Clone)]
pub struct SimExchange {
    /// Its REST base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its WebSocket API, `ws://127.0.0.1:PORT/ws-api/v3`.
    pub ws_url: String,
    /// Its state, for the test to read and move.
    pub state: Arc<Mutex<SimState>>,
}

impl SimExchange {
    /// Serves `state` on 127.0.0.1 (a free port) on the current tokio runtime.
    pub async fn start(state: SimState) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { handle(&state, &method, &uri, &headers, &body) }
            },
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ws_url = format!("ws://{}/ws-api/v3", ws.local_addr()?);
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = ws.accept().await {
                tokio::spawn(ws_connection(shared.clone(), tcp));
            }
        });
        Ok(Self { url, ws_url, state })
    }

    /// Closes every WebSocket API connection (their subscriptions end with them).
    pub fn kick_user_streams(&self) {
        let _ = self.lock().user_events.send(UserFrame::Kick);
    }

    /// Locks the state (a poisoned lock still gives it: the exchange's truth survives a
    /// panicking test thread).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn error(status: StatusCode, code: i64, msg: &str, weight: u64) -> Response {
    let mut r = (status, axum::Json(json!({ "code": code, "msg": msg }))).into_response();
    if let Ok(v) = weight.to_string().parse() {
        r.headers_mut().insert("x-mbx-used-weight-1m", v);
    }
    r
}

fn ok(body: Value, weight: u64, orders: Option<usize>) -> Response {
    let mut r = axum::Json(body).into_response();
    let h = r.headers_mut();
    if let Ok(v) = weight.to_string().parse() {
        h.insert("x-mbx-used-weight-1m", v);
    }
    if let Some(n) = orders {
        if let Ok(v) = n.to_string().parse() {
            h.insert("x-mbx-order-count-10s", v);
        }
        if let Ok(v) = n.to_string().parse() {
            h.insert("x-mbx-order-count-1d", v);
        }
    }
    r
}

fn decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) =
                (b.get(i + 1).and_then(|c| hex(*c)), b.get(i + 2).and_then(|c| hex(*c)))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn params(raw: &str) -> BTreeMap<String, String> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('=').map(|(k, v)| (decode(k), decode(v))))
        .collect()
}

fn fmt8(v: f64) -> String {
    format!("{v:.8}")
}

fn order_json(o: &SimOrder) -> Value {
    json!({
        "symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_order_id,
        "price": fmt8(o.price), "origQty": fmt8(o.qty), "executedQty": fmt8(o.executed),
        "cummulativeQuoteQty": fmt8(o.quote), "status": o.status,
        "timeInForce": "GTC", "type": o.kind, "side": o.side,
        "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": o.time, "updateTime": o.time,
        "isWorking": true, "workingTime": o.time, "origQuoteOrderQty": "0.00000000",
        "selfTradePreventionMode": "EXPIRE_MAKER",
    })
}

fn handle(
    state: &Mutex<SimState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    let path = uri.path().to_string();
    s.requests.push(format!("{method} {path}"));
    if s.unavailable {
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
    }
    if let Some(secs) = s.rate_limit_next {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            -1003,
            "Too many requests; current limit of IP is 6000 requests per minute. Please use WebSocket Streams for live updates to avoid polling the API.",
            s.weight_used,
        );
        if let Ok(v) = secs.to_string().parse() {
            r.headers_mut().insert("retry-after", v);
        }
        return r;
    }
    let query = uri.query().unwrap_or("");
    let body = std::str::from_utf8(body).unwrap_or("");
    let mut p = params(query);
    p.extend(params(body));
    let weight = match (method.as_str(), path.as_str()) {
        ("GET", "/api/v3/exchangeInfo")
        | ("GET", "/api/v3/account")
        | ("GET", "/api/v3/myTrades") => 20,
        ("GET", "/api/v3/openOrders") => 6,
        ("GET", "/api/v3/order") => 4,
        _ => 1,
    };
    s.weight_used += weight;
    let w = s.weight_used;
    let signed = !matches!(path.as_str(), "/api/v3/time" | "/api/v3/exchangeInfo");
    if signed {
        if headers.get("x-mbx-apikey").and_then(|v| v.to_str().ok()) != Some(s.api_key.as_str()) {
            return error(
                StatusCode::UNAUTHORIZED,
                -2015,
                "Invalid API-key, IP, or permissions for action.",
                w,
            );
        }
        // The signed payload: the query string without its signature, then the body.
        let Some((payload, sig)) =
            query.rsplit_once("&signature=").or_else(|| body.rsplit_once("&signature="))
        else {
            return error(
                StatusCode::BAD_REQUEST,
                -1102,
                "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
                w,
            );
        };
        let payload = if query.contains("&signature=") {
            format!("{payload}{body}")
        } else {
            format!("{query}{payload}")
        };
        if crate::binance_rest::sign(&s.secret, &payload) != sig.to_ascii_lowercase() {
            return error(
                StatusCode::BAD_REQUEST,
                -1022,
                "Signature for this request is not valid.",
                w,
            );
        }
        let ts: i64 = p.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
        let window: i64 = p.get("recvWindow").and_then(|t| t.parse().ok()).unwrap_or(5_000);
        let now = now_ms();
        if ts > now + 1_000 || now - ts > window {
            return error(
                StatusCode::BAD_REQUEST,
                -1021,
                "Timestamp for this request is outside of the recvWindow.",
                w,
            );
        }
    }
    let symbol = p.get("symbol").cloned().unwrap_or_default();
    match (method.as_str(), path.as_str()) {
        ("GET", "/api/v3/time") => ok(json!({ "serverTime": now_ms() }), w, None),
        ("GET", "/api/v3/exchangeInfo") => {
            let wanted: Vec<String> =
                p.get("symbols").and_then(|v| serde_json::from_str(v).ok()).unwrap_or_default();
            if wanted.iter().any(|name| !s.symbols.iter().any(|x| &x.symbol == name)) {
                return error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol.", w);
            }
            let mut out = Vec::new();
            for sym in &s.symbols {
                if !wanted.is_empty() && !wanted.contains(&sym.symbol) {
                    continue;
                }
                out.push(json!({
                    "symbol": sym.symbol, "status": "TRADING", "baseAsset": sym.base, "quoteAsset": sym.quote,
                    "baseAssetPrecision": 8, "quoteAssetPrecision": 8,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                    "filters": [
                        {"filterType": "PRICE_FILTER", "minPrice": sym.tick_size.to_string(), "maxPrice": "1000000.00000000", "tickSize": format!("{:.8}", sym.tick_size.to_f64())},
                        {"filterType": "LOT_SIZE", "minQty": format!("{:.8}", sym.step_size.to_f64()), "maxQty": "9000.00000000", "stepSize": format!("{:.8}", sym.step_size.to_f64())},
                        {"filterType": "NOTIONAL", "minNotional": fmt8(sym.min_notional), "applyMinToMarket": true, "maxNotional": "9000000.00000000", "applyMaxToMarket": false, "avgPriceMins": 5},
                    ],
                    "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                }));
            }
            ok(
                json!({
                    "timezone": "UTC", "serverTime": now_ms(),
                    "rateLimits": [
                        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                    ],
                    "exchangeFilters": [], "symbols": out,
                }),
                w,
                None,
            )
        }
        ("POST", "/api/v3/order") => {
            let Some(spec) = s.spec(&symbol).cloned() else {
                return error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol.", w);
            };
            let side = p.get("side").cloned().unwrap_or_default();
            let kind = p.get("type").cloned().unwrap_or_default();
            let qty: f64 = p.get("quantity").and_then(|q| q.parse().ok()).unwrap_or(0.0);
            let price: f64 = p.get("price").and_then(|q| q.parse().ok()).unwrap_or(0.0);
            let cid = p
                .get("newClientOrderId")
                .cloned()
                .unwrap_or_else(|| format!("sim{}", s.next_order_id));
            if !matches!(side.as_str(), "BUY" | "SELL")
                || !matches!(kind.as_str(), "MARKET" | "LIMIT")
            {
                return error(
                    StatusCode::BAD_REQUEST,
                    -1102,
                    "Mandatory parameter 'side' or 'type' was not sent, was empty/null, or malformed.",
                    w,
                );
            }
            if s.open().any(|o| o.client_order_id == cid) {
                return error(StatusCode::BAD_REQUEST, -2010, "Duplicate order sent.", w);
            }
            let steps = |v: f64, step: Fixed| {
                Fixed::from_f64(v).is_some_and(|f| crate::binance_rest::on_step(f, step))
            };
            if qty < spec.step_size.to_f64() || !steps(qty, spec.step_size) {
                return error(StatusCode::BAD_REQUEST, -1013, "Filter failure: LOT_SIZE", w);
            }
            if kind == "LIMIT" && (price <= 0.0 || !steps(price, spec.tick_size)) {
                return error(StatusCode::BAD_REQUEST, -1013, "Filter failure: PRICE_FILTER", w);
            }
            let Some(market) = s.price.get(&symbol).copied() else {
                return error(StatusCode::BAD_REQUEST, -1013, "Filter failure: NOTIONAL", w);
            };
            let at = if kind == "LIMIT" { price } else { market };
            if qty * at < spec.min_notional {
                return error(StatusCode::BAD_REQUEST, -1013, "Filter failure: NOTIONAL", w);
            }
            let (need_asset, need) =
                if side == "BUY" { (&spec.quote, qty * at) } else { (&spec.base, qty) };
            if s.balances.get(need_asset).copied().unwrap_or(0.0) + 1e-12 < need {
                return error(
                    StatusCode::BAD_REQUEST,
                    -2010,
                    "Account has insufficient balance for requested action.",
                    w,
                );
            }
            let now = now_ms();
            let order = SimOrder {
                order_id: s.next_order_id,
                client_order_id: cid,
                symbol: symbol.clone(),
                side: side.clone(),
                kind: kind.clone(),
                price: if kind == "LIMIT" { price } else { 0.0 },
                qty,
                executed: 0.0,
                quote: 0.0,
                status: "NEW".into(),
                time: now,
            };
            s.next_order_id += 1;
            s.orders.push(order);
            let i = s.orders.len() - 1;
            s.report(i, "NEW", None, None);
            let crosses =
                kind == "MARKET" || if side == "BUY" { price >= market } else { price <= market };
            let first_trade = s.trades.len();
            if crosses {
                s.fill(i, market, qty, false, now);
            }
            let mut v = order_json(&s.orders[i]);
            v["transactTime"] = json!(now);
            v["fills"] = Value::Array(
                s.trades[first_trade..]
                    .iter()
                    .map(|t| json!({"price": fmt8(t.price), "qty": fmt8(t.qty), "commission": "0.00000000", "commissionAsset": spec.quote, "tradeId": t.id}))
                    .collect(),
            );
            let n = s.orders.len();
            ok(v, w, Some(n))
        }
        ("GET", "/api/v3/order") | ("DELETE", "/api/v3/order") => {
            let cid = p.get("origClientOrderId");
            let oid: Option<u64> = p.get("orderId").and_then(|v| v.parse().ok());
            // The newest order with that client id (ids are reused once an order is closed).
            let found = s.orders.iter().rposition(|o| {
                o.symbol == symbol
                    && (cid.is_some_and(|c| &o.client_order_id == c) || oid == Some(o.order_id))
            });
            let Some(i) = found else {
                return if method == Method::GET {
                    error(StatusCode::BAD_REQUEST, -2013, "Order does not exist.", w)
                } else {
                    error(StatusCode::BAD_REQUEST, -2011, "Unknown order sent.", w)
                };
            };
            if method == Method::DELETE {
                if !matches!(s.orders[i].status.as_str(), "NEW" | "PARTIALLY_FILLED") {
                    return error(StatusCode::BAD_REQUEST, -2011, "Unknown order sent.", w);
                }
                s.orders[i].status = "CANCELED".into();
                let cancel_id = p
                    .get("newClientOrderId")
                    .cloned()
                    .unwrap_or_else(|| format!("cancel{}", s.orders[i].order_id));
                s.report(i, "CANCELED", None, Some(&cancel_id));
                let mut v = order_json(&s.orders[i]);
                v["origClientOrderId"] = json!(s.orders[i].client_order_id);
                v["clientOrderId"] = json!(cancel_id);
                v["transactTime"] = json!(now_ms());
                return ok(v, w, None);
            }
            ok(order_json(&s.orders[i]), w, None)
        }
        ("GET", "/api/v3/openOrders") => {
            let v: Vec<Value> = s
                .open()
                .filter(|o| symbol.is_empty() || o.symbol == symbol)
                .map(order_json)
                .collect();
            ok(Value::Array(v), w, None)
        }
        ("GET", "/api/v3/account") => {
            let balances: Vec<Value> = s
                .balances
                .iter()
                .filter(|(_, v)| **v != 0.0)
                .map(|(a, v)| json!({"asset": a, "free": fmt8(*v), "locked": "0.00000000"}))
                .collect();
            ok(
                json!({
                    "makerCommission": 0, "takerCommission": 0, "buyerCommission": 0, "sellerCommission": 0,
                    "canTrade": true, "canWithdraw": true, "canDeposit": true, "brokered": false,
                    "requireSelfTradePrevention": false, "preventSor": false, "updateTime": now_ms(),
                    "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 1,
                }),
                w,
                None,
            )
        }
        ("GET", "/api/v3/myTrades") => {
            let from: u64 = p.get("fromId").and_then(|v| v.parse().ok()).unwrap_or(0);
            let v: Vec<Value> = s
                .trades
                .iter()
                .filter(|t| t.symbol == symbol && t.id >= from)
                .take(1000)
                .map(|t| json!({
                    "symbol": t.symbol, "id": t.id, "orderId": t.order_id, "orderListId": -1,
                    "price": fmt8(t.price), "qty": fmt8(t.qty), "quoteQty": fmt8(t.qty * t.price),
                    "commission": "0.00000000", "commissionAsset": "USDT", "time": t.time,
                    "isBuyer": t.is_buyer, "isMaker": t.is_maker, "isBestMatch": true,
                }))
                .collect();
            ok(Value::Array(v), w, None)
        }
        _ => error(
            StatusCode::NOT_FOUND,
            -1000,
            "An unknown error occurred while processing the request.",
            w,
        ),
    }
}

/// One WebSocket API connection: answers requests, and forwards the user data events once
/// subscribed.
async fn ws_connection(state: Arc<Mutex<SimState>>, tcp: tokio::net::TcpStream) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
    let mut events = state.lock().unwrap_or_else(|e| e.into_inner()).user_events.subscribe();
    let mut subscription: Option<u64> = None;
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let reply = ws_request(&state, t.as_str(), &mut subscription);
                    if ws.send(Message::text(reply.to_string())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            ev = events.recv() => match ev {
                Ok(UserFrame::Event(e)) => {
                    if let Some(id) = subscription {
                        let frame = format!("{{\"subscriptionId\":{id},\"event\":{e}}}");
                        if ws.send(Message::text(frame)).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(UserFrame::Kick) | Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    let _ = ws.close(None).await;
                    return;
                }
                // A connection this slow loses events, as Binance's would be dropped.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let _ = ws.close(None).await;
                    return;
                }
            },
        }
    }
}

fn ws_rate_limits(s: &SimState) -> Value {
    json!([{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": s.weight_used}])
}

fn ws_error(id: &Value, status: u16, code: i64, msg: &str, s: &SimState) -> Value {
    json!({"id": id, "status": status, "error": {"code": code, "msg": msg}, "rateLimits": ws_rate_limits(s)})
}

/// Answers one WebSocket API request.
fn ws_request(state: &Mutex<SimState>, text: &str, subscription: &mut Option<u64>) -> Value {
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    let Ok(req) = serde_json::from_str::<Value>(text) else {
        return ws_error(&Value::Null, 400, -1100, "Illegal characters found in a parameter.", &s);
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let method = req.get("method").and_then(Value::as_str).unwrap_or("").to_string();
    s.requests.push(format!("WS {method}"));
    s.weight_used += 2;
    match method.as_str() {
        "userDataStream.subscribe.signature" => {
            let params = req.get("params").and_then(Value::as_object).cloned().unwrap_or_default();
            let text_of = |v: &Value| match v {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            if params.get("apiKey").map(text_of).as_deref() != Some(s.api_key.as_str()) {
                return ws_error(
                    &id,
                    401,
                    -2015,
                    "Invalid API-key, IP, or permissions for action.",
                    &s,
                );
            }
            let Some(sig) = params.get("signature").map(text_of) else {
                return ws_error(
                    &id,
                    400,
                    -1102,
                    "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
                    &s,
                );
            };
            // Signed: every other parameter, sorted by name, as a query string.
            let mut sorted: Vec<(&str, String)> = params
                .iter()
                .filter(|(k, _)| k.as_str() != "signature")
                .map(|(k, v)| (k.as_str(), text_of(v)))
                .collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let payload = crate::binance_rest::query_string(&sorted);
            if crate::binance_rest::sign(&s.secret, &payload) != sig.to_ascii_lowercase() {
                return ws_error(&id, 400, -1022, "Signature for this request is not valid.", &s);
            }
            let ts: i64 =
                params.get("timestamp").map(text_of).and_then(|t| t.parse().ok()).unwrap_or(0);
            let window: i64 =
                params.get("recvWindow").map(text_of).and_then(|t| t.parse().ok()).unwrap_or(5_000);
            let now = now_ms();
            if ts > now + 1_000 || now - ts > window {
                return ws_error(
                    &id,
                    400,
                    -1021,
                    "Timestamp for this request is outside of the recvWindow.",
                    &s,
                );
            }
            if subscription.is_some() {
                return ws_error(
                    &id,
                    400,
                    -1210,
                    "This account is already subscribed on this connection.",
                    &s,
                );
            }
            let n = s.user_subscriptions;
            s.user_subscriptions += 1;
            *subscription = Some(n);
            json!({"id": id, "status": 200, "result": {"subscriptionId": n}, "rateLimits": ws_rate_limits(&s)})
        }
        "userDataStream.unsubscribe" => {
            *subscription = None;
            json!({"id": id, "status": 200, "result": {}, "rateLimits": ws_rate_limits(&s)})
        }
        _ => {
            ws_error(&id, 400, -1000, "An unknown error occurred while processing the request.", &s)
        }
    }
}
