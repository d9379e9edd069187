//! The ceiling for the rows ingestion writes: `COPY` into scratch copies of `detections` and
//! `conversions` (same columns, indexes and tenant foreign key), on the same PostgreSQL, with
//! the same mix of rows as the load (three detections per conversion).

use sqlx::{Connection, PgConnection};
use std::time::Instant;

pub struct Ceiling {
    pub rows: u64,
    pub rows_per_second: f64,
}

pub fn measure(database_url: &str, rows: u64) -> Ceiling {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut conn = PgConnection::connect(database_url).await.expect("connect for COPY");
        let tenant: (uuid::Uuid,) = sqlx::query_as("SELECT id FROM tenants LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .expect("the bench tenant");
        for table in ["detections", "conversions"] {
            // `table` is one of the two names above, never input.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS scratch_{table};
                 CREATE TABLE scratch_{table} (LIKE {table} INCLUDING ALL);
                 ALTER TABLE scratch_{table} ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;"
            )))
            .execute(&mut conn)
            .await
            .expect("create scratch tables");
        }
        let conversions = rows / 4;
        let detections = rows - conversions;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let tenant = tenant.0;
        let mut detection_csv = String::with_capacity(usize::try_from(detections).unwrap_or(0) * 200);
        for id in 0..detections {
            detection_csv.push_str(&format!(
                "{tenant},d-{id},{now},{now},granted,\"{{\"\"session_token\"\": \"\"s-{}\"\", \"\"device_id\"\": \"\"cam-{}\"\"}}\",f,,barcode,0.91,v3,sku-{},,,,,f\n",
                id % 10_000,
                id % 50,
                id % 500
            ));
        }
        let mut conversion_csv = String::with_capacity(usize::try_from(conversions).unwrap_or(0) * 160);
        for id in 0..conversions {
            conversion_csv.push_str(&format!(
                "{tenant},c-{id},{now},{now},granted,\"{{\"\"session_token\"\": \"\"s-{}\"\"}}\",f,,purchase,19.5,EUR\n",
                id % 10_000
            ));
        }

        let started = Instant::now();
        copy(
            &mut conn,
            "COPY scratch_detections (tenant_id, event_id, event_time, received_time, consent, \"keys\", is_test, properties, label, confidence, model_version, entity_id, model, category, source, bbox, filtered) FROM STDIN WITH (FORMAT csv)",
            detection_csv,
        )
        .await;
        copy(
            &mut conn,
            "COPY scratch_conversions (tenant_id, event_id, event_time, received_time, consent, \"keys\", is_test, properties, name, value, currency) FROM STDIN WITH (FORMAT csv)",
            conversion_csv,
        )
        .await;
        let elapsed = started.elapsed();
        sqlx::raw_sql("DROP TABLE scratch_detections; DROP TABLE scratch_conversions;")
            .execute(&mut conn)
            .await
            .expect("drop scratch tables");
        Ceiling {
            rows,
            rows_per_second: rows as f64 / elapsed.as_secs_f64(),
        }
    })
}

async fn copy(conn: &mut PgConnection, statement: &'static str, csv: String) {
    let mut copy = conn.copy_in_raw(statement).await.expect("start COPY");
    copy.send(csv.into_bytes()).await.expect("send COPY data");
    copy.finish().await.expect("finish COPY");
}
