//! tocsin-local.
