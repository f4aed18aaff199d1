"""Hypothesis strategies of tests/test_fuzz_cli.py: experiment files derived from the shipped ones,
stock and profile CSVs derived from the example files, the oracle that says which mutations must
make a file invalid, and the regression cases that run first in every CI run."""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import strategies as st

from fuzz.harness import DEEP, EXPERIMENTS, INF, NAN, TEST_MODELS, Case, deep_text, toml_string, toml_text


# =============================================================================================
# Generating experiment files
# =============================================================================================
def _load_bases() -> list[tuple[str, dict, str]]:
    bases = []
    for p in sorted(EXPERIMENTS.glob("*.toml")):
        text = p.read_text()
        data = tomllib.loads(text)
        if p.name == "own-stock.toml":
            data["population"]["stock"] = "example-stock.csv"  # the copy cut to STOCK_ROWS rows
        bases.append((p.name, data, text))
    return bases


BASES = _load_bases()
# The sensitivity and PSA files cost 5-10 times more to validate (they probe every parameter's
# range): they appear once in the draw, the others four times.
BASE_WEIGHTS = [b for b in BASES for _ in range(1 if "sensitivity" in b[0] or "psa" in b[0] else 4)]
INTERVENTION_TYPES = ["personalised_support", "home_repairs", "rate_ratio", "step_down", "supported_housing",
                      "social_prescribing", "housing_first"]


def _parameter_names() -> tuple[list[tuple[str, Any]], dict[str, list[tuple[str, Any]]]]:
    from hhsim.core.parameters import iter_leaves
    from hhsim.core.resources import default_model_tree, intervention_defaults, world_tree

    model = [(n, leaf["value"]) for n, leaf in iter_leaves(default_model_tree())]
    model += [(n, leaf["value"]) for n, leaf in iter_leaves(world_tree())]
    by_type = {k: [(n, leaf["value"]) for n, leaf in iter_leaves(intervention_defaults(k))]
               for k in INTERVENTION_TYPES}
    return model, by_type


MODEL_PARAMETERS, INTERVENTION_PARAMETERS = _parameter_names()
# Parameters whose odd values are worth a run (they shape the population and the costs).
RUN_PARAMETERS = ["world.estate_size", "world.partner_age_sd", "world.top_band_mean_years",
                  "world.hazards.damp.social_rented", "world.tenure_share.social_rented",
                  "world.female.social_rented", "services.gp.unit_cost", "mortality.rr.deprivation"]

PATH_LIKE = ["../../escaped", "/abs/x", "a/b", "=HYPERLINK(\"x\")", "{ROOT}/abs-escaped", "..", ".",
             "a\\b", "con", "-rf", "~/x", "runs", "x" * 300]
STRANGE_STRINGS = ["", " ", "x" * 300, "y" * 5000, "é", "日本語", "🏠🏠", "\u202etxt.exe", "a\x00b", "\x00",
                   "line\nbreak", "tab\tbed", "' OR 1=1 --", "%s%n", "None", "nan", *PATH_LIKE]
HUGE = [1e30, -1e30, 2**63, 2**63 - 1, -(2**63), 2**64, 10**9, 10**18, 1e308, 5e-324]
NUMBERS = [0, -1, 1, 2, 0.5, -0.0, NAN, INF, -INF, *HUGE]
OTHERS: list[Any] = [True, False, [], [NAN], [1, "a"], {}, {"a": 1}, [[1, 2], [3]], [0], [-1]]

# Paths for experiment.model, population.stock, population.profile and the command line.
# (path, why it may hang)
SPECIAL_PATHS: list[tuple[str, str | None]] = [
    ("/dev/zero", "/dev/zero"), ("/dev/urandom", "/dev/urandom"), ("{ROOT}/case/fifo", "a named pipe"),
    ("adir", None), ("{ROOT}/case/adir", None), ("a" * 5000, None), ("b" * 300 + ".toml", None),
    ("a\x00b", None), ("junk.bin", None), ("empty.txt", None), ("nope.toml", None), ("/dev/null", None),
    ("../../escaped", None), ("", None), (".", None), ("/", None), ("experiment.toml", None),
]
# (path, value, must be refused)
KNOWN: list[tuple[tuple, Any, bool]] = [
    (("experiment", "thresholds"), [NAN], True), (("experiment", "thresholds"), [INF], False),
    (("experiment", "thresholds"), [1e30, 5e-324], False), (("experiment", "thresholds"), [], True),
    (("experiment", "seed"), 2**63, False), (("experiment", "seed"), 2**64, False),
    (("experiment", "seed"), -1, True), (("experiment", "replications"), 10**9, False),
    (("experiment", "replications"), 0, True), (("experiment", "months"), 1201, True),
    (("population", "tenants"), 0, True), (("population", "tenants"), 2**63, True),
    (("parameters", "world.estate_size"), 0, True), (("parameters", "world.estate_size"), 1e30, False),
    (("parameters", "world.estate_size"), 0.5, False), (("parameters", "world.estate_size"), 2.5, False),
    (("parameters", "world.estate_size"), -3, True), (("parameters", "world.estate_size"), NAN, True),
    (("experiment", "discount", "costs"), NAN, True), (("experiment", "discount", "effects"), INF, True),
    (("population", "tenure"), {"social_rented": NAN}, True),
    (("population", "tenure"), {"social_rented": 0.5, "private_rented": 0.5000001}, False),
    (("population", "tenure"), {}, True), (("experiment", "start_month"), 0, True),
    (("experiment", "name"), "", False), (("experiment", "name"), "n" * 5000, False),
    (("experiment", "name"), "a\x00b", False), (("experiment", "name"), "../../escaped", False),
    (("arms",), [], True), (("arms",), [{"name": "baseline", "interventions": [{}]}], True),
    (("arms",), [{"name": "baseline"}, {"name": "baseline"}], True),
    (("arms",), [{"name": "baseline"}, {"name": "../../escaped"}], False),
    (("arms",), [{"name": "baseline"}, {"name": "/abs/x"}], False),
    (("arms",), [{"name": "baseline"}, {"name": "{ROOT}/abs-escaped"}], False),
    (("arms",), [{"name": "baseline"}, {"name": "=HYPERLINK(\"x\")"}], False),
    (("experiment", "price_year"), "1999/00", True), (("experiment", "price_year"), "", True),
    (("experiment", "model"), "", True), (("experiment", "reward_timing"), "middle", True),
]
OUT_PATHS = ["{ROOT}/case/afile", "/dev/null", "{ROOT}/o\x00ut", "{ROOT}/" + "o" * 5000,
             "{ROOT}/" + "o" * 300, "{ROOT}/deep/er/out", "{ROOT}/case/adir", "{ROOT}/case", "rel-out",
             "{ROOT}/case/fifo", ""]
