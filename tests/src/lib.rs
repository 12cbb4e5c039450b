//! Black-box tests for the `ember` binary.
//!
//! The tests in `tests/tests/` start the real binary on a free loopback port
//! and talk to it over HTTP, as a user or Grafana would. This library holds
//! the small harness they share.
