//! Row-level security on every tenant-owned table (PostgreSQL only): defence in depth under
//! the `tenant_id` filter that every query already carries.
//!
//! Two roles, neither of which logs in; the server's login role is made a member of both:
//! - `sightline_app`, the request-serving role. A request's transaction switches to it
//!   (`SET LOCAL ROLE`) and names its tenant in `sightline.tenant_id` (also transaction-local,
//!   so nothing is left on a pooled connection). Its policy shows and accepts only that
//!   tenant's rows; with no tenant named it sees nothing.
//! - `sightline_worker`, for the ingest writer, matching, authentication and the background
//!   jobs, which work across tenants by design: its policy allows every row.
//!
//! `FORCE` applies the policies to the tables' owner too, so only a superuser (or a role with
//! `BYPASSRLS`) reads around them. Roles belong to the cluster, not the database, so they are
//! created only when missing and left in place by `down`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every table with a `tenant_id` column, and `tenants` itself (keyed by `id`).
const TENANT_TABLES: [(&str, &str); 12] = [
    ("tenants", "id"),
    ("memberships", "tenant_id"),
    ("api_keys", "tenant_id"),
    ("tenant_policies", "tenant_id"),
    ("audit_log", "tenant_id"),
    ("goals", "tenant_id"),
    ("detections", "tenant_id"),
    ("conversions", "tenant_id"),
    ("invalid_events", "tenant_id"),
    ("attributions", "tenant_id"),
    ("report_detection_days", "tenant_id"),
    ("retention_purges", "tenant_id"),
];

const ROLES: &str = "
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sightline_app') THEN
        CREATE ROLE sightline_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sightline_worker') THEN
        CREATE ROLE sightline_worker NOLOGIN;
    END IF;
END
$$;
GRANT sightline_app, sightline_worker TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO sightline_app, sightline_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public
    TO sightline_app, sightline_worker;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO sightline_app, sightline_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sightline_app, sightline_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO sightline_app, sightline_worker;
";

/// The request's tenant, or NULL (matching nothing) when none is named.
const CURRENT_TENANT: &str = "NULLIF(current_setting('sightline.tenant_id', true), '')::uuid";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(ROLES).await?;
        for (table, column) in TENANT_TABLES {
            db.execute_unprepared(&format!(
                "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
                 ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
                 CREATE POLICY background_jobs ON {table} TO sightline_worker
                     USING (true) WITH CHECK (true);
                 CREATE POLICY tenant_isolation ON {table} TO sightline_app
                     USING ({column} = {CURRENT_TENANT})
                     WITH CHECK ({column} = {CURRENT_TENANT});"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, _) in TENANT_TABLES {
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS tenant_isolation ON {table};
                 DROP POLICY IF EXISTS background_jobs ON {table};
                 ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;
                 ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;"
            ))
            .await?;
        }
        Ok(())
    }
}