MODEL_PATHS = ["default", "models/chancellor-1997-hiv.toml",
               *(f"models/{p.name}" for p in sorted(TEST_MODELS.glob("*.toml")))]


RUN_PARAMETER_LEAVES = [p for p in MODEL_PARAMETERS if p[0] in RUN_PARAMETERS]
REFUSED_PATHS = {"adir", "{ROOT}/case/adir", "a" * 5000, "b" * 300 + ".toml", "a\x00b", "junk.bin",
                 "nope.toml", "/dev/zero", "/dev/urandom", "{ROOT}/case/fifo", "", ".", "/"}


def values() -> st.SearchStrategy:
    """Nasty values of every type (copies: mutations must not change the pools)."""
    return st.one_of(
        st.sampled_from(NUMBERS), st.sampled_from(STRANGE_STRINGS), st.sampled_from(OTHERS),
        st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
        st.text(st.characters(codec="utf-8"), max_size=12),
        st.lists(st.sampled_from(NUMBERS), max_size=4)).map(copy.deepcopy)


# Schema of the fields the oracle knows (hhsim/experiment/schema.py): kind, low, high.
FIELDS: dict[tuple, tuple] = {
    ("experiment", "name"): ("str",), ("experiment", "description"): ("str",),
    ("experiment", "seed"): ("int", 0, None), ("experiment", "months"): ("int", 1, 1200),
    ("experiment", "replications"): ("int", 1, None), ("experiment", "start_month"): ("int", 1, 12),
    ("experiment", "discount", "costs"): ("num", 0, 1), ("experiment", "discount", "effects"): ("num", 0, 1),
    ("experiment", "thresholds"): ("thresholds",), ("experiment", "price_year"): ("str",),
    ("experiment", "reward_timing"): ("enum", "start", "end", "half-cycle", "both-ends", "simpson"),
    ("experiment", "model"): ("str",),
    ("experiment", "baseline"): ("str",), ("experiment", "discount"): ("dict",),
    ("population", "tenants"): ("int", 1, 50_000_000), ("population", "tenure"): ("dict",),
    ("population", "stock"): ("str",), ("population", "profile"): ("str",),
    ("arms", "*", "name"): ("str",), ("arms", "*", "description"): ("str",),
    ("arms", "*", "parameters"): ("dict",), ("arms", "*", "interventions"): ("list",),
    ("experiment",): ("dict",), ("population",): ("dict",), ("parameters",): ("dict",), ("arms",): ("list",),
}
# Tables where any unknown key must be refused.
STRICT = {("",): ["experiment", "population", "parameters", "arms", "sensitivity", "psa"],
          ("experiment",): ["name", "description", "seed", "months", "replications", "discount", "thresholds",
                            "price_year", "reward_timing", "start_month", "model", "baseline"],
          ("population",): ["tenants", "tenure", "stock", "profile"],
          ("experiment", "discount"): ["costs", "effects"],
          ("arms", "*"): ["name", "description", "parameters", "interventions"],
          ("sensitivity",): ["method", "samples", "parameters", "outputs", "arm", "second_order", "levels",
                             "oneway"],
          ("psa",): ["draws", "parameters", "groups", "thresholds", "perspective"]}


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def invalid_because(path: tuple, value: Any) -> str | None:
    """Why setting ``path`` to ``value`` must make the file invalid (None: not certain)."""
    key = tuple("*" if isinstance(p, int) else p for p in path)
    spec = FIELDS.get(key)
    if spec is None:
        if key[0] == "parameters" or key[:3] == ("arms", "*", "parameters"):
            if isinstance(value, float) and not math.isfinite(value):
                return f"{'.'.join(map(str, path))}={value} (not finite)"
            if isinstance(value, str | bool):
                return f"{'.'.join(map(str, path))}={value!r} (not a number)"
        return None
    kind = spec[0]
    shown = f"{'.'.join(map(str, path))}={str(value)[:20]!r}"
    if kind == "str" and not isinstance(value, str):
        return shown + " (not text)"
    if kind == "dict" and not isinstance(value, dict):
        return shown + " (not a table)"
    if kind == "list" and not isinstance(value, list):
        return shown + " (not a list)"
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return shown + " (not a whole number)"
        if value < spec[1] or (spec[2] is not None and value > spec[2]):
            return shown + " (out of range)"
    if kind == "num":
        if not _is_num(value):
            return shown + " (not a number)"
        if not spec[1] <= value <= spec[2]:  # also nan
            return shown + " (out of range or nan)"
    if kind == "thresholds":
        if not isinstance(value, list) or not value:
            return shown + " (not a non-empty list)"
        if any(not _is_num(t) or not t > 0 for t in value):  # also nan
            return shown + " (a threshold not a positive number, or nan)"
    if kind == "enum" and value not in spec[1:]:
        return shown + " (not one of the choices)"
    return None


