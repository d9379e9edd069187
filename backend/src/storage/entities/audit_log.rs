//! `audit_log`: who changed what in a tenant, with the state before and after.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `user:<id>` or `api_key:<id>`.
    pub actor: String,
    /// Dotted verb, e.g. `api_key.create`.
    pub action: String,
    pub target: Option<String>,
    pub before: Option<Json>,
    pub after: Option<Json>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
