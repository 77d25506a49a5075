"""sympy -> scalar Python source -> numba (CPU) and numba-CUDA (GPU) callables.

One generated scalar body serves every target:

* :func:`scalar_function` prints a tuple of sympy expressions as a plain Python
  function of scalar arguments (``math`` module only, common subexpressions
  eliminated). :class:`~meanfield._symbols.GaussExpect` nodes become helper
  functions that loop over the Gauss-Hermite nodes of
  :mod:`meanfield._quadrature`.
* :func:`njit` and :func:`cuda_device` compile that same body for the CPU and
  as a CUDA device function.
* :func:`batch` wraps it in a compiled loop for vectorised evaluation over
  broadcast numpy arrays.

Compiled objects are cached by the expressions (sympy's structural hash and
equality), so hypothesis examples never re-derive or re-compile. On the CPU
the generated source is also written, once, to a module file named by its
content hash under the generated-code cache (:func:`gen_dir`:
``$MEANFIELD_CACHE_DIR``, else ``$XDG_CACHE_HOME/meanfield/gen``, else
``~/.cache/meanfield/gen``; ``MEANFIELD_CACHE_DIR=off`` disables it) and
compiled with numba's on-disk cache, so a new process (a CLI call, a sweep
worker) loads the machine code instead of compiling it again. A file is never
rewritten (its name is its content), so a cached entry cannot go stale; where
the folder cannot be written, compilation falls back to in-memory ``exec``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from . import _quadrature
from ._symbols import GaussExpect, GaussExpectN, LogSumExp, Template

__all__ = [
    "ScalarFunction",
    "scalar_function",
    "njit",
    "cuda_device",
    "batch",
    "evaluate",
    "gen_dir",
    "disk_module",
    "cpu_import",
    "jit_decorated",
]

_CACHE: dict[str, ScalarFunction] = {}
_JIT: dict[tuple[str, str], object] = {}


class _Printer(PythonCodePrinter):
    """Python printer with plain ``math`` names and float literals."""

    def _print_Rational(self, expr):
        return f"({float(expr.p)!r}/{float(expr.q)!r})"

    def _print_Half(self, expr):
        return "0.5"

    def _print_Integer(self, expr):
        return f"{float(expr.p)!r}" if abs(expr.p) < 2**52 else str(expr.p)

    def _print_Pow(self, expr, rational=False):
        b, e = expr.as_base_exp()
        if e.is_Integer and 1 < int(e) <= 4:
            s = self.parenthesize(b, 100)
            # parenthesised: the Mul printer writes x/y**2 as "x/" + this
            return "(" + "*".join([s] * int(e)) + ")"
        if e.is_Integer and int(e) == -1:
            return f"(1.0/{self.parenthesize(b, 100)})"
        return super()._print_Pow(expr, rational=rational)


_KEYS: dict[tuple, str] = {}


def _key(*parts) -> str:
    """A short id, the same for structurally equal sympy inputs (in this process).

    sympy's structural hash and equality index the table (``srepr`` of large
    rank-r expressions took seconds).
    """
    k = tuple(p if isinstance(p, str) else sp.sympify(p) for p in parts)
    if k not in _KEYS:
        _KEYS[k] = f"{len(_KEYS):05d}"
    return _KEYS[k]


@dataclass
class ScalarFunction:
    """A generated scalar function ``f(*inputs) -> tuple`` and its source.

    Attributes
    ----------
    name : str
        Python name of the entry point in :attr:`source`.
    inputs : tuple of sympy.Symbol
        Arguments, in order.
    outputs : tuple of sympy.Expr
        Expressions returned, in order.
    source : str
        The generated Python source (the single body for all targets).
    namespace : dict
        Globals the source needs (``math``, quadrature nodes, helpers).
    key : str
        Cache key.
    """

    name: str
    inputs: tuple
    outputs: tuple
    source: str
    namespace: dict
    key: str
    helpers: list = field(default_factory=list)
    pyfunc: object = None

    @property
    def n_in(self) -> int:
        return len(self.inputs)

    @property
    def n_out(self) -> int:
        return len(self.outputs)

    def __call__(self, *args):
        return self.pyfunc(*args)


def _body(exprs, names: dict, printer: _Printer, helpers: list, order: int, indent="    "):
    """Lines computing ``exprs`` (no GaussExpect left) and the returned names."""
    exprs = [sp.sympify(e) for e in exprs]
    lines: list[str] = []
    # templates: one compiled helper per template class and argument tuple
    tgroups: dict[tuple, list] = {}
    for e in exprs:
        for node in sp.preorder_traversal(e):
            if isinstance(node, Template):
                tgroups.setdefault((type(node), node.args[1:]), []).append(node)
    if tgroups:
        ren0 = {s: sp.Symbol(n) for s, n in names.items()}
        tsubs = {}
        for gi, ((cls, args), nodes) in enumerate(tgroups.items()):
            h = _template_helper(cls, order)
            helpers.append(h)
            outs = [f"_t{len(names)}_{gi}_{k}" for k in range(len(cls._bodies))]
            printed = ", ".join(printer.doprint(a.xreplace(ren0)) for a in args)
            lines.append(f"{indent}({', '.join(outs)},) = {h.name}({printed})")
            for nd in nodes:
                tsubs[nd] = sp.Symbol(outs[int(nd.args[0])])
        exprs = [e.xreplace(tsubs) for e in exprs]
        names = dict(names)
        names.update({sym: sym.name for sym in tsubs.values()})
    # replace every GaussExpect (outermost first) by a helper call
    ge_subs = {}
    for e in exprs:
        for node in sp.preorder_traversal(e):
            if isinstance(node, GaussExpect) and node not in ge_subs:
                ge_subs[node] = sp.Symbol(f"_ge{len(names)}_{len(ge_subs)}")
    # multivariate expectations over the same Gaussian share one quadrature loop
    groups: dict[tuple, list] = {}
    for e in exprs:
        for node in sp.preorder_traversal(e):
            if isinstance(node, GaussExpectN) and node not in ge_subs:
                ge_subs[node] = sp.Symbol(f"_gn{len(names)}_{len(ge_subs)}")
                groups.setdefault(node.args[1:], []).append(node)
    local = dict(names)
    for node, sym in ge_subs.items():
        if isinstance(node, GaussExpectN):
            continue
        h = _gauss_helper(node, order)
        helpers.append(h)
        args = ", ".join(printer.doprint(sp.Symbol(local.get(s, str(s)))) for s in h.inputs)
        lines.append(f"{indent}{sym.name} = {h.name}({args})")
    for nodes in groups.values():
        h = _gauss_helper_n(tuple(nodes), _quadrature.order_for(nodes[0].dim, order))
        helpers.append(h)
        args = ", ".join(printer.doprint(sp.Symbol(local.get(s, str(s)))) for s in h.inputs)
        targets = ", ".join(ge_subs[nd].name for nd in nodes)
        lines.append(f"{indent}({targets},) = {h.name}({args})")
    if ge_subs:
        exprs = [e.xreplace(ge_subs) for e in exprs]
    ren = {s: sp.Symbol(n) for s, n in names.items()}
    exprs = [e.xreplace(ren) for e in exprs]
    exprs, sm_lines = _softmax(exprs, printer, indent, len(names))
    lines += sm_lines
    # no pre/post-processing: sympy's "basic" cse optimisations took 40 s on
    # rank-3 denoisers and buy nothing here
    reps, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_c"), optimizations=None)
    for s, v in reps:
        lines.append(f"{indent}{s} = {printer.doprint(v)}")
    outs = [printer.doprint(r) for r in reduced]
    return lines, outs


def _logs(d) -> bool:
    """``d`` is zero or a sum of (multiples of) logarithms."""
    terms = sp.Add.make_args(d)
    return d == 0 or all(
        isinstance(t, sp.log) or (t.is_Mul and len(t.args) == 2 and t.args[0].is_number
                                  and isinstance(t.args[1], sp.log))
        for t in terms
    )


def _softmax(exprs: list, printer: _Printer, indent: str, uid: int) -> tuple[list, list[str]]:
    """Share the exponentials of every ``LogSumExp`` with its softmax weights.

    ``L = LogSumExp(a_1..a_k)`` is computed as ``m + log(s)`` with
    ``m = max(a)``, ``e_j = exp(a_j - m)``, ``s = sum e_j``, and the
    derivatives sympy writes as ``exp(a_j - L)`` (or ``exp(a_i + a_j - 2L)``)
    become ``e_j / s`` (``e_i e_j / s^2``): the same numbers, overflow-free, with
    ``k`` exponentials and one logarithm per ``L`` instead of one exponential
    per weight on top of the ``L`` itself (in a Gauss-Hermite loop: per node).

    The new names carry ``uid`` (the caller's count of names, distinct for
    the bodies of one function) and nothing else, so helpers that differ only
    by name stay textually equal (:func:`_quadrature_helper` shares them).

    Returns the rewritten expressions and the lines defining the new names.
    """
    lses: list = []
    for e in exprs:
        for node in sp.preorder_traversal(e):
            if isinstance(node, LogSumExp) and node not in lses:
                if not any(a.has(LogSumExp) for a in node.args):
                    lses.append(node)
    if not lses:
        return exprs, []
    args_all = [a for L in lses for a in L.args]
    reps, red = sp.cse(args_all, symbols=sp.numbered_symbols(f"_a{uid}_"), optimizations=None)
    lines = [f"{indent}{s} = {printer.doprint(v)}" for s, v in reps]
    info = []
    k = 0
    for li, L in enumerate(lses):
        xs = []
        for j in range(len(L.args)):
            x = sp.Symbol(f"_x{uid}_{li}_{j}")
            lines.append(f"{indent}{x} = {printer.doprint(red[k])}")
            k += 1
            xs.append(x)
        m = sp.Symbol(f"_m{uid}_{li}")
        es = [sp.Symbol(f"_e{uid}_{li}_{j}") for j in range(len(xs))]
        tot = sp.Symbol(f"_s{uid}_{li}")
        lines.append(f"{indent}{m} = max({', '.join(map(str, xs))})")
        lines += [f"{indent}{e_} = math.exp({x} - {m})" for e_, x in zip(es, xs, strict=True)]
        lines.append(f"{indent}{tot} = {' + '.join(map(str, es))}")
        info.append((L, L.args, es, tot, m))

    def weight(node):
        u = node.args[0]
        for L, args, es, tot, _ in info:
            if not u.has(L):
                continue
            c = u.coeff(L)
            if c == -1:
                rest = u + L
                for a, e_ in zip(args, es, strict=True):
                    d = a - rest  # 0, or the log of a weight sympy took out of the exp
                    if _logs(d):
                        return e_ / tot * sp.exp(-d)
            elif c == -2:
                rest = u + 2 * L
                for i in range(len(args)):
                    for j in range(i, len(args)):
                        d = args[i] + args[j] - rest
                        if _logs(d):
                            return es[i] * es[j] / tot**2 * sp.exp(-d)
        return node

    out = []
    lse_subs = {L: m + sp.log(tot) for L, _, _, tot, m in info}
    for e in exprs:
        e = e.replace(lambda n: isinstance(n, sp.exp) and n.has(LogSumExp), weight)
        out.append(e.xreplace(lse_subs))
    return out, lines


def _gauss_helper(node: GaussExpect, order: int) -> ScalarFunction:
    h, B, m, v = node.args
    free = sorted(node.free_symbols, key=lambda s: s.name)
    key = _key("ge", node, str(order))
    if key in _CACHE:
        return _CACHE[key]
    name = f"_ge_{key}"
    printer = _Printer()
    names = {s: f"a{i}" for i, s in enumerate(free)}
    helpers: list = []
    mv_lines, (m_src, v_src) = _body([m, v], names, printer, helpers, order)
    names_b = dict(names)
    names_b[B] = "b_"
    h_lines, (h_src,) = _body([h], names_b, printer, helpers, order, indent="        ")
    src = [f"def {name}({', '.join(names[s] for s in free)}):"]
    src += mv_lines
    src += [
        f"    m_ = {m_src}",
        f"    s_ = math.sqrt(max({v_src}, 0.0))",
        "    acc_ = 0.0",
        f"    for i_ in range({order}):",
        "        b_ = m_ + s_ * _Z[i_]",
    ]
    src += h_lines
    src += [f"        acc_ += _W[i_] * ({h_src})", "    return acc_"]
    return _quadrature_helper(name, free, (node,), src, order, helpers, key)


_CANON: dict[tuple, ScalarFunction] = {}


def _quadrature_helper(name, free, outputs, src, order, helpers, key) -> ScalarFunction:
    """Finish, cache and return a generated helper that loops over the
    ``order``-node Gauss-Hermite rule (``_Z``, ``_W`` in its namespace).

    Helpers whose source is the same but for their name are one function:
    the expectations of the modes of a tensor that share a prior differ only
    in which symbols fill the arguments (``a0, a1, ...`` are the free symbols
    in name order), so the second and later ones reuse the first's code,
    called with their own arguments (one numba compilation instead of one per
    mode: order 8 has 8 copies of each).
    """
    canon = ("\n".join(src).replace(f"def {name}(", "def _helper_(", 1), order)
    prev = _CANON.get(canon)
    if prev is not None:
        fn = replace(prev, inputs=tuple(free), outputs=tuple(outputs))
        _CACHE[key] = fn
        return fn
    z, w = _quadrature.gauss_hermite(order)
    fn = ScalarFunction(
        name=name,
        inputs=tuple(free),
        outputs=tuple(outputs),
        source="\n".join(src) + "\n",
        namespace={"math": math, "_Z": np.ascontiguousarray(z), "_W": np.ascontiguousarray(w)},
        key=key,
        helpers=helpers,
    )
    _finish(fn)
    _CACHE[key] = fn
    _CANON[canon] = fn
    return fn


def _template_helper(cls, order: int) -> ScalarFunction:
    """All bodies of a :class:`~meanfield._symbols.Template` as one helper."""
    key = _key("tpl", cls.__name__, str(order))
    if key not in _CACHE:
        fn = scalar_function(cls._bodies, cls._params, name=f"_tpl_{cls._tname}", order=order)
        _CACHE[key] = fn
    return _CACHE[key]


def _cholesky_lines(r: int, cov: list[str]) -> list[str]:
    """Unrolled Cholesky factor ``L_ij`` of an ``r x r`` positive-semidefinite
    matrix (entries ``cov`` row by row); a non-positive pivot gives a zero
    column, so singular covariances (e.g. zero) factorise exactly."""
    out = []
    for j in range(r):
        d = cov[j * r + j] + "".join(f" - L{j}{k}_ * L{j}{k}_" for k in range(j))
        out.append(f"    d_ = {d}")
        out.append(f"    L{j}{j}_ = math.sqrt(d_) if d_ > 0.0 else 0.0")
        for i in range(j + 1, r):
            num = cov[i * r + j] + "".join(f" - L{i}{k}_ * L{j}{k}_" for k in range(j))
            out.append(f"    L{i}{j}_ = ({num}) / L{j}{j}_ if L{j}{j}_ > 0.0 else 0.0")
    return out


def _gauss_helper_n(nodes: tuple, order: int) -> ScalarFunction:
    """One tensor-product Gauss-Hermite loop for several ``GaussExpectN`` nodes
    over the same Gaussian vector ``b = m + L z`` (``L`` the Cholesky factor)."""
    _, v, m, c = nodes[0].args
    r = len(v)
    free = sorted(set().union(*(nd.free_symbols for nd in nodes)), key=lambda s: s.name)
    key = _key("gn", sp.Tuple(*nodes), str(order))
    if key in _CACHE:
        return _CACHE[key]
    name = f"_gn_{key}"
    printer = _Printer()
    names = {s: f"a{i}" for i, s in enumerate(free)}
    helpers: list = []
    mc_lines, mc_src = _body(list(m) + list(c), names, printer, helpers, order)
    names_b = dict(names)
    for k, b in enumerate(v):
        names_b[b] = f"b{k}_"
    ind = "    " * (r + 1)
    h_lines, h_src = _body([nd.args[0] for nd in nodes], names_b, printer, helpers, order, ind)
    src = [f"def {name}({', '.join(names[s] for s in free)}):"]
    src += mc_lines
    src += [f"    m{k}_ = {mc_src[k]}" for k in range(r)]
    src += _cholesky_lines(r, [f"({x})" for x in mc_src[r:]])
    src += [f"    acc{k}_ = 0.0" for k in range(len(nodes))]
    for k in range(r):
        pad = "    " * (k + 1)
        src.append(f"{pad}for i{k}_ in range({order}):")
        wprev = f"w{k - 1}_ * " if k else ""
        src.append(f"{pad}    w{k}_ = {wprev}_W[i{k}_]")
    for k in range(r):
        terms = " + ".join(f"L{k}{j}_ * _Z[i{j}_]" for j in range(k + 1))
        src.append(f"{ind}b{k}_ = m{k}_ + {terms}")
    src += h_lines
    src += [f"{ind}acc{k}_ += w{r - 1}_ * ({h})" for k, h in enumerate(h_src)]
    src.append(f"    return ({', '.join(f'acc{k}_' for k in range(len(nodes)))},)")
    return _quadrature_helper(name, free, nodes, src, order, helpers, key)


def _finish(fn: ScalarFunction) -> None:
    ns = dict(fn.namespace)
    for h in fn.helpers:
        ns[h.name] = h.pyfunc
    exec(compile(fn.source, f"<meanfield generated {fn.name}>", "exec"), ns)
    fn.pyfunc = ns[fn.name]


def scalar_function(exprs, inputs, name: str = "f", order: int | None = None) -> ScalarFunction:
    """Generate a scalar function returning the tuple ``exprs`` of ``inputs``.

    Parameters
    ----------
    exprs : sequence of sympy.Expr
        Outputs. ``GaussExpect`` nodes are evaluated with ``order`` nodes.
    inputs : sequence of sympy.Symbol
        Arguments, in order. Every free symbol of ``exprs`` must be listed.
    name : str
        Readable prefix of the generated function's name.
    order : int, optional
        Gauss-Hermite order (default :data:`meanfield._quadrature.DEFAULT_ORDER`).

    Returns
    -------
    ScalarFunction
    """
    order = order or _quadrature.DEFAULT_ORDER
    exprs = tuple(sp.sympify(e) for e in exprs)
    inputs = tuple(inputs)
    missing = set().union(*(e.free_symbols for e in exprs)) - set(inputs)
    if missing:
        raise ValueError(f"free symbols {sorted(map(str, missing))} are not inputs of {name}")
    key = _key(name, sp.Tuple(*exprs), sp.Tuple(*inputs), str(order))
    if key in _CACHE:
        return _CACHE[key]
    fname = f"{name}_{key}"
    printer = _Printer()
    names = {s: f"a{i}" for i, s in enumerate(inputs)}
    helpers: list = []
    lines, outs = _body(exprs, names, printer, helpers, order)
    src = [f"def {fname}({', '.join(names[s] for s in inputs)}):"] + lines
    src.append(f"    return ({', '.join(outs)},)")
    fn = ScalarFunction(
        name=fname,
        inputs=inputs,
        outputs=exprs,
        source="\n".join(src) + "\n",
        namespace={"math": math},
        key=key,
        helpers=helpers,
    )
    _finish(fn)
    _CACHE[key] = fn
    return fn


_GEN_DIR: list = []  # [Path | None] once resolved
#: the decorator line of generated CPU functions (one place: source and exec paths agree)
CPU_JIT = 'numba.njit(cache=True, fastmath=False, error_model="numpy")'
_DISK: dict[tuple, tuple[str, str]] = {}  # (key, name, source) -> (module, function)


def gen_dir() -> Path | None:
    """The generated-code cache folder, or ``None`` when disabled or not writable."""
    if not _GEN_DIR:
        env = os.environ.get("MEANFIELD_CACHE_DIR", "")
        path: Path | None
        if env.lower() in ("0", "off", "none", "false"):
            path = None
        else:
            base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            path = Path(env) if env else Path(base) / "meanfield" / "gen"
            try:
                path.mkdir(parents=True, exist_ok=True)
                if not os.access(path, os.W_OK | os.X_OK):
                    path = None
            except OSError:
                path = None
        _GEN_DIR.append(path)
    return _GEN_DIR[0]


def disk_module(source: str) -> ModuleType | None:
    """Import ``source`` as the module ``mfgen_<hash>`` from :func:`gen_dir`.

    The file is written once (atomically) and never rewritten, so numba's
    on-disk cache of its functions stays valid across processes. ``None``
    when the cache is disabled or cannot be written.
    """
    import numba

    folder = gen_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(f"{numba.__version__}\n{source}".encode()).hexdigest()[:24]
    name = f"mfgen_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    path = folder / f"{name}.py"
    try:
        if not path.exists():
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            tmp.write_text(source)
            if path.exists():  # written meanwhile by another process: keep its mtime
                tmp.unlink()
            else:
                os.replace(tmp, path)
    except OSError:
        return None
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - defensive
        return None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception:
        del sys.modules[name]
        raise
    return mod


def jit_decorated(source: str, decorator: str, overrides: dict[str, str] | None = None) -> str:
    """``source`` with ``@decorator`` before every top-level ``def`` (``overrides``:
    another decorator for some function names)."""
    overrides = overrides or {}
    out = []
    for line in source.splitlines():
        if line.startswith("def "):
            fname = line[4:].split("(", 1)[0].strip()
            out.append(f"@{overrides.get(fname, decorator)}")
        out.append(line)
    return "\n".join(out) + "\n"


def _literal(name: str, value) -> str | None:
    """A module-level assignment reproducing ``value`` exactly, or ``None``."""
    if isinstance(value, ModuleType):
        return f"import {value.__name__} as {name}" if value.__name__ != name else (
            f"import {name}")
    if isinstance(value, np.ndarray) and value.dtype == np.float64 and value.ndim == 1:
        items = ", ".join(repr(float(v)) for v in value)
        return f"{name} = np.ascontiguousarray(np.array([{items}], dtype=np.float64))"
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        return f"{name} = {value!r}"
    return None


def _disk_key(fn: ScalarFunction) -> tuple:
    return (fn.key, fn.name, fn.source)


def cpu_import(fn: ScalarFunction) -> str | None:
    """``from mfgen_<hash> import <name>`` for ``fn``'s disk-cached CPU build, or ``None``
    (a namespace entry without an exact literal form, or no writable cache)."""
    k = _disk_key(fn)
    if k not in _DISK:
        lines = ["import math", "import numba", "import numpy as np"]
        for h in fn.helpers:
            imp = cpu_import(h)
            if imp is None:
                return None
            lines.append(imp)
        for nm, val in fn.namespace.items():
            lit = _literal(nm, val)
            if lit is None:
                return None
            lines.append(lit)
        src = "\n".join(lines) + "\n\n\n" + jit_decorated(fn.source, CPU_JIT)
        try:
            mod = disk_module(src)
        except Exception:  # pragma: no cover - a broken cache folder never breaks a run
            mod = None
        if mod is None or not hasattr(mod, fn.name):
            return None
        _DISK[k] = (mod.__name__, fn.name)
    mname, fname = _DISK[k]
    return f"from {mname} import {fname}"


def _compile(fn: ScalarFunction, target: str):
    k = (fn.key, target)
    if k in _JIT:
        return _JIT[k]
    if target == "cpu" and cpu_import(fn) is not None:
        mname, fname = _DISK[_disk_key(fn)]
        out = getattr(sys.modules[mname], fname)
        _JIT[k] = out
        return out
    if target == "cpu":
        import numba

        # error_model="numpy": 1/0 gives inf (as on the GPU), never a Python exception
        decorate = numba.njit(cache=False, fastmath=False, error_model="numpy")
    elif target == "cuda":
        from numba import cuda

        decorate = cuda.jit(device=True)
    else:  # pragma: no cover - guarded by callers
        raise ValueError(f"target must be one of 'cpu', 'cuda'; got {target!r}")
    ns = dict(fn.namespace)
    for h in fn.helpers:
        ns[h.name] = _compile(h, target)
    exec(compile(fn.source, f"<meanfield generated {fn.name} [{target}]>", "exec"), ns)
    out = decorate(ns[fn.name])
    _JIT[k] = out
    return out


def njit(fn: ScalarFunction):
    """The scalar body compiled with ``numba.njit`` (cached)."""
    return _compile(fn, "cpu")


def cuda_device(fn: ScalarFunction):
    """The same scalar body compiled with ``numba.cuda.jit(device=True)`` (cached)."""
    return _compile(fn, "cuda")


def batch(fn: ScalarFunction):
    """A compiled loop ``run(X, out)`` evaluating ``fn`` row by row.

    ``X`` has shape ``(n, n_in)`` and ``out`` shape ``(n, n_out)``.
    """
    k = (fn.key, "batch")
    if k in _JIT:
        return _JIT[k]
    import numba

    args = ", ".join(f"X[i, {j}]" for j in range(fn.n_in))
    stores = "\n".join(f"        out[i, {j}] = r[{j}]" for j in range(fn.n_out))
    src = f"def run(X, out):\n    for i in range(X.shape[0]):\n        r = f_({args})\n{stores}\n"
    ns = {"f_": njit(fn)}
    exec(compile(src, f"<meanfield batch {fn.name}>", "exec"), ns)
    out = numba.njit(cache=False, error_model="numpy")(ns["run"])
    _JIT[k] = out
    return out


def evaluate(fn: ScalarFunction, *args) -> tuple[np.ndarray, ...]:
    """Evaluate ``fn`` on broadcast numpy arrays with the compiled batch loop."""
    arrs = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in args])
    shape = arrs[0].shape if arrs else ()
    X = np.ascontiguousarray(np.stack([a.reshape(-1) for a in arrs], axis=1)) if arrs else None
    n = X.shape[0] if X is not None else 1
    out = np.empty((n, fn.n_out))
    batch(fn)(X, out)
    return tuple(out[:, j].reshape(shape) for j in range(fn.n_out))