def _walk(node: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, i))


def _get(data: Any, path: tuple) -> Any:
    for p in path:
        data = data[p]
    return data


def _arm_paths(data: dict) -> list[int]:
    arms = data.get("arms")
    return [i for i, a in enumerate(arms) if isinstance(a, dict)] if isinstance(arms, list) else []


def still_invalid(data: dict, pending: list[tuple[str, tuple, Any]]) -> list[str]:
    """The reasons that still hold in the final ``data`` (a later mutation may have removed or
    replaced what an earlier one broke), and the arm names used twice or empty."""
    reasons = []
    for why, path, value in pending:
        try:
            if _get(data, path) is value:
                reasons.append(why)
        except (KeyError, IndexError, TypeError):
            pass
    arms = data.get("arms")
    names = [a.get("name") for a in arms if isinstance(a, dict)] if isinstance(arms, list) else []
    names = [n for n in names if isinstance(n, str)]
    if len(set(names)) != len(names):
        reasons.append("arm name used twice")
    if "" in names:
        reasons.append("empty arm name")
    return reasons


def _emit(data: dict, original: dict, deep: str | None) -> str:
    text = toml_text(data)
    return text if deep is None else text.replace(toml_string(DEEP), deep)


@st.composite
def experiment_cases(draw: st.DrawFn) -> Case:
    """A shipped experiment with one to three mutations, as TOML (or raw) bytes."""
    name, original, original_text = draw(st.sampled_from(BASE_WEIGHTS))
    data = copy.deepcopy(original)
    case = Case("experiment", name, b"", tenants=draw(st.sampled_from([1, 2, 10, 10, 50])),
                months=draw(st.sampled_from([1, 2])))
    raw_text: str | None = None
    deep: str | None = None
    # (why, path, value): the file must be refused if ``value`` is still at ``path`` at the end
    pending: list[tuple[str, tuple, Any]] = []
    argv_problem: str | None = None
    void = False  # a raw edit (truncation, ...) may have removed what made the file invalid

    for _ in range(draw(st.sampled_from([1, 1, 2, 3]))):  # one alone is not masked by another
        op = draw(st.sampled_from(
            ["set", "set", "set", "schema", "schema", "delete", "unknown", "arm_name", "arm_name",
             "duplicate_arm", "intervention", "parameter", "parameter", "path", "path", "seed", "deep",
             "raw", "out", "known", "known"]))
        paths = [p for p in _walk(data) if p] if op in ("set", "delete") else []
        if op == "set" and paths:
            path = draw(st.sampled_from(paths))
            value = draw(values())
            parent = _get(data, path[:-1])
            parent[path[-1]] = value
            case.labels.append(f"set {'.'.join(map(str, path))} = {str(value)[:30]!r}")
            if why := invalid_because(path, value):
                pending.append((why, path, value))
        elif op == "schema":  # a field of the schema, whether the file has it or not
            key = draw(st.sampled_from(sorted(k for k in FIELDS if "*" not in k and len(k) > 1)))
            parent = data
            try:
                for p in key[:-1]:
                    parent = parent.setdefault(p, {})
            except AttributeError:
                continue
            if not isinstance(parent, dict):
                continue
            value = draw(values())
            parent[key[-1]] = value
            case.labels.append(f"set {'.'.join(key)} = {str(value)[:30]!r}")
            if why := invalid_because(key, value):
                pending.append((why, key, value))
            case.want_run |= key[-1] in ("seed", "thresholds")
        elif op == "delete" and paths:
            path = draw(st.sampled_from(paths))
            parent = _get(data, path[:-1])
            del parent[path[-1]]
            case.labels.append(f"delete {'.'.join(map(str, path))}")
        elif op == "unknown":
            tables = [p for p in _walk(data) if isinstance(_get(data, p), dict)]
            path = draw(st.sampled_from(tables))
            key = draw(st.one_of(st.sampled_from(["sed", "Seed", "tennants", "nmae", "zz_unknown", "a.b", "",
                                                  " ", "\x00", "../x", "x" * 300, "é"]),
                                 st.text(st.characters(codec="utf-8"), min_size=1, max_size=10)))
            table = _get(data, path)
            if key in table:
                continue
            table[key] = draw(values())
            case.labels.append(f"unknown key {'.'.join(map(str, (*path, key)))!r}")
            generic = tuple("*" if isinstance(p, int) else p for p in path) or ("",)
            where = (*path, key)
            if generic in STRICT and key not in STRICT[generic]:
                pending.append((f"unknown key {key!r} in [{'.'.join(map(str, path))}]", where, table[key]))
            elif path == ("parameters",) or (len(path) == 3 and path[::2] == ("arms", "parameters")):
                pending.append((f"unknown parameter {key!r}", where, table[key]))
            elif path == ("population", "tenure"):
                pending.append((f"unknown tenure {key!r}", where, table[key]))
        elif op == "arm_name" and _arm_paths(data):
            i = draw(st.sampled_from(_arm_paths(data)))
            new = draw(st.one_of(st.sampled_from(PATH_LIKE + STRANGE_STRINGS),
                                 st.text(st.characters(codec="utf-8"), max_size=8)))
            arm = data["arms"][i]
            exp = data.setdefault("experiment", {}) if isinstance(data.get("experiment", {}), dict) else {}
            if arm.get("name") == exp.get("baseline", "baseline"):
                exp["baseline"] = new  # keep the file valid so that the name reaches the run
            arm["name"] = new
            case.labels.append(f"arm {i} named {new[:40]!r}")
            case.want_run = True
        elif op == "duplicate_arm" and _arm_paths(data):
            i = draw(st.sampled_from(_arm_paths(data)))
            data["arms"].append(copy.deepcopy(data["arms"][i]))
            case.labels.append(f"arm {i} duplicated")
        elif op == "intervention" and _arm_paths(data):
            i = draw(st.sampled_from(_arm_paths(data)))
            table: dict[str, Any] = {}
            kind = draw(st.sampled_from([*INTERVENTION_TYPES, None, "no_such_type", "", 5]))
            if kind is not None:
                table["type"] = kind
            iname = draw(st.sampled_from([None, "extra", "Bad Name", "x" * 41, "disc", "../x", ""]))
            if iname is not None:
                table["name"] = iname
            if draw(st.booleans()) and isinstance(kind, str) and kind in INTERVENTION_PARAMETERS:
                leaf, default = draw(st.sampled_from(INTERVENTION_PARAMETERS[kind]))
                node = table
                for part in leaf.split(".")[:-1]:
                    node = node.setdefault(part, {})
                node[leaf.split(".")[-1]] = draw(values())
            arm = data["arms"][i]
            if not isinstance(arm.get("interventions", []), list):
                continue
            arm.setdefault("interventions", []).append(table)
            case.labels.append(f"arm {i} intervention {table!r}"[:160])
            where = ("arms", i, "interventions", len(arm["interventions"]) - 1)
            if kind not in INTERVENTION_TYPES:
                pending.append((f"intervention type {kind!r}", where, table))
            elif iname in ("Bad Name", "x" * 41, "disc", "../x", ""):
                pending.append((f"intervention name {iname!r}", where, table))
        elif op == "parameter":
            if draw(st.booleans()):
                pname, default = draw(st.sampled_from(RUN_PARAMETER_LEAVES))
                case.want_run = True
            else:
                pname, default = draw(st.sampled_from(MODEL_PARAMETERS))
            value = draw(st.one_of(st.sampled_from(NUMBERS), values()))
            if isinstance(default, list) and _is_num(value) and draw(st.booleans()):
                value = [value] * len(default)  # the right shape
            where = draw(st.sampled_from(["parameters", *(f"arms.{i}" for i in _arm_paths(data))]))
            if where == "parameters":
                if not isinstance(data.setdefault("parameters", {}), dict):
                    continue
                data["parameters"][pname] = value
                path = ("parameters", pname)
            else:
                arm = data["arms"][int(where.split(".")[1])]
                if not isinstance(arm.setdefault("parameters", {}), dict):
                    continue
                arm["parameters"][pname] = value
                path = ("arms", int(where.split(".")[1]), "parameters", pname)
            case.labels.append(f"{where} {pname} = {str(value)[:30]}")
            bad = [v for v in (value if isinstance(value, list) else [value])
                   if not _is_num(v) or not math.isfinite(v)]
            if bad or (isinstance(value, list) and not value):
                pending.append((f"{'.'.join(map(str, path))} = {str(value)[:20]} (not finite numbers)", path,
                                value))
            elif pname == "world.estate_size" and _is_num(value) and value <= 0:
                pending.append((f"{'.'.join(map(str, path))} = {value}", path, value))
            elif (invalid := invalid_because(path, value)) is not None:
                pending.append((invalid, path, value))
        elif op == "path":
            role = draw(st.sampled_from(["model", "stock", "profile", "argv"]))
            path, hang = draw(st.sampled_from(SPECIAL_PATHS + [(m, None) for m in MODEL_PATHS]
                                              + [("example-stock.csv", None), ("example-profile.csv", None)]))
            if hang and case.hang:
                continue  # one file that may never end per case, so that a hang is attributed to it
            case.labels.append(f"{role} path {path[:40]!r}")
            refused = path in REFUSED_PATHS
            if role == "argv":
                case.file_arg = path if path.startswith(("/", "{ROOT}")) else "{ROOT}/case/" + path
                argv_problem = f"argv path {path[:20]!r}" if refused else None
            elif role == "model":
                exp = data.setdefault("experiment", {})
                if not isinstance(exp, dict):
                    continue
                exp["model"] = path
                if refused:
                    pending.append((f"model path {path[:20]!r}", ("experiment", "model"), path))
            else:
                pop = data.setdefault("population", {})
                if not isinstance(pop, dict):
                    continue
                pop[role] = path
                if draw(st.booleans()):
                    pop.pop("tenants", None)
                    pop.pop("tenure", None)
                if refused:
                    pending.append((f"{role} path {path[:20]!r}", ("population", role), path))
            if hang:
                case.hang = f"{role} = {path}"
        elif op == "known":  # values that have broken hhsim, or are easy to get wrong
            path, value, bad = draw(st.sampled_from(KNOWN))
            parent = data
            try:
                for p in path[:-1]:
                    parent = parent.setdefault(p, {})
                parent[path[-1]] = copy.deepcopy(value)
            except (AttributeError, TypeError):
                continue
            case.labels.append(f"set {'.'.join(path)} = {str(value)[:40]}")
            case.want_run |= not bad
            if bad:
                pending.append((f"{'.'.join(path)} = {str(value)[:30]}", path, parent[path[-1]]))
        elif op == "out":  # only used by 'run'
            case.out_arg = draw(st.sampled_from(OUT_PATHS))
            case.labels.append(f"--out {case.out_arg[:50]!r}")
            case.want_run = True
        elif op == "seed":
            value = draw(st.sampled_from([2**63, 2**63 - 1, 2**64, 2**32, 2**32 - 1, 0, 10**30]))
            exp = data.setdefault("experiment", {})
            if isinstance(exp, dict):
                exp["seed"] = value
                case.labels.append(f"seed = {value}")
                case.want_run = True
        elif op == "deep":
            depth = draw(st.sampled_from([5, 50, 200, 500, 1000]))
            form = draw(st.sampled_from(["array", "table"]))
            where = draw(st.sampled_from([("experiment", "thresholds"), ("x",),
                                          ("parameters", "services.gp.unit_cost"),
                                          ("arms", 0, "parameters", "services.gp.unit_cost")]))
            try:
                parent = data
                for p in where[:-1]:
                    parent = parent.setdefault(p, {}) if isinstance(parent, dict) else parent[p]
                parent[where[-1]] = DEEP
            except (KeyError, IndexError, TypeError, AttributeError):
                continue
            deep = deep_text(depth, form)
            case.labels.append(f"{'.'.join(map(str, where))} = {form} nested {depth} deep")
            pending.append((f"nested {depth} deep", where, DEEP))
        elif op == "raw":
            # on the shipped text (with its [[arms]] tables) if nothing was changed yet
            raw_text = original_text if not case.labels else _emit(data, original, deep)
            how = draw(st.sampled_from(["truncate", "duplicate_line", "nul", "junk", "utf16", "latin1", "bom",
                                        "crlf", "empty", "long_line"]))
            case.labels.append(f"raw {how}")
            void = how in ("truncate", "duplicate_line", "empty")
            if how == "truncate":
                raw_text = raw_text[:draw(st.integers(0, len(raw_text)))]
            elif how == "duplicate_line":
                lines = raw_text.splitlines()
                if lines:
                    k = draw(st.integers(0, len(lines) - 1))
                    raw_text = "\n".join(lines[:k + 1] + lines[k:]) + "\n"
            elif how == "nul":
                k = draw(st.integers(0, len(raw_text)))
                raw_text = raw_text[:k] + "\x00" + raw_text[k:]
                case.expect_fail.append("NUL byte in the TOML text")
            elif how == "junk":
                raw_text = None
                case.text = draw(st.sampled_from([b"\x89PNG\r\n\x1a\n\x00\x00", b"PK\x03\x04" + bytes(40),
                                                  bytes(range(256)), b"\xff\xfe" + b"\x00" * 10]))
                case.expect_fail.append("binary junk")
                break
            elif how == "utf16":
                case.text = raw_text.encode("utf-16")
                raw_text = None
                case.expect_fail.append("UTF-16 text")
                break
            elif how == "latin1":
                raw_text = raw_text.replace("description = \"", "description = \"café ")
                case.text = raw_text.encode("latin-1", "replace")
                if "café" in raw_text:
                    case.expect_fail.append("Latin-1 text")
                raw_text = None
                break
            elif how == "bom":
                raw_text = "\ufeff" + raw_text
            elif how == "crlf":
                raw_text = raw_text.replace("\n", "\r\n")
            elif how == "empty":
                raw_text = draw(st.sampled_from(["", "\n", "# only a comment\n", " "]))
            elif how == "long_line":
                raw_text = "# " + "x" * 100_000 + "\n" + raw_text
            break  # raw edits come last: the dict is no longer what is written

    if raw_text is not None:
        case.text = raw_text.encode("utf-8")
    elif not case.text:
        case.text = _emit(data, original, deep).encode("utf-8")
    if case.file_arg not in (None, "{ROOT}/case/experiment.toml"):
        void = True  # the command line names another file: the edits of this one do not count
        case.expect_fail.clear()
    if not void:
        case.expect_fail += still_invalid(data, pending)
    if argv_problem:
        case.expect_fail.append(argv_problem)
    population = data.get("population") if isinstance(data.get("population"), dict) else {}
    case.stock = isinstance(population.get("stock"), str)
    return case


