"""Synthetic C2C marketplace with a known truth: catalog, query log, pooled judgments and an oracle.

The world (departments, categories, attribute schemas, brands, problem needs) is in synth_taxonomy.py. From a
seed we draw product models (brand + series + alphanumeric identifier + product-level attribute values), then
listings of those products written the way C2C sellers write them (varied order, abbreviations, synonyms,
identifier variants, missing or inconsistent attributes, condition in free text, filler, keyword stuffing).
Queries come from latent intents at five levels (broad, specific, problem, identifier, colloquial) with Zipf
frequencies. The oracle grades any (query, item) pair from the intent and the item's TRUE attributes, never from
its title, so that a lexical judge can be fooled and the oracle cannot. Same seed -> byte-identical files.

Grades (0-4, the paper's Bad/Fair/Good/Excellent/Perfect), a deterministic function of (intent, item truth):
- product intents (specific, identifier, famous-product colloquial): 4 the product and every constraint (color),
  3 the product with a constraint missed, 2 same category, 1 related category, 0 otherwise;
- category intents (broad, colloquial, problem): for a target category with best grade m (4 core, 3 partial
  answer to a problem): m when every constraint holds, m-1 when at least half hold (two or more constraints),
  min(m, 2) otherwise; 1 for a related (accessory) category; 0 otherwise.
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp
from tqdm import tqdm

from data_prep import formats
from data_prep import synth_taxonomy as tx
from data_prep.oracle import Oracle

log = logging.getLogger(__name__)

LEVELS = ("broad", "specific", "problem", "identifier", "colloquial")
LEVEL_SHARE = {"broad": 0.35, "specific": 0.2, "problem": 0.12, "identifier": 0.13, "colloquial": 0.2}
# Head queries are mostly broad and problem-oriented, the tail mostly specific and identifiers.
LEVEL_HEAD_BIAS = {"broad": 3.0, "problem": 2.5, "colloquial": 0.5, "specific": -1.0, "identifier": -2.0}
PRODUCTS_PER_CATEGORY = 30
MAX_SLOTS = 8  # attributes per category (product-level + item-level), the width of the truth array
POOL_LEXICAL = 30  # judged candidates per query from the term-overlap pool
POOL_RANDOM = 10  # ... plus random negatives
BATCH_ITEMS = 50_000
# The paper's example queries, always in the log (when their product is listed) so docs and demos can use them.
ANCHOR_QUERIES = (
    "ergonomic mouse",
    "black bose quietcomfort ultra headphones",
    "sleep improvement",
    "dell wd19tb",
    "mouse that doesn't hurt my wrist",
    "those quiet headphones everyone wears on planes",
    "melatonin",
    "phone charger",
)
TOKEN_RE = re.compile(r"[a-z0-9]+")


# ----------------------------------------------------------------------------------------------- the world


@dataclass
class Category:
    cid: int
    name: str
    dept: str
    nouns: list[str]
    slots: list[str]  # attribute names; slots[i] is column i of the truth array
    values: list[list[str]]  # values[i]: canonical values of slot i
    n_product_slots: int  # slots[:n] are fixed per product, the rest per listing
    related: list[str]
    spec: dict


@dataclass
class Product:
    pid: int
    cid: int
    brand: str
    series: str
    identifier: str
    codes: list[int]  # value code per product-level slot
    colors: list[int]  # color codes this model comes in
    nickname: str = ""


def _item_slot_values(name: str) -> list[str]:
    return {"Color": tx.COLORS, "Size": tx.APPAREL_SIZES, "Condition": tx.CONDITIONS}[name]


def build_categories() -> list[Category]:
    cats = []
    for cid, spec in enumerate(tx.CATEGORIES):
        slots = list(spec["attrs"]) + list(spec["item_attrs"])
        values = [list(v) for v in spec["attrs"].values()] + [
            _item_slot_values(n) for n in spec["item_attrs"]
        ]
        assert len(slots) <= MAX_SLOTS, spec["name"]
        cats.append(
            Category(
                cid,
                spec["name"],
                spec["dept"],
                spec["nouns"],
                slots,
                values,
                len(spec["attrs"]),
                spec["related"],
                spec,
            )
        )
    return cats


def make_identifier(rng: np.random.Generator) -> str:
    """An alphanumeric model identifier like "WD-19TB", "KX-450" or "G3HZ-2"."""
    letters = "ABCDEFGHJKLMNPRSTVWXZ"
    head = "".join(rng.choice(list(letters), size=int(rng.integers(1, 4))))
    digits = str(int(rng.integers(10, 2000)))
    tail = "".join(rng.choice(list(letters), size=int(rng.integers(0, 3))))
    return f"{head}-{digits}{tail}"


def identifier_variants(identifier: str) -> list[str]:
    """How people write one identifier: "WD-19TB" -> WD-19TB, WD19TB, WD19 TB, WD 19TB, wd-19tb, WD 19 TB."""
    parts = re.findall(r"[A-Za-z]+|\d+", identifier)
    out = [identifier, "".join(parts)]
    if len(parts) >= 3:
        out += ["".join(parts[:2]) + " " + " ".join(parts[2:]), parts[0] + " " + "".join(parts[1:])]
    out += [" ".join(parts), identifier.lower()]
    return list(dict.fromkeys(out))


def build_products(cats: list[Category], rng: np.random.Generator) -> list[Product]:
    products: list[Product] = []
    famous_by_cat: dict[str, list] = {}
    for fam in tx.FAMOUS:
        famous_by_cat.setdefault(fam[0], []).append(fam)
    used_ids: set[str] = set()
    for cat in cats:
        # Some values of an attribute are common, others rare (Zipf), so attribute constraints are selective.
        value_w = [zipf_weights(len(cat.values[s]), 1.0, rng) for s in range(cat.n_product_slots)]
        specs = [(b, s, i, nick) for _, b, s, i, nick in famous_by_cat.get(cat.name, [])]
        while len(specs) < PRODUCTS_PER_CATEGORY:
            ident = make_identifier(rng)
            if ident in used_ids:
                continue
            used_ids.add(ident)
            b = int(rng.integers(len(cat.spec["brands"])))
            brand = cat.spec["brands"][b]
            series = cat.spec["series"][b % len(cat.spec["series"])]  # aligned lists: brand i makes series i
            specs.append((brand, series, ident, ""))
        for brand, series, ident, nick in specs:
            codes = [int(rng.choice(len(w), p=w)) for w in value_w]
            n_colors = int(rng.integers(1, 5))
            colors = sorted(int(c) for c in rng.choice(len(tx.COLORS), size=n_colors, replace=False))
            if nick and 0 not in colors:  # famous models always come in black (the anchor queries ask for it)
                colors = [0, *colors[1:]]
            products.append(Product(len(products), cat.cid, brand, series, ident, codes, colors, nick))
    return products


def zipf_weights(n: int, s: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf(s) probabilities over n things in a seeded random order."""
    w = 1.0 / np.arange(1, n + 1) ** s
    return (w / w.sum())[rng.permutation(n)]


