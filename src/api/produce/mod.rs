//! Writing: Produce and InitProducerId (idempotent producers).

pub mod init_producer_id;
pub mod produce;
