"""The benchmark's clients: v2 bodies that round-trip through parsers, and the socket client against a real server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from serving_client import (
    BINARY_HEADER,
    HttpConnection,
    HttpResponse,
    HttpSession,
    http_request,
    parse_v2_body,
    v1_body,
    v2_binary_body,
    v2_tensors,
    verify_v1,
    verify_v2_rest,
)
from serving_load import Phase, run_phase

DIGITS_INPUTS = [{"name": "image", "datatype": "FP32", "shape": [-1, 64]}]
RANKER_INPUTS = [{"name": "user_id", "datatype": "INT64", "shape": [-1]},
                 {"name": "k", "datatype": "INT64", "shape": [-1]},
                 {"name": "exclude_seen", "datatype": "BOOL", "shape": [-1]}]


# -- v2 bodies --------------------------------------------------------------------------------------


def test_a_one_input_model_gets_its_rows_as_one_tensor_that_round_trips():
    instances = [[float(i % 17) for i in range(64)], [1.0] * 64]
    tensors = v2_tensors(instances, DIGITS_INPUTS)
    body, length = v2_binary_body(tensors)
    header = json.loads(body[:length])
    assert header == {"inputs": [{"name": "image", "shape": [2, 64], "datatype": "FP32",
                                  "parameters": {"binary_data_size": 2 * 64 * 4}}],
                      "parameters": {"binary_data_output": True}}
    assert len(body) == length + 2 * 64 * 4
    parsed = parse_v2_body(body, length, key="inputs")
    assert parsed["image"].dtype == np.dtype("<f4")
    np.testing.assert_array_equal(parsed["image"], np.asarray(instances, dtype=np.float32))


def test_object_instances_fill_the_inputs_they_name_and_kserve_reads_the_same():
    from kserve.protocol.infer_type import InferRequest

    instances = [{"user_id": 7, "k": 10}, {"user_id": 599, "k": 10}]
    body, length = v2_binary_body(v2_tensors(instances, RANKER_INPUTS))
    ours = parse_v2_body(body, length, key="inputs")
    assert sorted(ours) == ["k", "user_id"]  # exclude_seen is optional and no instance names it
    theirs = {i.name: i.as_numpy() for i in InferRequest.from_bytes(body, length, "ranker").inputs}
    for name in ("user_id", "k"):
        np.testing.assert_array_equal(ours[name], [row[name] for row in instances])
        np.testing.assert_array_equal(theirs[name], ours[name])
        assert theirs[name].dtype == np.int64


def test_booleans_and_little_endian_bytes():
    tensors = v2_tensors([{"user_id": 1, "exclude_seen": False}, {"user_id": 258, "exclude_seen": True}],
                         RANKER_INPUTS)
    body, length = v2_binary_body(tensors, binary_output=False)
    assert "parameters" not in json.loads(body[:length])
    assert body[length:length + 16] == (1).to_bytes(8, "little") + (258).to_bytes(8, "little")
    assert body[length + 16:] == b"\x00\x01"


@pytest.mark.parametrize(("instances", "inputs", "message"), [
    ([[1.0] * 64], [], "declares no v2 inputs"),
    ([{"user_id": 1, "colour": "red"}], RANKER_INPUTS, "not declared v2 inputs"),
    ([{"user_id": 1}, {"k": 3}], RANKER_INPUTS, "in some instances only"),
    ([[1, 2]], RANKER_INPUTS, "3 declared inputs"),
    ([[1.0] * 63], DIGITS_INPUTS, "does not fit"),
])
def test_instances_that_do_not_map_to_the_inputs_are_refused(instances, inputs, message):
    with pytest.raises(ValueError, match=message):
        v2_tensors(instances, inputs)


def test_v2_answers_are_checked_row_by_row_in_binary_and_in_json():
    binary = (b'{"model_name":"m","outputs":[{"name":"label","shape":[1],"datatype":"INT64",'
              b'"parameters":{"binary_data_size":8}}]}')
    answer = HttpResponse(200, {BINARY_HEADER.lower(): str(len(binary))}, binary + (3).to_bytes(8, "little"))
    assert verify_v2_rest(answer, 1) is None
    assert verify_v2_rest(answer, 2) == "output shapes {'label': [1]} for 2 instances"
    plain = b'{"model_name":"m","outputs":[{"name":"label","shape":[1],"datatype":"INT64","data":[3]}]}'
    assert verify_v2_rest(HttpResponse(200, {}, plain), 1) is None
    assert verify_v2_rest(HttpResponse(400, {}, b'{"error":"no"}'), 1).startswith("status 400")


def test_v1_answers_need_one_prediction_per_instance():
    assert verify_v1(HttpResponse(200, {}, b'{"predictions":[{"label":1}]}'), 1) is None
    assert verify_v1(HttpResponse(200, {}, b'{"predictions":[]}'), 1) == "0 predictions for 1 instances"
    assert verify_v1(HttpResponse(200, {}, b"[1]"), 1).startswith("not a JSON object")
    assert v1_body([[1, 2]]) == b'{"instances":[[1,2]]}'


# -- the socket client against http.server ---------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the servers under test answer
    peers: list[tuple[str, int]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.peers.append(self.client_address)
        if self.path == "/bad":
            self._answer(400, b'{"error":"bad request"}')
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"predictions":', b"[1]}"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/close":
            self._answer(200, b'{"predictions":[1]}', close=True)
        else:
            self._answer(200, json.dumps({"predictions": json.loads(body)["instances"]}).encode())

    def _answer(self, status: int, body: bytes, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Handler.peers = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[:2]
    finally:
        httpd.shutdown()
        httpd.server_close()


def post(host: str, port: int, path: str, instances: list[object]) -> bytes:
    return http_request("POST", host, port, path, v1_body(instances), {"Content-Type": "application/json"})


def test_status_content_length_and_keep_alive(server):
    host, port = server
    connection = HttpConnection(host, port)
    answers = [connection.exchange(post(host, port, "/", [[i]])) for i in range(5)]
    connection.close()
    assert [a.status for a in answers] == [200] * 5
    assert [json.loads(a.body) for a in answers] == [{"predictions": [[i]]} for i in range(5)]
    assert answers[0].headers["content-type"] == "application/json"
    assert connection.connects == 1 and len(set(Handler.peers)) == 1


def test_chunked_answers_and_connection_close(server):
    host, port = server
    connection = HttpConnection(host, port)
    assert connection.exchange(post(host, port, "/chunked", [1])).body == b'{"predictions":[1]}'
    assert connection.exchange(post(host, port, "/close", [1])).status == 200
    assert connection.sock is None  # the server said close: the next request opens a new connection
    assert connection.exchange(post(host, port, "/", [1])).status == 200
    assert connection.connects == 2


def test_a_connection_the_server_dropped_while_idle_is_opened_again(server):
    host, port = server
    connection = HttpConnection(host, port)
    connection.exchange(post(host, port, "/", [1]))
    connection.sock.shutdown(2)  # as if the server had closed it between two requests
    assert connection.exchange(post(host, port, "/", [2])).status == 200
    assert connection.connects == 2


def test_a_phase_counts_every_status_and_verifies_a_sample(server):
    host, port = server
    good = run_phase(Phase(concurrency=2, instances=1, duration_s=0.3),
                     lambda i: HttpSession(host, port, post(host, port, "/", [[i]])),
                     verify=lambda answer: verify_v1(answer, 1))
    assert good.requests > 0 and good.errors == 0 and good.statuses == {"200": good.requests}
    assert good.verified == 2 and good.problems == []
    assert good.ips > 0 and good.p50_ms > 0 and good.client_thread_cpu_us_per_request > 0

    bad = run_phase(Phase(concurrency=1, instances=1, duration_s=0.2),
                    lambda i: HttpSession(host, port, post(host, port, "/bad", [1])),
                    verify=lambda answer: verify_v1(answer, 1))
    assert bad.requests > 0 and bad.errors == bad.requests and bad.statuses == {"400": bad.requests}
    assert bad.ips == 0 and bad.verified == 0


def test_a_wrong_answer_is_reported(server):
    host, port = server
    result = run_phase(Phase(concurrency=1, instances=1, duration_s=0.1),
                       lambda i: HttpSession(host, port, post(host, port, "/", [1, 2])),
                       verify=lambda answer: verify_v1(answer, 1))
    assert result.errors == 0 and result.problems == ["2 predictions for 1 instances"]


def test_nothing_listening_is_an_error_not_a_crash():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        result = run_phase(Phase(concurrency=1, instances=1, duration_s=0.1),
                           lambda i: HttpSession("127.0.0.1", port, post("127.0.0.1", port, "/", [1])))
    assert result.requests > 0 and result.statuses == {"0": result.requests}