# ----------------------------------------------------------------------------------------------- listings


class ListingWriter:
    """Turns (product, listing-level codes) into a catalog row the way sellers write them.

    `rnd` is a seeded `random.Random().random`: one listing draws dozens of numbers, and Python's generator is
    much cheaper per draw than numpy scalars; per-category text tables are precomputed for the same reason.
    """

    def __init__(self, cats: list[Category], products: list[Product]):
        self.cats, self.products = cats, products
        # Keyword stuffers copy popular searches of OTHER categories (their broad queries and names).
        popular = [(c.cid, phrase) for c in cats for phrase, _ in c.spec["broad"]]
        popular += [(c.cid, c.nouns[0]) for c in cats]
        self.stuffing_by_cat = [[p for cid, p in popular if cid != cat.cid] for cat in cats]
        p_by_name = {"Color": 0.6, "Size": 0.7, "Condition": 0.0}
        self.p_mention = [[p_by_name.get(n, 0.35) for n in c.slots] for c in cats]
        # title_texts[cid][slot][code]: spellings of that value in a title ([] = never written)
        self.title_texts = [
            [[_title_spellings(name, v) for v in c.values[s]] for s, name in enumerate(c.slots)] for c in cats
        ]
        self.attr_texts = [[[tx.VALUE_VARIANTS.get(v, [v]) for v in vals] for vals in c.values] for c in cats]
        self.condition_slot = [c.slots.index("Condition") for c in cats]
        self.id_variants = [identifier_variants(p.identifier) for p in products]

    def row(self, item_id: str, product: Product, codes: list[int], stuffed: bool, rnd) -> dict:
        cat = self.cats[product.cid]
        cid = cat.cid
        parts_front, parts_attrs, parts_back = [], [], []
        if rnd() < 0.85:
            parts_front.append(product.brand.lower() if rnd() < 0.2 else product.brand)
        model_bits = []
        if rnd() < 0.8:
            model_bits.append(product.series)
        if rnd() < 0.7:
            variants = self.id_variants[product.pid]
            model_bits.append(variants[int(rnd() * len(variants))])
        if model_bits:
            parts_front.append(" ".join(model_bits))
        p_mention, title_texts = self.p_mention[cid], self.title_texts[cid]
        for slot, code in enumerate(codes):
            if rnd() < p_mention[slot]:
                texts = title_texts[slot][code]
                if texts:
                    parts_attrs.append(texts[int(rnd() * len(texts))])
        noun = cat.nouns[int(rnd() * len(cat.nouns))] if rnd() < 0.75 else ""
        if rnd() < 0.45:
            texts = tx.CONDITION_TEXT[tx.CONDITIONS[codes[self.condition_slot[cid]]]]
            parts_back.append(texts[int(rnd() * len(texts))])
        if rnd() < 0.25:
            parts_back.append(tx.FILLER[int(rnd() * len(tx.FILLER))])
        if stuffed:  # keyword stuffing: popular searches of other categories
            pool = self.stuffing_by_cat[cid]
            parts_back += [pool[int(rnd() * len(pool))] for _ in range(2 + int(rnd() * 2))]
        order = rnd()
        nouns = [noun] if noun else []
        if order < 0.5:  # brand model attrs noun condition
            words = parts_front + parts_attrs + nouns + parts_back
        elif order < 0.8:  # noun first, as in "Mouse Logitech MX ..."
            words = nouns + parts_front + parts_attrs + parts_back
        else:  # attributes before the brand
            words = parts_attrs + parts_front + nouns + parts_back
        title = " ".join(words) if words else cat.nouns[0]
        if rnd() < 0.15:
            title = title.upper()
        attributes = []
        attr_texts = self.attr_texts[cid]
        for slot, code in enumerate(codes):
            if rnd() < 0.2:  # seller left it blank
                continue
            if rnd() < 0.04:  # inconsistent with the title and the truth
                code = int(rnd() * len(cat.values[slot]))
            texts = attr_texts[slot][code]
            attributes.append(
                {
                    "name": cat.slots[slot],
                    "value": texts[0] if rnd() < 0.6 else texts[int(rnd() * len(texts))],
                }
            )
        if rnd() < 0.5:
            attributes.append({"name": "Model", "value": f"{product.series} {product.identifier}"})
        description = ""
        if rnd() < 0.5:
            shown = [f"{a['name']}: {a['value']}" for a in attributes[:3]]
            description = f"{cat.nouns[0].capitalize()} by {product.brand}. " + ". ".join(shown) + "."
        return {
            "item_id": item_id,
            "title": title,
            "category": [cat.dept, cat.name],
            "attributes": attributes,
            "brand": product.brand if rnd() < 0.9 else "",
            "description": description,
        }


