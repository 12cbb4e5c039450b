//! Ember's configuration: the `prometheus.yml` model.