# =============================================================================================
# Generating stock and profile files
# =============================================================================================
STOCK_LINES = (EXPERIMENTS / "example-stock.csv").read_text().splitlines()
PROFILE_LINES = (EXPERIMENTS / "example-profile.csv").read_text().splitlines()
BAD_CELLS = {  # column -> values that must be refused
    "age": ["15", "121", "abc", "nan", "inf", "-inf", "1e30", "", " ", "-40", "4O", "1,5"],
    "tenure": ["castle", "", "nan", "social rented housing", "0"],
    "imd_decile": ["0", "11", "2.5", "", "nan", "one", "1e30", "-1"],
    "sex": ["X", "2", "unknown"],
    "excess_cold": ["maybe", "2", "-1"], "damp": ["maybe", "2"], "falls": ["?", "yes please"],
    "weight": ["0", "-1", "nan", "inf", "abc"],
    "ltc": ["sick", "2", "maybe"],
    "age_band": ["15-24", "16 to 24", "", "100+", "nan"],
    "count": ["-1", "nan", "inf", "abc", "", "1e400"],
}
ODD_CELLS = ["", " ", "x" * 5000, "é", "日本語", "=HYPERLINK(\"x\")", "../../escaped", "\"quoted, comma\"",
             "1e30", "0", "1", "16", "120", "10", "yes", "F", "owner", "TA", "rough sleeper", "16-24", "85+",
             "none", "ltc", "\u202e", "NULL", "-", "1.0"]


