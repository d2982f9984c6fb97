//! Card numbers (PANs) out of everything but the card vault: the rule and its check are
//! `services::pan` (what counts as a card number: `engine::cards`).

pub use services::pan::*;
