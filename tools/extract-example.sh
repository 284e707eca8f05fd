#!/bin/sh
# Prints the C++ block that follows the "<!-- example: exchange -->" marker in
# a Markdown file, so the README's example is compiled by the tests.
awk '/<!-- example: exchange -->/{m=1; next} m==1 && /^```cpp/{m=2; next} m==2 && /^```/{exit} m==2{print}' "$1"
