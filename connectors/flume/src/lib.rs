//! Flume agent.