def _split(line: str) -> list[str]:
    return line.split(",")


def _stock_columns() -> set[str]:
    from hhsim.core.resources import default_model_tree

    chains = {c.lower() for c in default_model_tree()["chains"]}
    return {"tenant_id", "dwelling_id", "household_id", "estate_id", "age", "sex", "tenure", "imd_decile",
            "excess_cold", "damp", "falls", "weight", *chains}


STOCK_COLUMNS = _stock_columns()
REQUIRED_COLUMNS = {"stock": ("age", "tenure", "imd_decile"),
                    "profile": ("age_band", "imd_decile", "tenure", "count")}


def csv_problems(kind: str, rows: list[list[str]], bad_cells: list[tuple[list[str], str, str]]) -> list[str]:
    """What makes the final (comma-separated, UTF-8) file invalid for certain, whatever order the
    mutations came in: header problems, rows with extra values, no data rows, bad cells still in place."""
    problems = []
    names = [h.strip().lower() for h in rows[0]] if rows else []
    known = STOCK_COLUMNS if kind == "stock" else set(REQUIRED_COLUMNS["profile"])
    data = [row for row in rows[1:] if "".join(row).strip()]
    named = [n for n in names if n]
    if len(set(named)) != len(named):
        problems.append("duplicated column")
    if any(n not in known for n in named):
        problems.append(f"unknown column {next(n for n in named if n not in known)[:20]!r}")
    if any(c not in names for c in REQUIRED_COLUMNS[kind]):
        problems.append("required column missing")
    if "" in names and (kind == "profile" or any(
            i < len(row) and row[i].strip() for row in data for i, n in enumerate(names) if not n)):
        problems.append("column without a name")
    if any(len(row) > len(names) and "".join(row[len(names):]).strip() for row in data):
        problems.append("extra values on a row")
    if not data:
        problems.append("no data rows")
    required = [names.index(c) for c in REQUIRED_COLUMNS[kind] if c in names]
    if any(i >= len(row) or not row[i].strip() for row in data for i in required):
        problems.append("a required cell is blank")
    for row, column, value in bad_cells:
        if names.count(column) == 1 and any(row is r for r in data):
            i = names.index(column)
            if i < len(row) and row[i] == value:
                problems.append(f"{column} = {value!r}")
    return problems


