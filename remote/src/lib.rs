//! Ember's remote-storage wire formats.
//!
//! This crate owns what goes over the wire between Ember and other
//! Prometheus-compatible systems, and nothing else (no I/O, no HTTP):
//!
//! - [`prompb`]: the `prometheus` protobuf package: remote write 1.0
//!   ([`prompb::WriteRequest`]) and remote read ([`prompb::ReadRequest`],
//!   [`prompb::ReadResponse`], [`prompb::ChunkedReadResponse`]).
//! - [`writev2`]: remote write 2.0 ([`writev2::Request`], with its symbol
//!   table).
//! - [`codec`]: snappy block bodies and the CRC32C-checked frames of
//!   streamed remote read.
//!
//! All messages are written with `prost` derives from the upstream field
//! numbers.
//!
//! ```
//! use ember_remote::codec::{compress, decompress};
//! use ember_remote::prompb::WriteRequest;
//! use prost::Message;
//!
//! let body = compress(&WriteRequest::default().encode_to_vec());
//! let decoded = WriteRequest::decode(decompress(&body, 1 << 20)?.as_slice())?;
//! assert!(decoded.timeseries.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod codec;
pub mod ingest;
pub mod prompb;
pub mod read;
pub mod writev2;
pub mod xor;

pub use prost;
