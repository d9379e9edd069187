//! Attributions (which detection earned which conversion for which goal), the matching
//! checkpoint that start-up recovery resumes from, and the index that recovery reads events
//! by.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let time = |column: Attributions| {
            ColumnDef::new(column)
                .timestamp_with_time_zone()
                .not_null()
                .to_owned()
        };
        // The detection's and conversion's report fields are copied in, so that reports and
        // the attribution list read one table.
        manager
            .create_table(
                Table::create()
                    .table(Attributions::Table)
                    .col(ColumnDef::new(Attributions::TenantId).uuid().not_null())
                    .col(ColumnDef::new(Attributions::GoalId).uuid().not_null())
                    .col(
                        ColumnDef::new(Attributions::ConversionEventId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Attributions::DetectionEventId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Attributions::Kind).string_len(8).not_null())
                    .col(time(Attributions::ConversionTime))
                    .col(time(Attributions::DetectionTime))
                    .col(
                        ColumnDef::new(Attributions::Label)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Attributions::EntityId)
                            .string_len(256)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Attributions::Category)
                            .string_len(128)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Attributions::ModelVersion)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Attributions::Value).double().null())
                    .col(ColumnDef::new(Attributions::IsTest).boolean().not_null())
                    .col(time(Attributions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Attributions::TenantId)
                            .col(Attributions::GoalId)
                            .col(Attributions::ConversionEventId)
                            .col(Attributions::DetectionEventId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Attributions::Table, Attributions::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // The storage-level guarantee behind "at most one direct attribution per conversion
        // and goal", whatever the code above it does.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX attributions_one_direct ON attributions \
             (tenant_id, goal_id, conversion_event_id) WHERE kind = 'direct'",
        )
        .await?;
        for (name, columns) in [
            (
                "attributions_tenant_conversion",
                "tenant_id, conversion_event_id",
            ),
            (
                "attributions_tenant_detection_time",
                "tenant_id, detection_time",
            ),
        ] {
            db.execute_unprepared(&format!("CREATE INDEX {name} ON attributions ({columns})"))
                .await?;
        }

        // Recovery reads the events received since the checkpoint. Rows arrive in
        // received_time order, so on PostgreSQL a BRIN index serves that at almost no cost
        // on the write path.
        let method = match manager.get_database_backend() {
            DbBackend::Postgres => "USING brin ",
            _ => "",
        };
        for table in ["detections", "conversions"] {
            db.execute_unprepared(&format!(
                "CREATE INDEX {table}_received_time ON {table} {method}(received_time)"
            ))
            .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(MatchingCheckpoint::Table)
                    .col(
                        ColumnDef::new(MatchingCheckpoint::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(MatchingCheckpoint::ReceivedBefore)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MatchingCheckpoint::Table).to_owned())
            .await?;
        let db = manager.get_connection();
        for table in ["detections", "conversions"] {
            db.execute_unprepared(&format!("DROP INDEX {table}_received_time"))
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Attributions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Attributions {
    Table,
    TenantId,
    GoalId,
    ConversionEventId,
    DetectionEventId,
    Kind,
    ConversionTime,
    DetectionTime,
    Label,
    EntityId,
    Category,
    ModelVersion,
    Value,
    IsTest,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MatchingCheckpoint {
    Table,
    Id,
    ReceivedBefore,
}
