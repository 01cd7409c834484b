import json
import logging

from shared.logs import JsonFormatter, job_id_var, request_id_var


def test_log_lines_are_json_with_the_request_and_job_they_belong_to() -> None:
    record = logging.LogRecord("shared.bus", logging.WARNING, __file__, 1, "retrying %s", ("x",), None)
    formatter = JsonFormatter("catalog")
    assert "request_id" not in json.loads(formatter.format(record))
    request_token, job_token = request_id_var.set("req-1"), job_id_var.set("job-9")
    try:
        line = json.loads(formatter.format(record))
    finally:
        request_id_var.reset(request_token)
        job_id_var.reset(job_token)
    assert (line["service"], line["level"], line["message"], line["request_id"], line["job_id"]) == (
        "catalog", "WARNING", "retrying x", "req-1", "job-9")
