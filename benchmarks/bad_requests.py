"""What ``kgrec serve`` answers to each bad request (prints a Markdown table).

    .venv/bin/python benchmarks/bad_requests.py RUN_DIR

Starts the server on 127.0.0.1 over RUN_DIR (with a bearer token for the write endpoints, a
20,000-byte body limit and an exposure log in a temporary directory), sends every case of
``tests/integration/serve_cases.py`` (and :data:`MORE`: an unknown ``ranking``) and prints
the status code and the JSON body it got, flagging any answer that differs from the
expected status. Also sends one feedback event for an item that the request did not show.
Not a test: nothing here is asserted.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.serve_cases import BAD, concrete  # noqa: E402

MORE = [  # cases beyond serve_cases.BAD (same layout)
    ("unknown ranking", "/recommend", {"user_id": "USER0", "ranking": "chronological"}, {}, 422, "invalid"),
]

TOKEN = "benchmark-token-0123456789"


def main() -> None:
    from kgrec.serve.launch import call, start

    run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/movielens-100k-kgrec")
    from kgrec.graphs.schema import load_schema

    ids = json.loads((run / "idmaps.json").read_text())
    schema = load_schema(run / "schema.yaml", name=json.loads((run / "data.json").read_text())["schema"])
    users, items = ids[schema.user_type], ids[schema.item_type]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "token").write_text(TOKEN)
        server = start(run, ["--log", f"{tmp}/log", "--token-file", f"{tmp}/token", "--max-body", "20000"], work=tmp)
        try:
            rows = []
            for name, path, body, headers, status, _ in BAD + MORE:
                body, headers = concrete(body, headers, user=str(users[0]), token=TOKEN)
                got, reply = call(server.url + path, body, headers=headers)
                rows.append((name, path, got, status, reply))
            _, shown = call(server.url + "/recommend", {"user_id": str(users[0]), "k": 2})
            other = next(str(i) for i in items if str(i) not in {x["item_id"] for x in shown["items"]})
            got, reply = call(server.url + "/feedback", {"request_id": shown["request_id"], "item_id": other},
                              headers={"authorization": f"Bearer {TOKEN}"})
            rows.append(("feedback for an item not shown", "/feedback", got, 422, reply))
        finally:
            server.stop()
    print(f"kgrec serve {run}: each bad request, its status and body\n")
    print("| case | endpoint | status | body |\n|---|---|---|---|")
    for name, path, got, want, reply in rows:
        flag = "" if got == want else f" (expected {want})"
        print(f"| {name} | `{path}` | {got}{flag} | `{json.dumps(reply)}` |")


if __name__ == "__main__":
    main()
