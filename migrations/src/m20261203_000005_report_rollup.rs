//! The label report's daily detection rollup (PostgreSQL): detections per (tenant, UTC day,
//! label, entity, category, model version), with the earliest event time.
//!
//! Grouping a million raw detections takes seconds on the machines this project runs on,
//! so the report reads whole days here and only the partial days at the edges of its range
//! from `detections` (measured in tests/bench/RESULTS.md, "Reports"). Statement-level
//! triggers keep it exact in the same transaction as every change of `detections`:
//! inserts add their counts (one upsert per statement, in key order so that concurrent
//! writers take row locks in the same order); updates and deletes recompute the days they
//! touch from `detections`; a truncate empties it. Test events are left out, as the report
//! leaves them out. A missing category is stored as '' (a real one is never empty) so that
//! it can be part of the primary key.
//!
//! Attributions have no rollup: the matcher deletes and re-inserts them, and counting
//! distinct conversions per row does not add up across days; the report aggregates them at
//! query time.
//!
//! SQLite (the embedded, single-process default) gets nothing here: the report groups raw
//! detections there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE report_detection_days (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day date NOT NULL,
    label varchar(128) NOT NULL,
    entity_id varchar(256) NOT NULL,
    category varchar(128) NOT NULL,
    model_version varchar(64) NOT NULL,
    detections bigint NOT NULL,
    first_time timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, day, label, entity_id, category, model_version)
);

CREATE FUNCTION report_detection_days_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_detection_days AS r
        (tenant_id, day, label, entity_id, category, model_version, detections, first_time)
    SELECT tenant_id, (event_time AT TIME ZONE 'UTC')::date, label, entity_id,
           coalesce(category, ''), model_version, count(*), min(event_time)
    FROM added WHERE NOT is_test
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (tenant_id, day, label, entity_id, category, model_version) DO UPDATE
        SET detections = r.detections + excluded.detections,
            first_time = least(r.first_time, excluded.first_time);
    RETURN NULL;
END $$;

-- The days a statement touched, recomputed from what `detections` holds now.
CREATE FUNCTION report_detection_days_recompute() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tenants uuid[];
    days date[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(tenant_id), array_agg(day) INTO tenants, days FROM (
            SELECT tenant_id, (event_time AT TIME ZONE 'UTC')::date AS day FROM removed
            UNION SELECT tenant_id, (event_time AT TIME ZONE 'UTC')::date FROM added) touched;
    ELSE
        SELECT array_agg(tenant_id), array_agg(day) INTO tenants, days FROM (
            SELECT DISTINCT tenant_id, (event_time AT TIME ZONE 'UTC')::date AS day
            FROM removed) touched;
    END IF;
    IF tenants IS NULL THEN
        RETURN NULL;
    END IF;
    DELETE FROM report_detection_days r USING unnest(tenants, days) AS t (tenant_id, day)
        WHERE r.tenant_id = t.tenant_id AND r.day = t.day;
    INSERT INTO report_detection_days
        (tenant_id, day, label, entity_id, category, model_version, detections, first_time)
    SELECT d.tenant_id, t.day, d.label, d.entity_id, coalesce(d.category, ''), d.model_version,
           count(*), min(d.event_time)
    FROM unnest(tenants, days) AS t (tenant_id, day)
    JOIN detections d ON d.tenant_id = t.tenant_id
        AND d.event_time >= t.day::timestamp AT TIME ZONE 'UTC'
        AND d.event_time < (t.day + 1)::timestamp AT TIME ZONE 'UTC'
    WHERE NOT d.is_test
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 5, 6;
    RETURN NULL;
END $$;

CREATE FUNCTION report_detection_days_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM report_detection_days;
    RETURN NULL;
END $$;

CREATE TRIGGER report_detection_days_insert AFTER INSERT ON detections
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION report_detection_days_add();
CREATE TRIGGER report_detection_days_update AFTER UPDATE ON detections
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION report_detection_days_recompute();
CREATE TRIGGER report_detection_days_delete AFTER DELETE ON detections
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION report_detection_days_recompute();
CREATE TRIGGER report_detection_days_truncate AFTER TRUNCATE ON detections
    FOR EACH STATEMENT EXECUTE FUNCTION report_detection_days_clear();

-- The detections stored before this migration.
INSERT INTO report_detection_days
    (tenant_id, day, label, entity_id, category, model_version, detections, first_time)
SELECT tenant_id, (event_time AT TIME ZONE 'UTC')::date, label, entity_id,
       coalesce(category, ''), model_version, count(*), min(event_time)
FROM detections WHERE NOT is_test
GROUP BY 1, 2, 3, 4, 5, 6;
"#;

const DOWN: &str = r#"
DROP TRIGGER report_detection_days_truncate ON detections;
DROP TRIGGER report_detection_days_delete ON detections;
DROP TRIGGER report_detection_days_update ON detections;
DROP TRIGGER report_detection_days_insert ON detections;
DROP FUNCTION report_detection_days_clear();
DROP FUNCTION report_detection_days_recompute();
DROP FUNCTION report_detection_days_add();
DROP TABLE report_detection_days;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(UP).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(DOWN).await?;
        }
        Ok(())
    }
}
