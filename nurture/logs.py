"""Log output for the long-running commands: rich text for people, JSON for machines.

`NURTURE_LOG_FORMAT=json` makes `run`, `serve`, `scheduler` and the worker
processes write one JSON object per line (`ts`, `level`, `logger`, `message`,
then any `extra=` fields and the traceback), which log collectors index
without parsing prose. Dramatiq's CLI configures logging in each worker
process itself, so `engine.actors` calls `configure_nurture_json` on import:
the `nurture.*` loggers then write JSON there too, whatever Dramatiq set up.

Log calls never carry personal data: contacts appear by id, sends by send id,
and an address, where one is unavoidable, through `transports.mask_address`
(`tests/web/test_logs.py` checks sends, failures and events).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

#: Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


def json_handler(stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    return handler


def configure(log_format: str, *, text_handler: logging.Handler | None = None) -> None:
    """Configure the root logger at INFO for a long-running command.

    `text_handler` is the people's handler (the CLI's rich one); JSON ignores it.
    """
    if log_format == "json":
        handler = json_handler()
    else:
        handler = text_handler or logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # uvicorn's loggers have handlers of their own: route them through ours.
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # Alembic announces each plugin it sets up at INFO on every start: noise to an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def configure_nurture_json(stream: TextIO | None = None) -> None:
    """JSON for the `nurture.*` loggers only, leaving the host's own (Dramatiq's) alone."""
    logger = logging.getLogger("nurture")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    logger.addHandler(json_handler(stream))
    logger.setLevel(logging.INFO)
    logger.propagate = False
