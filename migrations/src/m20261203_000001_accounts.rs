//! Accounts: tenants, users, memberships with roles, API keys and the audit log.
//!
//! Tenant-owned tables carry `tenant_id` first in their primary key, so that every lookup by
//! id needs the tenant too and the tables can later be partitioned by tenant.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(ColumnDef::new(Tenants::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Tenants::Name).string_len(200).not_null())
                    .col(created_at(Tenants::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new(Users::Email)
                            .string_len(254)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Users::PasswordHash).text().not_null())
                    .col(
                        ColumnDef::new(Users::SessionVersion)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(created_at(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(ColumnDef::new(Memberships::TenantId).uuid().not_null())
                    .col(ColumnDef::new(Memberships::UserId).uuid().not_null())
                    .col(ColumnDef::new(Memberships::Role).string_len(16).not_null())
                    .col(created_at(Memberships::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Memberships::TenantId)
                            .col(Memberships::UserId),
                    )
                    .foreign_key(&mut tenant_fk(Memberships::Table, Memberships::TenantId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Memberships::Table, Memberships::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("memberships_user_id")
                    .table(Memberships::Table)
                    .col(Memberships::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(ColumnDef::new(ApiKeys::TenantId).uuid().not_null())
                    .col(ColumnDef::new(ApiKeys::Id).uuid().not_null())
                    .col(ColumnDef::new(ApiKeys::Name).string_len(100).not_null())
                    .col(ColumnDef::new(ApiKeys::Prefix).string_len(24).not_null())
                    .col(
                        ColumnDef::new(ApiKeys::KeyHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(ApiKeys::Scopes).string_len(64).not_null())
                    .col(ColumnDef::new(ApiKeys::CreatedBy).uuid().null())
                    .col(created_at(ApiKeys::CreatedAt))
                    .col(
                        ColumnDef::new(ApiKeys::LastUsedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ApiKeys::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .primary_key(Index::create().col(ApiKeys::TenantId).col(ApiKeys::Id))
                    .foreign_key(&mut tenant_fk(ApiKeys::Table, ApiKeys::TenantId))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(ColumnDef::new(AuditLog::TenantId).uuid().not_null())
                    .col(ColumnDef::new(AuditLog::Id).uuid().not_null())
                    .col(ColumnDef::new(AuditLog::Actor).string_len(64).not_null())
                    .col(ColumnDef::new(AuditLog::Action).string_len(64).not_null())
                    .col(ColumnDef::new(AuditLog::Target).string_len(128).null())
                    .col(ColumnDef::new(AuditLog::Before).json().null())
                    .col(ColumnDef::new(AuditLog::After).json().null())
                    .col(created_at(AuditLog::CreatedAt))
                    .primary_key(Index::create().col(AuditLog::TenantId).col(AuditLog::Id))
                    .foreign_key(&mut tenant_fk(AuditLog::Table, AuditLog::TenantId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_log_tenant_created_at")
                    .table(AuditLog::Table)
                    .col(AuditLog::TenantId)
                    .col(AuditLog::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Memberships::Table.into_iden(),
            Users::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

fn created_at(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn tenant_fk(table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Tenants::Table, Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    SessionVersion,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    TenantId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    TenantId,
    Id,
    Name,
    Prefix,
    KeyHash,
    Scopes,
    CreatedBy,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    TenantId,
    Id,
    Actor,
    Action,
    Target,
    Before,
    After,
    CreatedAt,
}
