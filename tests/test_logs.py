import json
import logging

from emberwatch.logs import JsonFormatter


def test_json_logs_carry_ids_as_fields():
    record = logging.LogRecord(
        "emberwatch.pipeline", logging.INFO, "p", 1, "alert %s raised", (7,), None
    )
    record.source, record.alert_id = "acme-hn", 7
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "alert 7 raised" and entry["level"] == "info"
    assert entry["source"] == "acme-hn" and entry["alert_id"] == 7
    assert "mention_id" not in entry
