"""Log output: readable lines by default, or one JSON object per line for log pipelines.

Log calls pass ids as ``extra={"source": …, "mention_id": …, "alert_id": …}``; the JSON
format turns them into fields, so a log search can follow one mention or alert.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

FIELDS = ("source", "mention_id", "alert_id", "incident_id", "delivery_id", "channel")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: int, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO, and some APIs (Google's legacy Places API)
    # take their key in the URL: keep those lines out of our logs.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
