//! `event_keys`: one row per (event, tracking key), to find a session's events.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_name: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_value: String,
    /// 1 detection, 2 conversion.
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_type: i16,
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    pub event_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
