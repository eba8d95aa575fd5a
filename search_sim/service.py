"""HTTP search service: one process holds the index (and the relevance model) for all training ranks.

``python -m search_sim serve INDEX --port 8765 [--relevance MODEL_DIR]``. JSON bodies (orjson), keep-alive
HTTP/1.1, one handler thread per connection (bounded by ``--threads``). Endpoints:

==================  =====  ==================================================================================
``/health``         GET    ``{"status": "ok", "items", "terms", "index", "relevance": bool, "analyzer", ...}``
``/metrics``        GET    per-endpoint requests, errors, units (queries / pairs), latency p50 / p99 (ms)
``/search``         POST   ``{"queries": [..], "k": 10, "minimum_should_match": opt}`` -> ``{"results": [..]}``
``/recall_size``    POST   ``{"query_sets": [[..], ..], "minimum_should_match": opt}`` -> ``{"recall_sizes"}``
``/merged``         POST   ``{"query_sets": [[..]], "k", "policy", "rank_window", ...}`` -> ``{"results"}``
``/items``          POST   ``{"item_ids": [..]}`` -> ``{"items": [..]}``
``/vocabulary``     POST   ``{"texts": [..]}`` -> ``{"contains": [bool, ..]}``
``/relevance``      POST   ``{"queries": [..], "item_ids": [[..], ..]}`` -> ``{"scores": [[..], ..]}``
==================  =====  ==================================================================================

A result is ``{"item_ids": [..], "scores": [..], "recall_size": n}``. Malformed input gets a 4xx status and
``{"error": "<message>"}``; a body above ``MAX_BODY_BYTES`` gets 413.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import orjson

from search_sim.engine import MERGE_POLICIES, SearchEngine, SearchResult
from search_sim.relevance.model import RelevanceModel

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_BATCH = 4096  # queries, query sets or (query, items) pairs per request
MAX_QUERY_CHARS = 2048
MAX_QUERIES_PER_SET = 64
MAX_K = 10_000
MAX_ITEM_IDS = 200_000


class BadRequest(ValueError):
    """Malformed request: answered with 400 and the message."""


class NotEnabled(Exception):
    """A feature the service was started without (the relevance model): answered with 404 and the message."""


def _list_of_str(payload: dict, name: str, max_len: int, max_chars: int = MAX_QUERY_CHARS) -> list[str]:
    value = payload.get(name)
    if not isinstance(value, list):
        raise BadRequest(f"'{name}' must be a list of strings")
    if len(value) > max_len:
        raise BadRequest(f"'{name}' has {len(value)} entries; at most {max_len} per request")
    for i, s in enumerate(value):
        if not isinstance(s, str):
            raise BadRequest(f"'{name}[{i}]' must be a string, not {type(s).__name__}")
        if len(s) > max_chars:
            raise BadRequest(f"'{name}[{i}]' has {len(s)} characters; at most {max_chars}")
    return value


def _query_sets(payload: dict) -> list[list[str]]:
    sets = payload.get("query_sets")
    if not isinstance(sets, list):
        raise BadRequest("'query_sets' must be a list of lists of strings")
    if len(sets) > MAX_BATCH:
        raise BadRequest(f"'query_sets' has {len(sets)} entries; at most {MAX_BATCH} per request")
    return [_list_of_str({"query_sets[i]": s}, "query_sets[i]", MAX_QUERIES_PER_SET) for s in sets]


def _int(payload: dict, name: str, default: int, lo: int, hi: int) -> int:
    value = payload.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise BadRequest(f"'{name}' must be an integer in [{lo}, {hi}]")
    return value


def _msm(payload: dict, engine: SearchEngine):
    spec = payload.get("minimum_should_match")
    if spec is None:
        return None
    if not isinstance(spec, str | int) or isinstance(spec, bool):
        raise BadRequest("'minimum_should_match' must be a string like '3<75%' or an integer")
    try:
        return engine.check_minimum_should_match(spec)
    except ValueError as err:
        raise BadRequest(str(err)) from None


def _result_json(r: SearchResult) -> dict:
    return {
        "item_ids": r.item_ids,
        "scores": np.asarray(r.scores, dtype=np.float64),
        "recall_size": int(r.recall_size),
    }


class _Metrics:
    """Per-endpoint counters and a window of recent latencies (thread-safe)."""

    def __init__(self, window: int = 4096):
        self.started = time.time()
        self._lock = threading.Lock()
        self.requests: dict[str, int] = defaultdict(int)
        self.errors: dict[str, int] = defaultdict(int)
        self.units: dict[str, int] = defaultdict(int)
        self.latency_ms: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))

    def record(self, endpoint: str, latency_ms: float, units: int, error: bool) -> None:
        with self._lock:
            self.requests[endpoint] += 1
            self.units[endpoint] += units
            self.errors[endpoint] += int(error)
            self.latency_ms[endpoint].append(latency_ms)

    def snapshot(self) -> dict:
        with self._lock:
            out = {"uptime_s": round(time.time() - self.started, 1), "endpoints": {}}
            for ep in sorted(self.requests):
                lat = np.asarray(self.latency_ms[ep]) if self.latency_ms[ep] else np.zeros(1)
                out["endpoints"][ep] = {
                    "requests": self.requests[ep],
                    "errors": self.errors[ep],
                    "units": self.units[ep],
                    "latency_p50_ms": round(float(np.percentile(lat, 50)), 3),
                    "latency_p99_ms": round(float(np.percentile(lat, 99)), 3),
                }
            return out


class SearchService:
    """The request handlers' logic, independent of HTTP (easy to test)."""

    def __init__(self, engine: SearchEngine, relevance=None):
        self.engine = engine
        self.relevance = relevance
        self.metrics = _Metrics()

    def metrics_snapshot(self) -> dict:
        e = self.engine
        return {
            **self.metrics.snapshot(),
            "cache": {"hits": e.cache_hits, "misses": e.cache_misses, "mb": e.cache_mb},
        }

    def health(self) -> dict:
        e = self.engine
        return {
            "status": "ok",
            "index": str(e.index_dir),
            "items": e.num_items,
            "terms": e.num_terms,
            "relevance": self.relevance is not None,
            "analyzer": e.config.analyzer.to_dict(),
            "minimum_should_match": e.minimum_should_match,
            "max_batch": MAX_BATCH,
        }

    def search(self, p: dict) -> tuple[dict, int]:
        queries = _list_of_str(p, "queries", MAX_BATCH)
        results = self.engine.search_many(
            queries, k=_int(p, "k", 10, 0, MAX_K), minimum_should_match=_msm(p, self.engine)
        )
        return {"results": [_result_json(r) for r in results]}, len(queries)

    def recall_size(self, p: dict) -> tuple[dict, int]:
        sets = _query_sets(p)
        msm = _msm(p, self.engine)
        return {"recall_sizes": self.engine.recall_size_many(sets, minimum_should_match=msm)}, sum(
            map(len, sets)
        )

    def merged(self, p: dict) -> tuple[dict, int]:
        sets = _query_sets(p)
        policy = p.get("policy", "rrf")
        if policy not in MERGE_POLICIES:
            raise BadRequest(f"'policy' must be one of {list(MERGE_POLICIES)}")
        results = self.engine.merged_many(
            sets,
            k=_int(p, "k", 10, 0, MAX_K),
            policy=policy,
            rank_window=_int(p, "rank_window", 100, 1, MAX_K),
            rrf_k=_int(p, "rrf_k", 60, 1, 1_000_000),
            minimum_should_match=_msm(p, self.engine),
        )
        return {"results": [_result_json(r) for r in results]}, sum(map(len, sets))

    def items(self, p: dict) -> tuple[dict, int]:
        ids = _list_of_str(p, "item_ids", MAX_ITEM_IDS)
        try:
            return {"items": self.engine.items(ids)}, len(ids)
        except KeyError as err:
            raise BadRequest(err.args[0]) from None

    def vocabulary(self, p: dict) -> tuple[dict, int]:
        texts = _list_of_str(p, "texts", MAX_BATCH)
        return {"contains": [self.engine.vocabulary_contains(t) for t in texts]}, len(texts)

    def relevance_scores(self, p: dict) -> tuple[dict, int]:
        if self.relevance is None:
            raise NotEnabled("no relevance model loaded: start the service with --relevance MODEL_DIR")
        queries = _list_of_str(p, "queries", MAX_BATCH)
        lists = p.get("item_ids")
        if not isinstance(lists, list) or len(lists) != len(queries):
            raise BadRequest(
                "'item_ids' must be a list (one list of item ids per query) as long as 'queries'"
            )
        id_lists = [_list_of_str({"item_ids[i]": ids}, "item_ids[i]", MAX_K) for ids in lists]
        if sum(map(len, id_lists)) > MAX_ITEM_IDS:
            raise BadRequest(f"at most {MAX_ITEM_IDS} (query, item) pairs per request")
        try:
            scores = self.relevance.score_many(queries, id_lists)
        except KeyError as err:
            raise BadRequest(str(err.args[0] if err.args else err)) from None
        return {"scores": [np.asarray(s, dtype=np.float64) for s in scores]}, sum(map(len, id_lists))


