#!/bin/sh
# The database roles of the compose stack. docker-compose.yml mounts this file into the
# postgres container as /docker-entrypoint-initdb.d/10-switchboard-roles.sh, which the
# postgres image runs once, when it initialises an empty data volume (pg-data), as the
# superuser over the local socket. It can be run again, by hand, at any time (it only makes
# things as described below), e.g. for a volume initialised by an older docker-compose.yml:
#
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/10-switchboard-roles.sh
#
# Who is who in the database POSTGRES_DB (switchboard):
#   switchboard_owner   owns the database, the schema public and everything in it: the
#                       `migrate` service connects as it and creates or changes the tables.
#                       Password DB_OWNER_PASSWORD.
#   switchboard_worker  the workers and the operator commands: may connect, and select,
#                       insert, update and delete rows of the tables switchboard_owner
#                       creates (and use their sequences); may not create, alter, drop or
#                       truncate anything. Password DB_WORKER_PASSWORD.
#   postgres            the superuser (POSTGRES_PASSWORD): this script and an operator's
#                       psql; no Switchboard service connects as it.
# Existing tables not owned by switchboard_owner (made by an older stack as the superuser)
# are handed to it, so that later migrations can alter them.
set -eu
: "${DB_OWNER_PASSWORD:?DB_OWNER_PASSWORD is not set}"
: "${DB_WORKER_PASSWORD:?DB_WORKER_PASSWORD is not set}"
db=${POSTGRES_DB:-switchboard}

# Passwords and the database name go in as psql variables, quoted by psql (:'x', :"x").
psql -v ON_ERROR_STOP=1 --no-password --username "${POSTGRES_USER:-postgres}" --dbname "$db" \
	--set owner_pw="$DB_OWNER_PASSWORD" --set worker_pw="$DB_WORKER_PASSWORD" \
	--set db="$db" --quiet <<'SQL'
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'switchboard_owner') AS no_owner,
       NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'switchboard_worker') AS no_worker
\gset
\if :no_owner
CREATE ROLE switchboard_owner;
\endif
\if :no_worker
CREATE ROLE switchboard_worker;
\endif
ALTER ROLE switchboard_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    NOBYPASSRLS PASSWORD :'owner_pw';
ALTER ROLE switchboard_worker LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    NOBYPASSRLS PASSWORD :'worker_pw';

ALTER DATABASE :"db" OWNER TO switchboard_owner;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO switchboard_worker;
ALTER SCHEMA public OWNER TO switchboard_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO switchboard_worker;

-- What the migrations create from now on.
ALTER DEFAULT PRIVILEGES FOR ROLE switchboard_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO switchboard_worker;
ALTER DEFAULT PRIVILEGES FOR ROLE switchboard_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO switchboard_worker;

-- What is already there.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v')
               AND pg_get_userbyid(c.relowner) <> 'switchboard_owner' LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO switchboard_owner', r.name);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'public'
               AND pg_get_userbyid(p.proowner) <> 'switchboard_owner' LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO switchboard_owner', r.name);
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO switchboard_worker;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO switchboard_worker;
SQL
echo "roles.sh: switchboard_owner owns database $db; switchboard_worker may use its rows"
