//! `goals`: a tenant's goals, each mapping detection labels to a conversion name.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "goals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// A JSON array of labels.
    pub detection_labels: Json,
    pub conversion_name: String,
    pub key: String,
    pub window_seconds: i32,
    pub min_confidence: f64,
    pub dedup_seconds: i32,
    pub requires_consent: bool,
    pub active: bool,
    /// Bumped by every change of the definition.
    pub revision: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
