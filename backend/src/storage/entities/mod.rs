//! sea-orm entities, one module per table. Only `storage` uses them; the rest of the server
//! sees domain types.

pub mod api_keys;
pub mod audit_log;
pub mod memberships;
pub mod tenants;
pub mod users;
