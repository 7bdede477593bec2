//! Tests over the sample events in `events/`.