def _title_spellings(slot_name: str, value: str) -> list[str]:
    """How sellers write a value in a title; yes/no attributes become the attribute's name (or nothing)."""
    if value == "yes":
        return [slot_name.lower()]
    if value in ("no", "none"):
        return []
    return tx.VALUE_VARIANTS.get(value, [value])


def generate_items(cats, products, n_items: int, seed: int, batch_items: int = BATCH_ITEMS):
    """Yield (catalog batch table, truth dict of arrays) per batch; each batch has its own seeded RNG."""
    world_rng = np.random.default_rng([seed, 1])
    cat_w = zipf_weights(len(cats), 0.6, world_rng)
    prods_of = [[p for p in products if p.cid == c.cid] for c in cats]
    prod_w = [zipf_weights(len(ps), 0.9, world_rng) for ps in prods_of]
    cond_w = np.array([0.55, 0.3, 0.08, 0.07])
    writer = ListingWriter(cats, products)
    for start in range(0, n_items, batch_items):
        n = min(batch_items, n_items - start)
        rng = np.random.default_rng([seed, 2, start])
        cat_ids = rng.choice(len(cats), size=n, p=cat_w)
        stuffed = (rng.random(n) < 0.02).tolist()
        size_codes = rng.integers(len(tx.APPAREL_SIZES), size=n).tolist()
        cond_codes = rng.choice(4, size=n, p=cond_w).tolist()
        color_u = rng.random(n).tolist()
        prod_pick = [0] * n
        for cid in np.unique(cat_ids):
            where = np.flatnonzero(cat_ids == cid)
            picks = rng.choice(len(prods_of[cid]), size=len(where), p=prod_w[cid])
            for w, pk in zip(where.tolist(), picks.tolist(), strict=True):
                prod_pick[w] = prods_of[cid][pk].pid
        rnd = random.Random(seed * 1_000_003 + start).random
        truth_attrs = np.full((n, MAX_SLOTS), -1, dtype=np.int16)
        rows = []
        for i in range(n):
            product = products[prod_pick[i]]
            cat = cats[product.cid]
            codes = list(product.codes)
            for name in cat.slots[cat.n_product_slots :]:
                if name == "Color":
                    codes.append(product.colors[int(color_u[i] * len(product.colors))])
                elif name == "Size":
                    codes.append(size_codes[i])
                else:
                    codes.append(cond_codes[i])
            truth_attrs[i, : len(codes)] = codes
            rows.append(writer.row(f"s{start + i:07d}", product, codes, stuffed[i], rnd))
        table = pa.Table.from_pylist(rows, schema=formats.CATALOG_SCHEMA)
        truth = {
            "category": cat_ids.astype(np.int16),
            "product": np.asarray(prod_pick, dtype=np.int32),
            "attrs": truth_attrs,
            "stuffed": np.asarray(stuffed, dtype=bool),
        }
        yield table, truth


