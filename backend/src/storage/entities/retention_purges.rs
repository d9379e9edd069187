//! `retention_purges`: per tenant and class of data, the retention purge's last run and the
//! rows it deleted.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "retention_purges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    /// A `DataClass` name: `detections`, `conversions`, `attributions`, `invalid_events`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub class: String,
    pub last_run_at: DateTimeUtc,
    /// Rows the last run deleted (0 when nothing had expired since the run before).
    pub last_run_deleted: i64,
    /// Rows deleted since the first run.
    pub total_deleted: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
