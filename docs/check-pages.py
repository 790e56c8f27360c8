#!/usr/bin/env python3
# check-pages.py DOCS_DIR PAGE...: every page of the reference starts with
# the "Title:" header that gi-docgen names it by (without it, the index
# says "Unknown document"), and every Markdown file in DOCS_DIR is a page.
# TAP output.

import os
import sys

docs_dir, pages = sys.argv[1], sys.argv[2:]
problems = []

for page in pages:
    with open(os.path.join(docs_dir, page), encoding="utf-8") as f:
        first = f.readline().rstrip("\n")
    if not first.startswith("Title: ") or not first[len("Title: "):].strip():
        problems.append(f"{page}: the first line is not “Title: …”")

for name in sorted(os.listdir(docs_dir)):
    if name.endswith(".md") and name not in pages:
        problems.append(f"{name} is not among the content pages in docs/meson.build")

print("1..1")
for problem in problems:
    print(f"# {problem}")
print(("not ok" if problems else "ok") + " 1 every page has a title, and is listed")
sys.exit(1 if problems else 0)