CSV_OPERATIONS = ["bad_cell", "bad_cell", "odd_cell", "odd_cell", "dup_column", "extra_value", "short_row",
                  "unknown_column", "rename_column", "drop_column", "header_case", "bom", "crlf", "cr",
                  "separator", "quote", "junk", "nul", "encoding", "empty", "header_only", "blank_lines",
                  "dup_row", "special_path", "no_header", "empty_header_cell"]


@st.composite
def csv_cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["stock", "stock", "profile"]))
    source = STOCK_LINES if kind == "stock" else PROFILE_LINES
    n = draw(st.integers(1, 45)) if kind == "stock" else draw(st.integers(1, len(source) - 1))
    rows = [_split(line) for line in source[: n + 1]]
    header = rows[0]
    labels: list[str] = [f"{kind}: {n} rows"]
    expect: list[str] = []
    raw: bytes | None = None
    bad_cells: list[tuple[list[str], str, str]] = []  # (row, column, value): values that must be refused
    quoted = False
    encoding = "utf-8"
    sep, newline, prefix = ",", "\n", ""
    want_run = False
    hang = None
    path = "stock.csv" if kind == "stock" else "profile.csv"

    for _ in range(draw(st.sampled_from([1, 1, 2, 3]))):
        op = draw(st.sampled_from(CSV_OPERATIONS))
        data_rows = len(rows) - 1
        if op in ("bad_cell", "odd_cell") and data_rows:
            r = draw(st.integers(1, data_rows))
            c = draw(st.integers(0, len(header) - 1))
            column = header[c].strip().lower() if c < len(header) else ""
            if op == "bad_cell" and column in BAD_CELLS:
                value = draw(st.sampled_from(BAD_CELLS[column]))
                if c < len(rows[r]):
                    rows[r][c] = value
                    bad_cells.append((rows[r], column, value))
            else:
                value = draw(st.one_of(st.sampled_from(ODD_CELLS), st.text(st.characters(
                    codec="utf-8", exclude_characters=",\"\r\n"), max_size=8)))
                if c < len(rows[r]):
                    rows[r][c] = value
            labels.append(f"line {r + 1} {column} = {value[:30]!r}")
            want_run |= op == "odd_cell"
        elif op == "dup_column":
            c = draw(st.integers(0, len(header) - 1))
            for row in rows:
                if c < len(row):
                    row.append(row[c])
            labels.append(f"column {header[c]!r} twice")
        elif op == "extra_value" and data_rows:
            r = draw(st.integers(1, data_rows))
            rows[r].append(draw(st.sampled_from(["x", "1", "extra", "é"])))
            labels.append(f"line {r + 1} has an extra value")
        elif op == "short_row" and data_rows:
            r = draw(st.integers(1, data_rows))
            rows[r] = rows[r][:draw(st.integers(0, max(0, len(rows[r]) - 1)))]
            labels.append(f"line {r + 1} cut to {len(rows[r])} values")
        elif op == "unknown_column":
            name = draw(st.sampled_from(["rent", "name", "dampness", "Age2", "é", "x" * 300]))
            for row in rows:
                row.append("1" if row is not rows[0] else name)
            labels.append(f"unknown column {name[:20]!r}")
        elif op == "rename_column":
            c = draw(st.integers(0, len(header) - 1))
            old = header[c]
            header[c] = draw(st.sampled_from([old + "s", old.upper() + " ", old[:-1], "x",
                                              old.replace("_", " ")]))
            labels.append(f"column {old!r} renamed {header[c]!r}")
        elif op == "drop_column":
            c = draw(st.integers(0, len(header) - 1))
            old = header[c]
            for row in rows:
                if c < len(row):
                    del row[c]
            labels.append(f"column {old!r} removed")
        elif op == "header_case":
            rows[0] = header = [f" {h.upper()} " for h in header]
            labels.append("header in upper case with spaces")
        elif op == "bom":
            prefix = "\ufeff"
            labels.append("BOM")
        elif op == "crlf":
            newline = "\r\n"
            labels.append("CRLF")
        elif op == "cr":
            newline = "\r"
            labels.append("CR line ends")
        elif op == "separator":
            sep = draw(st.sampled_from([";", "\t", "|"]))
            labels.append(f"separated by {sep!r}")
            expect.append(f"separated by {sep!r}")
        elif op == "quote" and data_rows:
            r = draw(st.integers(1, data_rows))
            rows[r][0] = '"' + rows[r][0]
            labels.append(f"unclosed quote on line {r + 1}")
            quoted = True  # the rows as read are no longer the rows as written
        elif op == "junk":
            raw = draw(st.sampled_from([bytes(range(256)) * 3, b"PK\x03\x04" + bytes(100),
                                        b"\x89PNG\r\n\x1a\n", b"\xff\xfe\x00\x00", b"\x00" * 64]))
            labels.append("binary junk")
            expect.append("binary junk")
        elif op == "nul" and data_rows:
            r = draw(st.integers(1, data_rows))
            rows[r].append(rows[r].pop() + "\x00" if rows[r] else "\x00")
            labels.append(f"NUL on line {r + 1}")
            expect.append("NUL byte")
        elif op == "encoding":
            encoding = draw(st.sampled_from(["utf-16", "latin-1"]))
            if encoding == "latin-1" and data_rows:
                rows[1][0] = rows[1][0] + "é"
            labels.append(f"encoded as {encoding}")
            if encoding == "utf-16" or data_rows:
                expect.append(f"encoded as {encoding}")
        elif op == "empty":
            raw = draw(st.sampled_from([b"", b"\n", b" \n\n", b",,,\n"]))
            labels.append(f"empty file {raw!r}")
            expect.append("empty file")
        elif op == "header_only":
            rows = rows[:1]
            labels.append("header only")
        elif op == "blank_lines" and data_rows:
            r = draw(st.integers(1, data_rows))
            rows.insert(r, [""])
            rows.insert(r, ["", ""])
            labels.append(f"blank lines before line {r + 1}")
        elif op == "dup_row" and data_rows:
            r = draw(st.integers(1, data_rows))
            rows.append(list(rows[r]))
            labels.append(f"line {r + 1} repeated")
        elif op == "no_header":
            rows = rows[1:] or [["40", "social", "2"]]
            labels.append("no header row")
        elif op == "empty_header_cell":
            c = draw(st.integers(0, len(header) - 1))
            old = header[c]
            header[c] = ""
            labels.append(f"column {old!r} has no name")
        elif op == "special_path":
            special, hang_reason = draw(st.sampled_from(SPECIAL_PATHS[:12]))
            path = special
            hang = f"{kind} = {path}" if hang_reason else None
            labels.append(f"{kind} path {path[:40]!r}")
            expect.append(f"{kind} path {path[:20]!r}")
        header = rows[0] if rows else header

    if "NUL byte" in expect and not any("\x00" in cell for row in rows for cell in row):
        expect.remove("NUL byte")  # a later operation cut the NUL away with its row or cell
    if raw is None and sep == "," and encoding != "utf-16" and not quoted:
        expect += csv_problems(kind, rows, bad_cells)
    if raw is None:
        text = prefix + newline.join(sep.join(row) for row in rows) + newline
        raw = text.encode(encoding, "replace") if encoding != "utf-8" else text.encode("utf-8")
    support = draw(st.integers(0, 3)) == 0  # a second arm with an intervention: the file feeds it too
    if support:
        labels.append("with a support arm")
    return Case(kind, f"example-{kind}.csv", csv_experiment(kind, path, support), raw, labels, expect,
                want_run, hang, tenants=draw(st.sampled_from([10, 50])), months=draw(st.sampled_from([1, 2])),
                stock=kind == "stock")


