//! Payment channels (banks and third parties).
//!
//! - [`wire`]: the protocol payd's channel client speaks to a channel (and `channel-sim`
//!   plays).

pub mod wire;
