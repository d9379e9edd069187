//! Events: detections and conversions (with their tracking keys), rejected events, and the per-tenant
//! policies applied at ingest (consent, retention, accepted event age).
//!
//! `(tenant_id, event_id)` is the primary key of each event table: inserting with
//! "on conflict do nothing" is what makes ingestion idempotent.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TenantPolicies::Table)
                    .col(
                        ColumnDef::new(TenantPolicies::TenantId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(TenantPolicies::ConsentDefault)
                            .string_len(8)
                            .not_null()
                            .default("granted"),
                    )
                    .col(
                        ColumnDef::new(TenantPolicies::StripKeysWithoutConsent)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(days(TenantPolicies::DetectionsDays, 395))
                    .col(days(TenantPolicies::ConversionsDays, 395))
                    .col(days(TenantPolicies::AttributionsDays, 395))
                    .col(days(TenantPolicies::InvalidEventsDays, 30))
                    .col(days(TenantPolicies::MaxEventAgeDays, 7))
                    .col(
                        ColumnDef::new(TenantPolicies::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut tenant_fk(
                        TenantPolicies::Table,
                        TenantPolicies::TenantId,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                event_table(Detections::Table)
                    .col(ColumnDef::new(Detections::Label).string_len(128).not_null())
                    .col(ColumnDef::new(Detections::Confidence).double().not_null())
                    .col(
                        ColumnDef::new(Detections::ModelVersion)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Detections::EntityId)
                            .string_len(256)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Detections::Model).string_len(128).null())
                    .col(ColumnDef::new(Detections::Category).string_len(128).null())
                    .col(ColumnDef::new(Detections::Source).json().null())
                    .col(ColumnDef::new(Detections::Bbox).json().null())
                    .col(ColumnDef::new(Detections::Filtered).boolean().not_null())
                    .to_owned(),
            )
            .await?;
        event_time_index(manager, "detections_tenant_event_time", Detections::Table).await?;

        manager
            .create_table(
                event_table(Conversions::Table)
                    .col(ColumnDef::new(Conversions::Name).string_len(64).not_null())
                    .col(ColumnDef::new(Conversions::Value).double().null())
                    .col(ColumnDef::new(Conversions::Currency).string_len(3).null())
                    .to_owned(),
            )
            .await?;
        event_time_index(manager, "conversions_tenant_event_time", Conversions::Table).await?;

        // Sessions are found by (tenant, key name, key value). On PostgreSQL a GIN index over
        // the keys object serves that lookup (`"keys" @> '{"session_token": "abc"}'`); it
        // costs less than half of a separate key table on the write path (measured in
        // tests/bench/RESULTS.md). SQLite, the embedded single-process default, has no such
        // index and scans the tenant's recent events instead.
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
            for table in ["detections", "conversions"] {
                manager
                    .get_connection()
                    .execute_unprepared(&format!(
                        "CREATE INDEX {table}_keys ON {table} USING gin (\"keys\" jsonb_path_ops) WITH (fastupdate = off)"
                    ))
                    .await?;
            }
        }

        manager
            .create_table(
                Table::create()
                    .table(InvalidEvents::Table)
                    .col(ColumnDef::new(InvalidEvents::TenantId).uuid().not_null())
                    .col(ColumnDef::new(InvalidEvents::Id).uuid().not_null())
                    .col(
                        ColumnDef::new(InvalidEvents::ReceivedTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(InvalidEvents::EventType)
                            .string_len(16)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(InvalidEvents::EventId)
                            .string_len(128)
                            .null(),
                    )
                    .col(ColumnDef::new(InvalidEvents::Payload).json().not_null())
                    .col(ColumnDef::new(InvalidEvents::Errors).json().not_null())
                    .primary_key(
                        Index::create()
                            .col(InvalidEvents::TenantId)
                            .col(InvalidEvents::Id),
                    )
                    .foreign_key(&mut tenant_fk(
                        InvalidEvents::Table,
                        InvalidEvents::TenantId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("invalid_events_tenant_received_time")
                    .table(InvalidEvents::Table)
                    .col(InvalidEvents::TenantId)
                    .col(InvalidEvents::ReceivedTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            InvalidEvents::Table.into_iden(),
            Conversions::Table.into_iden(),
            Detections::Table.into_iden(),
            TenantPolicies::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The columns every event has, whatever its type.
fn event_table(table: impl IntoIden + Copy + 'static) -> TableCreateStatement {
    Table::create()
        .table(table)
        .col(ColumnDef::new(EventColumn::TenantId).uuid().not_null())
        .col(
            ColumnDef::new(EventColumn::EventId)
                .string_len(128)
                .not_null(),
        )
        .col(
            ColumnDef::new(EventColumn::EventTime)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(EventColumn::ReceivedTime)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(EventColumn::Consent)
                .string_len(8)
                .not_null(),
        )
        .col(ColumnDef::new(EventColumn::Keys).json_binary().null())
        .col(ColumnDef::new(EventColumn::IsTest).boolean().not_null())
        .col(ColumnDef::new(EventColumn::Properties).json().null())
        .primary_key(
            Index::create()
                .col(EventColumn::TenantId)
                .col(EventColumn::EventId),
        )
        .foreign_key(&mut tenant_fk(table, EventColumn::TenantId))
        .to_owned()
}

async fn event_time_index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden + 'static,
) -> Result<(), DbErr> {
    manager
        .create_index(
            Index::create()
                .name(name)
                .table(table)
                .col(EventColumn::TenantId)
                .col(EventColumn::EventTime)
                .to_owned(),
        )
        .await
}

fn days(column: impl IntoIden, default: i32) -> ColumnDef {
    ColumnDef::new(column)
        .integer()
        .not_null()
        .default(default)
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
}

#[derive(DeriveIden)]
enum TenantPolicies {
    Table,
    TenantId,
    ConsentDefault,
    StripKeysWithoutConsent,
    DetectionsDays,
    ConversionsDays,
    AttributionsDays,
    InvalidEventsDays,
    MaxEventAgeDays,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum EventColumn {
    TenantId,
    EventId,
    EventTime,
    ReceivedTime,
    Consent,
    Keys,
    IsTest,
    Properties,
}

#[derive(DeriveIden, Clone, Copy)]
enum Detections {
    Table,
    Label,
    Confidence,
    ModelVersion,
    EntityId,
    Model,
    Category,
    Source,
    Bbox,
    Filtered,
}

#[derive(DeriveIden, Clone, Copy)]
enum Conversions {
    Table,
    Name,
    Value,
    Currency,
}

#[derive(DeriveIden)]
enum InvalidEvents {
    Table,
    TenantId,
    Id,
    ReceivedTime,
    EventType,
    EventId,
    Payload,
    Errors,
}
