#!/usr/bin/env python3
"""Import cycles between the modules of each crate.

A module is a source file (`a/b.rs` or `a/b/mod.rs` is `a::b`). Module A depends on module B
when A's code (comments and `#[cfg(test)]` modules left out) names a path into B: `crate::b::..`,
`super::b::..`, or a name that `use crate::{..}` lists. Prints each crate's strongly connected
components of more than one module and exits 1 if there is any.

    python3 .ci/module_cycles.py [CRATE_DIR ...]     # default: every crate of the workspace
"""

import os
import re
import sys


def modules(src):
    """Module path -> code of that file without comments and test modules."""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            code = open(path, encoding="utf-8").read()
            cut = code.find("#[cfg(test)]")
            if cut >= 0:
                code = code[:cut]
            code = "\n".join(l for l in code.split("\n") if not l.strip().startswith("//"))
            out["::".join(parts)] = code
    return out


def edges(mods):
    names = set(mods)

    def owner(path):
        """The longest module that is a prefix of `path`."""
        segs = path.split("::")
        best = None
        for i in range(1, len(segs) + 1):
            if "::".join(segs[:i]) in names:
                best = "::".join(segs[:i])
        return best

    graph = {m: set() for m in mods}
    for m, code in mods.items():
        parent = "::".join(m.split("::")[:-1])
        targets = []
        for g in re.finditer(r"crate::((?:\w+::)*\w+)", code):
            targets.append(g.group(1))
        for g in re.finditer(r"crate::((?:\w+::)*\w+)::\{([^}]*)\}", code):
            for item in g.group(2).split(","):
                item = item.strip().split(" ")[0].split("::")[0]
                if item and item != "self":
                    targets.append(g.group(1) + "::" + item)
        for g in re.finditer(r"\bsuper::(\w+)", code):
            targets.append((parent + "::" if parent else "") + g.group(1))
        for t in targets:
            o = owner(t)
            if o is not None and o != m:
                graph[m].add(o)
    return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    crates = sys.argv[1:] or sorted(
        d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "Cargo.toml"))
    )
    found = False
    for crate in crates:
        src = os.path.join(root, crate, "src")
        mods = modules(src)
        comps = cycles(edges(mods))
        print(f"{crate}: {len(mods)} modules, {len(comps)} import cycles")
        for comp in comps:
            found = True
            print("  cycle:", " <-> ".join(comp))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
