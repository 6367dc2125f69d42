//! Market-data feeds: exchange messages parsed into the SDK's types, and local order books
//! kept in sync with them.
//!
//! - [`binance`]: Binance spot and USD-M combined streams and depth snapshots, and the local
//!   book kept by Binance's procedure;
//! - [`recording`]: recorded feeds (`<receive ns> <raw JSON>` a line, gzipped), read back
//!   through the same parser and book, and the book checked against the exchange's own
//!   best bid and ask.

pub mod binance;
pub mod recording;
