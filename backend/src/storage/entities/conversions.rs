//! `conversions`: the business actions that follow detections.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "conversions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    pub event_time: DateTimeUtc,
    pub received_time: DateTimeUtc,
    pub consent: String,
    pub keys: Option<Json>,
    pub is_test: bool,
    pub properties: Option<Json>,
    pub name: String,
    pub value: Option<f64>,
    pub currency: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