# ----------------------------------------------------------------------------------------------- intents


def _cons(constraints: dict) -> dict:
    return {k: list(v) for k, v in constraints.items()}


def build_intents(cats: list[Category], products: list[Product], rng: np.random.Generator) -> list[dict]:
    """Every candidate intent with its query text; the query log samples from these."""
    intents: list[dict] = []

    def add(level, query, **spec):
        intents.append({"level": level, "query": " ".join(query.lower().split()), **spec})

    for cat in cats:
        base = {"categories": {cat.name: 4}, "related": list(cat.related)}
        add("broad", cat.nouns[0], **base, constraints={})
        for phrase, cons in cat.spec["broad"]:
            add("broad", phrase, **base, constraints={cat.name: _cons(cons)})
        for slot, name in enumerate(cat.slots):
            if name == "Condition":
                continue
            for value in cat.values[slot]:
                if value in ("yes", "no", "none") or value.isdigit():
                    continue
                nouns = [
                    n for n in cat.nouns if value.lower() not in n.lower() and n.lower() not in value.lower()
                ]
                if not nouns:  # "hdd hdd" is no query
                    continue
                noun = nouns[int(rng.integers(len(nouns)))]
                add("broad", f"{value} {noun}", **base, constraints={cat.name: {name: [value]}})
        for phrase, cons in cat.spec["colloquial"]:
            for template in ("{p}", "{p} cheap", "{p} under 50", "{p} for sale"):
                add("colloquial", template.format(p=phrase), **base, constraints={cat.name: _cons(cons)})
    for problem in tx.PROBLEMS:
        for phrase in problem["phrases"]:
            for template in ("{p}", "{p} ideas", "{p} must haves", "{p} products"):
                add(
                    "problem",
                    template.format(p=phrase),
                    categories=dict(problem["categories"]),
                    related=[],
                    constraints={k: _cons(v) for k, v in problem["constraints"].items()},
                )
    for prod in products:
        cat = cats[prod.cid]
        target = {"products": [prod.pid], "categories": {cat.name: 2}, "related": list(cat.related)}
        noun = cat.nouns[0]
        if "Color" in cat.slots:
            for color in prod.colors[:2]:
                add(
                    "specific",
                    f"{tx.COLORS[color]} {prod.brand} {prod.series} {noun}",
                    **target,
                    constraints={cat.name: {"Color": [tx.COLORS[color]]}},
                )
        else:
            value = cat.values[0][prod.codes[0]]
            add("specific", f"{prod.brand} {prod.series} {value} {noun}", **target, constraints={})
        add("specific", f"{prod.brand} {prod.series} {prod.identifier} {noun}", **target, constraints={})
        variants = identifier_variants(prod.identifier)
        add("identifier", variants[int(rng.integers(len(variants)))], **target, constraints={})
        add(
            "identifier",
            f"{prod.brand} {variants[int(rng.integers(len(variants)))]}",
            **target,
            constraints={},
        )
        if prod.nickname:
            add("identifier", f"{prod.brand} {variants[1]}", **target, constraints={})  # "dell wd19tb"
            for template in ("{p}", "{p} used", "the {p}"):
                add("colloquial", template.format(p=prod.nickname), **target, constraints={})
    seen: set[str] = set()
    unique = []
    for intent in intents:
        if intent["query"] not in seen:
            seen.add(intent["query"])
            unique.append(intent)
    return unique


