//! tocsin's AWS adapters.
