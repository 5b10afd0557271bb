"""Runs burnrate's generated ClickHouse schema and queries on a current ClickHouse release.

The Rust test suite runs this script to check that the SQL the ClickHouse ledger generates
(which keeps to what ClickHouse 18.16 understands) also runs on today's ClickHouse. The engine
is chdb: ClickHouse embedded in-process, so no server is needed.

Usage: python chdb_check.py PLAN.json

PLAN.json is {"statements": ["SQL", ...], "queries": [{"name": "...", "sql": "SELECT ..."}]}.
The statements run in order in one fresh session (an `INSERT ... FORMAT JSONEachRow` may carry
its rows inline, after a newline); then each query runs with `FORMAT JSONCompact` appended
unless it already ends with a FORMAT clause. Prints one JSON object to stdout:

    {"version": "<SELECT version()>", "results": {"<name>": <JSONCompact "data" array>, ...}}

(a query naming its own FORMAT gives the answer's text instead of the "data" array)

and exits 0. The first statement or query that fails prints its first 300 characters and
ClickHouse's error to stderr and exits 1.
"""

import decimal
import json
import re
import sys
import tempfile

from chdb import session

# Settings for the whole session, as `SET` statements. They exist on 18.16 too, so the Rust
# client can send the same ones and read the same answers from either release:
# - output_format_json_quote_64bit_integers=1: 18.16 writes (U)Int64 as JSON strings ("5"),
#   in arrays too; ClickHouse 25.8 made unquoted numbers the default.
# 18.16's `allow_experimental_low_cardinality_type=1` is not set: current releases no longer
# know it and reject it (UNKNOWN_SETTING); they need no setting for `LowCardinality` columns.
SETTINGS = {"output_format_json_quote_64bit_integers": 1}

# A query that already names its output format, e.g. `... FORMAT JSONCompact`.
ENDS_WITH_FORMAT = re.compile(r"\bFORMAT\s+\w+\s*;?\s*$", re.IGNORECASE)


def fail(what, sql, error):
    """Reports the failed statement or query and ClickHouse's error, and exits 1."""
    print(f"{what} failed: {sql.strip()[:300]}\n{error}", file=sys.stderr)
    sys.exit(1)


def data(sess, sql):
    """The "data" array of `sql`'s JSONCompact answer, or the answer's text when `sql` names
    its own format (the caller parses it, e.g. TabSeparated)."""
    sql = sql.strip().rstrip(";").rstrip()
    if ENDS_WITH_FORMAT.search(sql):
        return sess.query(sql, "TabSeparated").bytes().decode("utf-8")
    sql += "\nFORMAT JSONCompact"
    # The FORMAT clause in the text decides the output format; fmt only names the default.
    answer = sess.query(sql, "JSONCompact").bytes()
    # Numbers with a fraction or exponent stay as ClickHouse wrote them (a Decimal(38, 9) has
    # more digits than a float holds); integers are exact in Python anyway.
    return json.loads(answer, parse_float=decimal.Decimal)["data"]


def to_json(value):
    """`value` as JSON text, decimals written as parsed."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(to_json, value)) + "]"
    if isinstance(value, dict):  # named tuples and maps
        return "{" + ", ".join(f"{json.dumps(k)}: {to_json(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python chdb_check.py PLAN.json")
    with open(sys.argv[1], encoding="utf-8") as file:
        plan = json.load(file)
    # A session on a fresh temporary directory: MergeTree tables keep their parts there, and
    # nothing outlives the check. (Session() without a path would use its own temporary
    # directory too; naming it keeps the cleanup in our hands.)
    with tempfile.TemporaryDirectory(prefix="burnrate-chdb-") as path:
        sess = session.Session(path)
        try:
            for name, value in SETTINGS.items():
                sess.query(f"SET {name} = {value}")
            for sql in plan["statements"]:
                try:
                    sess.query(sql)
                except Exception as error:  # chdb raises ChdbError (a RuntimeError)
                    fail("statement", sql, error)
            version = data(sess, "SELECT version()")[0][0]
            results = {}
            for query in plan["queries"]:
                try:
                    results[query["name"]] = data(sess, query["sql"])
                except Exception as error:
                    fail(f"query {query['name']!r}", query["sql"], error)
        finally:
            sess.close()
    print(to_json({"version": version, "results": results}))


if __name__ == "__main__":
    main()
