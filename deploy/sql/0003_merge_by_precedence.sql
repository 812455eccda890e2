-- A call's row no longer depends on the order its messages arrive in: every merged column
-- carries a stamp (the precedence of the message that set it, then that message's timestamp)
-- in calls.merge_stamps, and a value only replaces one with a lower stamp (README "How calls
-- is merged"; the SQL is worker/calls_sql.h). New columns the SaaS reads: the metadata
-- routing read, the rule that routed the call, the duration and the report's analysis; and
-- the ingest request id of each stored event.
--
-- Existing rows are backfilled from their report. Values written before this migration get
-- stamp 0 (below every message), except those taken from the report, which get the report's
-- stamp; ended_reason is taken again from the report, where a late status-update may have
-- replaced it. Slots of merge_stamps: 1 organization_id (with routed_by), 2 call_type,
-- 3 customer_number, 4 phone_number_id, 5 assistant_id, 6 started_at, 7 ended_at,
-- 8 ended_reason, 9 cost, 10 transcript, 11 recording_url, 12 summary, 13 report,
-- 14 metadata, 15 duration_seconds, 16 structured_data, 17 success_evaluation.

ALTER TABLE calls
    ADD COLUMN IF NOT EXISTS routed_by text,
    ADD COLUMN IF NOT EXISTS metadata jsonb,
    ADD COLUMN IF NOT EXISTS duration_seconds numeric,
    ADD COLUMN IF NOT EXISTS structured_data jsonb,
    ADD COLUMN IF NOT EXISTS success_evaluation text,
    ADD COLUMN IF NOT EXISTS merge_stamps bigint[];

ALTER TABLE call_events ADD COLUMN IF NOT EXISTS request_id text;
-- The status page finds a call by the request id its sender got back.
CREATE INDEX IF NOT EXISTS call_events_request_id ON call_events (request_id)
    WHERE request_id IS NOT NULL;

-- A report's timestamp in epoch ms, as the worker reads it (a number, or an ISO-8601
-- string); 0 when it has none that reads.
CREATE FUNCTION pg_temp.switchboard_ms(j jsonb) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(j) = 'number' THEN
        RETURN floor((j #>> '{}')::numeric)::bigint;
    ELSIF jsonb_typeof(j) = 'string' THEN
        RETURN floor(extract(epoch FROM (j #>> '{}')::timestamptz) * 1000)::bigint;
    END IF;
    RETURN 0;
EXCEPTION WHEN others THEN
    RETURN 0;
END
$$;

-- The metadata routing read: the first of the call's assistantOverrides, the assistant and
-- the call whose metadata has a non-empty string organizationId, else the first object.
CREATE FUNCTION pg_temp.switchboard_meta(m1 jsonb, m2 jsonb, m3 jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN jsonb_typeof(m1 -> 'organizationId') = 'string' AND m1 ->> 'organizationId' <> ''
            THEN m1
        WHEN jsonb_typeof(m2 -> 'organizationId') = 'string' AND m2 ->> 'organizationId' <> ''
            THEN m2
        WHEN jsonb_typeof(m3 -> 'organizationId') = 'string' AND m3 ->> 'organizationId' <> ''
            THEN m3
        WHEN jsonb_typeof(m1) = 'object' THEN m1
        WHEN jsonb_typeof(m2) = 'object' THEN m2
        WHEN jsonb_typeof(m3) = 'object' THEN m3
    END
$$;

UPDATE calls SET
    ended_reason = COALESCE(report ->> 'endedReason', ended_reason),
    metadata = pg_temp.switchboard_meta(report #> '{call,assistantOverrides,metadata}',
                                        report #> '{assistant,metadata}',
                                        report #> '{call,metadata}'),
    duration_seconds = round(extract(epoch FROM ended_at - started_at)::numeric, 3),
    structured_data = NULLIF(report #> '{analysis,structuredData}', 'null'::jsonb),
    success_evaluation = CASE jsonb_typeof(report #> '{analysis,successEvaluation}')
        WHEN 'null' THEN NULL
        WHEN 'string' THEN NULLIF(report #>> '{analysis,successEvaluation}', '')
        ELSE (report #> '{analysis,successEvaluation}')::text END
WHERE report IS NOT NULL;

UPDATE calls c SET
    routed_by = CASE
        WHEN c.call_type = 'inboundPhoneCall' AND EXISTS (
            SELECT 1 FROM phone_numbers p
            WHERE p.provider_phone_id = c.phone_number_id AND p.organization_id = c.organization_id)
            THEN 'phone_number'
        WHEN c.call_type IS DISTINCT FROM 'inboundPhoneCall'
            AND c.metadata ->> 'organizationId' = c.organization_id THEN 'metadata'
        WHEN EXISTS (
            SELECT 1 FROM assistants a
            WHERE a.provider_assistant_id = c.assistant_id AND a.organization_id = c.organization_id)
            THEN 'assistant'
    END,
    merge_stamps = ARRAY[
        0, -- organization_id is always set
        CASE WHEN c.call_type IS NOT NULL THEN 0 END,
        CASE WHEN c.customer_number IS NOT NULL THEN 0 END,
        CASE WHEN c.phone_number_id IS NOT NULL THEN 0 END,
        CASE WHEN c.assistant_id IS NOT NULL THEN 0 END,
        CASE WHEN c.started_at IS NOT NULL THEN s.report END,
        CASE WHEN c.ended_at IS NOT NULL THEN s.report END,
        CASE WHEN c.ended_reason IS NOT NULL
            THEN CASE WHEN c.report ->> 'endedReason' IS NOT NULL THEN s.report ELSE 0 END END,
        CASE WHEN c.cost IS NOT NULL THEN s.report END,
        CASE WHEN c.transcript IS NOT NULL THEN s.report END,
        CASE WHEN c.recording_url IS NOT NULL THEN s.report END,
        CASE WHEN c.summary IS NOT NULL THEN s.report END,
        CASE WHEN c.report IS NOT NULL THEN s.report END,
        CASE WHEN c.metadata IS NOT NULL THEN s.report END,
        CASE WHEN c.duration_seconds IS NOT NULL THEN s.report END,
        CASE WHEN c.structured_data IS NOT NULL THEN s.report END,
        CASE WHEN c.success_evaluation IS NOT NULL THEN s.report END]::bigint[]
FROM (SELECT id,
             -- Precedence 3 (end-of-call-report), or 0 for a row that has no report: values
             -- from before this migration whose message is unknown.
             CASE WHEN report IS NOT NULL
                 THEN 3000000000000000 + pg_temp.switchboard_ms(report -> 'timestamp')
                 ELSE 0 END AS report
      FROM calls) s
WHERE s.id = c.id;

DROP FUNCTION pg_temp.switchboard_ms(jsonb);
DROP FUNCTION pg_temp.switchboard_meta(jsonb, jsonb, jsonb);
