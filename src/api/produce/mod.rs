//! Writing: Produce and InitProducerId (idempotent producers).

pub mod init_producer_id;
// The style guide names the file after its API key inside its family directory.
#[allow(clippy::module_inception)]
pub mod produce;
