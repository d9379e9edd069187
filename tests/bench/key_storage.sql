-- Key storage measurement (tests/bench/RESULTS.md): 200K events with two tracking keys each,
-- written as (A) event rows plus a key table, (B) event rows with jsonb keys and a GIN index,
-- (C) event rows with no key index. Run: psql -h 127.0.0.1 -U postgres -d test -f tests/bench/key_storage.sql
\timing on
DROP DATABASE IF EXISTS keybench;
CREATE DATABASE keybench;
\c keybench
CREATE TABLE ev_a (tenant_id uuid, event_id text, event_time timestamptz, "keys" json, label text, PRIMARY KEY (tenant_id, event_id));
CREATE TABLE keys_a (tenant_id uuid, key_name text, key_value text, event_type int2, event_id text, event_time timestamptz, PRIMARY KEY (tenant_id, key_name, key_value, event_type, event_id));
CREATE TABLE ev_b (tenant_id uuid, event_id text, event_time timestamptz, "keys" jsonb, label text, PRIMARY KEY (tenant_id, event_id));
CREATE INDEX ev_b_keys ON ev_b USING gin ("keys" jsonb_path_ops);
CREATE TABLE ev_c (tenant_id uuid, event_id text, event_time timestamptz, "keys" json, label text, PRIMARY KEY (tenant_id, event_id));
-- A: events, then key rows (2 per event) as plain rows
DO $$ DECLARE b int; BEGIN FOR b IN 1..20 LOOP
  INSERT INTO ev_a SELECT '00000000-0000-0000-0000-000000000001', 'e-'||b||'-'||i, now(), ('{"session_token":"s'||(i%3000)||'","device_id":"d'||(i%50)||'"}')::json, 'barcode' FROM generate_series(1,10000) i;
  INSERT INTO keys_a SELECT '00000000-0000-0000-0000-000000000001', 'session_token', 's'||(i%3000), 1, 'e-'||b||'-'||i, now() FROM generate_series(1,10000) i;
  INSERT INTO keys_a SELECT '00000000-0000-0000-0000-000000000001', 'device_id', 'd'||(i%50), 1, 'e-'||b||'-'||i, now() FROM generate_series(1,10000) i;
END LOOP; END $$;
-- B: jsonb + GIN
DO $$ DECLARE b int; BEGIN FOR b IN 1..20 LOOP
  INSERT INTO ev_b SELECT '00000000-0000-0000-0000-000000000001', 'e-'||b||'-'||i, now(), ('{"session_token":"s'||(i%3000)||'","device_id":"d'||(i%50)||'"}')::jsonb, 'barcode' FROM generate_series(1,10000) i;
END LOOP; END $$;
-- C: events alone (no key index) for reference
DO $$ DECLARE b int; BEGIN FOR b IN 1..20 LOOP
  INSERT INTO ev_c SELECT '00000000-0000-0000-0000-000000000001', 'e-'||b||'-'||i, now(), ('{"session_token":"s'||(i%3000)||'","device_id":"d'||(i%50)||'"}')::json, 'barcode' FROM generate_series(1,10000) i;
END LOOP; END $$;
\c test
DROP DATABASE keybench;
