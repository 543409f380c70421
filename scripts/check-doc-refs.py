#!/usr/bin/env python3
"""Every design reference in the repo resolves inside it: no file points at design documents
that are not in the repository, and each `docs/NAME.md "Section"` names a heading of that file.
Prints one line per broken reference; exits 1 when there is any."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTSIDE = re.compile(r"DESIGN\.md|reference §|aws-esm-semantics|peers\.md|/work/shared")
REF = re.compile(r'(docs/[a-z-]+\.md)\s+"([^"]+)"')
SELF = "scripts/check-doc-refs.py"


def headings(path, cache={}):
    if path not in cache:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            cache[path] = {m.group(1).strip() for m in re.finditer(r"^#+\s+(.*)$", f.read(), re.M)}
    return cache[path]


def main():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    problems = []
    for name in files:
        if name == SELF or not name.endswith((".c", ".h", ".py", ".sh", ".md", ".txt")):
            continue
        with open(os.path.join(ROOT, name), encoding="utf-8", errors="replace") as f:
            text = f.read()
        for no, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                problems.append(f"{name}:{no}: points outside the repository: {line.strip()}")
        # A reference may wrap across comment lines: join them before matching.
        flat = re.sub(r"\s*\n\s*(?:\*|#|//)?\s*", " ", text)
        for m in REF.finditer(flat):
            doc, section = m.group(1), m.group(2)
            if not os.path.exists(os.path.join(ROOT, doc)):
                problems.append(f"{name}: {doc} does not exist")
            elif section not in headings(doc):
                problems.append(f'{name}: {doc} has no section "{section}"')
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
