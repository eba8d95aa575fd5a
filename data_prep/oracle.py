"""The synthetic marketplace's truth: `Oracle.load(DIR)` grades any (query of the log, item) pair 0-4 from the
latent intent behind the query and the items' true attributes (DIR/truth/, written by `data_prep.synth`).

    oracle = Oracle.load("artifacts/synth")
    oracle.grade(query, item_ids) -> np.ndarray[int8]    # KeyError for a query outside the log
    oracle.query_level(query) -> "broad" | "specific" | "problem" | "identifier" | "colloquial"
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


class Oracle:
    """True grade of (query, item) from the latent intent and the items' true attributes (vectorised)."""

    def __init__(self, item_ids, item_category, item_product, item_attrs, taxonomy, intents, query_to_intent):
        self.item_ids = list(item_ids)
        self.row_of = {item_id: i for i, item_id in enumerate(self.item_ids)}
        self.item_category = item_category
        self.item_product = item_product
        self.item_attrs = item_attrs
        self.taxonomy = taxonomy
        self.intents = intents  # intent_id -> intent dict
        self.query_to_intent = query_to_intent
        self._cat_index = {c["name"]: i for i, c in enumerate(taxonomy["categories"])}
        self._compiled: dict[str, tuple] = {}

    @classmethod
    def load(cls, root: str | Path) -> Oracle:
        root = Path(root)
        truth = root / "truth"
        taxonomy = json.loads((truth / "taxonomy.json").read_text())
        intents = {}
        with open(truth / "intents.jsonl") as f:
            for line in f:
                intent = json.loads(line)
                intents[intent["intent_id"]] = intent
        queries = pq.read_table(root / "queries.parquet", columns=["query", "intent_id"]).to_pydict()
        query_to_intent = dict(zip(queries["query"], queries["intent_id"], strict=True))
        item_ids = pq.read_table(root / "catalog.parquet", columns=["item_id"]).column("item_id").to_pylist()
        return cls(
            item_ids,
            np.load(truth / "item_category.npy"),
            np.load(truth / "item_product.npy"),
            np.load(truth / "item_attrs.npy"),
            taxonomy,
            intents,
            query_to_intent,
        )

    def intent(self, query: str) -> dict:
        """The latent intent behind a query of the log (KeyError for any other query)."""
        return self.intents[self.query_to_intent[query]]

    def query_level(self, query: str) -> str:
        return self.intent(query)["level"]

    def rows(self, item_ids) -> np.ndarray:
        return np.fromiter((self.row_of[i] for i in item_ids), dtype=np.int64, count=len(item_ids))

    def grade(self, query: str, item_ids) -> np.ndarray:
        """int8 grades 0-4 of item_ids for a query of the log; KeyError for unknown queries or item ids."""
        return self.grade_rows(query, self.rows(item_ids))

    def grade_all(self, query: str) -> np.ndarray:
        """Grades of every catalog item, in catalog order (for recall denominators)."""
        return self.grade_rows(query, np.arange(len(self.item_ids)))

    def in_target_category(self, query: str, item_ids) -> np.ndarray:
        """bool per item: its TRUE category is one of the target categories of the query's intent (those the intent
        grades by category, grade > 0; its related categories are not targets). KeyError for unknown queries or ids."""
        cat_max = self._compile(self.query_to_intent[query])[0]
        return cat_max[self.item_category[self.rows(item_ids)]] > 0

    def grade_rows(self, query: str, rows: np.ndarray) -> np.ndarray:
        cat_max, related_lut, cons, products = self._compile(self.query_to_intent[query])
        cats = self.item_category[rows]
        grade = np.where(related_lut[cats], 1, 0).astype(np.int8)
        base = cat_max[cats]
        in_target = base > 0
        grade[in_target] = base[in_target]
        for cid, slot_allowed in cons.items():
            mask = cats == cid
            if products is not None:
                mask &= np.isin(self.item_product[rows], products)
            if not mask.any():
                continue
            attrs = self.item_attrs[rows[mask]]
            n_ok = np.zeros(int(mask.sum()), dtype=np.int64)
            for slot, allowed in slot_allowed:
                n_ok += np.isin(attrs[:, slot], allowed)
            n = len(slot_allowed)
            top = 4 if products is not None else int(cat_max[cid])
            g = np.where(
                n_ok == n,
                top,
                np.where((n_ok * 2 >= n) & (n >= 2), top - 1, min(top, 2) if products is None else 3),
            )
            grade[mask] = g.astype(np.int8)
        if products is not None:
            hit = np.isin(self.item_product[rows], products)
            no_cons = hit & ~np.isin(cats, list(cons))
            grade[no_cons] = 4
        return grade

    def _compile(self, intent_id: str):
        if intent_id in self._compiled:
            return self._compiled[intent_id]
        intent = self.intents[intent_id]
        cats = self.taxonomy["categories"]
        n_cats = len(cats)
        cat_max = np.zeros(n_cats, dtype=np.int8)
        for name, g in intent["categories"].items():
            cat_max[self._cat_index[name]] = g
        related_lut = np.zeros(n_cats, dtype=bool)
        for name in intent["related"]:
            related_lut[self._cat_index[name]] = True
        cons = {}
        for name, constraint in intent["constraints"].items():
            cid = self._cat_index[name]
            slot_allowed = []
            for attr, values in constraint.items():
                slot = cats[cid]["slots"].index(attr)
                pool = cats[cid]["values"][slot]
                slot_allowed.append((slot, np.array([pool.index(v) for v in values], dtype=np.int16)))
            cons[cid] = slot_allowed
        products = np.array(intent["products"], dtype=np.int32) if intent.get("products") else None
        self._compiled[intent_id] = (cat_max, related_lut, cons, products)
        return self._compiled[intent_id]
