//! `attributions`: which detection earned which conversion, for which goal, and how.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "attributions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub goal_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversion_event_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub detection_event_id: String,
    /// `direct` or `assisted`.
    pub kind: String,
    pub conversion_time: DateTimeUtc,
    pub detection_time: DateTimeUtc,
    pub label: String,
    pub entity_id: String,
    pub category: Option<String>,
    pub model_version: String,
    /// The conversion's value.
    pub value: Option<f64>,
    pub is_test: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
