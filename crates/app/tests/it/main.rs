//! The use cases against mockall mocks of the ports.

mod support;

mod replies;
mod sending;
mod sessions;
