//! Goals: which detection labels lead to which conversion, on which tracking key, within
//! which window, above which confidence, with which dedup gap and consent rule.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Goals::Table)
                    .col(ColumnDef::new(Goals::TenantId).uuid().not_null())
                    .col(ColumnDef::new(Goals::Id).uuid().not_null())
                    .col(ColumnDef::new(Goals::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Goals::DetectionLabels).json().not_null())
                    .col(
                        ColumnDef::new(Goals::ConversionName)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Goals::Key).string_len(32).not_null())
                    .col(ColumnDef::new(Goals::WindowSeconds).integer().not_null())
                    .col(ColumnDef::new(Goals::MinConfidence).double().not_null())
                    .col(ColumnDef::new(Goals::DedupSeconds).integer().not_null())
                    .col(ColumnDef::new(Goals::RequiresConsent).boolean().not_null())
                    .col(ColumnDef::new(Goals::Active).boolean().not_null())
                    // Bumped by every change; attribution writes check it, so that none made
                    // under an old definition survives the change.
                    .col(ColumnDef::new(Goals::Revision).integer().not_null())
                    .col(
                        ColumnDef::new(Goals::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Goals::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col(Goals::TenantId).col(Goals::Id))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Goals::Table, Goals::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Goals::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Goals {
    Table,
    TenantId,
    Id,
    Name,
    DetectionLabels,
    ConversionName,
    Key,
    WindowSeconds,
    MinConfidence,
    DedupSeconds,
    RequiresConsent,
    Active,
    Revision,
    CreatedAt,
    UpdatedAt,
}
