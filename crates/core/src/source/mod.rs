//! Source parsers: every event format tocsin accepts, in; canonical [`Alert`](crate::Alert)s, out.
