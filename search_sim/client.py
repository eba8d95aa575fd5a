"""SearchClient: the :class:`~search_sim.engine.SearchEngine` API over HTTP (``python -m search_sim serve``).

Each thread keeps one keep-alive connection. Connection failures, timeouts and 5xx answers are retried with
exponential backoff; when the service stays down the client raises :class:`SearchServiceUnavailable` (callers
such as the reward must stop rather than score 0). 4xx answers raise :class:`SearchRequestError` with the
service's message and are not retried.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from urllib.parse import urlsplit

import numpy as np
import orjson

from search_sim.analyzer import Analyzer, AnalyzerConfig
from search_sim.engine import SearchResult

log = logging.getLogger(__name__)

CHUNK = 1024  # queries / sets / pairs per request: well under the service's MAX_BATCH, keeps latency smooth


class SearchServiceUnavailable(ConnectionError):
    """The search service did not answer after all retries."""


class SearchRequestError(ValueError):
    """The service rejected the request (4xx); the message is the service's."""


def _result(d: dict) -> SearchResult:
    return SearchResult(d["item_ids"], np.asarray(d["scores"], dtype=np.float64), int(d["recall_size"]))


class SearchClient:
    """Same search API as SearchEngine (``search``, ``search_many``, ``recall_size``, ``recall_size_many``,
    ``merged``, ``merged_many``, ``items``, ``vocabulary_contains``, ``analyzer``) plus ``relevance`` /
    ``relevance_many`` when the service runs with a relevance model.

    Args:
        url: ``http://host:port`` of the service.
        timeout_s: socket timeout per request.
        retries: attempts after the first failure before raising SearchServiceUnavailable.
        backoff_s: first wait between attempts; doubles each time, capped at ``max_backoff_s``.
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 120.0,
        retries: int = 6,
        backoff_s: float = 0.25,
        max_backoff_s: float = 8.0,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url.rstrip("/")
        self._scheme, self._host = parts.scheme, parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self.timeout_s, self.retries, self.backoff_s, self.max_backoff_s = (
            timeout_s,
            retries,
            backoff_s,
            max_backoff_s,
        )
        self._local = threading.local()
        self._health: dict | None = None
        self._analyzer: Analyzer | None = None

    def __repr__(self) -> str:
        return f"SearchClient({self.url!r})"

    # ------------------------------------------------------------------------------------------- transport

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = self._local.conn = cls(self._host, self._port, timeout=self.timeout_s)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _request(self, method: str, path: str, payload: dict | None = None) -> dict:
        body = orjson.dumps(payload) if payload is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        wait = self.backoff_s
        last_error = ""
        for attempt in range(self.retries + 1):
            try:
                conn = self._connection()
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status < 400:
                    return orjson.loads(data)
                message = _error_message(data)
                if resp.status < 500:
                    raise SearchRequestError(f"{self.url}{path}: HTTP {resp.status}: {message}")
                last_error = f"HTTP {resp.status}: {message}"
                self._drop_connection()
            except (OSError, http.client.HTTPException) as err:
                last_error = f"{type(err).__name__}: {err}"
                self._drop_connection()
            if attempt < self.retries:
                log.warning(
                    "search service %s%s failed (%s); retry %d/%d in %.2f s",
                    self.url,
                    path,
                    last_error,
                    attempt + 1,
                    self.retries,
                    wait,
                )
                time.sleep(wait)
                wait = min(wait * 2, self.max_backoff_s)
        raise SearchServiceUnavailable(
            f"search service {self.url} did not answer {method} {path} after {self.retries + 1} attempts "
            f"(last error: {last_error}); is `python -m search_sim serve` running?"
        )

    def _chunked(self, path: str, key: str, values: list, extra: dict, out_key: str) -> list:
        out: list = []
        for lo in range(0, len(values), CHUNK):
            out.extend(self._request("POST", path, {key: values[lo : lo + CHUNK], **extra})[out_key])
        return out

    # ------------------------------------------------------------------------------------------- API

    def health(self) -> dict:
        return self._request("GET", "/health")

    def metrics(self) -> dict:
        return self._request("GET", "/metrics")

    @property
    def analyzer(self) -> Analyzer:
        """The service index's analyzer, rebuilt locally from /health (same config, same terms)."""
        if self._analyzer is None:
            self._health = self.health()
            self._analyzer = Analyzer(AnalyzerConfig.from_dict(self._health["analyzer"]))
        return self._analyzer

    @property
    def minimum_should_match(self) -> str:
        return (self._health or self.health())["minimum_should_match"]

    def search(self, query: str, k: int = 10, minimum_should_match: str | int | None = None) -> SearchResult:
        return self.search_many([query], k, minimum_should_match)[0]

    def search_many(
        self, queries: list[str], k: int = 10, minimum_should_match: str | int | None = None
    ) -> list[SearchResult]:
        extra = {"k": k} | (
            {} if minimum_should_match is None else {"minimum_should_match": minimum_should_match}
        )
        return [_result(r) for r in self._chunked("/search", "queries", list(queries), extra, "results")]

    def recall_size(self, queries: list[str], minimum_should_match: str | int | None = None) -> int:
        if isinstance(queries, str):
            raise TypeError("recall_size takes a list of queries; wrap a single query in a list")
        return self.recall_size_many([queries], minimum_should_match)[0]

    def recall_size_many(
        self, query_sets: list[list[str]], minimum_should_match: str | int | None = None
    ) -> list[int]:
        extra = {} if minimum_should_match is None else {"minimum_should_match": minimum_should_match}
        sets = [list(s) for s in query_sets]
        return self._chunked("/recall_size", "query_sets", sets, extra, "recall_sizes")

    def merged(self, queries: list[str], k: int = 10, policy: str = "rrf", **kwargs) -> SearchResult:
        if isinstance(queries, str):
            raise TypeError("merged takes a list of queries; wrap a single query in a list")
        return self.merged_many([queries], k, policy, **kwargs)[0]

    def merged_many(
        self,
        query_sets: list[list[str]],
        k: int = 10,
        policy: str = "rrf",
        rank_window: int = 100,
        rrf_k: int = 60,
        minimum_should_match: str | int | None = None,
    ) -> list[SearchResult]:
        extra = {"k": k, "policy": policy, "rank_window": rank_window, "rrf_k": rrf_k}
        if minimum_should_match is not None:
            extra["minimum_should_match"] = minimum_should_match
        sets = [list(s) for s in query_sets]
        return [_result(r) for r in self._chunked("/merged", "query_sets", sets, extra, "results")]

    def items(self, item_ids: list[str]) -> list[dict]:
        return self._chunked("/items", "item_ids", list(item_ids), {}, "items")

    def vocabulary_contains(self, text: str) -> bool:
        return self._request("POST", "/vocabulary", {"texts": [text]})["contains"][0]

    def relevance(self, query: str, item_ids: list[str]) -> np.ndarray:
        """Relevance-model scores of ``item_ids`` for ``query`` (float32, about [0, 1])."""
        return self.relevance_many([query], [item_ids])[0]

    def relevance_many(self, queries: list[str], item_id_lists: list[list[str]]) -> list[np.ndarray]:
        if len(queries) != len(item_id_lists):
            raise ValueError(f"{len(queries)} queries but {len(item_id_lists)} item id lists")
        out: list[np.ndarray] = []
        lo = 0
        while lo < len(queries):  # chunk by pairs, not by queries: keep each request's work bounded
            hi, pairs = lo, 0
            while hi < len(queries) and (hi == lo or pairs + len(item_id_lists[hi]) <= 20 * CHUNK):
                pairs += len(item_id_lists[hi])
                hi += 1
            payload = {
                "queries": list(queries[lo:hi]),
                "item_ids": [list(ids) for ids in item_id_lists[lo:hi]],
            }
            out.extend(
                np.asarray(s, dtype=np.float32)
                for s in self._request("POST", "/relevance", payload)["scores"]
            )
            lo = hi
        return out

    def close(self) -> None:
        self._drop_connection()


def _error_message(data: bytes) -> str:
    try:
        return str(orjson.loads(data).get("error", data[:200]))
    except (orjson.JSONDecodeError, AttributeError):
        return data[:200].decode(errors="replace")
