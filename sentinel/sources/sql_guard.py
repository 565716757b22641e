"""Load-time check that a signal's SQL is one read-only SELECT.

Two independent passes must both agree:

1. a small lexer finds statement separators and comments the way the
   databases do (so a ``;`` hidden from a parser by a comment trick is seen);
2. sqlglot parses the text under the PostgreSQL, SQLite and generic dialects;
   every dialect that can parse it must see exactly one SELECT (or set
   operation of SELECTs, ``WITH ... SELECT`` included) with no write, lock,
   ``INTO`` or side-effecting function anywhere in the tree.

The query still runs on a read-only connection inside a read-only
transaction, wrapped as a subquery (see ``sentinel.sources.sql``): this
module is the first line of defence, not the only one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

MAX_QUERY_LENGTH = 20_000
_BIND_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_BINDS = frozenset({"sentinel_limit"})  # used by the wrapper that runs the query
DIALECTS: tuple[str | None, ...] = ("postgres", "sqlite", None)


class SqlGuardError(ValueError):
    """The query is refused; the message says why. A ValueError so pydantic
    validators report it as a plain validation error on the field."""


@dataclass(frozen=True, slots=True)
class CheckedSelect:
    sql: str  # the query as given, trailing semicolons and blanks removed
    binds: frozenset[str]  # named binds used (":start" -> "start")
    columns: tuple[str, ...] | None  # output column names, None when not knowable (SELECT *)


# Statements and clauses that write, lock or change session state.
_FORBIDDEN_NODES: tuple[tuple[type[exp.Expression], str], ...] = tuple(
    (cls, what)
    for name, what in (
        ("Insert", "INSERT"),
        ("Update", "UPDATE"),
        ("Delete", "DELETE"),
        ("Merge", "MERGE"),
        ("Create", "CREATE"),
        ("Drop", "DROP"),
        ("Alter", "ALTER"),
        ("TruncateTable", "TRUNCATE"),
        ("Copy", "COPY"),
        ("Set", "SET"),
        ("Pragma", "PRAGMA"),
        ("Transaction", "BEGIN/START TRANSACTION"),
        ("Commit", "COMMIT"),
        ("Rollback", "ROLLBACK"),
        ("Use", "USE"),
        ("LoadData", "LOAD DATA"),
        ("Grant", "GRANT"),
        ("Command", "a statement sqlglot cannot parse"),
        ("Into", "SELECT ... INTO (it creates a table)"),
        ("Lock", "FOR UPDATE/FOR SHARE (it locks rows)"),
    )
    if (cls := getattr(exp, name, None)) is not None
)

# Functions that write, sleep, lock, signal other sessions, touch files or run
# SQL given as a string (which would bypass this check).
_FORBIDDEN_FUNCTIONS = frozenset(
    {
        "sleep",
        "benchmark",
        "set_config",
        "nextval",
        "setval",
        "txid_current",
        "pg_current_xact_id",
        "pg_notify",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_switch_wal",
        "pg_promote",
        "pg_export_snapshot",
        "pg_import_system_collations",
        "pg_log_backend_memory_contexts",
        "pg_start_backup",
        "pg_stop_backup",
        "pg_backup_start",
        "pg_backup_stop",
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "load_extension",
        "writefile",
        "readfile",
        "edit",
        "fts3_tokenizer",
    }
)
_FORBIDDEN_PREFIXES = (
    "pg_sleep",
    "pg_advisory_",
    "pg_try_advisory_",
    "pg_read_",
    "pg_ls_",
    "pg_stat_file",
    "pg_stat_reset",
    "pg_file_",
    "pg_logical_",
    "pg_replication_",
    "pg_create_",
    "pg_drop_",
    "pg_wal_",
    "lo_",
    "dblink",
)


def _forbidden_function(name: str) -> bool:
    name = name.lower()
    return name in _FORBIDDEN_FUNCTIONS or name.startswith(_FORBIDDEN_PREFIXES)


def validate_select(sql: str) -> CheckedSelect:
    """Accept one read-only SELECT or raise ``SqlGuardError`` saying why not."""
    if not isinstance(sql, str) or not sql.strip():
        raise SqlGuardError("the query is empty")
    if len(sql) > MAX_QUERY_LENGTH:
        raise SqlGuardError(f"the query is {len(sql)} characters long; at most {MAX_QUERY_LENGTH}")
    body = _lex_single_statement(sql)

    parsed: list[exp.Expression] = []
    errors: list[str] = []
    for dialect in DIALECTS:
        try:
            statements = [s for s in sqlglot.parse(body, read=dialect) if s is not None]
        except SqlglotError as exc:
            errors.append(str(exc).splitlines()[0])
            continue
        if len(statements) != 1:
            raise SqlGuardError(
                f"refused: {len(statements)} statements; only a single SELECT is allowed"
            )
        statement = statements[0]
        if not isinstance(statement, exp.Expression):
            raise SqlGuardError(f"refused: cannot read {type(statement).__name__}")
        _check_tree(statement)
        parsed.append(statement)
    if not parsed:
        raise SqlGuardError(f"refused: not valid SQL: {errors[-1] if errors else 'unparseable'}")

    binds = _binds(parsed[0])
    reserved = binds & RESERVED_BINDS
    if reserved:
        raise SqlGuardError(f"refused: bind name :{min(reserved)} is reserved by the sentinel")
    return CheckedSelect(sql=body, binds=binds, columns=_columns(parsed[0]))


def _unwrap(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Subquery):  # "((SELECT ...))"
        node = node.this
    return node


def _check_tree(root: exp.Expression) -> None:
    node = _unwrap(root)
    if not isinstance(node, exp.Select | exp.SetOperation):
        raise SqlGuardError(
            f"refused: {_statement_name(node)} is not a SELECT; only a single read-only "
            "SELECT (or WITH ... SELECT) is allowed"
        )
    for sub in root.walk():
        for cls, what in _FORBIDDEN_NODES:
            if isinstance(sub, cls):
                where = " inside a WITH clause" if sub.find_ancestor(exp.CTE) else ""
                raise SqlGuardError(f"refused: {what}{where}; the query must only read")
        if isinstance(sub, exp.Func):
            for name in _function_names(sub):
                if _forbidden_function(name):
                    raise SqlGuardError(
                        f"refused: function {name}() writes, sleeps, locks or runs other SQL"
                    )
        if isinstance(sub, exp.Parameter):
            raise SqlGuardError(
                f"refused: parameter {sub.sql()}; use named binds such as :start and :end"
            )
        if isinstance(sub, exp.Placeholder) and not _BIND_NAME.match(sub.name or ""):
            raise SqlGuardError("refused: positional '?' binds; use named binds :start and :end")


def _statement_name(node: exp.Expression) -> str:
    for cls, what in _FORBIDDEN_NODES:
        if isinstance(node, cls):
            return what
    return type(node).__name__.upper()


def _function_names(func: exp.Func) -> list[str]:
    if isinstance(func, exp.Anonymous):
        return [func.name]
    return [func.key, *type(func).sql_names()]


def _binds(tree: exp.Expression) -> frozenset[str]:
    return frozenset(p.name for p in tree.find_all(exp.Placeholder) if _BIND_NAME.match(p.name))


def _columns(tree: exp.Expression) -> tuple[str, ...] | None:
    node: Any = _unwrap(tree)  # sqlglot types a set operation's sides loosely
    while isinstance(node, exp.SetOperation):  # a UNION's columns are its first SELECT's
        node = node.left
    if not isinstance(node, exp.Select):
        return None
    if any(
        isinstance(e, exp.Star) or (isinstance(e, exp.Column) and e.is_star)
        for e in node.expressions
    ):
        return None
    return tuple(node.named_selects)


def _lex_single_statement(sql: str) -> str:
    """Strip trailing semicolons; refuse anything after a ``;`` and nested block
    comments (PostgreSQL nests them, SQLite does not, so the two would read a
    different statement out of the same text)."""
    i, n = 0, len(sql)
    end_of_statement: int | None = None
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            close = sql.find(c, i + 1)
            while close != -1 and close + 1 < n and sql[close + 1] == c:  # '' escapes a quote
                close = sql.find(c, close + 2)
            if close == -1:
                raise SqlGuardError("refused: unterminated quoted string or identifier")
            i = close + 1
            continue
        if sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline == -1 else newline + 1
            continue
        if sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            if close == -1:
                raise SqlGuardError("refused: unterminated /* comment")
            if "/*" in sql[i + 2 : close]:
                raise SqlGuardError(
                    "refused: nested /* comments (databases disagree on where they end)"
                )
            i = close + 2
            continue
        if c == ";":
            if end_of_statement is None:
                end_of_statement = i
        elif not c.isspace() and end_of_statement is not None:
            raise SqlGuardError(
                "refused: more than one statement (text after ';'); only a single SELECT is allowed"
            )
        i += 1
    body = sql if end_of_statement is None else sql[:end_of_statement]
    if not body.strip():
        raise SqlGuardError("the query is empty")
    return body.rstrip()
