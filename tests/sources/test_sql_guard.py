"""The load-time SQL guard: one read-only SELECT, nothing else."""

from __future__ import annotations

import pytest

from sentinel.sources.sql import EXAMPLE_QUERIES
from sentinel.sources.sql_guard import SqlGuardError, validate_select

ACCEPTED = [
    "SELECT COUNT(*) AS value FROM payments WHERE created_at >= :start AND created_at < :end",
    "select 1 as value;",
    "SELECT 1 AS value;  -- trailing comment after the semicolon",
    "SELECT 1 AS value -- a ; in a comment is not a statement\n",
    "SELECT 1 AS value /* ; DELETE FROM payments */",
    "SELECT 'a;b' AS label, 1 AS value",
    "SELECT 'it''s; fine' AS label, 1 AS value",
    "WITH recent AS (SELECT * FROM payments WHERE created_at >= :start) "
    "SELECT method, COUNT(*) AS value FROM recent GROUP BY method",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
    "SELECT n AS value FROM r",
    "SELECT 1 AS value UNION ALL SELECT 2",
    "(SELECT 1 AS value)",
    "((SELECT 1 AS value))",
    "SELECT COUNT(*) FILTER (WHERE status = 'failed') AS value FROM payments",
    "SELECT EXTRACT(EPOCH FROM MAX(created_at))::float AS value FROM payments",
    "SELECT date_part('epoch', :end) - date_part('epoch', MIN(enqueued_at)) AS value "
    "FROM translation_queue",
    "SELECT lower(method) AS method, COUNT(*) AS value FROM payments GROUP BY lower(method)",
    "SELECT COUNT(*) * 1.0 / :capacity AS value FROM translation_jobs",
    *EXAMPLE_QUERIES.values(),
]


@pytest.mark.parametrize("sql", ACCEPTED)
def test_accepted(sql):
    checked = validate_select(sql)
    assert not checked.sql.rstrip().endswith(";")


REFUSED = [
    ("", "empty"),
    ("   ;  ", "empty"),
    ("DELETE FROM payments", "DELETE"),
    ("INSERT INTO payments (id) VALUES (1)", "INSERT"),
    ("UPDATE payments SET status = 'failed'", "UPDATE"),
    ("DROP TABLE payments", "DROP"),
    ("CREATE TABLE x (a int)", "CREATE"),
    ("ALTER TABLE payments ADD COLUMN x int", "ALTER"),
    ("TRUNCATE payments", "TRUNCATE"),
    ("SELECT 1 AS value; DELETE FROM payments", "more than one statement"),
    ("SELECT 1 AS value; SELECT 2", "more than one statement"),
    ("SELECT 1 AS value /* hi */; DROP TABLE payments", "more than one statement"),
    ("SELECT 1 AS value -- hi\n; DROP TABLE payments", "more than one statement"),
    ("SELECT 1 AS value /* /* */ ; DELETE FROM payments; -- */", "nested"),
    ("SELECT 1 AS value /* unterminated", "unterminated"),
    ("SELECT 'unterminated AS value", "unterminated"),
    (
        "WITH gone AS (DELETE FROM payments RETURNING id) SELECT COUNT(*) AS value FROM gone",
        "DELETE inside a WITH clause",
    ),
    (
        "WITH x AS (UPDATE payments SET status = 'ok' RETURNING id) SELECT 1 AS value FROM x",
        "UPDATE inside a WITH clause",
    ),
    (
        "WITH x AS (INSERT INTO payments (id) VALUES (1) RETURNING id) SELECT 1 AS value",
        "INSERT inside a WITH clause",
    ),
    ("WITH x AS (SELECT 1) DELETE FROM payments", "DELETE"),
    ("SELECT * INTO stolen FROM payments", "INTO"),
    ("SELECT * FROM payments FOR UPDATE", "FOR UPDATE"),
    ("SELECT * FROM payments FOR SHARE", "FOR UPDATE/FOR SHARE"),
    ("SELECT * FROM (SELECT * FROM payments FOR UPDATE) AS x", "FOR UPDATE"),
    ("SELECT 1 AS value UNION SELECT 2 FOR UPDATE", "FOR UPDATE"),
    ("SELECT pg_sleep(10)", "pg_sleep"),
    ("SELECT pg_catalog.pg_sleep(10)", "pg_sleep"),
    ('SELECT "pg_sleep"(1)', "pg_sleep"),
    ("SELECT * FROM pg_sleep(10)", "pg_sleep"),
    ("SELECT 1 AS value WHERE pg_sleep_for('1 minute') IS NULL", "pg_sleep_for"),
    ("SELECT set_config('default_transaction_read_only', 'off', false)", "set_config"),
    ("SELECT nextval('payments_id_seq') AS value", "nextval"),
    ("SELECT setval('payments_id_seq', 1) AS value", "setval"),
    ("SELECT lo_import('/etc/passwd') AS value", "lo_import"),
    ("SELECT * FROM dblink('host=x', 'DELETE FROM payments') AS t(a int)", "dblink"),
    ("SELECT query_to_xml('DELETE FROM payments', true, true, '')", "query_to_xml"),
    ("SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
    ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    ("SELECT load_extension('evil')", "load_extension"),
    ("SELECT txid_current() AS value", "txid_current"),
    ("PRAGMA query_only = 0", "PRAGMA"),
    ("SET default_transaction_read_only = off", "SET"),
    ("BEGIN", "not a SELECT"),
    ("COMMIT", "COMMIT"),
    ("VALUES (1)", "not a SELECT"),
    ("EXPLAIN ANALYZE DELETE FROM payments", "sqlglot cannot parse"),
    ("COPY payments TO '/tmp/stolen'", "COPY"),
    ("CALL something()", "sqlglot cannot parse"),
    ("SELECT $$a;b$$ AS value", "more than one statement"),
    ("SELECT 1 AS value FROM payments WHERE id = ?", "positional"),
    ("SELECT 1 AS value FROM payments WHERE id = $1", "named binds"),
    ("SELECT 1 AS value WHERE 1 = :sentinel_limit", "reserved"),
    ("SELEC 1", "not valid SQL"),
    ("SELECT 1 AS value " + " " * 20_000, "characters long"),
]


@pytest.mark.parametrize(("sql", "reason"), REFUSED)
def test_refused_with_a_reason(sql, reason):
    with pytest.raises(SqlGuardError) as caught:
        validate_select(sql)
    assert reason.lower() in str(caught.value).lower(), str(caught.value)


def test_binds_and_columns_are_reported():
    checked = validate_select(
        "SELECT method, COUNT(*) AS value, SUM(amount_cents) AS volume FROM payments "
        "WHERE created_at >= :start AND created_at < :end AND amount_cents > :min GROUP BY method;"
    )
    assert checked.binds == {"start", "end", "min"}
    assert checked.columns == ("method", "value", "volume")
    assert checked.sql.endswith("GROUP BY method")
    assert validate_select("SELECT * FROM payments").columns is None