def csv_experiment(kind: str, path: str, support: bool = False) -> bytes:
    """An experiment reading a stock or profile file (one arm, or two with an intervention)."""
    if kind == "stock":
        exp = ('[experiment]\nname = "fuzz-stock"\nseed = 42\n\n[population]\nstock = ' + toml_string(path)
               + '\n\n[[arms]]\nname = "baseline"\n')
    else:
        exp = ('[experiment]\nname = "fuzz-profile"\nseed = 5\n\n[population]\ntenants = 50\nprofile = '
               + toml_string(path) + '\n\n[[arms]]\nname = "baseline"\n')
    if support:
        exp += '\n[[arms]]\nname = "support"\n\n  [[arms.interventions]]\n  type = "personalised_support"\n'
    return exp.encode()


# =============================================================================================
# Regression cases: inputs that broke the promise when issue 14 was opened. Each runs first in
# every CI run (hypothesis' explicit examples), whatever the budget of runs.
# =============================================================================================
def _experiment(label: str, edit: Callable[[dict], Any], expect: str | None = None, **kw: Any) -> Case:
    """england-all-tenures.toml (one arm) edited by ``edit``."""
    data = copy.deepcopy(next(d for n, d, _ in BASES if n == "england-all-tenures.toml"))
    edit(data)
    text = toml_text(data)
    if DEEP in text:
        text = text.replace(toml_string(DEEP), deep_text(500, "array"))
    return Case("experiment", "england-all-tenures.toml", text.encode(), labels=[label],
                expect_fail=[expect] if expect else [], always_run=True, **kw)


