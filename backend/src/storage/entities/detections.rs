//! `detections`: what vision systems saw.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "detections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    pub event_time: DateTimeUtc,
    pub received_time: DateTimeUtc,
    /// Effective consent: as sent, else the tenant's default at acceptance.
    pub consent: String,
    /// `None` when the consent policy stripped them.
    pub keys: Option<Json>,
    pub is_test: bool,
    pub properties: Option<Json>,
    pub label: String,
    pub confidence: f64,
    pub model_version: String,
    pub entity_id: String,
    pub model: Option<String>,
    pub category: Option<String>,
    pub source: Option<Json>,
    pub bbox: Option<Json>,
    pub filtered: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
