//! tocsin-lambda.
