-- call_events kept by month: one partition per calendar month (UTC) of the row's creation,
-- made ahead and dropped past the retention window by switchboard_event_maintain(), which the
-- workers call (README "call_events by month"). calls stays one table.
--
-- A partitioned table's unique key must hold its partition key, so the dedupe key becomes
-- (vapi_call_id, type, dedupe_key, part_month); the worker's insert also skips an event whose
-- key is already in the previous month's partition, so a retry is caught across one month
-- boundary: within the current and the previous calendar month, at least 28 days back.
--
-- There is no DEFAULT partition: a row for a month without one would be refused, so the
-- partitions are made two months ahead; a DEFAULT partition would also make detaching one
-- scan it.

ALTER TABLE call_events RENAME TO call_events_unpartitioned;
ALTER TABLE call_events_unpartitioned RENAME CONSTRAINT call_events_pkey
    TO call_events_unpartitioned_pkey;
ALTER TABLE call_events_unpartitioned RENAME CONSTRAINT call_events_vapi_call_id_type_dedupe_key_key
    TO call_events_unpartitioned_dedupe;
ALTER TABLE call_events_unpartitioned RENAME CONSTRAINT call_events_organization_id_fkey
    TO call_events_unpartitioned_organization_id_fkey;
ALTER INDEX call_events_org_created RENAME TO call_events_unpartitioned_org_created;
ALTER INDEX call_events_request_id RENAME TO call_events_unpartitioned_request_id;

CREATE TABLE call_events (
    id               bigint NOT NULL DEFAULT nextval('call_events_id_seq'),
    vapi_call_id     text NOT NULL,
    organization_id  text NOT NULL REFERENCES organizations (id),
    type             text NOT NULL,
    status           text,
    dedupe_key       text NOT NULL,
    stream_id        text NOT NULL,
    source           text,
    occurred_at      timestamptz,
    received_at      timestamptz,
    payload          jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    request_id       text,
    part_month       date NOT NULL DEFAULT date_trunc('month', now() AT TIME ZONE 'UTC')::date,
    PRIMARY KEY (id, part_month),
    UNIQUE (vapi_call_id, type, dedupe_key, part_month)
) PARTITION BY RANGE (part_month);
CREATE INDEX call_events_org_created ON call_events (organization_id, created_at);
CREATE INDEX call_events_request_id ON call_events (request_id) WHERE request_id IS NOT NULL;
ALTER SEQUENCE call_events_id_seq OWNED BY call_events.id;
DO $$
BEGIN
    ALTER TABLE call_events ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available: event payloads stay compressed with pglz';
END
$$;

-- The partition of the month that holds day (named call_events_YYYY_MM), made if missing.
CREATE OR REPLACE FUNCTION switchboard_event_partition(day date) RETURNS boolean
    LANGUAGE plpgsql SET search_path = public AS $$
DECLARE
    m date := date_trunc('month', day)::date;
    name text := 'call_events_' || to_char(m, 'YYYY_MM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF call_events FOR VALUES FROM (%L) TO (%L)',
                   name, m, (m + interval '1 month')::date);
    RETURN true;
END
$$;

-- The workers' maintenance: partitions for this month and `ahead` more; with a retention
-- (NULL or 0: keep for ever), every partition whose month ended longer than that ago is
-- detached and dropped. It runs as the schema's owner (SECURITY DEFINER), so a worker role
-- that may only write rows can call it; its locks wait at most 2 s (then the next call
-- tries again), so inserts are never held up longer.
CREATE OR REPLACE FUNCTION switchboard_event_maintain(ahead int, retention interval,
                                                      OUT created int, OUT dropped int)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public SET lock_timeout = '2s' AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    p record;
BEGIN
    created := 0;
    dropped := 0;
    FOR i IN 0..greatest(ahead, 0) LOOP
        IF switchboard_event_partition((this_month + make_interval(months => i))::date) THEN
            created := created + 1;
        END IF;
    END LOOP;
    IF retention IS NULL OR retention <= interval '0' THEN
        RETURN;
    END IF;
    FOR p IN SELECT c.relname,
                    to_date(substr(c.relname, length('call_events_') + 1), 'YYYY_MM') AS m
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'call_events'::regclass
               AND c.relname ~ '^call_events_[0-9]{4}_[0-9]{2}$'
             ORDER BY 2 LOOP
        EXIT WHEN ((p.m + interval '1 month') AT TIME ZONE 'UTC') > now() - retention;
        EXECUTE format('ALTER TABLE call_events DETACH PARTITION %I', p.relname);
        EXECUTE format('DROP TABLE %I', p.relname);
        dropped := dropped + 1;
    END LOOP;
END
$$;

-- Partitions for every month the old table has rows in, and the next two; then the rows.
SELECT switchboard_event_partition(m::date)
FROM (SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') AS m
      FROM call_events_unpartitioned) months;
SELECT switchboard_event_maintain(2, NULL);
INSERT INTO call_events (id, vapi_call_id, organization_id, type, status, dedupe_key,
                         stream_id, source, occurred_at, received_at, payload, created_at,
                         request_id, part_month)
SELECT id, vapi_call_id, organization_id, type, status, dedupe_key, stream_id, source,
       occurred_at, received_at, payload, created_at, request_id,
       date_trunc('month', created_at AT TIME ZONE 'UTC')::date
FROM call_events_unpartitioned;
DROP TABLE call_events_unpartitioned;

-- Only who may write events may maintain their partitions (the function can drop them).
REVOKE ALL ON FUNCTION switchboard_event_maintain(int, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION switchboard_event_partition(date) FROM PUBLIC;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
             WHERE table_schema = 'public' AND table_name = 'call_events'
               AND privilege_type = 'INSERT' AND grantee <> current_user LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION switchboard_event_maintain(int, interval) TO %I',
                       r.grantee);
    END LOOP;
END
$$;
