"""Property-based API test: schemathesis generates requests from the service's own
OpenAPI document and sends them to a real `oxdeai serve`; no answer may be a 5xx, and
every answer must match the document (status, content type, body schema)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.conftest import PRO, Served

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402


@pytest.fixture(scope="module")
def served_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    service = Served(tmp_path_factory.mktemp("schema"))
    yield service
    stderr = service.stop()
    assert "Traceback" not in stderr, stderr


def test_no_generated_request_gets_a_server_error(served_module: Served) -> None:
    api = schemathesis.openapi.from_dict(served_module.http.get("/openapi.json").json())
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 7
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            for headers in (PRO, {}):  # a known credential, and none
                response = case.call(base_url=str(served_module.http.base_url), headers=headers)
                assert response.status_code < 500, (case, response.text)
                case.validate_response(response)

        run()
    assert served_module.metric("oxdeai_requests_rejected_total", status="401") >= 40  # it did send requests
