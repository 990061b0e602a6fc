"""A ClickHouse HTTP interface on loopback over chDB, for tests that run core's SQL on a given
ClickHouse release without a server (no registry this project's CI reaches serves a recent one).

It speaks what @clickhouse/client sends: POST / (or GET) with the SQL in the body, or in the
`query` URL parameter followed by the data in the body (inserts; a RowBinary body is read by the
engine from a scratch file, typed by the target columns, or by the structure of the `input()` an
INSERT ... SELECT reads it through); settings as URL parameters,
applied with SET before the statement, so a setting the engine lacks fails as on a server;
`param_<name>` query parameters; `database`; `/ping`. Errors answer 500 with ClickHouse's error
text and X-ClickHouse-Exception-Code, as a server does. One engine, one statement at a time.

Usage: python http_stand_in.py DATA_DIR   (prints `listening PORT`, serves until stdin closes)
"""

import json
import os
import re
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from chdb import session

# URL parameters of the HTTP interface that are not settings.
NOT_SETTINGS = {"query", "database", "query_id", "session_id", "session_timeout", "session_check",
                "default_format", "user", "password", "role", "quota_key", "compress", "decompress"}
SUMMARY = json.dumps({k: "0" for k in ("read_rows", "read_bytes", "written_rows", "written_bytes",
                                        "total_rows_to_read", "result_rows", "result_bytes", "elapsed_ns")})
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# String literals, quoted identifiers and comments, removed before looking for a second statement.
NOT_CODE = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`|--[^\n]*|/\*.*?\*/", re.S)


def several_statements(sql: str) -> bool:
    """A server's HTTP interface takes one statement per request (chDB would run several)."""
    code = NOT_CODE.sub("", sql)
    return ";" in code.rstrip().rstrip(";")

engine = session.Session(sys.argv[1])
lock = threading.Lock()


# An insert whose data is binary (RowBinary): the body cannot ride in the SQL text, so the engine
# reads it from a scratch file, with the target columns' types as the file's structure.
BINARY_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+([\w.`]+)\s*\(([^)]*)\)\s*(SETTINGS\s.*?)?\s*FORMAT\s+RowBinary\s*$", re.I | re.S)


def binary_insert_sql(table: str, columns: str, settings: str | None, path: str) -> str:
    described = engine.query(f"DESCRIBE TABLE {table}", "TabSeparatedRaw").bytes().decode("utf-8")
    types = {line.split("\t")[0]: line.split("\t")[1] for line in described.splitlines() if line}
    names = [c.strip().strip("`") for c in columns.split(",")]
    structure = ", ".join(f"{n} {types[n]}" for n in names)
    return f"INSERT INTO {table} ({columns}) {settings or ''} SELECT * FROM file({quote(path)}, RowBinary, {quote(structure)})"


# An INSERT ... SELECT ... FROM input('<structure>') ... FORMAT RowBinary: the server reads the body
# as the input() table. Emulated the same way: the body goes to a scratch file that file() reads with
# that structure, and the FORMAT clause (which names the body's format) is dropped.
INPUT_INSERT = re.compile(r"^(\s*INSERT\s+INTO\s.*?)\binput\(\s*('(?:[^'\\]|\\.)*')\s*\)(.*?)\s*FORMAT\s+RowBinary\s*$", re.I | re.S)


def input_insert_sql(match: re.Match, path: str) -> str:
    return f"{match.group(1)}file({quote(path)}, RowBinary, {match.group(2)}){match.group(3)}"


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.handle_query(b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self.read_chunked()
        self.handle_query(body)

    def read_chunked(self) -> bytes:
        out = b""
        while True:
            size = int(self.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def handle_query(self, body: bytes) -> None:
        url = urlsplit(self.path)
        if url.path == "/ping":
            return self.reply(200, b"Ok.\n")
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        statement = params["query"] if "query" in params else body.decode("utf-8")
        # input() first: an INSERT ... SELECT FROM input() into a table with a column list would also
        # fit the plain binary insert's pattern.
        from_input = INPUT_INSERT.match(statement) if "query" in params else None
        binary = BINARY_INSERT.match(statement) if "query" in params and not from_input else None
        scratch = None
        if binary or from_input:
            fd, scratch = tempfile.mkstemp(suffix=".bin", dir=sys.argv[1])
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            sql = ""
        else:
            sql = statement + "\n" + body.decode("utf-8") if "query" in params else statement
        if several_statements(statement):
            return self.reply(500, b"Code: 62. DB::Exception: Syntax error (Multi-statements are not allowed). (SYNTAX_ERROR)\n",
                              {"X-ClickHouse-Exception-Code": "62"})
        query_params = {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}
        settings = {k: v for k, v in params.items() if k not in NOT_SETTINGS and not k.startswith("param_")}
        try:
            with lock:
                if params.get("database"):
                    engine.query("USE " + params["database"])
                for name, value in settings.items():
                    if not SETTING_NAME.match(name):
                        raise RuntimeError(f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)")
                    engine.query(f"SET {name} = {quote(value)}")
                if binary:
                    sql = binary_insert_sql(binary.group(1), binary.group(2), binary.group(3), scratch)
                elif from_input:
                    sql = input_insert_sql(from_input, scratch)
                result = engine.query(sql, "TabSeparated", params=query_params) if query_params else engine.query(sql, "TabSeparated")
            data = result.bytes() if result is not None else b""
        except Exception as err:  # chDB raises the engine's error text
            if scratch:
                os.unlink(scratch)
            message = str(err)
            code = re.search(r"Code: (\d+)", message)
            return self.reply(500, (message + "\n").encode("utf-8"),
                              {"X-ClickHouse-Exception-Code": code.group(1) if code else "1001"})
        if scratch:
            os.unlink(scratch)
        self.reply(200, data, {"X-ClickHouse-Summary": SUMMARY})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"listening {server.server_address[1]}", flush=True)
sys.stdin.read()  # the test owns the process: closing stdin (or its exit) stops the server
server.shutdown()