def satisfiable_by(cats: list[Category], products: list[Product], listed: set[int]):
    """A predicate: can some listed product meet every constraint of a category intent in a target category?

    Product-level slots are checked on the product's values and Color on the colors it comes in; Size and
    Condition vary per listing and are assumed reachable.
    """
    by_name = {c.name: c for c in cats}
    listed_by_cat: dict[int, list[Product]] = {}
    for p in products:
        if p.pid in listed:
            listed_by_cat.setdefault(p.cid, []).append(p)

    def meets(product: Product, cat: Category, constraint: dict) -> bool:
        for attr, values in constraint.items():
            slot = cat.slots.index(attr)
            allowed = {cat.values[slot].index(v) for v in values}
            if slot < cat.n_product_slots:
                if product.codes[slot] not in allowed:
                    return False
            elif attr == "Color" and not allowed & set(product.colors):
                return False
        return True

    def check(intent: dict) -> bool:
        for name, best in intent["categories"].items():
            cat = by_name[name]
            constraint = intent["constraints"].get(name, {})
            if best >= 3 and any(meets(p, cat, constraint) for p in listed_by_cat.get(cat.cid, [])):
                return True
        return False

    return check


def sample_query_log(
    intents: list[dict], n_queries: int, rng: np.random.Generator, listed_products: set[int], satisfiable=None
) -> list[dict]:
    """Pick n_queries intents by level share; give them Zipf frequencies, head biased to broad/problem.

    Product intents are only drawn for products that have at least one listing (`listed_products`), category
    intents only when `satisfiable(intent)` says a listed product can earn a grade >= 3.
    """
    intents = [i for i in intents if all(p in listed_products for p in i.get("products", []))]
    if satisfiable is not None:
        intents = [i for i in intents if i.get("products") or satisfiable(i)]
    anchors = [i for i in intents if i["query"] in ANCHOR_QUERIES][:n_queries]
    by_level = {lv: [i for i in intents if i["level"] == lv and i not in anchors] for lv in LEVELS}
    quota = {lv: int(round(LEVEL_SHARE[lv] * n_queries)) for lv in LEVELS}
    quota["broad"] += n_queries - sum(quota.values())
    for a in anchors:
        quota[a["level"]] -= 1
    chosen: list[dict] = list(anchors)
    spill = 0
    for lv in ("problem", "colloquial", "identifier", "broad", "specific"):  # small pools first, spill onward
        want = max(0, quota[lv] + spill)
        pool = by_level[lv]
        take = min(want, len(pool))
        spill = want - take
        picks = rng.choice(len(pool), size=take, replace=False)
        chosen += [pool[int(p)] for p in sorted(picks)]
    if spill:
        raise ValueError(f"only {len(chosen)} distinct queries available, asked for {n_queries}")
    bias = np.array(
        [
            LEVEL_HEAD_BIAS[i["level"]]
            + (1.0 if not i["constraints"] and not i.get("products") else 0.0)
            + (1.0 if i in anchors else 0.0)
            for i in chosen
        ]
    )  # bare category names ("headphones") are the most searched of all
    score = 0.8 * rng.gumbel(size=len(chosen)) + bias
    order = np.argsort(-score, kind="stable")
    log_rows = []
    for rank, idx in enumerate(order.tolist(), start=1):
        intent = dict(chosen[idx])
        # Zipf(1.1) scaled so that the middle query is searched twice and about a third of the log once
        intent["frequency"] = max(1, int(round(2 * (len(chosen) / (2 * rank)) ** 1.1)))
        log_rows.append(intent)
    for k, row in enumerate(log_rows):
        row["intent_id"] = f"{row['level'][:4]}-{k:05d}"
    return log_rows


# ----------------------------------------------------------------------------------------------- pooling


def tokenize(text: str) -> list[str]:
    return TOKEN_RE.findall(text.lower())


