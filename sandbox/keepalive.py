"""HTTP/1.1 keep-alive for the sandbox's werkzeug servers.

werkzeug's development server answers every request with ``Connection: close`` (its
``run_wsgi`` cannot drain a request body without reading into the next request). A benchmark
against such a server mostly measures TCP setup. This handler serves the same WSGI app but
keeps the connection open: the request body is read whole first (sandbox bodies are small
forms and JSON), every response the sandbox makes carries ``Content-Length``, and a response
without one (or a failure mid-body, or a fault that drops the connection) closes it instead.
"""

from __future__ import annotations

import io

from werkzeug.serving import WSGIRequestHandler

IDLE_SECONDS = 30  # an idle keep-alive connection is closed after this long


class KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    # Headers and body leave in separate writes; with Nagle's algorithm on a kept-alive connection
    # the body of a small response waits ~40 ms for the client's delayed ACK, a latency no real
    # API front end adds (and which made the budget look idle in the benchmarks).
    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        if environ.get("wsgi.input_terminated"):  # a chunked request body: read it, then close
            self.close_connection = True
        else:
            length = int(self.headers.get("Content-Length") or 0)
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(length) if length > 0 else b"")
        state: dict = {}

        def start_response(status, headers, exc_info=None):  # noqa: ANN001, ANN202
            if exc_info and state.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = status, headers
            return write

        def send_head() -> None:
            code, _, msg = state["status"].partition(" ")
            self.send_response(int(code), msg)
            keys = set()
            for key, value in state["headers"]:
                self.send_header(key, value)
                keys.add(key.lower())
            bodiless = environ["REQUEST_METHOD"] == "HEAD" or int(code) in (204, 304) or 100 <= int(code) < 200
            if "content-length" not in keys and not bodiless:
                self.send_header("Connection", "close")  # the end of the body is the end of the connection
            self.end_headers()
            state["sent"] = True

        def write(data: bytes) -> None:
            if not state.get("sent"):
                send_head()
            if data:
                self.wfile.write(data)

        body = self.server.app(environ, start_response)
        try:
            for chunk in body:
                write(chunk)
            if not state.get("sent"):
                send_head()
            self.wfile.flush()
        except (TimeoutError, ConnectionError) as e:
            self.close_connection = True
            self.connection_dropped(e, environ)
        except Exception:
            self.close_connection = True
            if not state.get("sent"):
                self.send_error(500)
            self.server.log("error", "Error on request %s", self.requestline)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
