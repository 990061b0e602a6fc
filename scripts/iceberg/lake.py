"""Reads and changes the raw-event lake the way a data engineer does, with pyiceberg.

    lake.py scan --root <lake dir> [--start-ms N --end-ms N]    rows as JSON (times in epoch ms)
    lake.py scan --rest <catalog url> ...                        the same through a REST catalog
    lake.py add-column --root <lake dir> --name <column>         schema evolution: optional string column
    lake.py rest-server --root <lake dir>                        an Iceberg REST catalog on 127.0.0.1
                                                                 (pyiceberg's SqlCatalog behind it)

Used by core's lake tests; installed by scripts/iceberg/ensure.sh.
"""
import argparse
import datetime
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

from pyiceberg.catalog.sql import SqlCatalog

TABLE = "adc.events_raw"


def sql_catalog(root: str) -> SqlCatalog:
    os.makedirs(root, exist_ok=True)
    return SqlCatalog("adc", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}/warehouse")


def load_catalog(args):
    if args.rest:
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog("rest", uri=args.rest)
    return sql_catalog(args.root)


def plain(v):
    if isinstance(v, datetime.datetime):
        return int(v.timestamp() * 1000)
    return v


def scan(args):
    table = load_catalog(args).load_table(args.table)
    row_filter = "True"
    if args.start_ms is not None:
        iso = lambda ms: datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat()
        row_filter = f"ts >= '{iso(args.start_ms)}' AND ts < '{iso(args.end_ms)}'"
    if args.filter:
        row_filter = args.filter if row_filter == "True" else f"({row_filter}) AND ({args.filter})"
    scan = table.scan(row_filter=row_filter)
    arrow = scan.to_arrow()
    rows = [{k: plain(v) for k, v in r.items()} for r in arrow.to_pylist()]
    out = {
        "rows": rows,
        "columns": [f.name for f in table.schema().fields],
        "spec": [{"name": f.name, "transform": str(f.transform)} for f in table.spec().fields],
        "snapshots": [dict(s.summary.additional_properties, operation=s.summary.operation.value) for s in table.snapshots()],
        "location": table.location(),
        "files": len(list(scan.plan_files())),
        "total_files": len(list(table.scan().plan_files())),
    }
    json.dump(out, sys.stdout)


def add_column(args):
    from pyiceberg.types import StringType

    table = sql_catalog(args.root).load_table(args.table)
    with table.update_schema() as update:
        update.add_column(args.name, StringType())


def rest_server(args):
    """A minimal Iceberg REST catalog: the routes a writer and a reader need, shapes from pyiceberg's models."""
    from pyiceberg.catalog.rest import CreateTableRequest
    from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
    from pyiceberg.table import CommitTableRequest

    catalog = sql_catalog(args.root)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, status, body):
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, kind, message):
            self.reply(status, {"error": {"message": message, "type": kind, "code": status}})

        def table_response(self, table):
            return '{"metadata-location": %s, "metadata": %s, "config": {}}' % (json.dumps(table.metadata_location), table.metadata.model_dump_json())

        def parts(self):
            return [unquote(p) for p in urlparse(self.path).path.strip("/").split("/")]

        def body(self):
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def do_GET(self):
            p = self.parts()
            if p == ["v1", "config"]:
                return self.reply(200, {"defaults": {}, "overrides": {}})
            if len(p) == 5 and p[:2] == ["v1", "namespaces"] and p[3] == "tables":
                try:
                    return self.reply(200, self.table_response(catalog.load_table((*p[2].split("\x1f"), p[4]))))
                except NoSuchTableError as e:
                    return self.error(404, "NoSuchTableException", str(e))
            self.error(404, "NotFound", self.path)

        def do_POST(self):
            p = self.parts()
            body = self.body()
            if p == ["v1", "namespaces"]:
                req = json.loads(body)
                try:
                    catalog.create_namespace(tuple(req["namespace"]), req.get("properties") or {})
                except NamespaceAlreadyExistsError as e:
                    return self.error(409, "AlreadyExistsException", str(e))
                return self.reply(200, {"namespace": req["namespace"], "properties": req.get("properties") or {}})
            if len(p) == 4 and p[:2] == ["v1", "namespaces"] and p[3] == "tables":
                req = CreateTableRequest.model_validate_json(body)
                try:
                    table = catalog.create_table(
                        (*p[2].split("\x1f"), req.name), req.table_schema, location=req.location,
                        partition_spec=req.partition_spec, properties=req.properties,
                    )
                except TableAlreadyExistsError as e:
                    return self.error(409, "AlreadyExistsException", str(e))
                return self.reply(200, self.table_response(table))
            if len(p) == 5 and p[:2] == ["v1", "namespaces"] and p[3] == "tables":
                req = CommitTableRequest.model_validate_json(body)
                try:
                    table = catalog.load_table((*p[2].split("\x1f"), p[4]))
                    res = catalog.commit_table(table, tuple(req.requirements), tuple(req.updates))
                except NoSuchTableError as e:
                    return self.error(404, "NoSuchTableException", str(e))
                except CommitFailedException as e:
                    return self.error(409, "CommitFailedException", str(e))
                return self.reply(200, '{"metadata-location": %s, "metadata": %s}' % (json.dumps(res.metadata_location), res.metadata.model_dump_json()))
            self.error(404, "NotFound", self.path)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("scan", "add-column", "rest-server"):
        s = sub.add_parser(name)
        s.add_argument("--root")
        s.add_argument("--rest")
        s.add_argument("--table", default=TABLE)
        s.add_argument("--start-ms", type=int)
        s.add_argument("--end-ms", type=int)
        s.add_argument("--name")
        s.add_argument("--filter")
        s.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    {"scan": scan, "add-column": add_column, "rest-server": rest_server}[args.cmd](args)


if __name__ == "__main__":
    main()
