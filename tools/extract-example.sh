#!/bin/sh
# Prints the C++ block that follows the "<!-- example: NAME -->" marker in
# a Markdown file (NAME: the second argument, default exchange), so the
# README's examples are compiled by the tests.
awk -v marker="<!-- example: ${2:-exchange} -->" '$0 == marker {m=1; next} m==1 && /^```cpp/{m=2; next} m==2 && /^```/{exit} m==2{print}' "$1"
