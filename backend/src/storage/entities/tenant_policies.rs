//! `tenant_policies`: a tenant's consent and retention settings. No row means the defaults.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_policies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    pub consent_default: String,
    pub strip_keys_without_consent: bool,
    pub detections_days: i32,
    pub conversions_days: i32,
    pub attributions_days: i32,
    pub invalid_events_days: i32,
    pub max_event_age_days: i32,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