class TermPool:
    """Judging pool by term overlap (idf-weighted count of shared title terms); not a search engine."""

    def __init__(self):
        self.vocab: dict[str, int] = {}
        self.indptr = [0]
        self.indices: list[np.ndarray] = []
        self.n_items = 0

    def add(self, titles: list[str]) -> None:
        vocab = self.vocab
        offset = self.indptr[-1]
        idx, ptr = [], []
        for title in titles:
            ids = {vocab.setdefault(t, len(vocab)) for t in tokenize(title)}
            idx.extend(sorted(ids))
            offset += len(ids)
            ptr.append(offset)
        self.indices.append(np.asarray(idx, dtype=np.int32))
        self.indptr.extend(ptr)
        self.n_items += len(titles)

    def finish(self) -> None:
        indices = np.concatenate(self.indices) if self.indices else np.zeros(0, np.int32)
        data = np.ones(len(indices), dtype=np.float32)
        matrix = sp.csr_matrix(
            (data, indices, np.asarray(self.indptr, dtype=np.int64)), shape=(self.n_items, len(self.vocab))
        )
        self.matrix = matrix.tocsc()
        df = np.diff(self.matrix.indptr).astype(np.float64)
        self.idf = np.log(1 + self.n_items / np.maximum(df, 1)).astype(np.float32)

    def top(self, query: str, k: int) -> np.ndarray:
        ids = sorted({self.vocab[t] for t in tokenize(query) if t in self.vocab})
        if not ids:
            return np.zeros(0, dtype=np.int64)
        scores = self.matrix[:, ids] @ self.idf[ids]
        nz = np.flatnonzero(scores)
        if len(nz) > k:
            nz = nz[np.argpartition(-scores[nz], k)[:k]]
        return nz[np.lexsort((nz, -scores[nz]))]


# ----------------------------------------------------------------------------------------------- driver


@dataclass
class SynthResult:
    n_items: int
    n_queries: int
    n_judgments: int
    out: Path


def taxonomy_json(cats: list[Category], products: list[Product]) -> dict:
    return {
        "departments": tx.DEPARTMENTS,
        "categories": [
            {
                "name": c.name,
                "dept": c.dept,
                "nouns": c.nouns,
                "slots": c.slots,
                "values": c.values,
                "n_product_slots": c.n_product_slots,
                "related": c.related,
            }
            for c in cats
        ],
        "colors": tx.COLORS,
        "products": [
            {
                "product_id": p.pid,
                "category": cats[p.cid].name,
                "brand": p.brand,
                "series": p.series,
                "identifier": p.identifier,
                "attributes": {cats[p.cid].slots[s]: cats[p.cid].values[s][c] for s, c in enumerate(p.codes)},
                "colors": [tx.COLORS[c] for c in p.colors],
                "nickname": p.nickname,
            }
            for p in products
        ],
    }


