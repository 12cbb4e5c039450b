//! `ember-plugin`: the same commands as `ember plugin`, without the server.

fn main() {}
