#!/usr/bin/python3
"""check_api_docs.py HEADER API_MD - fails if docs/api.md misses part of the public API.

Every function declared in the header (a name matching afmt_[a-z_]+ followed by "(",
comments stripped) must appear in API_MD as a call or signature, "name(". Every macro
(#define AFMT_..., except the include guard), enum constant (AFMT_...) and type name
(afmt_... in a typedef) must appear in API_MD as a word. Missing names are listed, one a
line, and the exit status is 1; 0 when everything is documented.
"""
import re
import sys


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: check_api_docs.py include/afmt.h docs/api.md\n")
        return 2
    try:
        header = strip_comments(open(argv[1], encoding="utf-8").read())
        doc = open(argv[2], encoding="utf-8").read()
    except OSError as e:
        sys.stderr.write("check_api_docs: %s\n" % e)
        return 2

    functions = sorted(set(re.findall(r"\b(afmt_[a-z_]+)\s*\(", header)))
    macros = set(re.findall(r"^\s*#\s*define\s+(AFMT_[A-Z0-9_]+)", header, flags=re.M))
    macros.discard("AFMT_H")  # the include guard
    enums = set()
    for body in re.findall(r"typedef\s+enum\s*\{(.*?)\}", header, flags=re.S):
        enums.update(re.findall(r"\b(AFMT_[A-Z0-9_]+)\b", body))
    types = set(re.findall(r"\}\s*(afmt_[a-z_]+)\s*;", header))
    types.update(re.findall(r"typedef\s+struct\s+\w+\s+(afmt_[a-z_]+)\s*;", header))

    if len(functions) < 10:
        sys.stderr.write("check_api_docs: only %d functions found in %s; parser broken?\n"
                         % (len(functions), argv[1]))
        return 2

    missing = []
    for name in functions:
        if not re.search(r"\b%s\s*\(" % re.escape(name), doc):
            missing.append("function " + name)
    for kind, names in (("macro", macros), ("enum constant", enums), ("type", types)):
        for name in sorted(names):
            if not re.search(r"\b%s\b" % re.escape(name), doc):
                missing.append("%s %s" % (kind, name))

    if missing:
        sys.stderr.write("%s does not document %d name(s) declared in %s:\n"
                         % (argv[2], len(missing), argv[1]))
        for m in missing:
            sys.stderr.write("  " + m + "\n")
        return 1
    print("%s documents all %d functions, %d macros, %d enum constants and %d types of %s"
          % (argv[2], len(functions), len(macros), len(enums), len(types), argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
