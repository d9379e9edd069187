//! What several server processes on one database coordinate through (issue 8):
//!
//! - `session_versions`: one row per matching session (tenant, key name, key value). A
//!   matching round takes the rows of its sessions (row locks held until it commits), so
//!   work on one session is serialised across processes, and gives them a new `version`
//!   from `session_version_seq`; `previous` keeps the version it replaced, which tells a
//!   process whether the copy of the session it holds in memory is still the latest. A
//!   missing row is always safe: the session is then read again from the events.
//! - `matching_checkpoint.heartbeat_at`: each process keeps a checkpoint row of its own and
//!   touches it every second; a row whose heartbeat stops is taken over by another process,
//!   which re-matches what the dead one may have left unmatched.
//! - `goal_reevaluations`: the re-evaluation a goal change asks for, written in the change's
//!   transaction, run by whichever process holds its lease, its progress (a cursor over the
//!   sessions) kept so that another process resumes it when that one dies.
//!
//! The sequence and the row-level security are PostgreSQL's; SQLite (one process, the
//! embedded default) gets the table and the column only.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The request's tenant, as in migration 000007.
const CURRENT_TENANT: &str = "NULLIF(current_setting('sightline.tenant_id', true), '')::uuid";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SessionVersions::Table)
                    .col(ColumnDef::new(SessionVersions::TenantId).uuid().not_null())
                    .col(ColumnDef::new(SessionVersions::KeyName).text().not_null())
                    .col(ColumnDef::new(SessionVersions::KeyValue).text().not_null())
                    .col(
                        ColumnDef::new(SessionVersions::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SessionVersions::Previous)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(SessionVersions::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(SessionVersions::TenantId)
                            .col(SessionVersions::KeyName)
                            .col(SessionVersions::KeyValue),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SessionVersions::Table, SessionVersions::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The purge deletes rows of sessions nobody has used for a while.
        manager
            .create_index(
                Index::create()
                    .name("session_versions_updated_at")
                    .table(SessionVersions::Table)
                    .col(SessionVersions::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(GoalReevaluations::Table)
                    .col(
                        ColumnDef::new(GoalReevaluations::TenantId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(GoalReevaluations::GoalId).uuid().not_null())
                    .col(
                        ColumnDef::new(GoalReevaluations::Revision)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(GoalReevaluations::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(GoalReevaluations::SessionsTotal)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(GoalReevaluations::SessionsDone)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(GoalReevaluations::Cursor).text().null())
                    .col(
                        ColumnDef::new(GoalReevaluations::Owner)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(GoalReevaluations::LeaseUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(GoalReevaluations::TenantId)
                            .col(GoalReevaluations::GoalId),
                    )
                    // A deleted goal needs no re-evaluation: its rows went with it.
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                GoalReevaluations::Table,
                                (GoalReevaluations::TenantId, GoalReevaluations::GoalId),
                            )
                            .to(Goals::Table, (Goals::TenantId, Goals::Id))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The checkpoint rows written before this migration belong to no running process:
        // the epoch makes them taken over at the first start.
        manager
            .alter_table(
                Table::alter()
                    .table(MatchingCheckpoint::Table)
                    .add_column(
                        ColumnDef::new(MatchingCheckpoint::HeartbeatAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default("1970-01-01 00:00:00+00"),
                    )
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "CREATE SEQUENCE session_version_seq;
                     ALTER TABLE session_versions ENABLE ROW LEVEL SECURITY;
                     ALTER TABLE session_versions FORCE ROW LEVEL SECURITY;
                     CREATE POLICY background_jobs ON session_versions TO sightline_worker
                         USING (true) WITH CHECK (true);
                     CREATE POLICY tenant_isolation ON session_versions TO sightline_app
                         USING (tenant_id = {CURRENT_TENANT})
                         WITH CHECK (tenant_id = {CURRENT_TENANT});
                     ALTER TABLE goal_reevaluations ENABLE ROW LEVEL SECURITY;
                     ALTER TABLE goal_reevaluations FORCE ROW LEVEL SECURITY;
                     CREATE POLICY background_jobs ON goal_reevaluations TO sightline_worker
                         USING (true) WITH CHECK (true);
                     CREATE POLICY tenant_isolation ON goal_reevaluations TO sightline_app
                         USING (tenant_id = {CURRENT_TENANT})
                         WITH CHECK (tenant_id = {CURRENT_TENANT});"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP SEQUENCE session_version_seq")
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(MatchingCheckpoint::Table)
                    .drop_column(MatchingCheckpoint::HeartbeatAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(GoalReevaluations::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SessionVersions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SessionVersions {
    Table,
    TenantId,
    KeyName,
    KeyValue,
    Version,
    Previous,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MatchingCheckpoint {
    Table,
    HeartbeatAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum GoalReevaluations {
    Table,
    TenantId,
    GoalId,
    Revision,
    Status,
    SessionsTotal,
    SessionsDone,
    Cursor,
    Owner,
    LeaseUntil,
}

#[derive(DeriveIden)]
enum Goals {
    Table,
    TenantId,
    Id,
}