POST_ROUTES = {
    "/search": SearchService.search,
    "/recall_size": SearchService.recall_size,
    "/merged": SearchService.merged,
    "/items": SearchService.items,
    "/vocabulary": SearchService.vocabulary,
    "/relevance": SearchService.relevance_scores,
}


def make_handler(service: SearchService, max_concurrency: int):
    slots = threading.BoundedSemaphore(max_concurrency)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: each training rank reuses one connection
        disable_nagle_algorithm = (
            True  # headers and body go out in two writes; avoid the 40 ms delayed-ACK stall
        )
        server_version = "search_sim"

        def log_message(self, fmt, *args):  # per-request lines would swamp the training logs
            log.debug("%s " + fmt, self.address_string(), *args)

        def _send(self, status: int, body: dict) -> None:
            data = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            t0 = time.perf_counter()
            if self.path == "/health":
                self._send(200, service.health())
            elif self.path == "/metrics":
                self._send(200, service.metrics_snapshot())
            elif self.path in POST_ROUTES:
                self._send(405, {"error": f"{self.path} takes POST with a JSON body"})
            else:
                self._send(404, {"error": f"unknown path {self.path!r}"})
            service.metrics.record(f"GET {self.path}"[:40], (time.perf_counter() - t0) * 1e3, 0, False)

        def do_POST(self):
            t0 = time.perf_counter()
            route = POST_ROUTES.get(self.path)
            status, units = 200, 0
            length = self.headers.get("Content-Length")
            try:
                if length is None or not length.isdigit():
                    status, body = 411, {"error": "a Content-Length header is required"}
                elif int(length) > MAX_BODY_BYTES:
                    status, body = 413, {"error": f"body of {length} bytes; at most {MAX_BODY_BYTES}"}
                    self.close_connection = True  # the unread body would poison the keep-alive stream
                else:
                    raw = self.rfile.read(int(length))
                    if route is None:
                        status, body = (
                            404,
                            {"error": f"unknown path {self.path!r}; POST one of {sorted(POST_ROUTES)}"},
                        )
                    else:
                        try:
                            payload = orjson.loads(raw)
                        except orjson.JSONDecodeError as err:
                            raise BadRequest(f"body is not valid JSON: {err}") from None
                        if not isinstance(payload, dict):
                            raise BadRequest("body must be a JSON object")
                        with slots:
                            body, units = route(service, payload)
            except BadRequest as err:
                status, body = 400, {"error": str(err)}
            except NotEnabled as err:
                status, body = 404, {"error": str(err)}
            except Exception as err:  # a bug: log it with the traceback and tell the client; never a silent 0
                log.error("internal error on %s: %s", self.path, traceback.format_exc())
                status, body = 500, {"error": f"internal error: {type(err).__name__}: {err}"}
            self._send(status, body)
            service.metrics.record(
                self.path if route else "unknown", (time.perf_counter() - t0) * 1e3, units, status >= 400
            )

    return Handler


def make_server(
    index_dir,
    host: str = "127.0.0.1",
    port: int = 8765,
    relevance_dir=None,
    threads: int = 16,
    cache_mb: float = 64,
) -> tuple[ThreadingHTTPServer, SearchService]:
    """Load the index (and relevance model) and bind the server; ``server.serve_forever()`` runs it."""
    engine = SearchEngine.load(index_dir, cache_mb=cache_mb)
    engine.warm_up()
    relevance = None
    if relevance_dir is not None:
        relevance = RelevanceModel.load(relevance_dir, index_dir)
    service = SearchService(engine, relevance)
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((host, port), make_handler(service, threads))
    return server, service


def serve(index_dir, **server_options) -> None:
    """Run the service until interrupted; `server_options` are make_server's (host, port, relevance_dir, ...)."""
    server, service = make_server(index_dir, **server_options)
    log.info(
        "serving %s (%d items, relevance: %s) on http://%s:%d",
        index_dir,
        service.engine.num_items,
        server_options.get("relevance_dir") or "none",
        *server.server_address[:2],
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        server.server_close()