def generate(n_items: int, n_queries: int, seed: int, out: str | Path, progress: bool = True) -> SynthResult:
    """Write a synthetic dataset directory (catalog, queries, judgments, truth/, manifest.json) atomically."""
    if n_items < 1 or n_queries < 1:  # checked before anything is created under `out`
        raise ValueError(f"need at least 1 item and 1 query, got items={n_items}, queries={n_queries}")
    out = Path(out)
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    cats = build_categories()
    products = build_products(cats, np.random.default_rng([seed, 0]))
    pool = TermPool()
    truths = []
    with formats.atomic_write_path(out / "catalog.parquet") as tmp:
        writer = pq.ParquetWriter(tmp, formats.CATALOG_SCHEMA, **formats.PARQUET_OPTIONS)
        try:
            bar = tqdm(total=n_items, desc="items", unit="item", disable=not progress)
            for table, truth in generate_items(cats, products, n_items, seed):
                writer.write_table(table, row_group_size=BATCH_ITEMS)
                pool.add(table.column("title").to_pylist())
                truths.append(truth)
                bar.update(table.num_rows)
            bar.close()
        finally:
            writer.close()
    truth = {k: np.concatenate([t[k] for t in truths]) for k in truths[0]}
    del truths
    for key in ("category", "product", "attrs", "stuffed"):
        with formats.atomic_write_path(truth_dir / f"item_{key}.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, truth[key])
    taxonomy = taxonomy_json(cats, products)
    formats.write_json(taxonomy, truth_dir / "taxonomy.json")

    intents = build_intents(cats, products, np.random.default_rng([seed, 3]))
    listed = set(np.unique(truth["product"]).tolist())
    query_log = sample_query_log(
        intents, n_queries, np.random.default_rng([seed, 4]), listed, satisfiable_by(cats, products, listed)
    )
    with formats.atomic_write_path(truth_dir / "intents.jsonl") as tmp, open(tmp, "w") as f:
        for row in query_log:
            fields = {
                k: row[k]
                for k in ("intent_id", "level", "query", "frequency", "categories", "related", "constraints")
            }
            fields["products"] = row.get("products", [])
            f.write(json.dumps(fields, sort_keys=True) + "\n")
    queries = pa.table(
        {
            "query": [r["query"] for r in query_log],
            "frequency": [r["frequency"] for r in query_log],
            "intent_id": [r["intent_id"] for r in query_log],
        },
        schema=formats.QUERIES_SCHEMA,
    )
    formats.write_table(queries, out / "queries.parquet")

    pool.finish()
    item_ids = [f"s{i:07d}" for i in range(n_items)]
    oracle = Oracle(
        item_ids,
        truth["category"],
        truth["product"],
        truth["attrs"],
        taxonomy,
        {r["intent_id"]: r for r in query_log},
        {r["query"]: r["intent_id"] for r in query_log},
    )
    rng = np.random.default_rng([seed, 5])
    j_query, j_rows, j_grade = [], [], []
    for row in tqdm(query_log, desc="judgments", unit="query", disable=not progress):
        lexical = pool.top(row["query"], POOL_LEXICAL)
        negatives = rng.choice(n_items, size=min(POOL_RANDOM, n_items), replace=False)
        rows = np.unique(np.concatenate([lexical, negatives]))
        j_query += [row["query"]] * len(rows)
        j_rows.append(rows)
        j_grade.append(oracle.grade_rows(row["query"], rows))
    rows = np.concatenate(j_rows)
    judgments = pa.table(
        {
            "query": j_query,
            "item_id": [item_ids[r] for r in rows.tolist()],
            "grade": np.concatenate(j_grade).astype(np.int8),
            "source": ["oracle"] * len(rows),
        },
        schema=formats.JUDGMENTS_SCHEMA,
    )
    formats.write_table(judgments, out / "judgments.parquet")
    levels = {lv: sum(r["level"] == lv for r in query_log) for lv in LEVELS}
    manifest = {
        "source": "synthetic",
        "generator": {"items": n_items, "queries": n_queries, "seed": seed},
        "taxonomy": {"departments": len(tx.DEPARTMENTS), "categories": len(cats), "products": len(products)},
        "query_levels": levels,
        "stuffed_items": int(truth["stuffed"].sum()),
    }
    n_catalog_rows = pq.read_metadata(out / "catalog.parquet").num_rows
    formats.write_json(
        formats.manifest_for(manifest, n_catalog_rows, queries, judgments), out / "manifest.json"
    )
    return SynthResult(n_items, len(query_log), judgments.num_rows, out)


# ----------------------------------------------------------------------------------------------- description


@dataclass
class LevelStats:
    """Per query level: how many queries, how many relevant items, how many of those share the query's words."""

    level: str
    queries: int
    median_relevant: float
    share_all_words_in_title: float  # of the relevant (grade >= 3) items, averaged over queries
    share_any_word_in_title: float


def level_stats(root: str | Path, min_grade: int = 3) -> list[LevelStats]:
    """The vocabulary gap per query level of a synthetic dataset directory (the table in data_prep/README.md)."""
    oracle = Oracle.load(root)
    titles = pq.read_table(Path(root) / "catalog.parquet", columns=["title"]).column("title").to_pylist()
    title_words = [set(tokenize(t)) for t in titles]
    per_level: dict[str, list[tuple[int, float, float]]] = {lv: [] for lv in LEVELS}
    for query in oracle.query_to_intent:
        relevant = np.flatnonzero(oracle.grade_all(query) >= min_grade)
        if not len(relevant):
            continue
        words = set(tokenize(query))
        all_in = np.mean([words <= title_words[i] for i in relevant])
        any_in = np.mean([bool(words & title_words[i]) for i in relevant])
        per_level[oracle.query_level(query)].append((len(relevant), all_in, any_in))
    out = []
    for level, rows in per_level.items():
        if rows:
            a = np.array(rows)
            out.append(
                LevelStats(
                    level, len(rows), float(np.median(a[:, 0])), float(a[:, 1].mean()), float(a[:, 2].mean())
                )
            )
    return out
