"""Search service + client: same answers as the local engine, 4xx for malformed input, retries and a clear
error when the service is down."""

import http.client
import socket
import threading
import time

import numpy as np
import orjson
import pytest

from search_sim import SearchEngine, open_engine
from search_sim.client import SearchClient, SearchRequestError, SearchServiceUnavailable
from search_sim.service import MAX_BATCH, MAX_BODY_BYTES, make_server


def _start(index, port=0):
    server, _ = make_server(index, port=port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture(scope="module")
def service(engine_catalog_index):
    server = _start(engine_catalog_index)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def local(engine_catalog_index):
    return SearchEngine.load(engine_catalog_index)


def test_client_matches_local_engine(service, local):
    client = open_engine(service)
    assert isinstance(client, SearchClient)
    queries = ["ergonomic mouse", "wd19tb", "sleep", "zebra"]
    for remote, mine in zip(client.search_many(queries, k=3), local.search_many(queries, k=3), strict=True):
        assert remote.item_ids == mine.item_ids and remote.recall_size == mine.recall_size
        np.testing.assert_allclose(remote.scores, mine.scores)
    sets = [["ergonomic mouse", "logitech trackball"], ["sleep"]]
    assert client.recall_size_many(sets) == local.recall_size_many(sets)
    assert client.recall_size(sets[0]) == local.recall_size(sets[0])
    assert client.merged(sets[0], k=3).item_ids == local.merged(sets[0], k=3).item_ids
    assert (
        client.merged(sets[0], k=3, policy="interleave").item_ids
        == local.merged(sets[0], k=3, policy="interleave").item_ids
    )
    assert client.search("sleep", minimum_should_match="1").recall_size == local.search("sleep").recall_size
    assert client.items(["m1"]) == local.items(["m1"])
    assert client.analyzer.analyze("WD-19TB") == ["wd", "19", "tb"]
    assert client.vocabulary_contains("dock") and not client.vocabulary_contains("zebra")


def test_concurrent_clients(service, local):
    client = SearchClient(service)
    expected = local.search("wireless headphones", k=5).item_ids
    errors = []

    def worker():
        try:
            for _ in range(20):
                assert client.search("wireless headphones", k=5).item_ids == expected
        except Exception as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert client.metrics()["endpoints"]["/search"]["requests"] >= 160


def _raw(url, method, path, body=b"", headers=None):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, orjson.loads(resp.read())


MALFORMED = [
    # (method, path, body, status, message fragment)
    ("POST", "/search", b"{not json", 400, "not valid JSON"),
    ("POST", "/search", b"[1, 2]", 400, "JSON object"),
    ("POST", "/search", b'{"queries": "sleep"}', 400, "'queries' must be a list"),
    ("POST", "/search", b'{"queries": ["a", 3]}', 400, "'queries[1]' must be a string"),
    ("POST", "/search", b'{"queries": ["a"], "k": "ten"}', 400, "'k' must be an integer"),
    ("POST", "/search", b'{"queries": ["a"], "k": -1}', 400, "'k' must be an integer"),
    (
        "POST",
        "/search",
        b'{"queries": ["a"], "minimum_should_match": "lots"}',
        400,
        "invalid minimum_should_match",
    ),
    ("POST", "/search", orjson.dumps({"queries": ["a"] * (MAX_BATCH + 1)}), 400, "at most"),
    ("POST", "/search", orjson.dumps({"queries": ["a" * 5000]}), 400, "characters"),
    ("POST", "/recall_size", b'{"query_sets": ["sleep"]}', 400, "must be a list of strings"),
    ("POST", "/merged", b'{"query_sets": [["a"]], "policy": "borda"}', 400, "'policy' must be one of"),
    ("POST", "/items", b'{"item_ids": ["nope"]}', 400, "unknown item id 'nope'"),
    ("POST", "/relevance", b'{"queries": ["a"], "item_ids": [["m1"]]}', 404, "no relevance model"),
    ("POST", "/nowhere", b"{}", 404, "unknown path"),
    ("GET", "/search", b"", 405, "takes POST"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), MALFORMED)
def test_malformed_requests_get_4xx_with_a_message(service, method, path, body, status, message):
    got_status, got = _raw(service, method, path, body)
    assert got_status == status
    assert message in got["error"]


def test_oversized_body_is_refused(service):
    status, body = _raw(
        service, "POST", "/search", b"{}", headers={"Content-Length": str(MAX_BODY_BYTES + 1)}
    )
    assert status == 413 and "at most" in body["error"]


def test_client_raises_request_errors_without_retrying(service):
    client = SearchClient(service, retries=3, backoff_s=5.0)
    t0 = time.perf_counter()
    with pytest.raises(SearchRequestError, match="unknown item id"):
        client.items(["nope"])
    assert time.perf_counter() - t0 < 2.0  # a 4xx is final: no backoff sleeps


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_client_gives_up_with_a_clear_error_when_the_service_is_down():
    client = SearchClient(f"http://127.0.0.1:{_free_port()}", retries=2, backoff_s=0.01)
    with pytest.raises(SearchServiceUnavailable, match="after 3 attempts"):
        client.search("sleep")


def test_client_retries_until_the_service_comes_up(engine_catalog_index):
    port = _free_port()
    client = SearchClient(f"http://127.0.0.1:{port}", retries=8, backoff_s=0.1)
    servers = []
    timer = threading.Timer(0.3, lambda: servers.append(_start(engine_catalog_index, port)))
    timer.start()
    try:
        assert client.search("wd19tb", k=3).recall_size == 3
    finally:
        timer.join()
        for s in servers:
            s.shutdown()
            s.server_close()


def test_relevance_through_the_service_equals_the_local_model(
    small_index, small_relevance_dir, small_relevance
):
    server, _ = make_server(small_index, port=0, relevance_dir=small_relevance_dir)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = SearchClient(f"http://127.0.0.1:{server.server_address[1]}")
        assert client.health()["relevance"]
        queries = ["wireless mouse", "laptop"]
        results = client.search_many(queries, k=5)
        id_lists = [r.item_ids for r in results]
        remote = client.relevance_many(queries, id_lists)
        local = small_relevance.score_many(queries, id_lists)
        for a, b in zip(remote, local, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        np.testing.assert_allclose(client.relevance(queries[0], id_lists[0]), local[0], rtol=1e-6)
        with pytest.raises(SearchRequestError, match="not in the relevance model"):
            client.relevance("laptop", ["no-such-item"])
    finally:
        server.shutdown()
        server.server_close()


def test_small_synthetic_index(small_engine, small_synth_dir):
    import pyarrow.parquet as pq

    queries = pq.read_table(small_synth_dir / "queries.parquet").column("query").to_pylist()[:200]
    results = small_engine.search_many(queries, k=10)
    # a small catalog (3000 items) with AND-like recall: about half of the logged queries find something
    assert sum(r.recall_size > 0 for r in results) > len(queries) // 4
    for q, r in zip(queries, results, strict=True):
        assert len(r.item_ids) == min(10, r.recall_size)
        assert np.all(np.diff(r.scores) <= 0)
        assert small_engine.recall_size([q]) == r.recall_size
