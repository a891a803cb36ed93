"""SQL capture: an execute wrapper on every connection, and a cursor proxy
that keeps the rows the code actually fetched."""

from __future__ import annotations

import logging
from typing import Any

from ..trace import encode_value
from .orm import KEEPS_ROWS, builds_instances, run_backing_reads
from .recorder import Recorder, current, fault
from .redact import DB_SECRET_MIN, REDACTED, collect, is_secret_key

logger = logging.getLogger("kolo_django")


def statement_kind(sql: str) -> str:
    head = sql.lstrip(" (\n\t")[:12].split(None, 1)
    return head[0].upper() if head else ""


def execute_wrapper(
    execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    recorder = current()
    if recorder is None or recorder.mode is not None:
        return execute(sql, params, many, context)
    if recorder.backing_reads and statement_kind(sql) not in KEEPS_ROWS:
        # The rows behind earlier counts, before this statement may change them.
        try:
            run_backing_reads(recorder)
        except Exception:
            fault("backing rows", recorder, "backing rows")
    connection = context["connection"]
    started = recorder.elapsed_ms()
    error = None
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        try:
            _record(recorder, connection, context["cursor"], sql, params, many, started, error)
        except Exception:  # the user's query must never fail because of us
            fault("sql", recorder, "a query")


def _record(
    recorder: Recorder,
    connection: Any,
    cursor: Any,
    sql: str,
    params: Any,
    many: bool,
    started: float,
    error: str | None,
) -> None:
    kind = statement_kind(sql)
    origin = "orm" if recorder.orm_depth else "raw"
    event: dict[str, Any] = {
        "type": "sql",
        "alias": connection.alias,
        "vendor": connection.vendor,
        "sql": sql,
        "params": _encode_params(params, many, recorder),
        "many": many,
        "statement": kind,
        "origin": origin,
        "duration_ms": round(recorder.elapsed_ms() - started, 3),
    }
    if error:
        event["error"] = error
    real_cursor = cursor.cursor
    if isinstance(real_cursor, RowRecordingCursor):
        real_cursor = real_cursor.wrapped
    if error is None:
        try:
            event["rowcount"] = real_cursor.rowcount
        except Exception:
            pass
        description = getattr(real_cursor, "description", None)
        if description:
            event["columns"] = [col[0] for col in description]
            event["secret_columns"] = [
                i for i, name in enumerate(event["columns"]) if is_secret_key(str(name))
            ]
            if origin == "orm" and builds_instances(recorder.orm_compiler):
                # The same values are recorded as this query's orm rows.
                event["rows_in"] = "orm"
            else:
                event["rows"] = []
            event["rows_read"] = 0
            cursor.cursor = RowRecordingCursor(real_cursor, event, recorder)
        if kind == "INSERT" and not description:
            lastrowid = getattr(real_cursor, "lastrowid", None)
            if lastrowid:
                event["lastrowid"] = lastrowid
    recorder.sql_count += 1
    recorder.orm_groups.clear()
    recorder.add(event)
    if error is None and origin == "raw" and kind in ("SELECT", "WITH") and description:
        from .orm import record_raw_backing_rows

        record_raw_backing_rows(recorder, connection.alias, sql)


def _encode_params(params: Any, many: bool, recorder: Recorder) -> Any:
    if params is None:
        return None
    limit = recorder.config["MAX_ROWS_PER_QUERY"]
    if many:
        params = list(params)
        encoded = [_encode_one(p) for p in params[:limit]]
        return (
            {"batches": encoded, "batches_total": len(params)} if len(params) > limit else encoded
        )
    return _encode_one(params)


def _encode_one(params: Any) -> Any:
    if isinstance(params, dict):
        return {str(k): encode_value(v) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return [encode_value(v) for v in params]
    return encode_value(params)


class RowRecordingCursor:
    """Stands in for the DB-API cursor and copies fetched rows into the event."""

    def __init__(self, wrapped: Any, event: dict[str, Any], recorder: Recorder) -> None:
        self.wrapped = wrapped
        self.event = event
        self.recorder = recorder
        self.limit = recorder.config["MAX_ROWS_PER_QUERY"]
        self.counts_only = "rows_in" in event

    def _keep(self, rows: Any) -> None:
        if self.counts_only:
            # Rows that become model instances (the ORM's chunks): counted.
            self.event["rows_read"] += len(rows)
            return
        try:
            with self.recorder.own_work():
                self._copy(rows)
        except Exception:  # the user's fetch must never fail because of us
            fault("sql", self.recorder, "fetched rows")

    def _copy(self, rows: Any) -> None:
        if not rows:
            return
        event = self.event
        kept = event["rows"]
        room = self.limit - len(kept)
        if room > 0:
            secret = event.get("secret_columns") or ()
            for row in rows[:room]:
                encoded = [encode_value(value) for value in row]
                for i in secret:
                    if i < len(encoded) and encoded[i] is not None:
                        collect(row[i], self.recorder.secrets, DB_SECRET_MIN)
                        encoded[i] = REDACTED
                kept.append(encoded)
        event["rows_read"] += len(rows)
        if event["rows_read"] > len(kept):
            event["rows_truncated"] = True

    def fetchone(self) -> Any:
        row = self.wrapped.fetchone()
        if row is not None:
            self._keep([row])
        return row

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        rows = self.wrapped.fetchmany(*args, **kwargs)
        self._keep(rows)
        return rows

    def fetchall(self) -> Any:
        rows = self.wrapped.fetchall()
        self._keep(rows)
        return rows

    def __iter__(self) -> Any:
        for row in self.wrapped:
            self._keep([row])
            yield row

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("wrapped", "event", "recorder", "limit", "counts_only"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.wrapped, name, value)


def install_on_connection(sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
    """``connection_created`` receiver: put the wrapper first, so a user's own
    ``execute_wrapper()`` block pops its wrapper, not ours."""
    if connection is not None and execute_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, execute_wrapper)
