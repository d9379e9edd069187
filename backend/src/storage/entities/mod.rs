//! sea-orm entities, one module per table. Only `storage` uses them; the rest of the server
//! sees domain types.

pub mod api_keys;
pub mod attributions;
pub mod audit_log;
pub mod conversions;
pub mod detections;
pub mod goals;
pub mod invalid_events;
pub mod matching_checkpoint;
pub mod memberships;
pub mod retention_purges;
pub mod tenant_policies;
pub mod tenants;
pub mod users;
