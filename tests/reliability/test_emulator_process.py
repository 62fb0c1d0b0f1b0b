"""The emulator process the reliability suites drive keeps answering however much it writes to stderr."""

from __future__ import annotations

import concurrent.futures
import socket

from tests.reliability._support import EmulatorProcess

#: Each malformed request makes uvicorn log one ~50-byte warning; 2,500 of them are well past the
#: 64 kB a pipe holds, the point where an emulator whose stderr nobody read blocked (issue 18).
MALFORMED_REQUESTS = 2500


def _malformed_request(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


def test_an_emulator_that_logs_past_a_pipes_capacity_still_answers() -> None:
    with EmulatorProcess("--seed", "1") as emulator:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(_malformed_request, [emulator.port] * MALFORMED_REQUESTS))
        assert all(a.startswith(b"HTTP/1.1 400") for a in answers), {a[:40] for a in answers}
        stats = emulator.stats()  # within its 10 s timeout: the emulator is not blocked on its log
        assert stats["requests_total"] == 0
        log = emulator.log()
    assert log.count("Invalid HTTP request received.") == MALFORMED_REQUESTS
    assert len(log.encode()) > 65536
