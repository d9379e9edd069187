//! The retention purge's record (the last run per tenant and class of data, with the rows it
//! deleted), and the index the purge finds expired attributions by.
//!
//! Attributions expire by their `conversion_time` (the moment the credit was earned); until
//! now nothing read them by that column, so without this index every purge batch and every
//! "oldest record kept" would scan all of a tenant's attributions.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let time = |column: RetentionPurges| {
            ColumnDef::new(column)
                .timestamp_with_time_zone()
                .not_null()
                .to_owned()
        };
        let count =
            |column: RetentionPurges| ColumnDef::new(column).big_integer().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(RetentionPurges::Table)
                    .col(ColumnDef::new(RetentionPurges::TenantId).uuid().not_null())
                    .col(
                        ColumnDef::new(RetentionPurges::Class)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(time(RetentionPurges::LastRunAt))
                    .col(count(RetentionPurges::LastRunDeleted))
                    .col(count(RetentionPurges::TotalDeleted))
                    .primary_key(
                        Index::create()
                            .col(RetentionPurges::TenantId)
                            .col(RetentionPurges::Class),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RetentionPurges::Table, RetentionPurges::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX attributions_tenant_conversion_time ON attributions \
                 (tenant_id, conversion_time)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX attributions_tenant_conversion_time")
            .await?;
        manager
            .drop_table(Table::drop().table(RetentionPurges::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum RetentionPurges {
    Table,
    TenantId,
    Class,
    LastRunAt,
    LastRunDeleted,
    TotalDeleted,
}
