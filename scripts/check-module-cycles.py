#!/usr/bin/env python3
"""Fails when the files of a library crate import each other in a circle.

Reads each library crate's `src/` (not its binaries, not its unit-test
files), builds the graph "file A names an item of file B" from `use`
declarations and inline paths (`crate::`, `super::`, `self::`, child
modules and module aliases), follows `pub use` re-exports to the file that
defines the item, and prints every strongly connected component of more
than one file with the names that tie it.

    python3 scripts/check-module-cycles.py [CRATE_DIR ...]

Without arguments it checks the workspace's library crates. Exit status 1
when a circle is found. Cheap on purpose (no build, no rust-analyzer): it
reads paths, not types, so a name used only through a glob import of a
non-module is not seen; doc comments and strings are ignored.
"""

import os
import re
import sys
from collections import defaultdict

CRATES = ["pool-proto", "pool-place", "supervisor", "pool-master", "pool-worker"]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text):
    """Blank out comments, string and char literals, keeping line breaks."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
            continue
        if text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
            continue
        m = re.match(r'(b?r)(#*)"', text[i:])
        if m and (i == 0 or not re.match(r"[A-Za-z0-9_]", text[i - 1])):
            end = '"' + m.group(2)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(" " + "\n" * text.count("\n", i, j))
            i = j
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
            continue
        if c == "'":
            # A char literal ('a', '\n', '\u{1F600}'), not a lifetime.
            m = re.match(r"'(\\.|\\u\{[0-9a-fA-F]+\}|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
                continue
        out.append(c)
        i += 1
    return "".join(out)


def strip_cfg_test(text):
    """Drop `#[cfg(test)] mod x { ... }` blocks (inline unit tests)."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{", text)
        if not m:
            return text
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        text = text[: m.start()] + "\n" * text.count("\n", m.start(), j) + text[j:]


def expand_use_tree(tree):
    """`a::{b, c::{d, e as f}, self}` -> [(['a','b'], 'b'), (['a','c','e'], 'f'), ...]."""
    tokens = re.findall(IDENT + r"|::|\{|\}|,|\*", tree)
    pos = [0]

    def peek():
        return tokens[pos[0]] if pos[0] < len(tokens) else None

    def take():
        tok = peek()
        pos[0] += 1
        return tok

    results = []

    def parse(prefix):
        segs = list(prefix)
        while True:
            tok = peek()
            if tok == "{":
                take()
                while peek() not in ("}", None):
                    parse(segs)
                    if peek() == ",":
                        take()
                take()
                return
            if tok == "*":
                take()
                results.append((segs, "*"))
                return
            if tok is None or tok in (",", "}"):
                return
            segs.append(take())
            if peek() == "::":
                take()
                continue
            alias = None
            if peek() == "as":
                take()
                alias = take()
            if segs[-1] == "self":
                segs = segs[:-1]
            name = alias or (segs[-1] if segs else None)
            results.append((segs, name))
            return

    while peek() is not None:
        before = pos[0]
        parse([])
        if peek() == ",":
            take()
        if pos[0] == before:
            take()
    return results


