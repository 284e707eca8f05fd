#!/usr/bin/env python3
"""Reads a Catch2 v2 XML report. Default: prints "<passed> <failed>" test
cases from OverallResultsCases. --failures: prints each failed assertion."""
import sys
import xml.etree.ElementTree as ET


def main():
    args = sys.argv[1:]
    failures = "--failures" in args
    path = [a for a in args if a != "--failures"][0]
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return 1
    if failures:
        for case in root.iter("TestCase"):
            for expr in case.iter("Expression"):
                if expr.get("success") == "false":
                    orig = (expr.findtext("Original") or "").strip()
                    exp = (expr.findtext("Expanded") or "").strip()
                    print(f"  FAILED {case.get('name')}: {expr.get('filename')}:{expr.get('line')}: {orig} -> {exp[:300]}")
            for exc in case.iter("Exception"):
                print(f"  EXCEPTION {case.get('name')}: {exc.get('filename')}:{exc.get('line')}: {(exc.text or '').strip()[:300]}")
            for fl in case.iter("Failure"):
                print(f"  FAILURE {case.get('name')}: {fl.get('filename')}:{fl.get('line')}: {(fl.text or '').strip()[:300]}")
            for fat in case.iter("FatalErrorCondition"):
                print(f"  FATAL {case.get('name')}: {(fat.text or '').strip()[:300]}")
        return 0
    cases = root.find("OverallResultsCases")
    if cases is None:
        return 1
    print(cases.get("successes"), int(cases.get("failures")) + int(cases.get("expectedFailures") or 0) * 0)
    return 0


sys.exit(main())
