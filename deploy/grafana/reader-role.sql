-- A read-only login for Grafana's Results dashboard: it may read the results views (migration
-- 0004) and the list of runs with a report, and nothing else (no prompts, responses or tokens).
-- Run once per database as its owner, after `harmrank migrate`, with a password of your own:
--   psql "$HARMRANK_DATABASE_URL" -v password="'...'" -f deploy/grafana/reader-role.sql
-- A view reads its tables with its owner's rights, so SELECT on the views is enough.
CREATE ROLE harmrank_grafana LOGIN PASSWORD :password
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
GRANT USAGE ON SCHEMA public TO harmrank_grafana;
GRANT SELECT ON run_task_summary, run_harm_rates, run_pairwise_wins, run_agreement, run_reports
  TO harmrank_grafana;
ALTER ROLE harmrank_grafana SET default_transaction_read_only = on;