class Crate:
    def __init__(self, root):
        self.root = root
        self.src = os.path.join(root, "src")
        self.files = {}  # module path tuple -> file
        self.children = defaultdict(set)
        for dirpath, dirnames, filenames in os.walk(self.src):
            rel = os.path.relpath(dirpath, self.src)
            if rel.split(os.sep)[0] == "bin":
                continue
            if "tests" in rel.split(os.sep):
                continue
            for f in filenames:
                if not f.endswith(".rs") or f == "tests.rs":
                    continue
                path = os.path.join(dirpath, f)
                parts = [] if rel == "." else rel.split(os.sep)
                stem = f[:-3]
                if stem in ("lib", "main") and not parts:
                    mod = ()
                elif stem == "mod":
                    mod = tuple(parts)
                else:
                    mod = tuple(parts + [stem])
                self.files[mod] = path
        for mod in self.files:
            if mod:
                self.children[mod[:-1]].add(mod[-1])
        self.text = {}
        for mod, path in self.files.items():
            with open(path, encoding="utf-8") as fh:
                self.text[mod] = strip_cfg_test(strip_comments_and_strings(fh.read()))
        self.uses = {m: self._uses(m) for m in self.files}
        self.reexports = {
            m: {name: segs for (segs, name, public) in self.uses[m] if public and name != "*"}
            for m in self.files
        }
        self.globs = {
            m: [segs for (segs, name, public) in self.uses[m] if public and name == "*"]
            for m in self.files
        }

    def absolute(self, mod, segs):
        """Make a path absolute from the crate root; None if external."""
        if not segs:
            return None
        head = segs[0]
        if head == "crate":
            return list(segs[1:])
        if head == "self":
            return list(mod) + list(segs[1:])
        if head == "super":
            base = list(mod)
            i = 0
            while i < len(segs) and segs[i] == "super":
                base = base[:-1]
                i += 1
            return base + list(segs[i:])
        if head in self.children[mod]:
            return list(mod) + list(segs)
        return None

    def _uses(self, mod):
        out = []
        for m in re.finditer(r"(pub(?:\([^)]*\))?\s+)?(?<![A-Za-z0-9_])use\s+([^;]+);", self.text[mod]):
            public = m.group(1) is not None
            for segs, name in expand_use_tree(m.group(2)):
                out.append((segs, name, public))
        return out

    def resolve(self, segs, depth=0):
        """The module path of the file that defines the item `segs` names."""
        if depth > 16:
            return None
        segs = list(segs)
        mod = ()
        i = 0
        while i < len(segs) and mod + (segs[i],) in self.files:
            mod = mod + (segs[i],)
            i += 1
        if i == len(segs):
            return mod
        name = segs[i]
        target = self.reexports.get(mod, {}).get(name)
        if target is not None:
            abs_target = self.absolute(mod, target)
            if abs_target is not None:
                return self.resolve(abs_target + segs[i + 1 :], depth + 1)
            return mod
        for glob in self.globs.get(mod, []):
            abs_glob = self.absolute(mod, glob)
            if abs_glob is None:
                continue
            inner = self.resolve(abs_glob + segs[i:], depth + 1)
            if inner is not None and inner != tuple(abs_glob[: len(inner)]) or (
                inner is not None and name in self.defined_names(inner)
            ):
                return inner
        return mod

    def defined_names(self, mod):
        return set(
            re.findall(
                r"\b(?:struct|enum|trait|fn|type|const|static|mod|macro_rules!)\s+(" + IDENT + ")",
                self.text.get(mod, ""),
            )
        )

    def edges(self):
        """{(from, to): {names}}"""
        edges = defaultdict(set)
        for mod in self.files:
            aliases = {}
            text = self.text[mod]
            for segs, name, _public in self.uses[mod]:
                abs_path = self.absolute(mod, segs)
                if abs_path is None:
                    continue
                if name == "*":
                    target = self.resolve(abs_path)
                    if target is not None and target != mod:
                        edges[(mod, target)].add("*")
                    continue
                target = self.resolve(abs_path)
                if target is not None and target != mod:
                    edges[(mod, target)].add(abs_path[-1] if abs_path else "crate")
                if tuple(abs_path) in self.files and name:
                    aliases[name] = tuple(abs_path)
            # Inline paths: crate::a::b, super::x, self::y, child::z, alias::w.
            text_no_use = re.sub(r"(pub(?:\([^)]*\))?\s+)?(?<![A-Za-z0-9_])use\s+[^;]+;", "", text)
            text_no_use = re.sub(r"\bmod\s+" + IDENT + r"\s*;", "", text_no_use)
            for m in re.finditer(r"(?<![A-Za-z0-9_:])(" + IDENT + r")((?:::" + IDENT + r")+)", text_no_use):
                head = m.group(1)
                rest = [x for x in m.group(2).split("::") if x]
                if head in ("crate", "self", "super") or head in self.children[mod]:
                    abs_path = self.absolute(mod, [head] + rest)
                elif head in aliases:
                    abs_path = list(aliases[head]) + rest
                else:
                    continue
                if abs_path is None:
                    continue
                target = self.resolve(abs_path)
                if target is not None and target != mod:
                    edges[(mod, target)].add(abs_path[-1] if abs_path else "crate")
        return edges


def sccs(nodes, adj):
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj[v]:
            if w not in index:
                strong(w)
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
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            strong(v)
    return out


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(here)
    crates = argv[1:] or [os.path.join(top, c) for c in CRATES]
    found = 0
    for root in crates:
        crate = Crate(root)
        edges = crate.edges()
        adj = defaultdict(set)
        for (a, b) in edges:
            adj[a].add(b)
        name = os.path.basename(os.path.normpath(root))
        for comp in sccs(sorted(crate.files), adj):
            if len(comp) < 2:
                continue
            found += 1
            members = sorted(comp)
            rel = lambda m: os.path.relpath(crate.files[m], top)
            print(f"{name}: circle of {len(comp)} files: " + ", ".join(rel(m) for m in members))
            for a in members:
                for b in members:
                    if (a, b) in edges:
                        names = ", ".join(sorted(edges[(a, b)]))
                        print(f"    {rel(a)} -> {rel(b)}: {names}")
    if found:
        print(f"{found} circle(s) of module imports; break each by moving what both sides need into a file that imports neither")
        return 1
    print("no circular module imports in " + ", ".join(os.path.basename(os.path.normpath(c)) for c in crates))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
