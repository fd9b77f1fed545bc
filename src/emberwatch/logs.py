"""Log output: readable lines by default, or one JSON object per line for log pipelines.

Log calls pass ids as ``extra={"source": …, "mention_id": …, "alert_id": …}``; the JSON
format turns them into fields, so a log search can follow one mention or alert.

What ``emberwatch run`` logs at INFO (its level) is what happened: polls with news
(new or updated mentions, alerts), alerts, deliveries, errors, reloads, and a heartbeat
line every ``heartbeat_interval``. Routine work (a poll that found nothing, a timer that
ran) logs at DEBUG, and the libraries' chatter is kept out (:func:`quiet_libraries`).
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


def quiet_libraries() -> None:
    """Keep the libraries' routine lines out of a long-running node's log, unless -vv.

    APScheduler logs every job run at INFO ("Running job …", "Job … executed
    successfully"): several lines a second with a poll tick of a quarter second. Alembic
    logs two lines each time a migration context is made. APScheduler's warnings go too:
    "skipped: maximum number of running instances reached" is a slow timer job left to
    finish (on purpose, ``max_instances=1``); its errors stay, and Alembic's warnings.
    """
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        return
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)
