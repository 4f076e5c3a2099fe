"""Replace the generated part of a Markdown file.

  python3 train/splice_section.py docs/BENCHMARKS.md rd train/rd_out/rd_section.md

puts the content of the last file between the lines <!-- BEGIN rd --> and
<!-- END rd --> of the first, so measured tables are regenerated, not edited.
"""
import sys

doc, name, part = sys.argv[1:4]
text = open(doc).read()
begin, end = f"<!-- BEGIN {name} -->\n", f"<!-- END {name} -->"
i, j = text.index(begin) + len(begin), text.index(end)
with open(doc, "w") as f:
    f.write(text[:i] + open(part).read().rstrip("\n") + "\n" + text[j:])
