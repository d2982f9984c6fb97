//! The store's records as the HTTP layer names them (ids, times): `services::records`.

pub use services::records::*;