def _arms(*names: str) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        data["arms"] = [{"name": n} for n in names]
        data["experiment"]["baseline"] = names[0]
    return edit


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        *parents, key = path.split("|")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[key] = value
    return edit


EXPERIMENT_REGRESSIONS = [
    _experiment("arm named '../../escaped'", _arms("../../escaped")),
    _experiment("arm named '{ROOT}/abs-escaped' (an absolute path)", _arms("baseline", "{ROOT}/abs-escaped")),
    _experiment("arm named 'a/b'", _arms("baseline", "a/b")),
    _experiment("arm named '=HYPERLINK(\"x\")'", _arms("baseline", '=HYPERLINK("x")')),
    _experiment("thresholds = [nan]", _set("experiment|thresholds", [NAN]), "experiment.thresholds = [nan]"),
    _experiment("seed = 2**63", _set("experiment|seed", 2**63)),
    _experiment("seed = 2**64", _set("experiment|seed", 2**64)),
    _experiment("world.estate_size = 0", _set("parameters|world.estate_size", 0),
                "parameters.world.estate_size = 0"),
    _experiment("world.estate_size = 0.5", _set("parameters|world.estate_size", 0.5),
                "parameters.world.estate_size = 0.5 (no whole dwelling)"),
    _experiment("world.estate_size = 1e30", _set("parameters|world.estate_size", 1e30)),
    _experiment("an intervention without type", lambda d: d["arms"].append(
        {"name": "x", "interventions": [{"name": "x"}]}), "intervention type None"),
    _experiment("x = [[[...]]] 500 deep", _set("x", DEEP), "nested 500 deep"),
    _experiment("model = 5,000 characters", _set("experiment|model", "a" * 5000), "model path 'aaa...'"),
    _experiment("model = 300-character name", _set("experiment|model", "b" * 300 + ".toml"),
                "model path 'bbb...'"),
    _experiment("stock = 'a\\x00b' (NUL)", lambda d: d.update(population={"stock": "a\x00b"}),
                "stock path 'a\\x00b'"),
    _experiment("profile = 300-character name", _set("population|profile", "p" * 300 + ".csv"),
                "profile path 'ppp...'"),
    _experiment("baseline = 'a\\nb' (newline)", _set("experiment|baseline", "a\nb"),
                "experiment.baseline = 'a\\nb'"),
    _experiment("baseline = ESC[31m (terminal escape)", _set("experiment|baseline", "a\x1b[31mred"),
                "experiment.baseline = 'a\\x1b[31mred'"),
    _experiment("price_year = 'a\\nb' (newline)", _set("experiment|price_year", "a\nb"),
                "experiment.price_year = 'a\\nb'"),
    _experiment("tenure key with DEL", _set("population|tenure", {"x\x7f": 1.0}), "population.tenure"),
    _experiment("world.partner_age_sd = -0.0", _set("parameters|world.partner_age_sd", -0.0)),
    _experiment("an intervention cost with status = [1]", lambda d: d["arms"].append(
        {"name": "x", "interventions": [{"type": "rate_ratio", "name": "r", "costs": {"per_person_month": {
            "value": 5.0, "unit": "£ per person-month", "price_year": "2023/24", "status": [1],
            "source": "x"}}}]}), "costs.per_person_month.status = [1]"),
    _experiment("a rate ratio of 1e9 (overflows float32) and an unknown price year", lambda d: d.update(
        parameters={"chains.mental_health.transitions.onset.rr.deprivation": 1e9},
        experiment={**d["experiment"], "price_year": "1999/00"}), "experiment.price_year"),
    _experiment("--out with a NUL", lambda d: None, out_arg="{ROOT}/o\x00ut"),
    _experiment("--out 5,000 characters", lambda d: None, out_arg="{ROOT}/" + "o" * 5000),
]


def _csv(label: str, kind: str, text: str, expect: str | None = None, **kw: Any) -> Case:
    return Case(kind, f"example-{kind}.csv", csv_experiment(kind, f"{kind}.csv"), text.encode(), [label],
                [expect] if expect else [], always_run=True, stock=kind == "stock", **kw)


PROFILE_HEAD = "age_band,imd_decile,tenure,count\n"
STOCK_HEAD = "age,tenure,imd_decile\n"
CSV_REGRESSIONS = [
    _csv("profile: column count twice", "profile",
         "age_band,imd_decile,tenure,count,count\n16-24,1,social_rented,100,5\n", "duplicated column"),
    _csv("profile: an extra value on a row", "profile", PROFILE_HEAD + "16-24,1,social_rented,100,5\n",
         "extra values on a row"),
    _csv("profile: a tenure with one person (no simulated tenant)", "profile",
         PROFILE_HEAD + "16-24,1,social_rented,100\n85+,10,rough_sleeping,1\n", tenants=5),
    _csv("profile: counts of 1e308 (their sum overflows)", "profile",
         PROFILE_HEAD + "16-24,1,social_rented,1e308\n16-24,2,social_rented,1e308\n"),
    _csv("profile: one bad cell", "profile", PROFILE_HEAD + "16-24,11,social_rented,100\n", "imd_decile 11"),
    _csv("stock: one bad cell", "stock", STOCK_HEAD + "40,social,11\n", "imd_decile 11"),
    _csv("stock: one tenant", "stock", STOCK_HEAD + "40,social,1\n"),
]

