//! The use cases against mockall mocks of the ports.

mod support;

mod completions;
mod context;
mod endings;
mod history;
mod limits;
mod model;
mod replies;
mod reworking;
mod sending;
mod sessions;
mod summaries;
mod sweeping;
mod titles;
mod tools;
mod turns;
