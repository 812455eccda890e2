-- Switchboard schema, first version. Table and column names of organizations,
-- phone_numbers and assistants are the SaaS's own.

CREATE TABLE IF NOT EXISTS organizations (
    id          text PRIMARY KEY,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS phone_numbers (
    provider_phone_id text NOT NULL UNIQUE,
    organization_id   text NOT NULL REFERENCES organizations (id),
    number            text,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS assistants (
    provider_assistant_id text NOT NULL UNIQUE,
    organization_id       text NOT NULL REFERENCES organizations (id),
    name                  text,
    created_at            timestamptz NOT NULL DEFAULT now()
);

-- Call statuses in the order a call moves through them; a call's status never moves to a
-- lower rank. Unknown statuses rank 0 and so never replace a known one.
CREATE OR REPLACE FUNCTION switchboard_status_rank(s text) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE s
        WHEN 'scheduled' THEN 1 WHEN 'queued' THEN 2 WHEN 'ringing' THEN 3
        WHEN 'in-progress' THEN 4 WHEN 'forwarding' THEN 5 WHEN 'ended' THEN 6
        ELSE 0 END
$$;

-- One row per Vapi call.
CREATE TABLE IF NOT EXISTS calls (
    id               bigserial PRIMARY KEY,
    vapi_call_id     text NOT NULL UNIQUE,
    organization_id  text NOT NULL REFERENCES organizations (id),
    call_type        text,
    status           text,
    customer_number  text,
    phone_number_id  text,
    assistant_id     text,
    started_at       timestamptz,
    ended_at         timestamptz,
    ended_reason     text,
    cost             numeric,
    transcript       text,
    recording_url    text,
    summary          text,
    report           jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS calls_org_created ON calls (organization_id, created_at);

-- An update that changes nothing is skipped (no new row version, updated_at kept), so that
-- a message delivered or replayed twice leaves the row exactly as it was.
CREATE OR REPLACE FUNCTION switchboard_touch() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := OLD.updated_at;
    IF NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS calls_touch ON calls;
CREATE TRIGGER calls_touch BEFORE UPDATE ON calls
    FOR EACH ROW EXECUTE FUNCTION switchboard_touch();

-- One row per stored message. dedupe_key is the status for status-update, empty for
-- end-of-call-report, and the message timestamp (or stream entry id) for other types, so a
-- retried or replayed delivery is stored once.
CREATE TABLE IF NOT EXISTS call_events (
    id               bigserial PRIMARY KEY,
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
    UNIQUE (vapi_call_id, type, dedupe_key)
);
CREATE INDEX IF NOT EXISTS call_events_org_created ON call_events (organization_id, created_at);

-- Messages no organization could be found for, kept with the reason until re-routed.
CREATE TABLE IF NOT EXISTS unrouted_messages (
    id           bigserial PRIMARY KEY,
    stream_id    text NOT NULL UNIQUE,
    vapi_call_id text,
    type         text,
    reason       text NOT NULL,
    body         text NOT NULL,
    received_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
